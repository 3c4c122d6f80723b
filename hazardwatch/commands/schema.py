"""`hazardwatch schema plant|policy|events`: print a JSON Schema."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from hazardwatch.cli import EXIT_NOT_BUILT
from hazardwatch.plant.model import Plant
from hazardwatch.plant.policy import PolicyFile


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare which schema to print."""
    parser.add_argument("which", choices=["plant", "policy", "events"])


def _events_schema() -> dict[str, Any] | None:
    # The events schema belongs to the risk engine; use it once stream/events.py provides one.
    try:
        events = importlib.import_module("stream.events")
    except ImportError:
        return None
    provider = getattr(events, "json_schema", None)
    if not callable(provider):
        return None
    schema: dict[str, Any] = provider()
    return schema


def run(args: argparse.Namespace) -> int:
    """Print the schema as indented JSON; exit 2 when the events schema is not built yet."""
    if args.which == "plant":
        schema: dict[str, Any] | None = Plant.model_json_schema()
    elif args.which == "policy":
        schema = PolicyFile.model_json_schema()
    else:
        schema = _events_schema()
    if schema is None:
        print("hazardwatch schema events: not built yet", file=sys.stderr)
        return EXIT_NOT_BUILT
    print(json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True))
    return 0
