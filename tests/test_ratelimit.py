"""Rate limits on both storages the platform supports: memory (embedded) and Redis (production)."""

from __future__ import annotations

import os
import secrets

import pytest

from kaifang.ratelimit import RateLimiter

REDIS_URL = os.environ.get("KAIFANG_TEST_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.mark.parametrize("storage", ["memory://", REDIS_URL])
def test_limit_is_counted_per_key(storage: str) -> None:
    limiter = RateLimiter(storage)
    key = secrets.token_hex(8)  # Redis is shared between runs: a fresh key per test
    assert all(limiter.hit("3/minute", "login", key) for _ in range(3))
    assert not limiter.hit("3/minute", "login", key)
    assert limiter.hit("3/minute", "login", key + "-other")
