"""`hazardwatch decode --plant P --topic T [FILE|-]`: why a gateway payload is accepted or not.

Prints the decoder's verdict as JSON: the readings the payload yields and every rejection with
its machine-readable reason, the offending part and detail. Exit 0 when nothing was refused,
1 when anything was (or the plant is invalid). The clock is the machine's, or `--now`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

from hazardwatch.commands import config_failure
from hazardwatch.plant.loader import ConfigFileError, load_plant
from hazardwatch.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Plant, topic, payload file (or stdin), optional prefix and clock."""
    parser.add_argument("--plant", type=Path, required=True, help="plant YAML")
    parser.add_argument("--topic", required=True, help="MQTT topic the payload was sent to")
    parser.add_argument("file", nargs="?", default="-", help="payload file, `-` = stdin")
    parser.add_argument("--prefix", help="topic prefix (default: settings mqtt.topic_prefix)")
    parser.add_argument("--now", type=int, help="receive time, epoch ms (default: now)")


def run(args: argparse.Namespace) -> int:
    """Print the verdict JSON; exit 1 if anything was refused."""
    from ingest.decoder import Decoder
    from ingest.directory import GatewayDirectory

    try:
        plant = load_plant(args.plant)
    except ConfigFileError as exc:
        return config_failure("hazardwatch decode", exc)
    prefix = args.prefix or load_settings().mqtt.topic_prefix
    payload = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    now_ms = args.now if args.now is not None else time.time_ns() // 1_000_000
    decoded = Decoder(GatewayDirectory.from_plant(plant), prefix).decode(
        args.topic, payload, now_ms
    )
    sys.stdout.buffer.write(orjson.dumps(decoded.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    return 1 if decoded.rejections else 0
