"""`hazardwatch services`: is every service this process needs reachable?"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hazardwatch.health import ServiceHealth, check_all
from hazardwatch.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options: an optional settings file."""
    parser.add_argument("--config", type=Path, help="hazardwatch.toml (default: environment only)")


def render(results: list[ServiceHealth], console: Console) -> None:
    """Print a health table."""
    table = Table(title="hazardwatch services")
    for column in ("service", "address", "state", "latency", "detail"):
        table.add_column(column)
    for r in results:
        state = "[green]up[/green]" if r.ok else "[red]down[/red]"
        table.add_row(r.name, r.address, state, f"{r.latency_ms:.1f} ms", r.detail)
    console.print(table)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every service answers, 1 otherwise."""
    results = check_all(load_settings(args.config))
    render(results, Console())
    return 0 if all(r.ok for r in results) else 1
