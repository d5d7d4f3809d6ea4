"""The foundation: models and migrations agree, settings refuse unsafe values, `kaifang demo`
seeds the demo city once, health and security headers."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from kaifang import cli, migrate
from kaifang.accounts.models import Membership, Organisation, User
from kaifang.accounts.service import verify_password
from kaifang.audit.models import AuditRecord
from kaifang.catalog.models import Entry
from kaifang.settings import DEV_SECRET, Settings
from tests.conftest import CJK

STRONG_SECRET = "k" * 16 + "7f3a9c2e5b8d1f4a6c0e"


# --- models and migrations ----------------------------------------------------------------------


def test_models_and_migrations_agree(platform) -> None:
    migrate.check(platform.db.engine)


def test_migrations_are_idempotent(platform) -> None:
    migrate.upgrade(platform.db.engine)
    migrate.check(platform.db.engine)


# --- settings -----------------------------------------------------------------------------------


def test_production_refuses_the_development_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(mode="production", secret_key=DEV_SECRET, mail_backend="smtp", home=tmp_path)
    assert CJK.search(str(err.value))


def test_production_refuses_the_file_outbox(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(mode="production", secret_key=STRONG_SECRET, mail_backend="file", home=tmp_path)


@pytest.mark.parametrize("mode", ["dev", "demo", "test", "production"])
def test_short_secret_refused_in_every_mode(mode: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(mode=mode, secret_key="too-short", mail_backend="smtp", home=tmp_path)


def test_valid_production_settings(tmp_path: Path) -> None:
    settings = Settings(mode="production", secret_key=STRONG_SECRET, mail_backend="smtp", home=tmp_path)
    assert settings.is_production


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KAIFANG_MODE", "staging"),
        ("KAIFANG_SESSION_IDLE_MINUTES", "0"),
        ("KAIFANG_LOGIN_MAX_FAILURES", "many"),
        ("KAIFANG_SECRET_KEY", "short"),
    ],
)
def test_settings_from_the_environment_are_validated(
    monkeypatch, tmp_path: Path, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings(home=tmp_path)


def test_bad_setting_stops_the_cli_with_a_chinese_message(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setenv("KAIFANG_HOME", str(tmp_path))
    monkeypatch.setenv("KAIFANG_MODE", "production")
    monkeypatch.setenv("KAIFANG_SECRET_KEY", DEV_SECRET)
    assert cli.main(["migrate"]) != 0
    assert CJK.search(capsys.readouterr().err)


# --- the demo city ------------------------------------------------------------------------------


def _counts(db: Session) -> dict[str, int]:
    return {
        model.__name__: db.scalar(select(func.count()).select_from(model)) or 0
        for model in (Organisation, User, Membership, Entry, AuditRecord)
    }


def test_demo_seeds_the_city_once(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setenv("KAIFANG_HOME", str(tmp_path))
    monkeypatch.setenv("KAIFANG_DATABASE_URL", "")
    monkeypatch.delenv("KAIFANG_MODE", raising=False)
    assert cli.main(["demo", "--no-serve", "--small"]) == 0
    assert CJK.search(capsys.readouterr().out)
    engine = create_engine(f"sqlite:///{tmp_path / 'kaifang.db'}")
    try:
        with Session(engine) as db:
            first = _counts(db)
            _check_demo_city(db)
        assert cli.main(["demo", "--no-serve", "--small"]) == 1
        assert CJK.search(capsys.readouterr().err)
        with Session(engine) as db:
            assert _counts(db) == first
    finally:
        engine.dispose()


def _check_demo_city(db: Session) -> None:
    orgs = db.scalars(select(Organisation)).all()
    assert len(orgs) >= 10
    assert {"department", "utility", "association"} <= {o.org_type for o in orgs}
    users = {u.username: u for u in db.scalars(select(User))}
    assert users["demo-operator"].system_role == "operator"
    assert users["demo-regulator"].system_role == "regulator"
    assert users["demo-user"].system_role is None
    for name in ("demo-operator", "demo-regulator", "demo-provider", "demo-user"):
        assert users[name].email_verified_at is not None and users[name].is_active
    assert verify_password(users["demo-user"].password_hash, "kaifang-demo")
    jtw = db.scalars(select(Organisation).where(Organisation.slug == "jtw")).one()
    roles = set(
        db.scalars(
            select(Membership.role).where(
                Membership.user_id == users["demo-provider"].id, Membership.org_id == jtw.id
            )
        )
    )
    assert {"publisher", "reviewer"} <= roles
    entries = db.scalars(select(Entry)).all()
    assert len(entries) >= 60
    assert {e.open_type for e in entries} == {"unconditional", "conditional", "closed"}
    assert {e.status for e in entries} == {
        "draft",
        "submitted",
        "returned",
        "confirmed",
        "published",
        "retired",
    }
    assert {e.open_type for e in entries if e.status == "published"} == {
        "unconditional",
        "conditional",
        "closed",
    }
    for e in entries:
        if e.open_type == "closed":
            assert e.closed_reason and e.closed_legal_basis and e.next_review_date, e.title
        if e.open_type == "conditional":
            assert e.open_conditions, e.title
    assert len({e.theme for e in entries}) >= 8
    history = db.scalar(
        select(func.count()).select_from(AuditRecord).where(AuditRecord.target_type == "entry")
    )
    assert history >= len(entries)


# --- health and headers -------------------------------------------------------------------------


def test_healthz(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(
    "path", ["/healthz", "/api/v1/datasets", "/api/v1/datasets/999", "/", "/no-such-page", "/openapi.json"]
)
def test_security_headers(client, path: str) -> None:
    response = client.get(path)
    assert response.status_code < 500
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"]


def test_error_pages_are_chinese_html(client) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert CJK.search(response.text)
