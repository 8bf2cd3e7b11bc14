"""A small in-process token bucket per client address and per API key (Open311 POSTs and the
residents' QR form). Each server process counts on its own: with N workers the effective limit
is up to N times the setting, which is fine for its purpose (stopping floods and runaway loops)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from app.errors import ApiError


class TokenBuckets:
    def __init__(self, max_keys: int = 50_000) -> None:
        self.max_keys = max_keys
        self.items: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, capacity: float, per_second: float, now: float | None = None) -> float:
        """Take one token; 0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        tokens, last = self.items.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * per_second)
        if tokens >= 1:
            self.items[key] = (tokens - 1, now)
            wait = 0.0
        else:
            self.items[key] = (tokens, now)
            wait = (1 - tokens) / per_second
        self.items.move_to_end(key)
        while len(self.items) > self.max_keys:
            self.items.popitem(last=False)
        return wait

    def clear(self) -> None:
        self.items.clear()


buckets = TokenBuckets()


def limit(key: str, capacity: float, per_second: float) -> None:
    """Raise 429 `rate_limited` with Retry-After when `key` is over its rate."""
    wait = buckets.take(key, capacity, per_second)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError(
            "rate_limited",
            detail=f"请求过于频繁，请 {seconds} 秒后再试",
            detail_en=f"Too many requests; retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
