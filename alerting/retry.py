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
    """Token bucket per recipient: `count` notifications per `per_s`, refilled continuously.

    `sent_since(recipient, since_ms)` (optional) tells how many sends a recipient already had
    in the last window; a bucket created after a restart starts with `count` minus those. That
    never allows more than the bucket would have: a full bucket's tokens are at least `count`
    minus the sends of the last `per_s` seconds.
    """

    def __init__(
        self,
        limit_of: Callable[[str], RateLimit],
        sent_since: Callable[[str, int], int] | None = None,
    ) -> None:
        self._limit_of = limit_of
        self._sent_since = sent_since
        self._buckets: dict[str, _Bucket] = {}

    def _new_bucket(self, recipient: str, limit: RateLimit, now_ms: int) -> _Bucket:
        sent = 0
        if self._sent_since is not None:
            sent = self._sent_since(recipient, now_ms - int(limit.per_s * 1000))
        return _Bucket(float(max(0, limit.count - sent)), now_ms)

    def take(self, recipient: str, now_ms: int) -> int:
        """Take one token: 0 when allowed now, else milliseconds until one is available."""
        limit = self._limit_of(recipient)
        rate_per_ms = limit.count / (limit.per_s * 1000)
        bucket = self._buckets.get(recipient)
        if bucket is None:
            bucket = self._buckets[recipient] = self._new_bucket(recipient, limit, now_ms)
        elapsed = max(0, now_ms - bucket.updated_ms)
        bucket.tokens = min(float(limit.count), bucket.tokens + elapsed * rate_per_ms)
        bucket.updated_ms = now_ms
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, int((1.0 - bucket.tokens) / rate_per_ms) + 1)

    def refund(self, recipient: str) -> None:
        """Give back the token of an attempt that reached nobody (receiver down, 5xx, timeout).

        The limit protects a person from a flood of messages; failed attempts bothered nobody,
        and spending tokens on them would hold warnings back for hours after an outage.
        """
        bucket = self._buckets.get(recipient)
        if bucket is not None:
            bucket.tokens = min(float(self._limit_of(recipient).count), bucket.tokens + 1.0)
