"""Every data access names the entry, resource, version, format and rows it read (Art. 18)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kaifang.app import Platform
from kaifang.audit.models import AuditRecord
from tests.conftest import Factory
from tests.datastore.test_data_api import auth, published_resource


@pytest.fixture
def table(client: TestClient, platform: Platform, factory: Factory) -> dict[str, Any]:
    org = factory.org("sthj", "海河市生态环境局")
    pub = factory.user("pub", org=org, roles=("publisher",))
    citizen = factory.user("citizen")
    entry_id = factory.entry(pub, org, title="空气质量日报")
    rid = published_resource(client, platform, factory.api_key(pub), entry_id)
    return {"entry": entry_id, "rid": rid, "key": factory.api_key(citizen), "citizen": citizen.id}


def access_records(platform: Platform, action: str | None = None, *, flush: bool = True) -> list[AuditRecord]:
    """The data-access records in the log (of one action), oldest first. `flush`: first have the
    audit writer write the journal (the data API's records are journaled, written within a second)."""
    if flush:
        platform.audit.flush()
    query = select(AuditRecord).where(AuditRecord.kind == "access")
    if action is not None:
        query = query.where(AuditRecord.action == action)
    with platform.db.session() as db:
        rows = list(db.scalars(query.order_by(AuditRecord.id)))
        db.expunge_all()
    return rows


def _accesses(platform: Platform) -> list[AuditRecord]:
    return access_records(platform)


def test_an_entry_page_preview_is_a_data_access(client: TestClient, platform: Platform, table: dict) -> None:
    assert client.get(f"/datasets/{table['entry']}").status_code == 200
    [preview] = _accesses(platform)
    assert preview.action == "data:access:preview" and preview.data_format == "preview"
    assert (preview.entry_id, preview.resource_id, preview.rows) == (table["entry"], table["rid"], 3)
    assert preview.version_id is not None and preview.actor_name == "anonymous"


def test_a_chart_is_a_data_access(client: TestClient, platform: Platform, table: dict) -> None:
    url = f"/datasets/{table['entry']}/resources/{table['rid']}/chart.json"
    assert client.get(url, params={"x": "区"}).status_code == 200
    [chart] = _accesses(platform)
    assert chart.action == "data:access:query" and chart.data_format == "chart" and chart.rows == 3
    assert chart.summary["x"] == "区"


def test_refused_reads_are_no_data_access(client: TestClient, platform: Platform, table: dict) -> None:
    client.get(f"/datasets/{table['entry']}/resources/{table['rid']}/chart.json", params={"x": "无此列"})
    client.get(f"/api/v1/resources/{table['rid']}/data")  # no key
    assert _accesses(platform) == []


def test_data_api_download_and_sql_are_data_accesses(
    client: TestClient, platform: Platform, table: dict
) -> None:
    rid, headers = table["rid"], auth(table["key"])
    assert (
        client.get(f"/api/v1/resources/{rid}/data", headers=headers, params={"区": "和平区"}).status_code
        == 200
    )
    assert client.get(f"/api/v1/resources/{rid}/download", params={"format": "csv"}).status_code == 200
    sql = client.get(
        f"/api/v1/resources/{rid}/sql", headers=headers, params={"sql": "SELECT count(*) AS n FROM data"}
    )
    assert sql.status_code == 200
    # The data API's record reaches the table from its journal (kaifang.audit.journal), by the
    # audit writer: not necessarily in the order of the calls.
    by_action = {record.action: record for record in _accesses(platform)}
    assert len(by_action) == 3
    query, download, by_sql = (by_action[f"data:access:{what}"] for what in ("query", "download", "sql"))
    assert (query.action, query.data_format, query.rows) == ("data:access:query", "json", 1)
    assert query.actor_id == table["citizen"] and query.api_key_id is not None
    assert query.summary["filters"] == {"区": "和平区"}
    assert (download.action, download.data_format, download.actor_name) == (
        "data:access:download",
        "csv",
        "anonymous",
    )
    assert (by_sql.action, by_sql.rows) == ("data:access:sql", 1)
    assert by_sql.summary["sql"] == "SELECT count(*) AS n FROM data"


def _records_of_path(platform: Platform, path: str) -> list[AuditRecord]:
    platform.audit.flush()
    with platform.db.session() as db:
        rows = list(db.scalars(select(AuditRecord).where(AuditRecord.path == path).order_by(AuditRecord.id)))
        db.expunge_all()
    return rows


def test_a_data_api_call_is_one_record_holding_the_request_and_the_access(
    client: TestClient, platform: Platform, table: dict
) -> None:
    path = f"/api/v1/resources/{table['rid']}/data"
    answer = client.get(
        path, params={"limit": "2"}, headers={**auth(table["key"]), "User-Agent": "research-script/1.0"}
    )
    assert answer.status_code == 200
    [call] = _records_of_path(platform, path)
    assert (call.kind, call.action, call.method, call.status) == ("access", "data:access:query", "GET", 200)
    assert call.route == "/api/v1/resources/{resource_id}/data" and call.user_agent == "research-script/1.0"
    assert call.bytes_sent == len(answer.content) and call.duration_ms is not None and call.rows == 2
    assert (call.entry_id, call.resource_id, call.actor_id) == (
        table["entry"],
        table["rid"],
        table["citizen"],
    )


def test_a_refused_data_api_call_is_still_a_request_record(
    client: TestClient, platform: Platform, table: dict
) -> None:
    path = f"/api/v1/resources/{table['rid']}/data"
    assert client.get(path, params={"不存在的列": "1"}, headers=auth(table["key"])).status_code == 422
    [call] = _records_of_path(platform, path)
    assert (call.kind, call.status) == ("request", 422) and call.rows is None
