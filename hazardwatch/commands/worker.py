"""`hazardwatch worker --config hazardwatch.toml`: one faust-streaming risk engine worker.

Creates the Kafka topics it needs (partitions from `kafka.partitions`), serves `/metrics` and
`/healthz` on `http.port`, and runs until SIGTERM/SIGINT, when faust finishes the batch in hand,
commits and leaves the group; its partitions move to the other workers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

from hazardwatch.commands import config_failure
from hazardwatch.errors import ConfigError
from hazardwatch.plant.loader import load_plant, load_policy
from hazardwatch.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Settings file, plant/policy overrides, worker id, log level."""
    parser.add_argument("--config", type=Path, help="hazardwatch.toml (environment overrides it)")
    parser.add_argument("--plant", type=Path, help="plant YAML (default: settings `plant`)")
    parser.add_argument("--policy", type=Path, help="policy YAML (default: settings `policy`)")
    parser.add_argument("--worker-id", help="names this worker's spool (default: worker.id)")
    parser.add_argument("--check", action="store_true", help="print effective settings and exit")
    parser.add_argument("--log-level", default="INFO")


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; exit 1 on a configuration error."""
    level = logging.getLevelNamesMapping().get(args.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for chatty in ("faust", "mode", "aiokafka"):  # their INFO is a line per service start/stop
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    try:
        settings = load_settings(args.config)
        if args.check:
            print(json.dumps(settings.masked(), indent=2, ensure_ascii=False, default=str))
            return 0
        plant_path, policy_path = args.plant or settings.plant, args.policy or settings.policy
        if plant_path is None or policy_path is None:
            raise ConfigError("give --plant and --policy (or set them in the settings)")
        plant = load_plant(plant_path)
        risk = load_policy(policy_path).risk
    except ConfigError as exc:
        return config_failure("hazardwatch worker", exc)

    import faust

    from stream.policy import EnginePolicy
    from stream.runners.worker import WorkerRuntime
    from stream.runners.worker.ops import ops_server
    from stream.runners.worker.topics import ensure_topics

    runtime = WorkerRuntime(settings, plant, EnginePolicy.from_risk_policy(risk),
                            worker_id=args.worker_id)  # fmt: skip
    kafka = settings.kafka
    try:
        asyncio.run(ensure_topics(kafka.bootstrap_servers, runtime.topics, kafka.partitions,
                                  kafka.replication_factor))  # fmt: skip
    except ConfigError as exc:
        return config_failure("hazardwatch worker", exc)
    runtime.sink.ensure_database()
    ops = ops_server(runtime).start()
    # The recovery watch runs beside the app from the start: the app's own tasks wait for recovery.
    worker = faust.Worker(runtime.app, runtime.recovery_watch(),
                          loglevel=args.log_level.lower(), quiet=True, redirect_stdouts=False,
                          override_logging=False)  # fmt: skip
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        runtime.sink.close()
        ops.stop()
    return 0
