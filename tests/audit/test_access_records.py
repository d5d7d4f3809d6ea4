"""Data-access records join the request's transaction as a Core insert at commit: they commit with
it, vanish with a rollback, and refuse what the database would refuse as bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kaifang.accounts.permissions import Actor
from kaifang.app import Platform
from kaifang.audit.models import AuditRecord
from kaifang.audit.service import DataAccess, record_access
from kaifang.audit.tags import Tag
from kaifang.errors import InvalidInput
from tests.conftest import Factory
from tests.datastore.test_data_api import auth, published_resource

READER = Actor(user_id=None, username="anonymous", ip="10.1.2.3")
ACCESS = DataAccess(entry_id=1, resource_id=2, version_id=3, data_format="csv", rows=10)


def _accesses(platform: Platform) -> int:
    with platform.db.session() as db:
        return (
            db.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "access")) or 0
        )


def test_the_record_commits_with_the_transaction_and_not_without_it(platform: Platform) -> None:
    with platform.db.session() as db:
        record_access(db, READER, Tag.data_access_download, ACCESS, summary={"filters": {"区": "和平区"}})
    with platform.db.sessionmaker() as db:
        record_access(db, READER, Tag.data_access_download, ACCESS)
        db.rollback()
        db.commit()  # nothing left to write: the rollback dropped it
    with pytest.raises(RuntimeError), platform.db.session() as db:
        record_access(db, READER, Tag.data_access_download, ACCESS)
        raise RuntimeError("the download failed before the commit")
    with platform.db.session() as db:
        [row] = db.scalars(select(AuditRecord).where(AuditRecord.kind == "access")).all()
        assert (row.action, row.ip, row.entry_id, row.resource_id, row.version_id) == (
            "data:access:download",
            "10.1.2.3",
            1,
            2,
            3,
        )
        assert row.summary == {"filters": {"区": "和平区"}} and row.target_id == "2" and row.comment == ""


def test_a_nul_in_the_summary_is_bad_input(platform: Platform) -> None:
    with pytest.raises(InvalidInput), platform.db.session() as db:
        record_access(db, READER, Tag.data_access_query, ACCESS, summary={"filters": {"区": "和\x00平"}})
    assert _accesses(platform) == 0


def test_a_data_call_with_a_nul_is_refused_not_a_server_error(
    client: TestClient, factory: Factory, platform: Platform
) -> None:
    org = factory.org()
    publisher = factory.user("pub", org=org, roles=("publisher",))
    rid = published_resource(client, platform, factory.api_key(publisher), factory.entry(publisher, org))
    headers: dict[str, Any] = auth(factory.api_key(factory.user("caller")))
    response = client.get(f"/api/v1/resources/{rid}/data", params={"区": "和\x00平"}, headers=headers)
    assert response.status_code == 422, response.text
    assert _accesses(platform) == 0
