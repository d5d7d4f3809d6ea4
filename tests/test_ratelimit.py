"""Rate limits on both storages the platform supports: memory (embedded) and Redis (production)."""

from __future__ import annotations

import os
import secrets
import threading
import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from kaifang.app import Platform
from kaifang.ratelimit import QUOTA_ZONE, RateLimiter, rate_label, seconds_to_midnight
from tests.conftest import Factory, login

REDIS_URL = os.environ.get("KAIFANG_TEST_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.mark.parametrize("storage", ["memory://", REDIS_URL])
def test_limit_is_counted_per_key(storage: str) -> None:
    limiter = RateLimiter(storage)
    key = secrets.token_hex(8)  # Redis is shared between runs: a fresh key per test
    assert all(limiter.hit("3/minute", "login", key) for _ in range(3))
    assert not limiter.hit("3/minute", "login", key)
    assert limiter.hit("3/minute", "login", key + "-other")


@pytest.mark.parametrize("storage", ["memory://", REDIS_URL])
def test_daily_quota_counts_calendar_days_in_beijing(storage: str) -> None:
    limiter = RateLimiter(storage)
    key = secrets.token_hex(8)
    evening = datetime(2026, 11, 27, 23, 59, 0, tzinfo=QUOTA_ZONE)
    assert limiter.hit_daily(2, key, evening) is None
    assert limiter.hit_daily(2, key, evening) is None
    assert limiter.hit_daily(2, key, evening) == (3, 60)  # refused until midnight, 60 s away
    assert limiter.used_today(key, evening) == 3
    # 16:00 UTC is already the next day in Beijing: a fresh quota.
    next_morning = datetime(2026, 11, 27, 16, 0, 1, tzinfo=UTC)
    assert limiter.hit_daily(2, key, next_morning) is None
    assert limiter.used_today(key, next_morning) == 1


def test_seconds_to_midnight() -> None:
    assert seconds_to_midnight(datetime(2026, 1, 1, 0, 0, 0, tzinfo=QUOTA_ZONE)) == 86_400
    assert seconds_to_midnight(datetime(2026, 1, 1, 23, 59, 59, 500_000, tzinfo=QUOTA_ZONE)) == 1


def test_rate_label() -> None:
    assert rate_label("600/minute") == "每分钟 600 次"
    assert rate_label("5 per second") == "每秒 5 次"
    assert rate_label("odd") == "odd"


def test_api_key_over_its_rate_limit_gets_429_with_retry_after(
    client: TestClient, factory: Factory, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform.settings, "api_rate_limit", "2/minute")
    headers = {"Authorization": f"Bearer {factory.api_key(factory.user('caller'))}"}
    assert [client.get("/api/v1/datasets", headers=headers).status_code for _ in range(2)] == [200, 200]
    refused = client.get("/api/v1/datasets", headers=headers)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "每分钟 2 次" in refused.json()["error"]["message"]
    # Another key of the same service is counted on its own.
    other = {"Authorization": f"Bearer {factory.api_key(factory.user('other'))}"}
    assert client.get("/api/v1/datasets", headers=other).status_code == 200


def test_anonymous_api_calls_are_limited_per_ip(
    client: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform.settings, "api_rate_limit", "1/minute")
    assert client.get("/api/v1/datasets").status_code == 200
    refused = client.get("/api/v1/datasets")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert client.get("/datasets").status_code == 200  # pages are not API calls


def test_daily_quota_refuses_until_midnight_and_shows_on_the_account_page(
    client: TestClient, factory: Factory, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform.settings, "api_daily_quota", 3)
    user = factory.user("quota-user")
    headers = {"Authorization": f"Bearer {factory.api_key(user)}"}
    assert [client.get("/api/v1/datasets", headers=headers).status_code for _ in range(3)] == [200] * 3
    refused = client.get("/api/v1/datasets", headers=headers)
    assert refused.status_code == 429
    assert "今日调用次数已达上限" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) == pytest.approx(
        seconds_to_midnight(datetime.now(QUOTA_ZONE)), abs=5
    )
    page = login(client, "quota-user").get("/account").text
    assert "今日调用" in page and "4 / 3" in page and "每日调用上限 3 次" in page


def test_memory_counters_start_no_threads() -> None:
    """`limits`' memory storage started a timer thread for each hit after 10 ms without one."""
    limiter = RateLimiter("memory://")
    before = {t.ident for t in threading.enumerate()}
    for _ in range(5):
        assert limiter.hit("100/minute", "api", "k")
        assert limiter.hit_daily(100, "k") is None
        time.sleep(0.015)
    assert {t.ident for t in threading.enumerate()} <= before


def test_retry_after_covers_the_weighted_window() -> None:
    limiter = RateLimiter("memory://")
    assert [limiter.hit("2/minute", "api", "k") for _ in range(3)] == [True, True, False]
    assert 1 <= limiter.retry_after("2/minute", "api", "k") <= 120
