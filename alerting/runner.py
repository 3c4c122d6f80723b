"""Run the alerting service: HTTP API, delivery loop, timers and (optionally) the Kafka source.

`serve(...)` is what `hazardwatch alerts serve` runs; the embedded runner can instead create an
`AlertService`, call `handle()`/`tick()` itself and run `Dispatcher.run()` in its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from alerting.api import make_app
from alerting.auth import TokenStore
from alerting.commands import CommandSink
from alerting.dispatcher import Dispatcher
from alerting.outbox import Outbox
from alerting.policy import RoutingPolicy
from alerting.routing import EnterpriseArea
from alerting.sender import Sender
from alerting.service import AlertService
from alerting.transport import Transport

log = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    """Epoch milliseconds — the one wall clock of the alerting runner."""
    return int(time.time() * 1000)


@dataclass
class Runtime:
    """The parts of a running alerting process."""

    service: AlertService
    dispatcher: Dispatcher
    transport: Transport


def build_runtime(
    policy: RoutingPolicy,
    db: Path,
    areas: Mapping[str, EnterpriseArea],
    names: Mapping[str, str],
    tag_units: Mapping[str, str],
    commands: CommandSink | None = None,
    secrets: Mapping[str, str] | None = None,
) -> Runtime:
    """Service, sender and dispatcher wired together on the wall clock."""
    service = AlertService(policy, Outbox(db), areas, wall_clock_ms, names, commands, tag_units)
    transport = Transport(timeout_s=policy.delivery.timeout_s)
    sender = Sender(policy, transport, secrets if secrets is not None else os.environ,
                    lambda: int(time.time()))  # fmt: skip
    dispatcher = Dispatcher(service.outbox, policy, sender.send, wall_clock_ms, random.random,
                            on_dead=service.dead_letter)  # fmt: skip
    service.on_enqueue = dispatcher.notify
    return Runtime(service, dispatcher, transport)


async def _ticker(service: AlertService, stop: asyncio.Event, every_s: float) -> None:
    while not stop.is_set():
        try:
            service.tick()
        except Exception:  # one failing tick must not stop reminders and escalation for good
            log.exception("alert timers failed; retrying at the next tick")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def serve(
    runtime: Runtime,
    tokens: TokenStore,
    host: str,
    port: int,
    kafka: tuple[str, str] | None = None,
    stop: asyncio.Event | None = None,
    background: Sequence[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = (),
) -> None:
    """Serve until SIGINT/SIGTERM (or `stop`); `kafka` = (bootstrap, events topic);
    `background` tasks (the `alert_v1` writer) run alongside and end after `stop`."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(make_app(runtime.service, tokens))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    tasks = [
        asyncio.create_task(runtime.dispatcher.run(stop)),
        asyncio.create_task(_ticker(runtime.service, stop, 5.0)),
    ]
    if kafka is not None:
        from alerting.kafka import consume_events

        tasks.append(asyncio.create_task(
            consume_events(kafka[0], kafka[1], runtime.service.handle, stop)))  # fmt: skip
    tasks += [asyncio.create_task(task(stop)) for task in background]
    try:
        await stop.wait()
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        await runtime.transport.aclose()
        runtime.service.outbox.close()
