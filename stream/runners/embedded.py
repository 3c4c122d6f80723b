"""The embedded runner: MQTT → decoder → engine → InfluxDB + alert outbox, in one process.

Threads, and why:
- the ingest loop (caller's thread): takes decoded MQTT batches, hands them to the pipeline and
  acknowledges them only after the pipeline flushed (InfluxDB or spool) and committed state;
- a ticker (1 s): engine timers on the wall clock (stale, delays, escalation), operator
  acknowledgements from the alerts API into the engine, periodic flush;
- alerting (asyncio): outbox delivery, reminders and escalation, and the alerts HTTP API when a
  tokens file is configured;
- the ops server: `/metrics` and `/healthz`.
One lock serialises the engine: it is pure and single-threaded by design.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
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
from ingest.results import Decoded, columns_of
from ingest.service import IngestService, open_ingest
from ingest.status import DataQualityEvent as GatewayEvent
from stream.engine import Command, CommandKind, ReadingBatch
from stream.events import Event, event_to_dict
from stream.policy import EnginePolicy
from stream.runners.metrics import RunnerCollector, RunnerSources
from stream.runners.pipeline import Pipeline
from stream.runners.state_store import StateStore
from stream.sinks.influx import InfluxSink
from stream.sinks.lines import gateway_line
from stream.sinks.ops_lines import AlertLines, OpsLines
from stream.sinks.rbe import ExceptionFilter
from stream.sinks.spool import Spool

log = logging.getLogger(__name__)
TICK_S = 1.0


def wall_ms() -> int:
    """Epoch milliseconds of the wall clock: the only clock the runner reads."""
    return time.time_ns() // 1_000_000


class EmbeddedRunner:
    """Builds every component from settings; `run(stop)` serves until `stop` is set."""

    def __init__(self, settings: Settings, tokens: Path | None = None) -> None:
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
            listeners=[self._to_alerting],
            rbe=rbe,
        )
        self.ingest: IngestService = open_ingest(
            settings.mqtt, plant, self._handoff, on_events=self._gateway_events
        )
        self.tokens = tokens
        self._lock = threading.Lock()
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
            self.pipeline.flush()  # durable before IngestService acknowledges the messages

    def _to_alerting(self, events: Sequence[Event]) -> None:
        for event in events:
            self.alerting.service.handle(event_to_dict(event))

    def _gateway_events(self, events: Sequence[GatewayEvent]) -> None:
        lines = []
        for e in events:
            if e.condition in ("gateway_offline", "gateway_online"):
                lines.append(gateway_line(e.enterprise, e.gateway,
                                          e.condition == "gateway_online", e.ts_ms))  # fmt: skip
            self.alerting.service.handle(e.to_json())
        with self._lock:
            self.sink.add(lines)

    def tick(self, now_ms: int) -> None:
        """Timers, queued acknowledgements and a flush; called every second."""
        with self._lock:
            for ack in self.commands.drain():
                for tag in ack.tags:
                    if tag in self.tag_index:
                        self.pipeline.command(
                            Command(CommandKind.ACKNOWLEDGE, ack.ts_ms, tag=self.tag_index[tag])
                        )
            self.pipeline.tick(now_ms)
            self.sink.add(self.ops_lines.due(now_ms))  # alert_v1, pipeline_v1, gateway rates
            self.pipeline.flush()

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
            queue_depth=self.ingest.link.pending,
            alerts=self.alerting.service.outbox.counts,
            events_out=lambda: self.pipeline.events_out,
        )  # fmt: skip

    def health(self) -> dict[str, Any]:
        """`/healthz`: MQTT connected and the spool not full."""
        connected = self.ingest.link.connected
        spool_ok = self.sink.spool.fill < 1.0
        return {
            "ok": bool(connected and spool_ok),
            "mqtt_connected": connected,
            "spool_fill": round(self.sink.spool.fill, 4),
            "engine_restored": self.pipeline.restored,
        }

    # -- life-cycle ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Serve until `stop` is set, then drain: flush InfluxDB/spool and close every store."""
        self.sink.ensure_database()
        self.ops.start()
        alerting = threading.Thread(target=self._run_alerting, name="alerting", daemon=True)
        alerting.start()
        ticker = threading.Thread(target=self._run_ticker, args=(stop,), name="ticker",
                                  daemon=True)  # fmt: skip
        ticker.start()
        self.ingest.link.start()
        log.info("embedded runner up: %d tags, engine restored=%s", len(self.tag_index),
                 self.pipeline.restored)  # fmt: skip
        try:
            self.ingest.run(stop)
        finally:
            stop.set()
            ticker.join(timeout=10)
            self.ingest.link.stop()
            if self._alert_loop is not None and self._alert_stop is not None:
                self._alert_loop.call_soon_threadsafe(self._alert_stop.set)
            alerting.join(timeout=10)
            with self._lock:
                self.sink.close()
                self.pipeline.store.close()
            self.ops.stop()
            log.info("embedded runner stopped; spool holds %d batches", len(self.sink.spool))

    def _run_ticker(self, stop: threading.Event) -> None:
        while not stop.wait(TICK_S):
            try:
                self.tick(wall_ms())
            except Exception:  # a failing tick must not stop timers for good; it is retried
                log.exception("runner tick failed")

    def _run_alerting(self) -> None:
        async def main() -> None:
            self._alert_loop = asyncio.get_running_loop()
            self._alert_stop = asyncio.Event()
            if self.tokens is not None:
                from alerting.auth import TokenStore

                http = self.settings.http
                await serve(self.alerting, TokenStore.load(self.tokens), http.host,
                            http.api_port, None, self._alert_stop)  # fmt: skip
                return
            tasks = [asyncio.create_task(self.alerting.dispatcher.run(self._alert_stop))]
            while not self._alert_stop.is_set():
                self.alerting.service.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._alert_stop.wait(), 5.0)
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.alerting.transport.aclose()
            self.alerting.service.outbox.close()

        asyncio.run(main())
