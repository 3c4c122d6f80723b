"""The `hazardwatch` console command.

Each sub-command lives in its own module (listed in COMMANDS) exposing
`add_arguments(parser: argparse.ArgumentParser) -> None` and `run(args: argparse.Namespace) -> int`.
Modules are imported only when their command runs, so `hazardwatch --help` stays fast and a
broken optional dependency of one command cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from hazardwatch import __version__

EXIT_NOT_BUILT = 2


@dataclass(frozen=True, slots=True)
class Command:
    """A sub-command: its help line and the module implementing it (None = not built yet)."""

    help: str
    module: str | None


COMMANDS: dict[str, Command] = {
    "demo": Command(
        "run the main job on this machine: embedded pipeline on local services",
        "hazardwatch.commands.demo",
    ),
    "services": Command(
        "health of the local Mosquitto, Kafka and InfluxDB", "hazardwatch.commands.services"
    ),
    "check-config": Command(
        "validate plant and policy files; errors name file, line and field",
        "hazardwatch.commands.check_config",
    ),
    "schema": Command(
        "print the JSON Schema of plant, policy or events", "hazardwatch.commands.schema"
    ),
    "evaluate": Command(
        "run a readings recording through the risk engine offline", "hazardwatch.commands.evaluate"
    ),
    "decode": Command(
        "show the readings and rejections a gateway payload yields", "hazardwatch.commands.decode"
    ),
    "simulate": Command(
        "simulate a plant and scenario to JSONL or MQTT", "hazardwatch.commands.simulate"
    ),
    "replay": Command(
        "replay a recording to MQTT keeping relative timing", "hazardwatch.commands.replay"
    ),
    "run": Command(
        "embedded runner: MQTT -> engine -> InfluxDB + alert outbox", "hazardwatch.commands.run"
    ),
    "bridge": Command("distributed: MQTT -> Kafka telemetry topic", "hazardwatch.commands.bridge"),
    "worker": Command(
        "distributed: faust-streaming risk engine worker", "hazardwatch.commands.worker"
    ),
    "alerts": Command(
        "alert dispatcher and ack/feedback/clear HTTP API (`alerts serve`)",
        "hazardwatch.commands.alerts",
    ),
    "routes": Command(
        "`routes test`: who receives an event, by which channel, by when",
        "hazardwatch.commands.routes",
    ),
    "report": Command(
        "self-contained HTML report of events and readings", "hazardwatch.commands.report"
    ),
    "dashboards": Command(
        "`dashboards export` / `dashboards push` Grafana dashboards",
        "hazardwatch.commands.dashboards",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser; not-built commands accept any arguments and exit 2."""
    parser = argparse.ArgumentParser(
        prog="hazardwatch",
        description="IoT risk monitoring and early warning for industrial work safety.",
    )
    parser.add_argument("--version", action="version", version=f"hazardwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        help_text = command.help if command.module else f"{command.help} (not built yet)"
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args_list or args_list[0] not in COMMANDS:
        parser.parse_args(args_list or ["--help"])
        return EXIT_NOT_BUILT  # unreachable: argparse exits on --help or an unknown command
    name, rest = args_list[0], args_list[1:]
    command = COMMANDS[name]
    if command.module is None:
        print(f"hazardwatch {name}: not built yet", file=sys.stderr)
        return EXIT_NOT_BUILT
    module = importlib.import_module(command.module)
    cmd_parser = argparse.ArgumentParser(prog=f"hazardwatch {name}", description=command.help)
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(rest)
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
