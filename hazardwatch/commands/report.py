"""`hazardwatch report events.jsonl --readings R --html out.html [--plant P]`: one
self-contained HTML page (inline SVG) of a run — see simulators/report.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from hazardwatch.commands import config_failure
from hazardwatch.plant.loader import ConfigFileError, load_plant
from simulators.recording import Rejected, read_recording
from simulators.report import render


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare events, readings, output and the optional plant (limits, source names)."""
    parser.add_argument("events", help="events.jsonl from evaluate or a runner")
    parser.add_argument("--readings", required=True, help="readings (.jsonl, .csv, .lp)")
    parser.add_argument("--html", required=True, help="HTML file to write")
    parser.add_argument("--plant", help="plant YAML: limits and hazard-source names")
    parser.add_argument("--title", default="hazardwatch report")


def run(args: argparse.Namespace) -> int:
    """Exit 0 after writing the page; 1 when an input cannot be read."""
    plant = None
    if args.plant:
        try:
            plant = load_plant(args.plant)
        except ConfigFileError as exc:
            return config_failure("hazardwatch report", exc)
    events = []
    bad = 0
    try:
        for line in Path(args.events).read_bytes().splitlines():
            if line.strip():
                try:
                    events.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    bad += 1
    except OSError as exc:
        print(f"hazardwatch report: {exc}", file=sys.stderr)
        return 1
    rejected = Rejected()
    page = render(events, read_recording(Path(args.readings), rejected), plant, args.title)
    Path(args.html).write_text(page, encoding="utf-8")
    print(f"{args.html}: {len(events)} events ({bad} bad lines), "
          f"{rejected.count} unusable readings", file=sys.stderr)  # fmt: skip
    return 0
