"""`hazardwatch bridge --plant P`: MQTT telemetry → Kafka, acked to MQTT after Kafka took it.

Also the bridge's operations lines for the dashboards (docs/influx-schema.md), written through
an `InfluxSink` with its own spool (`data_dir/bridge/<MQTT client id>/spool`): `gateway_v1`
status changes and, every 10 s, each gateway's online rate, and `pipeline_v1` with
`process=bridge`: readings in and rejections by reason, counted where messages are refused.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hazardwatch.commands import config_failure
from hazardwatch.plant.loader import load_plant
from hazardwatch.settings import load_settings

if TYPE_CHECKING:
    from ingest.bridge import Bridge
    from ingest.status import DataQualityEvent
    from stream.sinks.ops_lines import OpsWriter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Plant, optional settings file, Kafka topics, MQTT client id and shared group."""
    parser.add_argument("--plant", type=Path, help="plant YAML (default: settings `plant`)")
    parser.add_argument("--config", type=Path, help="settings TOML (environment overrides it)")
    parser.add_argument("--share-group", help="MQTT shared-subscription group ($share/<group>/…)")
    parser.add_argument("--client-id", help="MQTT client id (the persistent session's name)")
    parser.add_argument("--telemetry-topic", help="Kafka topic (default {prefix}.telemetry)")
    parser.add_argument("--deadletter-topic", help="Kafka topic (default {prefix}.deadletter)")
    parser.add_argument("--metrics-port", type=int, default=0, help="Prometheus port; 0 = off")


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT; exit 1 on a configuration error."""
    from ingest.bridge import Bridge, BridgeTopics

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = load_settings(args.config)
        plant_path = args.plant or settings.plant
        if plant_path is None:
            print("hazardwatch bridge: --plant or settings `plant` is required", file=sys.stderr)
            return 1
        plant = load_plant(plant_path)
    except Exception as exc:  # settings errors name their source
        return config_failure("hazardwatch bridge", exc)
    topics = BridgeTopics.from_settings(settings)
    topics = dataclasses.replace(topics, telemetry=args.telemetry_topic or topics.telemetry,
                                 deadletter=args.deadletter_topic or topics.deadletter)  # fmt: skip
    bridge = Bridge(settings, plant, topics, client_id=args.client_id, share_group=args.share_group)
    writer = ops_writer(bridge)
    if args.metrics_port:
        from prometheus_client import start_http_server

        from ingest.metrics import register

        register(bridge.decoder.counters, lambda: dataclasses.asdict(bridge.counters))
        start_http_server(args.metrics_port, addr=settings.http.host)
    asyncio.run(_serve(bridge, writer))
    logging.info("bridge stopped: %s", dataclasses.asdict(bridge.counters))
    return 0


PROCESS = "bridge"
"""`pipeline_v1.process` of the bridge (one unshared bridge per site: a bounded value)."""


def ops_writer(bridge: Bridge) -> OpsWriter:
    """The bridge's operations lines (gateway status and rates, pipeline counters) and the
    sink with its own spool that writes them."""
    from ingest.bridge import GATEWAY_CONDITIONS
    from stream.runners.metrics import RunnerSources
    from stream.sinks.influx import InfluxSink
    from stream.sinks.lines import gateway_line
    from stream.sinks.ops_lines import OpsLines, OpsWriter
    from stream.sinks.spool import Spool

    settings = bridge.settings
    home = settings.data_dir / "bridge" / bridge.link.options.client_id
    sink = InfluxSink(settings.influx, Spool(home / "spool", settings.runner.spool_max_bytes))
    counters = bridge.decoder.counters
    sources = RunnerSources(
        readings_in=lambda: counters.readings_accepted,
        rejected_by_reason=lambda: dict(counters.snapshot()),
        evaluated=dict,
        sink=lambda: vars(sink.stats).copy(),
        spool_fill=lambda: sink.spool.fill,
        queue_depth=lambda: 0,
    )
    watch = bridge.gateways
    ops = OpsLines(PROCESS, sources, watch.board if watch else None, None,
                   board_ready=lambda: watch is not None and watch.ticked)  # fmt: skip
    status: list[str] = []

    def on_gateway_events(events: list[DataQualityEvent]) -> None:
        status.extend(
            gateway_line(e.enterprise, e.gateway, e.condition == "gateway_online", e.ts_ms)
            for e in events
            if e.condition in GATEWAY_CONDITIONS
        )

    def due(now_ms: int) -> list[str]:
        # the bridge loop and the writer share the event loop's thread: no lock needed
        lines = status[:]
        status.clear()
        return lines + ops.due(now_ms)

    bridge.on_gateway_events = on_gateway_events
    return OpsWriter(sink, due)


async def _serve(bridge: Bridge, writer: OpsWriter) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ops = asyncio.create_task(writer.run(stop))
    try:
        await bridge.run(stop)
    finally:
        stop.set()
        await ops
