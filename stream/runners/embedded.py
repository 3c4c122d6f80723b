"""The embedded runner: MQTT → decoder → engine → InfluxDB + alert outbox, in one process.

Threads, and why:
- the ingest loop (caller's thread): takes decoded MQTT batches and runs them through the engine
  (events reach the alert outbox at once); its acknowledgements join the open commit group;
- the InfluxDB writer (`commit.SinkWriter`): writes closed groups to InfluxDB or the spool, then
  acknowledges their MQTT messages — group commit, see `stream.runners.commit`;
- a ticker (every `flush_interval_ms`): closes the open group; once a second engine timers
  (stale, delays, escalation) on the timer clock, operator acknowledgements from the alerts API
  into the engine, and the operations lines for the dashboards;
- alerting (asyncio): outbox delivery, woken the moment a notification is queued, reminders and
  escalation, and the alerts HTTP API when a tokens file is configured;
- the ops server: `/metrics` and `/healthz`.
One lock serialises the engine: it is pure and single-threaded by design.

Timers run on the wall clock minus `TIMER_LAG_MS`: gateways send a reading some hundreds of
milliseconds after its timestamp, and an engine clock already past it would drop it as late.
The demo passes `timer_clock=None`: its accelerated simulation is the only clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from alerting.commands import CommandQueue
from alerting.policy import load_routing
from alerting.runner import Runtime, build_runtime, serve
from alerting.service import areas_from_plant, names_from_plant, tag_units_from_plant
from hazardwatch.errors import ConfigError
from hazardwatch.ops_http import OpsServer
from hazardwatch.plant.loader import load_plant, load_policy
from hazardwatch.settings import Settings
from ingest.mqtt import Delivery
from ingest.results import Decoded, columns_of
from ingest.service import IngestService, open_ingest
from ingest.status import DataQualityEvent as GatewayEvent
from stream.engine import Command, CommandKind, ReadingBatch
from stream.events import Event, event_to_dict
from stream.policy import EnginePolicy
from stream.runners.commit import DeferredAckLink, Deliveries, Group, SinkWriter
from stream.runners.metrics import RunnerCollector, RunnerSources
from stream.runners.pipeline import EventListener, Pipeline
from stream.runners.state_store import StateStore
from stream.sinks.influx import InfluxSink
from stream.sinks.lines import gateway_line
from stream.sinks.ops_lines import AlertLines, OpsLines
from stream.sinks.rbe import ExceptionFilter
from stream.sinks.spool import Spool

log = logging.getLogger(__name__)
TICK_MS = 1000
TIMER_LAG_MS = 2000
COMMIT_MESSAGES = 250  # a quarter of the MQTT receive window: the broker keeps sending
INGEST_BATCH_MESSAGES = 200  # smaller hand-offs let writing overlap the next batch's engine work


def wall_ms() -> int:
    """Epoch milliseconds of the wall clock."""
    return time.time_ns() // 1_000_000


def lagged_wall_ms() -> int:
    """The default timer clock: the wall clock minus `TIMER_LAG_MS`."""
    return wall_ms() - TIMER_LAG_MS


class EmbeddedRunner:
    """Builds every component from settings; `run(stop)` serves until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        tokens: Path | None = None,
        *,
        timer_clock: Callable[[], int] | None = lagged_wall_ms,
        listeners: Sequence[EventListener] = (),
    ) -> None:
        if settings.plant is None or settings.policy is None:
            raise ConfigError("the embedded runner needs `plant` and `policy` in its settings")
        self.settings = settings
        plant = load_plant(settings.plant)
        policy_file = load_policy(settings.policy)
        routing = load_routing(settings.policy)
        data = settings.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.tag_index = {t.id: i for i, t in enumerate(plant.resolved_tags())}
        self.commands = CommandQueue()
        self.alerting: Runtime = build_runtime(
            routing, data / "alerts.db", areas_from_plant(plant), names_from_plant(plant),
            tag_units_from_plant(plant), self.commands,
        )  # fmt: skip
        self.sink = InfluxSink(
            settings.influx, Spool(data / "spool", settings.runner.spool_max_bytes)
        )
        rbe = None
        if settings.runner.report_by_exception:
            import numpy as np

            deadbands = np.array([t.deadband for t in plant.resolved_tags()], dtype=np.float64)
            rbe = ExceptionFilter(deadbands, int(settings.runner.rbe_max_interval_s * 1000))
        self.pipeline = Pipeline(
            plant,
            EnginePolicy.from_risk_policy(policy_file.risk),
            self.sink,
            StateStore(data / "engine.db"),
            listeners=[self._to_alerting, *listeners],
            rbe=rbe,
        )
        self.ingest: IngestService = open_ingest(
            settings.mqtt, plant, self._handoff, on_events=self._gateway_events
        )
        # Same options and decoder; only the acknowledgements wait for the group commit.
        self.link = DeferredAckLink(
            settings.mqtt, self.ingest.link.options, self.ingest.decoder.decode, self._acked
        )
        self.ingest.link = self.link
        self.writer = SinkWriter(self.sink, self._persist, self._written)
        self.timer_clock = timer_clock
        self.tokens = tokens
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()  # groups enter the writer in the order they close
        self._open: list[Delivery[Decoded]] = []  # deliveries of the open commit group
        self._stop = threading.Event()
        self._incomplete = False  # a group was left unwritten: do not save a later state
        self._alert_stop: asyncio.Event | None = None
        self._alert_loop: asyncio.AbstractEventLoop | None = None
        self.registry = CollectorRegistry()
        self.registry.register(RunnerCollector(self._sources()))
        self.ops = OpsServer(settings.http.host, settings.http.port, self.registry, self.health)
        service = self.alerting.service
        alert_lines = AlertLines(service.book.alerts.values(), wall_ms)
        service.on_saved = alert_lines.observe
        self.ops_lines = OpsLines("run", self._sources(), self.ingest.status, alert_lines)

    # -- data path ---------------------------------------------------------------------------
    def _handoff(self, decoded: Sequence[Decoded]) -> None:
        cols = columns_of(decoded)
        batch = ReadingBatch(cols.tag_index, cols.ts_ms, cols.value, cols.quality)
        with self._lock:
            self.pipeline.handle(batch)

    def _acked(self, deliveries: Deliveries) -> None:
        """IngestService is done with a batch: its messages join the open group."""
        with self._lock:
            self._open.extend(deliveries)
            full = (
                self.pipeline.pending_lines >= self.sink.batch_lines
                or len(self._open) >= COMMIT_MESSAGES
            )
        if full:
            self.commit(block=True)

    def commit(self, block: bool, timeout_s: float = 0) -> bool:
        """Close the open group and queue it for the writer; without `block`, give up rather
        than wait for a busy writer (the ticker must keep the timers running)."""
        if not self._commit_lock.acquire(blocking=block):
            return False
        try:
            if not block and not self.writer.has_room():
                return False
            with self._lock:
                commit = self.pipeline.commit(wall_ms())
                deliveries, self._open = self._open, []
            if not (commit.lines or commit.held or commit.delta or deliveries):
                return True
            group = Group(commit, deliveries)
            if self.writer.put(group, None if timeout_s else self._stop, timeout_s):
                return True
            log.warning("group of %d lines not written (stopping); its %d messages stay "
                        "unacknowledged", len(commit.lines), len(deliveries))  # fmt: skip
            self._incomplete = True
            return False
        finally:
            self._commit_lock.release()

    def _persist(self, group: Group) -> None:
        """Writer thread: state delta and event lines to SQLite before the lines go out."""
        self.pipeline.persist(group.commit)

    def _written(self, group: Group) -> None:
        """Writer thread: the group is in InfluxDB or the spool — acknowledge its messages."""
        self.pipeline.written(group.commit)
        self.link.ack_now(group.deliveries)

    def _to_alerting(self, events: Sequence[Event]) -> None:
        for event in events:
            self.alerting.service.handle(event_to_dict(event))

    def _gateway_events(self, events: Sequence[GatewayEvent]) -> None:
        lines = []
        for e in events:
            if e.condition in ("gateway_offline", "gateway_online"):
                lines.append(gateway_line(e.enterprise, e.gateway,
                                          e.condition == "gateway_online", e.ts_ms))  # fmt: skip
            self.alerting.service.handle(e.to_event())
        with self._lock:
            self.pipeline.add_lines(lines)

    def tick(self, now_ms: int) -> None:
        """Timers, queued acknowledgements and operations lines; called every second."""
        with self._lock:
            for ack in self.commands.drain():
                for tag in ack.tags:
                    if tag in self.tag_index:
                        self.pipeline.command(
                            Command(CommandKind.ACKNOWLEDGE, ack.ts_ms, tag=self.tag_index[tag])
                        )
            if self.timer_clock is not None:
                self.pipeline.tick(self.timer_clock())
            self.pipeline.roll_call_if_due()
            # alert_v1, pipeline_v1, gateway rates
            self.pipeline.add_lines(self.ops_lines.due(now_ms))

    # -- operations ------------------------------------------------------------------------------
    def _sources(self) -> RunnerSources:
        decoder = self.ingest.decoder
        return RunnerSources(
            readings_in=lambda: decoder.counters.readings_accepted,
            rejected_by_reason=lambda: {
                k: v for k, v in decoder.counters.snapshot().items()
                if k not in ("messages", "readings_accepted", "messages_with_rejections")
            },
            evaluated=lambda: dict(self.pipeline.engine.counters),
            sink=lambda: vars(self.sink.stats).copy(),
            spool_fill=lambda: self.sink.spool.fill,
            queue_depth=self.link.pending,
            alerts=self.alerting.service.outbox.counts,
            events_out=lambda: self.pipeline.events_out,
            commit=self._commit_counters,
        )  # fmt: skip

    def _commit_counters(self) -> dict[str, int]:
        return {
            "groups": self.writer.stats.groups,
            "state_saves": self.pipeline.store.stats.saves,
            "unacknowledged": len(self._open) + self.writer.unacknowledged,
        }

    def health(self) -> dict[str, Any]:
        """`/healthz`: MQTT connected and the spool not full (input not paused)."""
        connected = self.link.connected
        spool_full = self.writer.spool_full or self.sink.spool.fill >= 1.0
        return {
            "ok": bool(connected and not spool_full),
            "mqtt_connected": connected,
            "spool_fill": round(self.sink.spool.fill, 4),
            "spool_full": spool_full,
            "engine_restored": self.pipeline.restored,
        }

    def idle(self) -> bool:
        """Nothing waiting anywhere: MQTT queue, open group, writer, alert outbox."""
        with self._lock:
            open_work = bool(self._open) or self.pipeline.pending_lines > 0
        pending = self.alerting.service.outbox.counts().get("pending", 0)
        return not (open_work or self.link.pending() or self.writer.queued or pending)

    # -- life-cycle ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Serve until `stop` is set, then drain: write the open group (InfluxDB or spool),
        acknowledge what was written, save the state and close every store."""
        self._stop = stop
        self.sink.ensure_database()
        self.ops.start()
        alerting = threading.Thread(target=self._run_alerting, name="alerting", daemon=True)
        alerting.start()
        ticker = threading.Thread(target=self._run_ticker, args=(stop,), name="ticker",
                                  daemon=True)  # fmt: skip
        ticker.start()
        self.writer.start()
        self.link.start()
        log.info("embedded runner up: %d tags, engine restored=%s", len(self.tag_index),
                 self.pipeline.restored)  # fmt: skip
        try:
            self.ingest.run(stop, max_messages=INGEST_BATCH_MESSAGES)
        finally:
            stop.set()
            ticker.join(timeout=10)
            self.commit(block=True, timeout_s=10)
            if not self.writer.close():
                self._incomplete = True
                log.error("InfluxDB and the spool took not everything before shutdown; the "
                          "unacknowledged messages will be redelivered")  # fmt: skip
            self.link.stop()  # after the writer: its acknowledgements must reach the broker
            if self._alert_loop is not None and self._alert_stop is not None:
                self._alert_loop.call_soon_threadsafe(self._alert_stop.set)
            alerting.join(timeout=10)
            with self._lock:
                if not self._incomplete:
                    # A state past an unwritten group would hide its events from redelivery.
                    self.pipeline.save_state()
                self.sink.close()
                self.pipeline.store.close()
            self.ops.stop()
            log.info("embedded runner stopped; spool holds %d batches", len(self.sink.spool))

    def _run_ticker(self, stop: threading.Event) -> None:
        period_s = self.settings.runner.flush_interval_ms / 1000
        next_tick = 0
        while not stop.wait(period_s):
            try:
                now = wall_ms()
                if now >= next_tick:
                    next_tick = now + TICK_MS
                    self.tick(now)
                self.commit(block=False)
            except Exception:  # a failing tick must not stop timers for good; it is retried
                log.exception("runner tick failed")

    def _run_alerting(self) -> None:
        async def main() -> None:
            self._alert_loop = asyncio.get_running_loop()
            self._alert_stop = asyncio.Event()
            # The service wakes the dispatcher through `Dispatcher.notify`, which is safe from
            # the ingest and ticker threads that queue notifications: delivery starts at once.
            dispatcher = self.alerting.dispatcher
            if self.tokens is not None:
                from alerting.auth import TokenStore

                http = self.settings.http
                await serve(self.alerting, TokenStore.load(self.tokens), http.host,
                            http.api_port, None, self._alert_stop)  # fmt: skip
                return
            tasks = [asyncio.create_task(dispatcher.run(self._alert_stop))]
            while not self._alert_stop.is_set():
                self.alerting.service.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._alert_stop.wait(), 5.0)
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.alerting.transport.aclose()
            self.alerting.service.outbox.close()

        asyncio.run(main())
