"""Providers see the use of their own entries: views, downloads, API calls, distinct users, by day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient

from kaifang.app import Platform
from kaifang.audit.models import AuditRecord
from kaifang.audit.stats import provider_stats
from tests.conftest import Factory, login


def _access(
    platform: Platform, entry_id: int, action: str, actor_id: int | None, ip: str, at: datetime
) -> None:
    with platform.db.session() as db:
        db.add(
            AuditRecord(
                at=at,
                kind="access",
                action=action,
                actor_id=actor_id,
                ip=ip,
                entry_id=entry_id,
                resource_id=1,
            )
        )


def test_views_downloads_calls_and_users_per_entry_and_day(
    client: TestClient, factory: Factory, platform: Platform
) -> None:
    org = factory.org()
    publisher = factory.user("pub", org=org, roles=("publisher",))
    bus = factory.entry(publisher, org, title="公交线路")
    parks = factory.entry(publisher, org, title="公园名录")
    citizen = factory.user("citizen")
    for _ in range(3):
        client.get(f"/datasets/{bus}")
    client.get(f"/datasets/{parks}")
    client.get("/datasets/999999")  # not found: not a view
    now = datetime.now(UTC)
    _access(platform, bus, "data:access:download", citizen.id, "1.1.1.1", now)
    _access(platform, bus, "data:access:download", None, "2.2.2.2", now)
    _access(platform, bus, "data:access:query", citizen.id, "1.1.1.1", now - timedelta(days=1))
    _access(platform, parks, "data:access:sql", citizen.id, "1.1.1.1", now - timedelta(days=40))  # outside
    platform.audit.flush()
    with platform.db.session() as db:
        figures = provider_stats(db, factory.actor(publisher), org.id, days=30)
    by_entry = {s.entry_id: s for s in figures.entries}
    assert (by_entry[bus].views, by_entry[bus].downloads, by_entry[bus].api_calls) == (3, 2, 1)
    assert by_entry[bus].distinct_users == 3  # the citizen, the anonymous downloader, the test client's IP
    assert (by_entry[parks].views, by_entry[parks].api_calls) == (1, 0)
    assert figures.entries[0].entry_id == bus
    assert sum(figures.by_day["views"]) == 4 and sum(figures.by_day["downloads"]) == 2
    assert len(figures.days) == 30 and figures.days[-1] >= date.today() - timedelta(days=1)

    login(client, "pub")
    page = client.get(f"/workspace/org/{org.id}/stats")
    assert page.status_code == 200
    assert "公交线路" in page.text and "访问用户（去重）" in page.text and 'id="stats-chart"' in page.text
    assert client.get(f"/workspace/org/{org.id}/stats", params={"days": 3}).status_code == 422


def test_only_the_provider_and_the_supervisors_see_the_statistics(
    client: TestClient, factory: Factory
) -> None:
    mine, other = factory.org("mine"), factory.org("other")
    factory.user("outsider", org=other, roles=("publisher",))
    assert client.get(f"/workspace/org/{mine.id}/stats", follow_redirects=False).status_code in (302, 303)
    login(client, "outsider")
    assert client.get(f"/workspace/org/{mine.id}/stats").status_code == 403
    factory.user("reg", system_role="regulator")
    login(client, "reg")
    assert client.get(f"/workspace/org/{mine.id}/stats").status_code == 200
