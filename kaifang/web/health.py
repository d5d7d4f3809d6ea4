"""Probes and metrics for the people who run the platform.

- `GET /healthz`: the process is alive and reaches its database and home folder (load balancers).
- `GET /readyz`: it can serve: the database answers and is migrated to the newest schema, the file
  store takes a write, and Redis answers when jobs or rate limits use it. 503 names what is not.
- `GET /metrics`: Prometheus text format — requests by route and status, their durations, the
  audit records waiting to be written, the versions waiting to be read. Only for the networks in
  `KAIFANG_METRICS_NETWORKS` (loopback by default); anyone else gets 404.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select, text

from kaifang import migrate
from kaifang.errors import NotFound
from kaifang.web.security import client_ip

if TYPE_CHECKING:
    from kaifang.app import Platform
    from kaifang.settings import Settings

router = APIRouter(include_in_schema=False)


class Metrics:
    """One registry per app (tests build many apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kaifang_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "kaifang_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.audit_buffer = Gauge(
            "kaifang_audit_buffered_records", "Request records waiting to be written", registry=self.registry
        )
        self.pending_versions = Gauge(
            "kaifang_versions_processing", "Uploaded versions waiting to be read", registry=self.registry
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        label = route or "unmatched"  # unmatched paths are not labels: a scanner would explode the series
        self.requests.labels(method, label, str(status)).inc()
        self.duration.labels(label).observe(seconds)

    def collect(self, audit_buffered: Callable[[], int], processing: Callable[[], int]) -> bytes:
        self.audit_buffer.set(audit_buffered())
        self.pending_versions.set(processing())
        return generate_latest(self.registry)


@router.get("/healthz")
def healthz(request: Request) -> Response:
    """200 when the database and the file store answer."""
    kf = request.app.state.kf
    try:
        with kf.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        writable = kf.settings.home.is_dir()
    except Exception:  # any failure means "not healthy"
        return JSONResponse({"status": "error", "message": "数据库不可用"}, status_code=503)
    if not writable:
        return JSONResponse({"status": "error", "message": "文件存储不可用"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
def readyz(request: Request) -> Response:
    """200 when every part the platform serves from is ready; else 503 naming the parts that are not."""
    kf = request.app.state.kf
    checks = {"database": _database(kf), "storage": _storage(kf)}
    redis_urls = {url for url in _redis_urls(kf.settings) if url}
    if redis_urls:
        checks["redis"] = _redis(redis_urls)
    failed = {name: problem for name, problem in checks.items() if problem}
    body = {name: (problem or "ok") for name, problem in checks.items()}
    if failed:
        return JSONResponse({"status": "not_ready", "checks": body}, status_code=503)
    return JSONResponse({"status": "ready", "checks": body})


def _database(kf: Platform) -> str:
    try:
        with kf.db.engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:
        return "数据库不可用"
    return "" if current == migrate.head() else f"数据库结构不是最新（{current}），请运行 kaifang migrate"


def _storage(kf: Platform) -> str:
    probe = kf.settings.files_dir / f".ready-{secrets.token_hex(4)}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError:
        return "文件存储不可写"
    return ""


def _redis_urls(settings: Settings) -> list[str]:
    urls = [settings.redis_url] if settings.jobs_backend == "redis" else []
    if settings.ratelimit_storage_url.startswith(("redis://", "rediss://")):
        urls.append(settings.ratelimit_storage_url)
    return urls


def _redis(urls: set[str]) -> str:
    from redis import Redis
    from redis.exceptions import RedisError

    for url in sorted(urls):
        client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        except RedisError:
            return "Redis 不可用"
        finally:
            client.close()
    return ""


def _allowed(request: Request) -> bool:
    networks = request.app.state.kf.settings.metrics_networks
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(n.strip(), strict=False) for n in networks.split(",") if n.strip()
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus metrics, for the monitoring networks only."""
    if not _allowed(request):
        raise NotFound("您访问的页面或数据不存在")
    kf = request.app.state.kf

    def processing() -> int:
        from kaifang.datastore.models import ResourceVersion, VersionStatus

        with kf.db.session() as db:
            count = select(func.count()).select_from(ResourceVersion)
            return int(db.scalar(count.where(ResourceVersion.status == VersionStatus.processing)) or 0)

    body = kf.metrics.collect(kf.audit.buffered, processing)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
