"""The delivery loop: due notifications → rate limit → send → record (a staged pipeline).

Stages per notification, as in Alertmanager's notify pipeline: rate limit (defer without
spending an attempt) → send → verdict → delivered / retry with backoff / dead-letter. A dead
letter calls `on_dead` so the service can raise a delivery-failure notice to the next tier.

`run()` keeps up to `concurrency` sends in flight and sleeps only while nothing is due: it wakes
on `notify()` (new work, callable from any thread), when a send finishes, or when the next
retry falls due — so a new notification leaves at once instead of waiting for a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable

from alerting.channels.base import Verdict
from alerting.outbox import Outbox, Pending
from alerting.policy import RateLimit, RoutingPolicy
from alerting.retry import RateLimiter, backoff_s

log = logging.getLogger(__name__)

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
        # The audit trail is the limiter's memory: after a restart each bucket starts from the
        # sends already made in its window, so a restart cannot let a flood through.
        self.limiter = RateLimiter(self._limit_of, outbox.sent_since)
        self._in_flight: set[int] = set()
        self.wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_pending = threading.Event()  # coalesces cross-thread wake-ups

    def _limit_of(self, recipient: str) -> RateLimit:
        try:
            return self.policy.recipient(recipient).rate_limit or self.policy.rate_limit
        except KeyError:
            return self.policy.rate_limit

    def notify(self) -> None:
        """Wake the delivery loop: new work was enqueued. Safe from any thread."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self.wake.set()
            return
        if self._wake_pending.is_set():
            return  # a wake-up is already on its way
        self._wake_pending.set()
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to wake
            loop.call_soon_threadsafe(self.wake.set)

    async def _send(self, item: Pending) -> Verdict:
        try:
            return await self.send(item)
        except Exception as exc:  # a bug must cost an attempt (audited), not the whole loop
            log.exception("sending notification %s failed", item.key)
            return Verdict("retry", f"internal error: {type(exc).__name__}: {exc}")

    async def _deliver(self, item: Pending) -> None:
        now = self.clock_ms()
        wait_ms = self.limiter.take(item.recipient, now)
        if wait_ms > 0:
            self.outbox.defer(item.id, now, now + wait_ms, f"rate limit, next in {wait_ms} ms")
            return
        started = time.perf_counter()
        verdict = await self._send(item)
        latency = (time.perf_counter() - started) * 1000
        now = self.clock_ms()
        if verdict.outcome == "delivered":
            self.outbox.delivered(item.id, now, verdict.detail, latency)
            return
        self.limiter.refund(item.recipient)  # only deliveries spend the recipient's budget
        delivery = self.policy.delivery
        attempt = item.attempts + 1
        if verdict.outcome == "retry" and attempt < delivery.max_attempts:
            wait = backoff_s(attempt, delivery.backoff_initial_s, delivery.backoff_max_s,
                             delivery.jitter, self.rand)  # fmt: skip
            # Retry-After is honoured up to backoff_max_s: a receiver must not hold a warning
            # back for hours; the attempt budget then dead-letters it to the next tier.
            asked = min(verdict.retry_after_s or 0.0, delivery.backoff_max_s)
            wait = max(wait, asked)
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

    async def _attempt(self, item: Pending) -> None:
        try:
            await self._deliver(item)
        except Exception:  # the outbox itself failed (disk full …): the row stays pending
            log.exception("recording delivery of %s failed; retrying later", item.key)
            await asyncio.sleep(1.0)  # hold the slot so a persistent fault is not a hot loop
        finally:
            self._in_flight.discard(item.id)
            self.wake.set()

    async def run_once(self, limit: int = 256) -> int:
        """Attempt every due notification once (up to `limit`); returns how many."""
        due = self.outbox.due(self.clock_ms(), limit, exclude=self._in_flight)
        if not due:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def one(item: Pending) -> None:
            async with gate:
                self._in_flight.add(item.id)
                await self._attempt(item)

        await asyncio.gather(*(one(item) for item in due))
        return len(due)

    def _start_due(self, tasks: set[asyncio.Task[None]]) -> None:
        free = self.concurrency - len(tasks)
        if free <= 0:
            return
        for item in self.outbox.due(self.clock_ms(), free, exclude=self._in_flight):
            self._in_flight.add(item.id)
            task = asyncio.create_task(self._attempt(item))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    def _idle_s(self, idle_s: float) -> float:
        """Seconds until the next retry falls due, at most `idle_s` (a safety net)."""
        now = self.clock_ms()
        next_ms = self.outbox.next_due_ms(after_ms=now)
        if next_ms is None:
            return idle_s
        return min(idle_s, max(0.001, (next_ms - now) / 1000))

    async def run(self, stop: asyncio.Event, idle_s: float = 1.0) -> None:
        """Deliver until `stop` is set, then let the sends in flight finish and be recorded."""
        self._loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                self.wake.clear()
                self._wake_pending.clear()
                try:
                    self._start_due(tasks)
                    timeout = self._idle_s(idle_s)
                except Exception:  # the outbox cannot be read now; try again, do not die
                    log.exception("reading the outbox failed; retrying in %g s", idle_s)
                    timeout = idle_s
                woken = asyncio.ensure_future(self.wake.wait())
                await asyncio.wait({woken, stopped}, timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                woken.cancel()
        finally:
            stopped.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self._loop = None
