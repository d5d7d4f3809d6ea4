"""Answers kept for questions asked again: the same bytes, the query not run twice, and never a
way around the permission check or the audit record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kaifang.app import Platform
from kaifang.audit.models import AuditRecord
from kaifang.datastore.answers import Answer, AnswerCache, answers
from kaifang.datastore.query import QueryEngine
from tests.audit.test_data_access import access_records
from tests.conftest import Factory, pass_review
from tests.datastore.test_data_api import auth, published_resource


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every query the engines actually run."""
    seen: list[Any] = []
    real = QueryEngine.run

    def counting(self: QueryEngine, q: Any) -> Any:
        seen.append(q)
        return real(self, q)

    monkeypatch.setattr(QueryEngine, "run", counting)
    return seen


@pytest.fixture
def scene(client: TestClient, platform: Platform, factory: Factory) -> dict[str, Any]:
    org = factory.org("sthj", "海河市生态环境局")
    pub = factory.user("pub", org=org, roles=("publisher",))
    citizen = factory.user("citizen")
    keys = {"pub": factory.api_key(pub), "citizen": factory.api_key(citizen)}
    entry_id = factory.entry(pub, org, title="空气质量日报")
    return {"rid": published_resource(client, platform, keys["pub"], entry_id), "keys": keys}


@pytest.fixture
def small_cache() -> Iterator[None]:
    budget = answers.budget
    answers.resize(0)
    yield
    answers.resize(budget)


def _accesses(platform: Platform) -> list[AuditRecord]:
    return access_records(platform, "data:access:query")


def test_the_same_question_is_answered_from_memory_and_still_audited(
    client: TestClient, platform: Platform, scene: dict[str, Any], runs: list[Any]
) -> None:
    url, key = f"/api/v1/resources/{scene['rid']}/data", scene["keys"]["citizen"]
    first = client.get(url, params={"PM2.5__gte": "40", "limit": "1"}, headers=auth(key))
    again = client.get(url, params={"PM2.5__gte": "40", "limit": "1"}, headers=auth(key))
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["content-type"] == "application/json"
    assert len(runs) == 1
    other = client.get(url, params={"PM2.5__gte": "40", "limit": "2"}, headers=auth(key))
    assert other.json()["records"] != first.json()["records"] and len(runs) == 2
    assert [r.rows for r in _accesses(platform)] == [1, 1, 2]


def test_an_answer_never_skips_the_permission_check(
    client: TestClient, scene: dict[str, Any], runs: list[Any]
) -> None:
    url, key = f"/api/v1/resources/{scene['rid']}/data", scene["keys"]["citizen"]
    assert client.get(url, headers=auth(key)).status_code == 200
    revoked = client.get("/api/v1/me/api-keys", headers=auth(key))
    assert revoked.status_code == 200
    key_id = revoked.json()[0]["id"]
    assert client.delete(f"/api/v1/me/api-keys/{key_id}", headers=auth(key)).status_code in (200, 204)
    assert client.get(url, headers=auth(key)).status_code == 401
    assert len(runs) == 1


def test_a_new_version_gets_its_own_answers(
    client: TestClient, platform: Platform, scene: dict[str, Any], runs: list[Any]
) -> None:
    rid, keys = scene["rid"], scene["keys"]
    url = f"/api/v1/resources/{rid}/data"
    v1 = client.get(url, headers=auth(keys["citizen"])).json()
    upload = client.post(
        f"/api/v1/resources/{rid}/versions",
        headers=auth(keys["pub"]),
        files={"file": ("空气质量.csv", "日期,PM2.5\n2026-01-01,1\n".encode(), "text/csv")},
    )
    assert upload.status_code == 202, upload.text
    platform.jobs.drain()
    pass_review(client, rid, 2, auth(keys["pub"]))
    published = client.post(f"/api/v1/resources/{rid}/versions/2/publish", headers=auth(keys["pub"]))
    assert published.status_code == 200, published.text
    v2 = client.get(url, headers=auth(keys["citizen"])).json()
    assert (v1["version"], v2["version"]) == (1, 2) and v2["total"] == 1 != v1["total"]
    assert client.get(url, params={"version": 1}, headers=auth(keys["citizen"])).json() == v1
    assert len(runs) == 3


def test_with_no_memory_nothing_is_kept(
    client: TestClient, scene: dict[str, Any], runs: list[Any], small_cache: None
) -> None:
    url, key = f"/api/v1/resources/{scene['rid']}/data", scene["keys"]["citizen"]
    for _ in range(3):
        assert client.get(url, headers=auth(key)).status_code == 200
    assert len(runs) == 3 and answers.size == 0


def test_the_cache_keeps_to_its_budget_and_drops_the_least_recently_used() -> None:
    cache = AnswerCache(250)
    keys = [(1, 1, 1, "sha", (("limit", str(n)),)) for n in range(4)]
    for key in keys[:2]:
        cache.put(key, Answer(b"x" * 100, 1))
    assert cache.get(keys[0]) is not None  # now the most recently used
    cache.put(keys[2], Answer(b"y" * 100, 1))
    assert cache.get(keys[1]) is None and cache.get(keys[0]) is not None and cache.size == 200
    cache.put(keys[3], Answer(b"z" * 300, 1))  # larger than the whole budget: not kept
    assert cache.get(keys[3]) is None and cache.size == 200
