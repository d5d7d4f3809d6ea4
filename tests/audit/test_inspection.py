"""The operator and the regulator search, export and verify the audit log; users see their own."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlalchemy import select

from kaifang.app import Platform
from kaifang.audit.models import AuditRecord
from tests.conftest import Factory, csrf_token, login


def _records(platform: Platform, action: str) -> list[AuditRecord]:
    with platform.db.session() as db:
        rows = list(
            db.scalars(select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.id))
        )
        db.expunge_all()
    return rows


def test_only_the_operator_and_the_regulator_inspect(client: TestClient, factory: Factory) -> None:
    assert client.get("/admin/audit", follow_redirects=False).status_code in (302, 303)
    org = factory.org()
    factory.user("pub", org=org, roles=("publisher",))
    login(client, "pub")
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/audit/export.csv").status_code == 403
    assert client.post("/admin/audit/verify", data={"csrf_token": csrf_token(client)}).status_code == 403


def test_search_by_actor_ip_action_and_day_is_itself_recorded(
    client: TestClient, factory: Factory, platform: Platform
) -> None:
    citizen = factory.user("citizen")
    key = factory.api_key(citizen)
    client.get("/api/v1/datasets", headers={"Authorization": f"Bearer {key}"})
    factory.user("reg", system_role="regulator")
    login(client, "reg")
    platform.audit.flush()
    page = client.get("/admin/audit", params={"actor": "citizen", "kind": "request"})
    assert page.status_code == 200
    assert "/api/v1/datasets" in page.text and "共 1 条记录" in page.text
    assert "共 0 条记录" in client.get("/admin/audit", params={"actor": "citizen", "ip": "10.9.9.9"}).text
    assert (
        "共 0 条记录" in client.get("/admin/audit", params={"actor": "citizen", "until": "2020-01-01"}).text
    )
    assert (
        "共 1 条记录" in client.get("/admin/audit", params={"actor": "citizen", "since": "2020-01-01"}).text
    )
    [searched, *_] = _records(platform, "audit:records:searched")
    assert searched.actor_name == "reg" and searched.summary["filters"] == {
        "actor": "citizen",
        "kind": "request",
    }


def test_bad_filters_are_a_clear_error(client: TestClient, factory: Factory) -> None:
    factory.user("op", system_role="operator")
    login(client, "op")
    for params in ({"since": "2026-13-45"}, {"entry": "abc"}, {"kind": "x"}, {"action": "drop table"}):
        response = client.get("/admin/audit", params=params)
        assert response.status_code == 422, params
        assert "应为" in response.text or "不在可选范围内" in response.text


def test_export_is_csv_with_a_chinese_header_and_is_recorded(
    client: TestClient, factory: Factory, platform: Platform
) -> None:
    factory.user("op", system_role="operator")
    login(client, "op")
    client.get("/datasets")
    client.get("/providers")
    platform.audit.flush()
    response = client.get("/admin/audit/export.csv", params={"kind": "request", "actor": "op"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["记录编号", "时间（UTC）", "类别", "动作"]
    paths = {row[9] for row in rows[1:]}
    assert {"/datasets", "/providers"} <= paths
    [exported] = _records(platform, "audit:records:exported")
    assert exported.summary["filters"] == {"actor": "op", "kind": "request"}


def test_verify_from_the_page_and_see_the_outcome(client: TestClient, factory: Factory) -> None:
    factory.user("reg", system_role="regulator")
    login(client, "reg")
    assert "尚未核验过" in client.get("/admin/audit").text
    response = client.post("/admin/audit/verify", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 200 and "审计记录完整" in response.text
    assert "最近一次核验" in client.get("/admin/audit").text


def test_users_see_their_own_history_only(client: TestClient, factory: Factory, platform: Platform) -> None:
    me, other = factory.user("me"), factory.user("other")
    client.get("/api/v1/datasets?page=2", headers={"Authorization": f"Bearer {factory.api_key(other)}"})
    client.get("/api/v1/datasets", headers={"Authorization": f"Bearer {factory.api_key(me)}"})
    login(client, "me")
    platform.audit.flush()
    page = client.get("/account/history")
    assert page.status_code == 200
    assert "GET /api/v1/datasets → 200" in page.text
    assert "account:login:succeeded" in page.text
    with platform.db.session() as db:
        others = db.scalar(select(AuditRecord.id).where(AuditRecord.actor_name == "other"))
    assert others is not None and page.text.count("GET /api/v1/datasets") == 1
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert client.get("/account/history", follow_redirects=False).status_code in (302, 303)
