"""Fixtures: a real app on a real database (SQLite by default, PostgreSQL when
KAIFANG_TEST_DATABASE_URL is set), emptied before every test; factories for users and entries.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=".*httpx2.*")

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from kaifang.accounts import stamp  # noqa: E402
from kaifang.accounts.models import Membership, Organisation, User  # noqa: E402
from kaifang.accounts.permissions import Actor  # noqa: E402
from kaifang.accounts.service import actor_for, hash_password, issue_api_key  # noqa: E402
from kaifang.app import Platform, create_app  # noqa: E402
from kaifang.catalog import service as catalog  # noqa: E402
from kaifang.catalog.service import ensure_default_taxonomies  # noqa: E402
from kaifang.datastore import answers  # noqa: E402
from kaifang.datastore.engines import wait_for_copies  # noqa: E402
from kaifang.db import Base, is_sqlite, utcnow  # noqa: E402
from kaifang.settings import load_settings  # noqa: E402
from kaifang.web.security import CSRF_COOKIE, csrf_token_for  # noqa: E402

PASSWORD = "Test-password-2026"
_HASH = hash_password(PASSWORD)


def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process, dropped afterwards."""
    base = os.environ["KAIFANG_TEST_DATABASE_URL"]
    name = f"kaifang_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(
        base.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", base)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("KAIFANG_TEST_DATABASE_URL"):
        yield from _postgres_database()
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'kaifang.db'}"


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def app(database_url: str, home: Path) -> Any:
    settings = load_settings(
        mode="test",
        home=home,
        database_url=database_url,
        login_rate_limit="1000/minute",
        api_rate_limit="100000/minute",
        base_url="http://testserver",
    )
    return create_app(settings)


@pytest.fixture(scope="session")
def platform(app: Any) -> Platform:
    return app.state.kf  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _empty_database(platform: Platform) -> Iterator[None]:
    """Every test starts from an empty platform with the default taxonomies."""
    platform.jobs.drain()  # a job left by the previous test must not write into this one
    platform.audit.flush()  # nor the request records it left buffered
    wait_for_copies(60)  # nor a copy of one of its versions, built into this test's files
    engine = platform.db.engine
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if is_sqlite(engine):
            for name in [*tables, "search_fts"]:
                conn.execute(text(f"DELETE FROM {name}"))
        else:
            # A session a test left open would block TRUNCATE forever: fail fast and say so instead.
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
            # The audit tables are append-only (migration 0010); a superuser can switch triggers off.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    with platform.db.session() as db:
        ensure_default_taxonomies(db)
    platform.limiter.reset()
    answers.answers.clear()  # ids start again at 1: an answer kept for the last test must not be found
    stamp.clear_all()  # and the stamp at 0: nor a caller or version kept under the same stamp
    for mail in platform.settings.outbox_dir.glob("*.eml"):
        mail.unlink()
    shutil.rmtree(platform.settings.files_dir, ignore_errors=True)
    platform.settings.files_dir.mkdir(parents=True)
    yield


@pytest.fixture
def db(platform: Platform) -> Iterator[Session]:
    """A session for arranging and checking state; committed at the end of the test."""
    with platform.db.session() as session:
        yield session


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


