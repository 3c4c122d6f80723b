"""A real local webhook receiver that verifies signatures and honours `Idempotency-Key`.

It behaves like a careful production receiver: a request with a key it has already accepted is
answered 200 and dropped (counted as a redelivery), so the number of *accepted* notifications is
what users would see. It can go down (its port refuses connections) and come back on the same
port, and it can hold every answer for `answer_delay_s` after recording the request, so a sender
killed in that window has delivered without knowing it — the case idempotency keys exist for.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from alerting.channels.webhook import IDEMPOTENCY_HEADER, WebhookRejectedError, verify_webhook
from tests.processes import free_port

SECRET_ENV = "HW_FAULT_WEBHOOK_SECRET"
SECRET = "fault-suite-webhook-secret"


@dataclass
class Accepted:
    """One notification as the receiver accepted it."""

    key: str
    path: str
    notice: dict[str, Any]
    at: float


@dataclass
class WebhookLog:
    """What arrived: accepted notifications by key, and everything else counted."""

    accepted: dict[str, Accepted] = field(default_factory=dict)
    requests: int = 0
    redeliveries: int = 0  # same key again: answered 200, not accepted twice
    rejected: list[str] = field(default_factory=list)  # signature/freshness failures
    in_flight: int = 0


class WebhookReceiver:
    """aiohttp server on its own thread and event loop; `down()` / `up()` keep the port."""

    def __init__(self, answer_delay_s: float = 0.0) -> None:
        self.port = free_port()
        self.answer_delay_s = answer_delay_s
        self.log = WebhookLog()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self.outages: list[tuple[float, float | None]] = []

    @property
    def url(self) -> str:
        """Base URL; recipients append their own path."""
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=30)

    def up(self) -> None:
        """Listen (again) on the receiver's port."""
        self._call(self._start())
        if self.outages and self.outages[-1][1] is None:
            self.outages[-1] = (self.outages[-1][0], time.monotonic())

    def down(self) -> None:
        """Close the listener and every open connection: senders get connection errors."""
        self._call(self._stop())
        self.outages.append((time.monotonic(), None))

    def close(self) -> None:
        """Stop serving and end the loop thread."""
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._webhook)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.log.requests += 1
        try:
            verify_webhook(SECRET, dict(request.headers), body, time.time())
        except WebhookRejectedError as exc:
            with self._lock:
                self.log.rejected.append(exc.reason)
            return web.Response(status=401)
        key = request.headers[IDEMPOTENCY_HEADER]
        with self._lock:
            if key in self.log.accepted:
                self.log.redeliveries += 1
            else:
                notice = orjson.loads(body)
                self.log.accepted[key] = Accepted(key, request.path, notice, time.monotonic())
            self.log.in_flight += 1
        try:
            if self.answer_delay_s:
                await asyncio.sleep(self.answer_delay_s)
        finally:
            with self._lock:
                self.log.in_flight -= 1
        return web.Response(status=200)

    def accepted(self) -> dict[str, Accepted]:
        """A copy of the accepted notifications by idempotency key."""
        with self._lock:
            return dict(self.log.accepted)
