"""`hazardwatch run --config hazardwatch.toml`: the embedded runner (one process).

`--check` prints the effective settings (file + environment) with secrets masked and exits.
SIGTERM and SIGINT drain: the ingest loop stops taking messages, the InfluxDB buffer is flushed
(or spooled) and every store is closed; unacknowledged MQTT messages stay with the broker.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from pathlib import Path

from hazardwatch.commands import config_failure
from hazardwatch.errors import ConfigError
from hazardwatch.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--config`, `--check`, optional alerts API tokens."""
    parser.add_argument("--config", type=Path, help="hazardwatch.toml (environment overrides it)")
    parser.add_argument("--check", action="store_true", help="print effective settings and exit")
    parser.add_argument("--tokens", type=Path, help="alerts API tokens YAML (serves the API)")
    parser.add_argument("--log-level", default="INFO")


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT; exit 1 on a configuration error."""
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        settings = load_settings(args.config)
        if args.check:
            print(json.dumps(settings.masked(), indent=2, ensure_ascii=False, default=str))
            return 0
        from stream.runners.embedded import EmbeddedRunner

        runner = EmbeddedRunner(settings, args.tokens)
    except ConfigError as exc:
        return config_failure("hazardwatch run", exc)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runner.run(stop)
    return 0
