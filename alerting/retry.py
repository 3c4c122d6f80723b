"""Retry timing and per-recipient rate limits, pure (the caller passes time and randomness).

Backoff is exponential with jitter: attempt n waits min(max, initial · 2^(n−1)) scaled by a
random factor in [1 − jitter, 1], so a recovering receiver is not hit by every sender at once.
A channel's Retry-After (429/503) wins when it asks for longer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alerting.policy import RateLimit


def backoff_s(
    attempt: int, initial_s: float, max_s: float, jitter: float, rand: Callable[[], float]
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based); `rand()` in [0, 1)."""
    base = min(max_s, initial_s * 2 ** max(0, attempt - 1))
    return float(base * (1.0 - jitter * rand()))


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_ms: int


class RateLimiter:
    """Token bucket per recipient: `count` notifications per `per_s`, refilled continuously."""

    def __init__(self, limit_of: Callable[[str], RateLimit]) -> None:
        self._limit_of = limit_of
        self._buckets: dict[str, _Bucket] = {}

    def take(self, recipient: str, now_ms: int) -> int:
        """Take one token: 0 when allowed now, else milliseconds until one is available."""
        limit = self._limit_of(recipient)
        rate_per_ms = limit.count / (limit.per_s * 1000)
        bucket = self._buckets.setdefault(recipient, _Bucket(float(limit.count), now_ms))
        elapsed = max(0, now_ms - bucket.updated_ms)
        bucket.tokens = min(float(limit.count), bucket.tokens + elapsed * rate_per_ms)
        bucket.updated_ms = now_ms
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, int((1.0 - bucket.tokens) / rate_per_ms) + 1)
