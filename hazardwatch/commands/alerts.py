"""`hazardwatch alerts serve`: alert dispatcher and the ack/feedback/clear HTTP API.

Reads engine events from the Kafka alerts topic (distributed runner; `--no-kafka` to serve the
API and the outbox only), delivers through the durable outbox in `--db` (default
`<data_dir>/alerts.db`), and publishes acknowledgements to the commands topic.

Writes `alert_v1` (each alert's life-cycle steps per tier, docs/influx-schema.md) to InfluxDB
as the embedded runner does, through its own sink and spool (`<data_dir>/alerts/spool`), once
a second; `--no-influx` turns that off.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from alerting.auth import TokenStore
from alerting.kafka import COMMANDS_TOPIC, EVENTS_TOPIC, KafkaCommandSink
from alerting.policy import load_routing
from alerting.runner import Runtime, build_runtime, serve
from alerting.service import areas_from_plant, names_from_plant, tag_units_from_plant
from hazardwatch.commands import config_failure
from hazardwatch.errors import ConfigError
from hazardwatch.plant.loader import load_plant
from hazardwatch.settings import Settings, load_settings

if TYPE_CHECKING:
    from stream.sinks.ops_lines import OpsWriter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`serve` with plant, policy, tokens and where to keep the outbox."""
    parser.add_argument("action", choices=["serve"])
    parser.add_argument("--config", type=Path, help="hazardwatch.toml (settings)")
    parser.add_argument("--plant", type=Path, help="plant YAML (default: settings.plant)")
    parser.add_argument("--policy", type=Path, help="policy YAML (default: settings.policy)")
    parser.add_argument("--tokens", type=Path, required=True, help="API tokens YAML")
    parser.add_argument("--db", type=Path, help="outbox SQLite file")
    parser.add_argument("--no-kafka", action="store_true", help="do not consume the alerts topic")
    parser.add_argument("--no-influx", action="store_true", help="do not write alert_v1")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; exit 1 on a configuration error."""
    try:
        settings = load_settings(args.config)
        plant_path, policy_path = args.plant or settings.plant, args.policy or settings.policy
        if plant_path is None or policy_path is None:
            raise ConfigError("give --plant and --policy (or set them in the settings)")
        plant = load_plant(plant_path)
        policy = load_routing(policy_path)
        tokens = TokenStore.load(args.tokens)
    except ConfigError as exc:
        return config_failure("alerts serve", exc)
    db = args.db or settings.data_dir / "alerts.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    prefix = settings.kafka.topic_prefix
    bootstrap = settings.kafka.bootstrap_servers

    async def main() -> None:
        sink = None if args.no_kafka else KafkaCommandSink(
            bootstrap, COMMANDS_TOPIC.format(prefix=prefix))  # fmt: skip
        if sink is not None:
            await sink.start()
        runtime = build_runtime(policy, db, areas_from_plant(plant), names_from_plant(plant),
                                tag_units_from_plant(plant), sink)  # fmt: skip
        kafka = None if args.no_kafka else (bootstrap, EVENTS_TOPIC.format(prefix=prefix))
        background = [] if args.no_influx else [alert_writer(runtime, settings).run]
        print(f"alerts API on http://{settings.http.host}:{settings.http.port}", flush=True)
        try:
            await serve(runtime, tokens, settings.http.host, settings.http.port, kafka,
                        background=background)  # fmt: skip
        finally:
            if sink is not None:
                await sink.stop()

    asyncio.run(main())
    return 0


def alert_writer(runtime: Runtime, settings: Settings) -> OpsWriter:
    """`alert_v1` lines of every alert the service saves, written once a second through a sink
    with its own spool; alerts restored from the outbox were written before the restart."""
    from stream.sinks.influx import InfluxSink
    from stream.sinks.ops_lines import AlertLines, OpsWriter, wall_ms
    from stream.sinks.spool import Spool

    service = runtime.service
    lines = AlertLines(service.book.alerts.values(), wall_ms)
    service.on_saved = lines.observe
    spool = Spool(settings.data_dir / "alerts" / "spool", settings.runner.spool_max_bytes)
    return OpsWriter(InfluxSink(settings.influx, spool), lambda _now: lines.drain())
