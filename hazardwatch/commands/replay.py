"""`hazardwatch replay FILE --mqtt URL [--plant P] [--speed X] [--from T --to T]`.

Replays a recording (readings.jsonl, CSV or InfluxDB line protocol) to MQTT as gateway batches
(QoS 1), keeping the relative timing of the recording divided by `--speed` (0 = as fast as
possible). `--from`/`--to` take RFC 3339 times, epoch ms, or offsets such as `+2h` from the first
reading. Topics need each gateway's enterprise: from `--plant` (tag → gateway → enterprise), else
the reading's `gw` field and `--enterprise`. Unusable lines are counted and reported, not fatal.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from hazardwatch.commands import config_failure
from hazardwatch.plant.loader import ConfigFileError, load_plant
from hazardwatch.types import Reading
from simulators.recording import Rejected, parse_ts, read_recording
from simulators.replay import Pacer, batches, window
from simulators.timeparse import parse_duration

UNKNOWN = "_"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the recording, broker, pacing, window and topic options."""
    parser.add_argument("file", help="recording: .jsonl, .csv or line protocol (.lp)")
    parser.add_argument("--mqtt", required=True, help="broker URL, e.g. mqtt://127.0.0.1:1883")
    parser.add_argument("--plant", help="plant YAML: maps tags to gateways and enterprises")
    parser.add_argument("--enterprise", default=UNKNOWN, help="enterprise id without --plant")
    parser.add_argument("--prefix", default="hw/v1", help="MQTT topic prefix (default hw/v1)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="recording seconds per wall second; 0 = unpaced")  # fmt: skip
    parser.add_argument("--from", dest="from_", help="start: RFC 3339, epoch ms or +offset")
    parser.add_argument("--to", help="end (exclusive): RFC 3339, epoch ms or +offset")
    parser.add_argument("--format", choices=["jsonl", "csv", "lp"], help="default: by suffix")
    parser.add_argument("--precision", default="ms", choices=["ns", "us", "ms", "s"],
                        help="line-protocol timestamp precision (default ms)")  # fmt: skip
    parser.add_argument("--seq-start", type=int, default=1,
                        help="first batch sequence number per gateway (default 1)")  # fmt: skip


def resolve_bound(text: str | None, first_ms: int) -> int | None:
    """A --from/--to value in epoch ms; `+2h` counts from the first reading."""
    if text is None:
        return None
    if text.strip().startswith("+"):
        return first_ms + round(parse_duration(text.strip()[1:]) * 1000)
    return parse_ts(text)


def run(args: argparse.Namespace) -> int:
    """Exit 0 after replaying; 1 when the plant file or the recording cannot be used."""
    gateway_of: dict[str, tuple[str, str]] = {}
    if args.plant:
        try:
            plant = load_plant(args.plant)
        except ConfigFileError as exc:
            return config_failure("hazardwatch replay", exc)
        for gw in plant.gateways:
            for tag in gw.tags:
                gateway_of[tag] = (gw.enterprise, gw.id)

    def enterprise_of(reading: Reading) -> tuple[str, str]:
        found = gateway_of.get(reading.tag)
        if found is not None:
            return found
        return args.enterprise, reading.gw or UNKNOWN

    rejected = Rejected()
    readings: Iterator[Reading] = read_recording(
        Path(args.file), rejected, args.format, args.precision
    )
    first = next(readings, None)
    if first is None:
        print(f"hazardwatch replay: no usable readings in {args.file}", file=sys.stderr)
        for example in rejected.examples:
            print(f"  {example}", file=sys.stderr)
        return 1
    try:
        low = resolve_bound(args.from_, first.ts_ms)
        high = resolve_bound(args.to, first.ts_ms)
    except ValueError as exc:
        print(f"hazardwatch replay: {exc}", file=sys.stderr)
        return 1
    selected = window(chain([first], readings), low, high)
    from simulators.mqtt_replay import publish_batches

    stream = batches(selected, args.prefix, enterprise_of, args.seq_start)
    pacer = Pacer(args.speed, time.monotonic, time.sleep)
    count, sent = publish_batches(args.mqtt, args.prefix, stream, pacer)
    print(f"{count} readings in {sent} batches replayed", file=sys.stderr)
    if rejected.count:
        print(f"{rejected.count} unusable lines skipped:", file=sys.stderr)
        for example in rejected.examples:
            print(f"  {example}", file=sys.stderr)
    return 0
