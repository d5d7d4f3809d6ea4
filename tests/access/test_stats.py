"""The regulator's response-time statistics, exact on a hand-built set of applications."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kaifang.access import stats
from kaifang.access.models import Application, ApplicationStatus
from kaifang.accounts.models import Organisation
from kaifang.errors import PermissionDenied
from tests.access.conftest import Scene
from tests.conftest import login

SERIAL = itertools.count()
TODAY = date(2026, 3, 10)  # a Tuesday; the next working day is Wednesday 03-11
ACCEPTED = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 city time; due Wednesday 03-04


def add(
    db, scene: Scene, provider_id: int, status: str, hours: float | None = None, **fields: object
) -> None:
    accepted = fields.pop("accepted_at", ACCEPTED if status != "submitted" else None)
    db.add(
        Application(
            entry_id=scene.entry_id,
            provider_id=provider_id,
            user_id=scene.factory.user(f"u{next(SERIAL)}").id,  # one open application per user
            status=status,
            purpose="研究",
            scenario="科研",
            period_days=30,
            security_measures="内网",
            contact="13800138000",
            resource_ids=[],
            accepted_at=accepted,
            due_on=fields.pop("due_on", date(2026, 3, 4) if accepted else None),
            decided_at=ACCEPTED + timedelta(hours=hours) if hours is not None else None,
            **fields,
        )
    )


@pytest.fixture
def figures(scene: Scene, db) -> tuple[int, int]:
    """Provider A: five decisions after 2, 4, 10, 30 and 50 hours (the last after the due day),
    one overdue, one due today, one due on the next working day, one not yet accepted.
    Provider B: one decision after 7 hours."""
    a = db.scalar(select(Organisation.id).where(Organisation.slug == "sthj"))
    b = db.scalar(select(Organisation.id).where(Organisation.slug == "wjw"))
    for hours in (2, 4, 10, 30):
        add(db, scene, a, ApplicationStatus.granted, hours)
    add(db, scene, a, ApplicationStatus.refused, 50)
    add(db, scene, a, ApplicationStatus.accepted, due_on=date(2026, 3, 9))
    add(db, scene, a, ApplicationStatus.accepted, due_on=TODAY)
    add(db, scene, a, ApplicationStatus.accepted, due_on=date(2026, 3, 11))
    add(db, scene, a, ApplicationStatus.accepted, due_on=date(2026, 3, 12))  # not yet due soon
    add(db, scene, a, ApplicationStatus.submitted)
    add(db, scene, b, ApplicationStatus.approved, 7)
    db.commit()
    return a, b


def test_percentiles_interpolate_between_ranks() -> None:
    assert stats.percentile([], 0.5) is None
    assert stats.percentile([5.0], 0.9) == 5.0
    assert stats.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert stats.percentile([2.0, 4.0, 10.0, 30.0, 50.0], 0.9) == pytest.approx(42.0)


def test_figures_per_provider_are_exact(figures: tuple[int, int], db) -> None:
    a_id, b_id = figures
    by_id = {s.provider_id: s for s in stats.compute(db, TODAY)}
    a, b = by_id[a_id], by_id[b_id]
    assert (a.received, a.accepted, a.decided) == (10, 9, 5)
    assert a.median_hours == pytest.approx(10.0)
    assert a.p90_hours == pytest.approx(42.0)
    # 50 h after Mon 09:00 is Wed 11:00 city time: on the due day, so in time; all five are
    assert a.in_time_share == pytest.approx(1.0)
    assert [x.due_on for x in a.overdue] == [date(2026, 3, 9)]
    assert sorted(x.due_on for x in a.due_soon) == [TODAY, date(2026, 3, 11)]
    assert (b.received, b.decided, b.median_hours, b.p90_hours) == (1, 1, 7.0, 7.0)


def test_a_decision_after_the_due_day_is_late(scene: Scene, figures: tuple[int, int], db) -> None:
    a_id, _ = figures
    add(db, scene, a_id, ApplicationStatus.refused, 72)  # Thursday 09:00 city time, due Wednesday
    db.commit()
    a = next(s for s in stats.compute(db, TODAY) if s.provider_id == a_id)
    assert a.decided == 6 and a.decided_in_time == 5
    assert a.in_time_share == pytest.approx(5 / 6)
    assert stats.overdue_counts(db, TODAY)[a_id] == stats.OverdueCount(pending=1, decided_late=1)
    assert stats.overdue_counts(db, TODAY)[a_id].total == 2


def test_only_supervisors_see_the_statistics(
    client: TestClient, scene: Scene, figures: tuple[int, int]
) -> None:
    with pytest.raises(PermissionDenied):
        scene.call("reviewer", stats.provider_stats)
    assert client.get("/api/v1/access/stats", headers=scene.headers("user")).status_code == 403
    response = client.get("/api/v1/access/stats", headers=scene.headers("regulator"))
    assert response.status_code == 200
    rows = {r["provider_name"]: r for r in response.json()}
    assert rows["海河市生态环境局"]["median_hours"] == pytest.approx(10.0)
    assert rows["海河市生态环境局"]["p90_hours"] == pytest.approx(42.0)
    assert rows["海河市卫生健康委员会"]["decided"] == 1
    page = login(client, "reg").get("/admin/access/stats")
    assert page.status_code == 200
    assert "海河市生态环境局" in page.text and "10.0" in page.text and "42.0" in page.text
