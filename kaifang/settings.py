"""Every setting of the platform, declared once with its type, default and help.

Values come from environment variables prefixed ``KAIFANG_`` (``KAIFANG_DATABASE_URL`` …).
`load_settings` validates them at start-up so a misconfigured platform refuses to start
instead of failing on the first request.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A well-known secret: acceptable for a laptop demo, refused in production.
DEV_SECRET = "kaifang-development-secret-not-for-production"  # noqa: S105 - refused in production


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAIFANG_", extra="ignore")

    mode: Literal["dev", "demo", "test", "production"] = Field(
        "dev", description="dev/demo/test allow the development secret and the file mail outbox"
    )
    home: Path = Field(Path("var"), description="directory for the embedded database, files and mail outbox")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in KAIFANG_HOME")
    secret_key: str = Field(DEV_SECRET, description="signs sessions and tokens; at least 32 characters")
    base_url: str = Field("http://127.0.0.1:8000", description="public address used in e-mailed links")

    session_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="idle time after which a session ends"
    )
    session_max_hours: int = Field(12, ge=1, le=24 * 30, description="absolute lifetime of a session")
    cookie_secure: bool = Field(False, description="send cookies only over HTTPS (set in production)")

    password_min_length: int = Field(10, ge=8, le=128, description="minimum password length")
    login_max_failures: int = Field(5, ge=1, le=100, description="failed logins before an account is locked")
    login_lock_minutes: int = Field(
        15, ge=1, le=24 * 60, description="how long a locked account stays locked"
    )
    login_rate_limit: str = Field("20/minute", description="login attempts allowed per client IP")
    api_rate_limit: str = Field("600/minute", description="API requests allowed per key or client IP")
    ratelimit_storage_url: str = Field(
        "memory://", description="limits storage: memory:// or redis://host:port"
    )
    email_token_hours: int = Field(
        24, ge=1, le=24 * 14, description="validity of verification and reset links"
    )

    mail_backend: Literal["file", "smtp"] = Field("file", description="file writes .eml files to HOME/outbox")
    smtp_host: str = Field("localhost", description="SMTP server")
    smtp_port: int = Field(25, description="SMTP port")
    smtp_user: str = Field("", description="SMTP user (optional)")
    smtp_password: str = Field("", description="SMTP password (optional)")
    smtp_starttls: bool = Field(False, description="use STARTTLS")
    mail_from: str = Field("noreply@kaifang.example", description="sender address")

    page_size: int = Field(20, ge=1, le=100, description="default search page size")
    max_page_size: int = Field(100, ge=1, le=1000, description="largest page size a client may ask for")

    upload_max_mb: int = Field(1024, ge=1, le=1024 * 100, description="largest upload accepted, in MiB")
    data_max_limit: int = Field(10_000, ge=1, le=1_000_000, description="most rows one data API call returns")
    data_max_offset: int = Field(1_000_000, ge=0, description="deepest offset; deeper pages use the cursor")
    api_daily_quota: int = Field(
        100_000,
        ge=0,
        description="API calls one API key may make per calendar day, Beijing time (0: no quota)",
    )
    sql_timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="longest a read-only SQL query may run before it is stopped"
    )
    sql_max_rows: int = Field(10_000, ge=1, le=1_000_000, description="most rows one SQL query returns")
    sql_max_length: int = Field(
        10_000, ge=100, le=1_000_000, description="longest SQL text accepted, in characters"
    )
    sql_memory_mb: int = Field(
        512, ge=64, le=1024 * 1024, description="memory one SQL query may use in DuckDB, in MiB"
    )
    data_cache_mb: int = Field(
        64,
        ge=0,
        le=64 * 1024,
        description="memory for answers of the data API asked again of the same published version, in "
        "MiB (0: off)",
    )
    query_memory_mb: int = Field(
        1024,
        ge=128,
        le=1024 * 1024,
        description="memory the data API's DuckDB may hold (buffers and cache; larger work spills to "
        "HOME/tmp), in MiB",
    )
    row_copies: bool = Field(
        True,
        description="keep a SQLite row copy of every published table for pages of rows (several times "
        "faster; on disk about the size of the data as CSV, 5-15 times its Parquet file)",
    )

    jobs_backend: Literal["inprocess", "redis"] = Field(
        "inprocess",
        description="inprocess: the server runs background jobs itself; redis: `kaifang worker` runs them",
    )
    jobs_queue: str = Field("kaifang", description="name of the job queue in Redis (its key prefix)")
    jobs_lease_seconds: int = Field(
        60,
        ge=1,
        le=3600,
        description="a worker renews its hold on a job within this; a dead worker's job restarts after it",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis for the job queue (jobs_backend=redis)"
    )

    audit_signing_key: str = Field(
        "",
        description="seed of the Ed25519 key signing audit checkpoints; empty: derived from the secret key",
    )
    audit_checkpoint_minutes: int = Field(
        10, ge=1, le=24 * 60, description="how often the head of the audit chain is signed"
    )
    audit_retention_days: int = Field(
        3 * 365, ge=180, description="how long audit records stay in the database (at least 180 days)"
    )
    audit_archive_daily: bool = Field(
        True,
        description="the server moves audit records past the retention to HOME/audit-archive once a day; "
        "turn off where several hosts serve the platform and `kaifang audit archive` runs from cron on one",
    )
    audit_maintenance_database_url: str = Field(
        "",
        description="PostgreSQL: URL of a role that is a member of kaifang_audit_maintainer, the only one "
        "allowed to delete audit rows (the retention archive uses it); empty: the application's own URL, "
        "which works only if the operator made the application's role a member",
    )
    audit_enabled: bool = Field(
        True,
        description="record every HTTP request and data access; off only to measure what auditing costs "
        "(refused in production; state changes are recorded regardless)",
    )

    desensitize_master_key: str = Field(
        "",
        description="master key of the per-provider pseudonym secrets (HMAC-SHA256); empty: derived from "
        "the secret key. Changing it changes every pseudonym published afterwards",
    )
    desensitize_k_threshold: int = Field(
        5, ge=2, le=1000, description="smallest group size the re-identification risk report accepts (k)"
    )
    desensitize_keep_staging: bool = Field(
        False, description="keep the unmasked staging data of a version after publication (default: delete)"
    )

    metrics_networks: str = Field(
        "127.0.0.0/8,::1/128", description="comma-separated networks allowed to read /metrics (Prometheus)"
    )

    site_name: str = Field("海河市公共数据开放平台", description="portal name")
    site_sponsor: str = Field("海河市互联网信息办公室（演示）", description="主办单位")
    site_organizer: str = Field("海河市大数据管理中心（演示）", description="承办单位")
    site_contact: str = Field("022-00000000（演示号码） service@kaifang.example", description="联系方式")
    site_code: str = Field("0000000000（演示）", description="网站标识码")
    site_icp: str = Field("演ICP备00000000号", description="ICP备案编号")
    site_police_record: str = Field("演公网安备00000000000000号", description="公安机关备案号")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.mode == "production":
            if self.secret_key == DEV_SECRET:
                raise ValueError("KAIFANG_SECRET_KEY 仍是开发默认值，生产模式下必须设置随机密钥")
            if self.mail_backend == "file":
                raise ValueError("生产模式下 KAIFANG_MAIL_BACKEND 必须为 smtp")
            if not self.audit_enabled:
                raise ValueError("生产模式下不能关闭审计（KAIFANG_AUDIT_ENABLED）")
        if len(self.secret_key) < 32:
            raise ValueError("KAIFANG_SECRET_KEY 至少需要 32 个字符")
        return self

    @cached_property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'kaifang.db').resolve()}"

    @property
    def files_dir(self) -> Path:
        """Local file storage: uploads in staging/, published data in data/."""
        return self.home / "files"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def is_production(self) -> bool:
        return self.mode == "production"


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings; raises ``pydantic.ValidationError`` on bad values."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings
