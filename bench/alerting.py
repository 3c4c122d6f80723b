"""Benchmark: notifications through the outbox to a local webhook receiver.

Prints one JSON object:

- `notifications_per_s`: throughput — `--count` events handed to the service at once (one
  yellow raise each, so one webhook notification each) until the receiver holds all of them;
- `delivery_latency_p50_ms` / `delivery_latency_p99_ms`: event time → arrival at the receiver
  at a steady offered rate of `--load` (default 0.5) × that throughput for `--steady-s`
  seconds, i.e. the delay one warning sees on a busy but not saturated dispatcher;
- `burst_latency_p50_ms` / `burst_latency_p99_ms`: the same during the throughput burst — they
  include queueing behind up to `--count` earlier notifications, so they grow with `--count`;
- `receiver_ceiling_per_s`: the receiver's own ceiling, measured in the same run by posting
  signed webhooks straight at it with the same HTTP client and concurrency.

The receiver runs in its own process and verifies every signature and drops duplicate
idempotency keys, as a real one would. Events are produced on a separate thread, as the
embedded runner's pipeline thread produces them, so the dispatcher is woken across threads.

    python bench/alerting.py [--count 2000] [--concurrency 32] [--steady-s 5] [--load 0.5]
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
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
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
    duplicates = [0]

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        arrived_ms = time.time() * 1000
        verify_webhook(SECRET, dict(request.headers), body, arrived_ms / 1000)
        key = request.headers["Idempotency-Key"]
        if key in keys:
            duplicates[0] += 1
        else:
            keys.add(key)
            ts = orjson.loads(body).get("ts_ms")
            if ts is not None:
                latencies.append(arrived_ms - ts)
        return web.Response(status=204)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(
            {"count": len(keys), "latencies": latencies, "duplicates": duplicates[0]}
        )

    async def reset(_request: web.Request) -> web.Response:
        latencies.clear()
        keys.clear()
        duplicates[0] = 0
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


async def _ceiling(base: str, count: int, concurrency: int) -> float:
    """Signed webhooks posted straight at the receiver with the dispatcher's HTTP client."""
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:

        async def one(i: int) -> None:
            request = webhook_request(f"{base}/hook", SECRET, {"n": i}, f"c{i}", int(time.time()))
            async with gate, client.post(request.url, data=request.body,
                                         headers=request.headers) as response:  # fmt: skip
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - started)


def _clock() -> int:
    return int(time.time() * 1000)


def _event(i: int, prefix: str) -> dict[str, Any]:
    return {"id": f"{prefix}{i}", "ts": _clock(), "type": "risk", "enterprise": "E1",
            "source": f"{prefix}S{i}", "colour": "yellow", "previous": "blue"}  # fmt: skip


def _produce(service: AlertService, count: int, rate_per_s: float | None, prefix: str) -> None:
    """Hand `count` events to the service, all at once or at `rate_per_s` (open loop)."""
    started = time.perf_counter()
    for i in range(count):
        if rate_per_s is not None:
            delay = started + i / rate_per_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        service.handle(_event(i, prefix))


async def _pipeline(
    base: str, count: int, concurrency: int, db: Path, rate_per_s: float | None, prefix: str
) -> dict[str, Any]:
    routing = {
        "delivery": {"backoff_initial_s": 0.1, "backoff_max_s": 1, "timeout_s": 5},
        "rate_limit": {"count": 10**9, "per_s": 1},
        "recipients": [{"id": "control", "tier": "enterprise", "area": "E1", "channels": [
            {"type": "webhook", "url": f"{base}/hook", "secret_env": "BENCH_SECRET"}]}],
    }  # fmt: skip
    policy = routing_from_mapping(routing)
    service = AlertService(policy, Outbox(db), {"E1": EnterpriseArea("E1", "E1", "350521")},
                           _clock)  # fmt: skip
    transport = Transport(timeout_s=5, max_connections=concurrency)
    sender = Sender(policy, transport, {"BENCH_SECRET": SECRET}, lambda: int(time.time()))
    dispatcher = Dispatcher(service.outbox, policy, sender.send, _clock, random.random,
                            concurrency=concurrency)  # fmt: skip
    service.on_enqueue = dispatcher.notify
    stop = asyncio.Event()
    loop_task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.sleep(0.05)  # the loop is up and waiting, as in a running service
    started = time.perf_counter()
    producer = threading.Thread(target=_produce, args=(service, count, rate_per_s, prefix))
    producer.start()
    while producer.is_alive() or service.outbox.counts().get("pending", 0):
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    stop.set()
    await loop_task
    await transport.aclose()
    counts = service.outbox.counts()
    service.outbox.close()
    return {"elapsed_s": elapsed, "counts": counts}


def _quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(sorted(values), n=100, method="inclusive")
    return round(cuts[49], 1), round(cuts[98], 1)


async def main_async(count: int, concurrency: int, steady_s: float, load: float) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    process = multiprocessing.Process(target=_receiver, args=(port,), daemon=True)
    process.start()
    try:
        async with httpx.AsyncClient() as client:  # control requests only
            for _ in range(100):
                try:
                    await client.get(f"{base}/stats")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
            ceiling = await _ceiling(base, count, concurrency)
            with tempfile.TemporaryDirectory() as tmp:
                await client.post(f"{base}/reset")
                burst = await _pipeline(base, count, concurrency, Path(tmp) / "burst.db", None,
                                        "b")  # fmt: skip
                burst_stats = (await client.get(f"{base}/stats")).json()
                throughput = count / burst["elapsed_s"]
                rate = load * throughput
                steady_count = max(100, int(rate * steady_s))
                await client.post(f"{base}/reset")
                steady = await _pipeline(base, steady_count, concurrency,
                                         Path(tmp) / "steady.db", rate, "s")  # fmt: skip
                steady_stats = (await client.get(f"{base}/stats")).json()
    finally:
        process.terminate()
        process.join(5)
    p50, p99 = _quantiles(steady_stats["latencies"])
    burst_p50, burst_p99 = _quantiles(burst_stats["latencies"])
    return {
        "notifications_per_s": round(throughput, 1),
        "delivery_latency_p50_ms": p50,
        "delivery_latency_p99_ms": p99,
        "receiver_ceiling_per_s": round(ceiling, 1),
        "steady_offered_per_s": round(rate, 1),
        "steady_notifications": steady_count,
        "steady_delivered": steady["counts"].get("delivered", 0),
        "steady_received": steady_stats["count"],
        "burst_notifications": count,
        "burst_delivered": burst["counts"].get("delivered", 0),
        "burst_received": burst_stats["count"],
        "burst_latency_p50_ms": burst_p50,
        "burst_latency_p99_ms": burst_p99,
        "duplicates_dropped_by_receiver": burst_stats["duplicates"] + steady_stats["duplicates"],
        "concurrency": concurrency,
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    """Run the benchmark and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=2000, help="burst size (throughput)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--steady-s", type=float, default=5.0, help="steady phase length")
    parser.add_argument("--load", type=float, default=0.5, help="steady rate / throughput")
    args = parser.parse_args()
    result = asyncio.run(main_async(args.count, args.concurrency, args.steady_s, args.load))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
