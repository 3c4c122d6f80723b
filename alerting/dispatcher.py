"""The delivery loop: due notifications → rate limit → send → record (a staged pipeline).

Stages per notification, as in Alertmanager's notify pipeline: rate limit (defer without
spending an attempt) → send → verdict → delivered / retry with backoff / dead-letter. A dead
letter calls `on_dead` so the service can raise a delivery-failure notice to the next tier.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from alerting.channels.base import Verdict
from alerting.outbox import Outbox, Pending
from alerting.policy import RateLimit, RoutingPolicy
from alerting.retry import RateLimiter, backoff_s

DeadLetterHook = Callable[[Pending, str, int], None]
SendFn = Callable[[Pending], Awaitable[Verdict]]


class Dispatcher:
    """Drains the outbox with bounded concurrency; `clock_ms` gives epoch milliseconds."""

    def __init__(
        self,
        outbox: Outbox,
        policy: RoutingPolicy,
        send: SendFn,
        clock_ms: Callable[[], int],
        rand: Callable[[], float],
        on_dead: DeadLetterHook | None = None,
        concurrency: int = 32,
    ) -> None:
        self.outbox = outbox
        self.policy = policy
        self.send = send
        self.clock_ms = clock_ms
        self.rand = rand
        self.on_dead = on_dead
        self.concurrency = concurrency
        self.limiter = RateLimiter(self._limit_of)
        self._in_flight: set[int] = set()
        self.wake = asyncio.Event()

    def _limit_of(self, recipient: str) -> RateLimit:
        try:
            return self.policy.recipient(recipient).rate_limit or self.policy.rate_limit
        except KeyError:
            return self.policy.rate_limit

    async def _deliver(self, item: Pending) -> None:
        now = self.clock_ms()
        wait_ms = self.limiter.take(item.recipient, now)
        if wait_ms > 0:
            self.outbox.defer(item.id, now, now + wait_ms, f"rate limit, next in {wait_ms} ms")
            return
        started = time.perf_counter()
        verdict = await self.send(item)
        latency = (time.perf_counter() - started) * 1000
        now = self.clock_ms()
        if verdict.outcome == "delivered":
            self.outbox.delivered(item.id, now, verdict.detail, latency)
            return
        delivery = self.policy.delivery
        attempt = item.attempts + 1
        if verdict.outcome == "retry" and attempt < delivery.max_attempts:
            wait = backoff_s(attempt, delivery.backoff_initial_s, delivery.backoff_max_s,
                             delivery.jitter, self.rand)  # fmt: skip
            wait = max(wait, verdict.retry_after_s or 0.0)
            self.outbox.failed(item.id, now, "retry", verdict.detail, latency,
                               now + int(wait * 1000))  # fmt: skip
            return
        reason = (
            verdict.detail
            if verdict.outcome == "permanent"
            else (f"{attempt} attempts: {verdict.detail}")
        )
        self.outbox.failed(item.id, now, verdict.outcome, reason, latency, None)
        if self.on_dead is not None:
            self.on_dead(item, reason, now)

    async def run_once(self, limit: int = 256) -> int:
        """Attempt every due notification once (up to `limit`); returns how many."""
        due = self.outbox.due(self.clock_ms(), limit, exclude=self._in_flight)
        if not due:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def one(item: Pending) -> None:
            async with gate:
                self._in_flight.add(item.id)
                try:
                    await self._deliver(item)
                finally:
                    self._in_flight.discard(item.id)

        await asyncio.gather(*(one(item) for item in due))
        return len(due)

    async def run(self, stop: asyncio.Event, idle_s: float = 0.2) -> None:
        """Loop until `stop` is set; sleeps `idle_s` when nothing is due (or until woken)."""
        while not stop.is_set():
            if await self.run_once() == 0:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), idle_s)
