"""Rate limits per client IP or API key, and daily quotas per API key, on `limits`
(memory by default, Redis in production so every app process counts together)."""

from __future__ import annotations

import functools
import math
import re
import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from limits import RateLimitItem, storage, strategies
from limits import parse as parse_limit

parse = functools.lru_cache(maxsize=64)(parse_limit)  # the same few limit strings on every request

# A quota day is the city's calendar day: it resets at midnight Beijing time, as users expect.
QUOTA_ZONE = ZoneInfo("Asia/Shanghai")


class RateLimiter:
    """Sliding window counters: in this process (`memory://`, the embedded default) or in Redis
    (`redis://…`, through `limits`, so that every app process counts together)."""

    def __init__(self, storage_url: str) -> None:
        self.local: LocalCounters | None = None
        if storage_url.startswith("memory://"):
            self.local = LocalCounters()
            return
        found = storage.storage_from_string(storage_url)
        if not isinstance(found, storage.Storage):
            raise TypeError(f"{storage_url}: the platform uses the synchronous storages of `limits`")
        self.storage: storage.Storage = found
        # A sliding window counter costs the same for 10/minute and 100,000/minute (a moving
        # window keeps every hit's time and walks them on each request).
        self.strategy = strategies.SlidingWindowCounterRateLimiter(self.storage)

    def hit(self, limit: str, *keys: str) -> bool:
        """Count one request; False when the limit is already used up."""
        if self.local is not None:
            return self.local.hit(parse(limit), keys)
        return self.strategy.hit(parse(limit), *keys)

    def retry_after(self, limit: str, *keys: str) -> int:
        """Whole seconds until a refused caller may send the next request (at least 1)."""
        if self.local is not None:
            return self.local.retry_after(parse(limit), keys)
        reset_at = self.strategy.get_window_stats(parse(limit), *keys).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def hit_daily(self, quota: int, key: str, now: datetime | None = None) -> tuple[int, int] | None:
        """Count one call against `key`'s quota for today. Returns None while within the quota,
        else (calls counted today, seconds until the quota resets at midnight)."""
        today = (now or datetime.now(QUOTA_ZONE)).astimezone(QUOTA_ZONE)
        until_midnight = seconds_to_midnight(today)
        if self.local is not None:
            used = self.local.incr(_day_key(key, today), time.time() + until_midnight + 60)
        else:
            used = self.storage.incr(_day_key(key, today), expiry=until_midnight + 60)
        return None if used <= quota else (used, until_midnight)

    def used_today(self, key: str, now: datetime | None = None) -> int:
        """Calls counted against `key` today (for the account page)."""
        today = (now or datetime.now(QUOTA_ZONE)).astimezone(QUOTA_ZONE)
        if self.local is not None:
            return self.local.get(_day_key(key, today))
        return int(self.storage.get(_day_key(key, today)) or 0)

    def reset(self) -> None:
        if self.local is not None:
            self.local.reset()
        else:
            self.storage.reset()


class LocalCounters:
    """The counters of one process, for `memory://`: the sliding window counter `limits` uses,
    with expired counters dropped as new ones come in.

    `limits`' own memory storage expires its keys from a timer thread that it starts again on
    the first hit after every 10 ms without one: a new thread for nearly every API call of a
    server that is not flooded, and starting it made up a quarter of a repeated data API call's
    time (measured with py-spy on `kaifang serve`).
    """

    PRUNE_EVERY = 4096  # hits between sweeps for expired counters

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._expires: dict[str, float] = {}
        self._since_prune = 0

    @staticmethod
    def _windows(item: RateLimitItem, keys: tuple[str, ...], now: float) -> tuple[str, str, int]:
        """The counters of the current and the previous window, and the current window's number."""
        window = item.get_expiry()
        name = "/".join((item.key_for(*keys), str(window)))
        index = int(now // window)
        return f"{name}/{index}", f"{name}/{index - 1}", index

    def hit(self, item: RateLimitItem, keys: tuple[str, ...]) -> bool:
        now = time.time()
        window = item.get_expiry()
        current, previous, index = self._windows(item, keys, now)
        with self._lock:
            weight = 1 - (now % window) / window  # of the previous window still in the last `window` s
            counted = self._counts.get(previous, 0) * weight + self._counts.get(current, 0)
            if math.floor(counted) + 1 > item.amount:
                return False
            self._add(current, (index + 2) * window, now)
            return True

    def retry_after(self, item: RateLimitItem, keys: tuple[str, ...]) -> int:
        """Seconds until the weighted count falls below the limit again."""
        now = time.time()
        window = item.get_expiry()
        current_key, previous_key, _ = self._windows(item, keys, now)
        with self._lock:
            previous = self._counts.get(previous_key, 0)
            current = self._counts.get(current_key, 0)
        into = (now % window) / window
        if current < item.amount and previous:  # the previous window's weight has to fall enough
            wait = (1 - (item.amount - current) / previous - into) * window
        else:  # this window's count has to become the previous one and fall in turn
            wait = (1 - into) * window + (1 - item.amount / max(current, 1)) * window
        return max(1, math.ceil(wait))

    def incr(self, key: str, expires_at: float) -> int:
        with self._lock:
            return self._add(key, expires_at, time.time())

    def get(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._expires.clear()

    def _add(self, key: str, expires_at: float, now: float) -> int:
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        self._expires.setdefault(key, expires_at)
        self._since_prune += 1
        if self._since_prune >= self.PRUNE_EVERY:
            self._since_prune = 0
            for old in [k for k, at in self._expires.items() if at <= now]:
                del self._counts[old], self._expires[old]
        return count


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
