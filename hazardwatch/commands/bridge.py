"""`hazardwatch bridge --plant P`: MQTT telemetry → Kafka, acked to MQTT after Kafka took it."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
from pathlib import Path

from hazardwatch.commands import config_failure
from hazardwatch.plant.loader import load_plant
from hazardwatch.settings import load_settings


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
    topics = BridgeTopics(
        args.telemetry_topic or topics.telemetry, args.deadletter_topic or topics.deadletter
    )
    bridge = Bridge(settings, plant, topics, client_id=args.client_id, share_group=args.share_group)
    if args.metrics_port:
        from prometheus_client import start_http_server

        from ingest.metrics import register

        register(bridge.decoder.counters, lambda: dataclasses.asdict(bridge.counters))
        start_http_server(args.metrics_port, addr=settings.http.host)
    asyncio.run(_serve(bridge))
    logging.info("bridge stopped: %s", dataclasses.asdict(bridge.counters))
    return 0


async def _serve(bridge: object) -> None:
    from ingest.bridge import Bridge

    assert isinstance(bridge, Bridge)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await bridge.run(stop)
