"""The operator's holiday table: edited on a page, audited, and used for the next acceptance."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from kaifang.access import service as access
from kaifang.access.grants import city_today
from kaifang.access.models import Application, HolidayOverride
from kaifang.audit.models import AuditRecord
from tests.access.conftest import Scene
from tests.conftest import Factory, csrf_token, login


def post(client: TestClient, url: str, data: dict):
    return client.post(url, data={**data, "csrf_token": csrf_token(client)}, follow_redirects=False)


def test_operator_edits_the_table(client: TestClient, factory: Factory, db) -> None:
    factory.user("op", system_role="operator")
    login(client, "op")
    page = client.get("/admin/holidays")
    assert page.status_code == 200 and "2026 年及以前" in page.text
    bad = post(client, "/admin/holidays", {"day": "明年春节", "is_workday": "0", "name": "春节"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
    assert (
        post(client, "/admin/holidays", {"day": "2027-02-08", "is_workday": "0", "name": "春节"}).status_code
        == 303
    )
    assert (
        post(
            client, "/admin/holidays", {"day": "2027-02-08", "is_workday": "1", "name": "春节调休"}
        ).status_code
        == 303
    )
    row = db.scalar(select(HolidayOverride))
    assert (row.day, row.is_workday, row.name) == (date(2027, 2, 8), True, "春节调休")
    assert "春节调休" in client.get("/admin/holidays").text
    assert post(client, f"/admin/holidays/{row.id}/delete", {}).status_code == 303
    db.expire_all()
    assert db.scalar(select(HolidayOverride)) is None
    actions = list(
        db.scalars(
            select(AuditRecord.action).where(AuditRecord.target_type == "holiday").order_by(AuditRecord.id)
        )
    )
    assert actions == ["access:holiday:set", "access:holiday:set", "access:holiday:removed"]


def test_only_the_operator_edits(client: TestClient, factory: Factory) -> None:
    factory.user("reg", system_role="regulator")
    login(client, "reg")
    assert client.get("/admin/holidays").status_code == 403
    assert (
        post(client, "/admin/holidays", {"day": "2027-02-08", "is_workday": "0", "name": "春节"}).status_code
        == 403
    )


def test_acceptance_counts_with_the_table(scene: Scene, db) -> None:
    """Every day of the coming three weeks made a holiday pushes the due date past them."""
    today = city_today()
    for n in range(1, 22):
        db.add(HolidayOverride(day=today + timedelta(days=n), is_workday=False, name="测试假期"))
    db.commit()
    app_id = scene.apply()
    scene.call("reviewer", access.accept, app_id)
    db.expire_all()
    assert db.get(Application, app_id).due_on > today + timedelta(days=21)
