"""Rate limits per client IP or API key, on `limits` (memory by default, Redis in production)."""

from __future__ import annotations

from limits import parse, storage, strategies


class RateLimiter:
    def __init__(self, storage_url: str) -> None:
        self.storage = storage.storage_from_string(storage_url)
        self.strategy = strategies.MovingWindowRateLimiter(self.storage)

    def hit(self, limit: str, *keys: str) -> bool:
        """Count one request; False when the limit is already used up."""
        return self.strategy.hit(parse(limit), *keys)

    def reset(self) -> None:
        self.storage.reset()
