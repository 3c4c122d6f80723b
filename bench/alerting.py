"""Benchmark: notifications through the outbox to a local webhook receiver.

Prints JSON: `notifications_per_s` (event handled → webhook accepted, whole run),
`delivery_latency_p50_ms` / `delivery_latency_p99_ms` (event time → receiver arrival), and the
receiver's own ceiling `receiver_ceiling_per_s` measured in the same run by posting signed
webhooks straight at it with the same concurrency. The receiver runs in its own process and
verifies every signature, as a real one would.

    python bench/alerting.py [--count 2000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerting.channels.webhook import verify_webhook, webhook_request
from alerting.dispatcher import Dispatcher
from alerting.outbox import Outbox
from alerting.policy import routing_from_mapping
from alerting.routing import EnterpriseArea
from alerting.sender import Sender
from alerting.service import AlertService
from alerting.transport import Transport

SECRET = "bench-secret"


def _receiver(port: int) -> None:
    latencies: list[float] = []
    keys: set[str] = set()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        verify_webhook(SECRET, dict(request.headers), body, time.time())
        key = request.headers["Idempotency-Key"]
        if key not in keys:
            keys.add(key)
            ts = orjson.loads(body).get("ts_ms")
            if ts is not None:
                latencies.append(time.time() * 1000 - ts)
        return web.Response(status=204)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"count": len(keys), "latencies": latencies})

    async def reset(_request: web.Request) -> web.Response:
        latencies.clear()
        keys.clear()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


async def _ceiling(base: str, count: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one(i: int) -> None:
            request = webhook_request(f"{base}/hook", SECRET, {"n": i}, f"c{i}", int(time.time()))
            async with gate:
                response = await client.post(request.url, content=request.body,
                                             headers=request.headers)  # fmt: skip
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - started)


async def _pipeline(base: str, count: int, concurrency: int, db: Path) -> dict[str, Any]:
    routing = {
        "delivery": {"backoff_initial_s": 0.1, "backoff_max_s": 1, "timeout_s": 5},
        "rate_limit": {"count": 10**9, "per_s": 1},
        "recipients": [{"id": "control", "tier": "enterprise", "area": "E1", "channels": [
            {"type": "webhook", "url": f"{base}/hook", "secret_env": "BENCH_SECRET"}]}],
    }  # fmt: skip
    policy = routing_from_mapping(routing)

    def clock() -> int:
        return int(time.time() * 1000)

    service = AlertService(policy, Outbox(db), {"E1": EnterpriseArea("E1", "E1", "350521")}, clock)
    transport = Transport(timeout_s=5, max_connections=concurrency)
    sender = Sender(policy, transport, {"BENCH_SECRET": SECRET}, lambda: int(time.time()))
    dispatcher = Dispatcher(service.outbox, policy, sender.send, clock, random.random,
                            concurrency=concurrency)  # fmt: skip
    service.on_enqueue = dispatcher.notify
    stop = asyncio.Event()
    loop_task = asyncio.create_task(dispatcher.run(stop, idle_s=0.01))
    started = time.perf_counter()
    for i in range(count):  # events arrive as fast as the service takes them
        service.handle({"id": f"e{i}", "ts": clock(), "type": "risk", "enterprise": "E1",
                        "source": f"S{i}", "colour": "yellow", "previous": "blue"})  # fmt: skip
        if i % 50 == 0:
            await asyncio.sleep(0)  # let the dispatcher run alongside, as in production
    while service.outbox.counts().get("pending", 0):
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await loop_task
    await transport.aclose()
    counts = service.outbox.counts()
    service.outbox.close()
    return {"elapsed_s": elapsed, "counts": counts}


async def main_async(count: int, concurrency: int) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    process = multiprocessing.Process(target=_receiver, args=(port,), daemon=True)
    process.start()
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    await client.get(f"{base}/stats")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
            ceiling = await _ceiling(base, count, concurrency)
            await client.post(f"{base}/reset")
            with tempfile.TemporaryDirectory() as tmp:
                run = await _pipeline(base, count, concurrency, Path(tmp) / "bench.db")
            stats = (await client.get(f"{base}/stats")).json()
    finally:
        process.terminate()
        process.join(5)
    latencies = sorted(stats["latencies"])
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "notifications": count,
        "delivered": run["counts"].get("delivered", 0),
        "received_by_receiver": stats["count"],
        "notifications_per_s": round(count / run["elapsed_s"], 1),
        "delivery_latency_p50_ms": round(quantiles[49], 2),
        "delivery_latency_p99_ms": round(quantiles[98], 2),
        "receiver_ceiling_per_s": round(ceiling, 1),
        "concurrency": concurrency,
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    """Run the benchmark and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.count, args.concurrency)), indent=2))


if __name__ == "__main__":
    main()