class Factory:
    """Builds users, organisations and entries directly in the database."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def org(self, slug: str = "jtw", name: str | None = None, org_type: str = "department") -> Organisation:
        with self.platform.db.session() as db:
            org = Organisation(slug=slug, name=name or f"测试单位{slug}", org_type=org_type)
            db.add(org)
        return org

    def user(
        self,
        username: str,
        *,
        system_role: str | None = None,
        org: Organisation | None = None,
        roles: tuple[str, ...] = (),
        verified: bool = True,
        active: bool = True,
    ) -> User:
        with self.platform.db.session() as db:
            user = User(
                username=username,
                email=f"{username}@example.com",
                display_name=username.title(),
                password_hash=_HASH,
                system_role=system_role,
                is_active=active,
                email_verified_at=utcnow() if verified else None,
            )
            db.add(user)
            db.flush()
            for role in roles:
                assert org is not None
                db.add(Membership(user_id=user.id, org_id=org.id, role=role))
        return user

    def actor(self, user: User) -> Actor:
        with self.platform.db.session() as db:
            return actor_for(db, db.get(User, user.id))

    def api_key(self, user: User) -> str:
        with self.platform.db.session() as db:
            _key, plain = issue_api_key(db, Actor(username="test"), user.id, "test")
        return plain

    def entry(
        self,
        publisher: User,
        org: Organisation,
        *,
        status: str = "published",
        regulator: User | None = None,
        **fields: Any,
    ) -> int:
        """An entry walked through the real workflow up to `status`."""
        data = complete_fields(**fields)
        with self.platform.db.session() as db:
            actor = actor_for(db, db.get(User, publisher.id))
            entry = catalog.create_entry(db, actor, org.id, data)
            entry_id = entry.id
        if status == "draft":
            return entry_id
        reg = regulator or self._regulator()
        steps: list[tuple[Any, User, tuple[Any, ...]]] = [(catalog.submit_entry, publisher, ())]
        if status == "returned":
            steps.append((catalog.return_entry, reg, ("信息不完整",)))
        if status in ("confirmed", "published", "retired"):
            steps.append((catalog.confirm_entry, reg, ()))
        if status in ("published", "retired"):
            steps.append((catalog.publish_entry, publisher, ()))
        if status == "retired":
            steps.append((catalog.retire_entry, publisher, ("数据已停止更新",)))
        for func, user, args in steps:
            with self.platform.db.session() as db:
                func(db, actor_for(db, db.get(User, user.id)), entry_id, *args)
        return entry_id

    def _regulator(self) -> User:
        with self.platform.db.session() as db:
            existing = db.query(User).filter(User.username == "factory-regulator").one_or_none()
        return existing or self.user("factory-regulator", system_role="regulator")


def complete_fields(**overrides: Any) -> dict[str, Any]:
    """A complete set of catalog fields that passes the submission check."""
    fields: dict[str, Any] = {
        "title": "海河市公交线路及站点信息",
        "summary": "全市公交线路走向、站点名称及经纬度。",
        "keywords": ["公交", "线路", "站点"],
        "theme": "jtys",
        "industry": "G",
        "grade": "L1",
        "open_type": "unconditional",
        "update_frequency": "monthly",
        "access_methods": ["download", "api"],
        "formats": ["CSV", "JSON"],
        "contact_name": "林晓雯",
        "contact_phone": "022-23581025",
        "contact_email": "data@example.gov.cn",
        "spatial_coverage": "海河市全市",
        "terms_of_use": "注明数据来源。",
    }
    if overrides.get("open_type") == "closed":
        fields.update(
            closed_reason="涉及个人隐私",
            closed_legal_basis="《个人信息保护法》第十三条",
            next_review_date="2099-12-31",
            access_methods=[],
            formats=[],
        )
    if overrides.get("open_type") == "conditional":
        fields.update(open_conditions="仅限科研用途，需签订使用协议", grade="L2")
    fields.update(overrides)
    return fields


@pytest.fixture
def factory(platform: Platform) -> Factory:
    return Factory(platform)


def login(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    """Log in through the real login form; the client then carries the session cookie."""
    client.get("/login")
    response = client.post(
        "/login",
        data={"login": username, "password": password, "csrf_token": csrf_token(client)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:500]
    return client


def csrf_token(client: TestClient) -> str:
    if CSRF_COOKIE not in client.cookies:
        client.get("/healthz")
    app = client.app
    return csrf_token_for(app.state.kf.settings.secret_key, client.cookies[CSRF_COOKIE])  # type: ignore[attr-defined]


# --- a cast of every role, with API keys (permission, workflow, search and API tests) ------------

CJK = re.compile(r"[\u4e00-\u9fff]")


class Cast:
    """One provider (jtw) with a publisher and a reviewer-only member, a second provider (wjw) with
    its own publisher, a citizen, the regulator and the operator — each with an API key."""

    ROLES = ("anonymous", "user", "publisher", "reviewer", "other_publisher", "regulator", "operator")

    def __init__(self, factory: Factory) -> None:
        self.factory = factory
        self.org = factory.org("jtw", "海河市交通运输委员会")
        self.other_org = factory.org("wjw", "海河市卫生健康委员会")
        self.users: dict[str, User] = {
            "user": factory.user("citizen"),
            "publisher": factory.user("pub", org=self.org, roles=("publisher",)),
            "reviewer": factory.user("rev", org=self.org, roles=("reviewer",)),
            "other_publisher": factory.user("other-pub", org=self.other_org, roles=("publisher",)),
            "regulator": factory.user("factory-regulator", system_role="regulator"),
            "operator": factory.user("operator", system_role="operator"),
        }
        self._keys: dict[str, str] = {}

    def key(self, role: str) -> str:
        if role not in self._keys:
            self._keys[role] = self.factory.api_key(self.users[role])
        return self._keys[role]

    def headers(self, role: str) -> dict[str, str]:
        """The Authorization header of the role's API key (none for anonymous)."""
        return {} if role == "anonymous" else {"Authorization": f"Bearer {self.key(role)}"}

    def entry(self, status: str = "published", **fields: Any) -> int:
        """An entry of the jtw provider walked through the real workflow up to `status`."""
        return self.factory.entry(
            self.users["publisher"], self.org, status=status, regulator=self.users["regulator"], **fields
        )


@pytest.fixture
def cast(factory: Factory) -> Cast:
    return Cast(factory)


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is the API's error shape with the status and a Chinese message."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert CJK.search(error["message"]), error
    if code is not None:
        assert error["code"] == code, error
    return error  # type: ignore[no-any-return]


PASSING_REVIEW = {"confidentiality": "passed", "risk_assessment": "passed", "notes": "经审查，可以开放"}


def pass_review(client: Any, resource_id: int, number: int, headers: dict[str, str]) -> None:
    """Record a passing 保密审查 and 安全风险评估 of a version: every publication needs one (Art. 26)."""
    url = f"/api/v1/resources/{resource_id}/versions/{number}/review"
    response = client.post(url, json=PASSING_REVIEW, headers=headers)
    assert response.status_code == 201, response.text
