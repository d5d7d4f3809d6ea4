"""Rate limits per client IP or API key, and daily quotas per API key, on `limits`
(memory by default, Redis in production so every app process counts together)."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from limits import parse, storage, strategies

# A quota day is the city's calendar day: it resets at midnight Beijing time, as users expect.
QUOTA_ZONE = ZoneInfo("Asia/Shanghai")


class RateLimiter:
    def __init__(self, storage_url: str) -> None:
        found = storage.storage_from_string(storage_url)
        if not isinstance(found, storage.Storage):
            raise TypeError(f"{storage_url}: the platform uses the synchronous storages of `limits`")
        self.storage: storage.Storage = found
        # A sliding window counter costs the same for 10/minute and 100,000/minute (a moving
        # window keeps every hit's time and walks them on each request).
        self.strategy = strategies.SlidingWindowCounterRateLimiter(self.storage)

    def hit(self, limit: str, *keys: str) -> bool:
        """Count one request; False when the limit is already used up."""
        return self.strategy.hit(parse(limit), *keys)

    def retry_after(self, limit: str, *keys: str) -> int:
        """Whole seconds until a refused caller may send the next request (at least 1)."""
        reset_at = self.strategy.get_window_stats(parse(limit), *keys).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def hit_daily(self, quota: int, key: str, now: datetime | None = None) -> tuple[int, int] | None:
        """Count one call against `key`'s quota for today. Returns None while within the quota,
        else (calls counted today, seconds until the quota resets at midnight)."""
        today = (now or datetime.now(QUOTA_ZONE)).astimezone(QUOTA_ZONE)
        until_midnight = seconds_to_midnight(today)
        used = self.storage.incr(_day_key(key, today), expiry=until_midnight + 60)
        return None if used <= quota else (used, until_midnight)

    def used_today(self, key: str, now: datetime | None = None) -> int:
        """Calls counted against `key` today (for the account page)."""
        today = (now or datetime.now(QUOTA_ZONE)).astimezone(QUOTA_ZONE)
        return int(self.storage.get(_day_key(key, today)) or 0)

    def reset(self) -> None:
        self.storage.reset()


def seconds_to_midnight(moment: datetime) -> int:
    """Whole seconds from `moment` to the next midnight in its own time zone (at least 1)."""
    midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), moment.tzinfo)
    return max(1, math.ceil((midnight - moment).total_seconds()))


def _day_key(key: str, today: datetime) -> str:
    return f"kaifang-quota/{key}/{today.date().isoformat()}"


def rate_label(limit: str) -> str:
    """ "600/minute" → "每分钟 600 次"; anything unrecognised is shown as it is."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:/|per)\s*(second|minute|hour|day)\s*", limit)
    if not match:
        return limit
    unit = {"second": "秒", "minute": "分钟", "hour": "小时", "day": "天"}[match.group(2)]
    return f"每{unit} {match.group(1)} 次"
