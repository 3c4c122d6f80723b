"""`hazardwatch demo`: the main job on this machine.

Until the embedded pipeline exists (issue 5) the demo checks the local services and reports their
health; it exits 1 with a hint when one is down.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from hazardwatch.commands.services import render
from hazardwatch.health import check_all
from hazardwatch.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo takes no options yet."""


def run(args: argparse.Namespace) -> int:
    """Report service health; 0 when all are up."""
    console = Console()
    results = check_all(load_settings())
    render(results, console)
    if not all(r.ok for r in results):
        console.print("Start the services with [bold]scripts/services up[/bold] (or `make demo`).")
        return 1
    console.print("All services are up. The embedded pipeline demo arrives with issue 5.")
    return 0
