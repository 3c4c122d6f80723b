"""The webhook receiver both systems post alarms to, in its own process.

It verifies every signature (`alerting.channels.webhook.verify_webhook`), honours
`Idempotency-Key`, and records for each hazard source the wall-clock time of the first
notification that names it. `GET /stats` returns those times; `POST /reset` forgets them.
"""

from __future__ import annotations

import multiprocessing
import socket
import time
from typing import Any

import httpx
import orjson
from aiohttp import web

from alerting.channels.webhook import WebhookRejectedError, verify_webhook


def _serve(port: int, secret: str) -> None:
    first: dict[str, float] = {}  # source → first arrival, epoch ms
    keys: set[str] = set()
    counts = {"requests": 0, "duplicates": 0, "bad_signature": 0}

    async def hook(request: web.Request) -> web.Response:
        arrived = time.time() * 1000
        body = await request.read()
        counts["requests"] += 1
        try:
            verify_webhook(secret, dict(request.headers), body, time.time())
        except WebhookRejectedError:
            counts["bad_signature"] += 1
            return web.Response(status=401)
        key = request.headers["Idempotency-Key"]
        if key in keys:
            counts["duplicates"] += 1
            return web.Response(status=204)
        keys.add(key)
        source = orjson.loads(body).get("source")
        if source and source not in first:
            first[source] = arrived
        return web.Response(status=204)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"first_ms": first, "notifications": len(keys), **counts})

    async def reset(_request: web.Request) -> web.Response:
        first.clear()
        keys.clear()
        counts.update(dict.fromkeys(counts, 0))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """`with Receiver(secret) as r:` serves on `r.url` until the block ends."""

    def __init__(self, secret: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/hook"
        ctx = multiprocessing.get_context("spawn")
        self.process = ctx.Process(target=_serve, args=(self.port, secret), daemon=True)

    def __enter__(self) -> Receiver:
        self.process.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base}/stats", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("webhook receiver did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.join(5)

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.base}/stats", timeout=5).json()
        return data

    def reset(self) -> None:
        httpx.post(f"{self.base}/reset", timeout=5).raise_for_status()
