"""Auditing can be switched off only to measure its cost, never in production, and never for state
changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select

from kaifang.app import Platform, create_app
from kaifang.audit.models import AuditRecord
from kaifang.settings import load_settings
from tests.conftest import Factory, login
from tests.datastore.test_data_api import auth, published_resource


def test_production_refuses_to_switch_auditing_off(tmp_path: Path) -> None:
    production = {
        "mode": "production",
        "home": tmp_path,
        "secret_key": "s" * 40,
        "mail_backend": "smtp",
    }
    assert load_settings(**production).audit_enabled
    with pytest.raises(ValidationError, match="不能关闭审计"):
        load_settings(**production, audit_enabled=False)


def _counts(platform: Platform) -> dict[str, int]:
    platform.audit.flush()
    with platform.db.session() as db:
        rows = db.execute(select(AuditRecord.kind, func.count()).group_by(AuditRecord.kind)).all()
    return {kind: n for kind, n in rows}


def test_switched_off_it_records_state_changes_only(
    client: TestClient, factory: Factory, platform: Platform, database_url: str, home: Path
) -> None:
    org = factory.org()
    publisher = factory.user("pub", org=org, roles=("publisher",))
    factory.user("citizen")
    rid = published_resource(client, platform, factory.api_key(publisher), factory.entry(publisher, org))
    key = factory.api_key(factory.user("caller"))
    settings = load_settings(
        mode="test", home=home, database_url=database_url, audit_enabled=False, base_url="http://testserver"
    )
    quiet = create_app(settings, prepare=False)
    try:
        before = _counts(platform)
        with TestClient(quiet) as off:
            assert off.get(f"/api/v1/resources/{rid}/data", headers=auth(key)).status_code == 200
            assert off.get(f"/api/v1/resources/{rid}/download").status_code == 200
            login(off, "citizen")
        after = _counts(platform)
    finally:
        quiet.state.kf.db.dispose()
    assert after.get("request", 0) == before.get("request", 0)
    assert after.get("access", 0) == before.get("access", 0)
    assert after["change"] == before["change"] + 1  # the login

    assert client.get(f"/api/v1/resources/{rid}/download").status_code == 200
    recorded = _counts(platform)
    assert recorded["access"] == after.get("access", 0) + 1 and recorded["request"] > after.get("request", 0)
