"""`hazardwatch simulate --scenario S [--plant P] [--seed N] (--output FILE | --mqtt URL)`.

Runs a scenario (examples/scenarios/*.yaml; docs/scenarios.md) against its plant file and writes
readings.jsonl as fast as possible, or publishes to MQTT as the plant's gateways would
(per-gateway batches with sequence numbers, QoS 1, retained status with LWT) in real time or
accelerated by `--speed` (0 = as fast as the broker takes it). A progress bar is shown only when
stderr is a terminal.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from hazardwatch.commands import config_failure
from hazardwatch.errors import HazardwatchError
from hazardwatch.plant.loader import load_plant
from simulators.engine import Simulation
from simulators.scenario import load_scenario
from simulators.to_file import write_jsonl


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare scenario, plant override, seed, output or MQTT target and pacing."""
    parser.add_argument("--scenario", required=True, help="scenario YAML file")
    parser.add_argument("--plant", help="plant YAML (default: the scenario's `plant:`)")
    parser.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", help="readings.jsonl to write ('-' = stdout)")
    target.add_argument("--mqtt", help="broker URL, e.g. mqtt://127.0.0.1:1883")
    parser.add_argument("--prefix", default="hw/v1", help="MQTT topic prefix (default hw/v1)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="MQTT pacing: simulated seconds per second; 0 = unpaced")  # fmt: skip
    parser.add_argument("--start", help="override the scenario start: RFC 3339 or `now`")
    parser.add_argument("--duration", help="override the scenario duration, e.g. 2h")
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def build_simulation(args: argparse.Namespace) -> Simulation:
    """Load scenario and plant and apply the command-line overrides."""
    scenario, plant_path = load_scenario(args.scenario)
    plant = load_plant(Path(args.plant) if args.plant else plant_path)
    update: dict[str, object] = {}
    if args.seed is not None:
        update["seed"] = args.seed
    if args.duration:
        update["duration"] = args.duration
    if args.start:
        update["start"] = (
            datetime.fromtimestamp(round(time.time()), tz=UTC)
            if args.start == "now"
            else datetime.fromisoformat(args.start)
        )
    if update:
        scenario = scenario.model_validate({**scenario.model_dump(by_alias=True), **update})
    return Simulation(plant, scenario)


def run(args: argparse.Namespace) -> int:
    """Exit 0 after a complete run; 1 on a bad scenario or plant file."""
    try:
        sim = build_simulation(args)
    except (HazardwatchError, ValueError) as exc:
        return config_failure("hazardwatch simulate", exc)
    show = sys.stderr.isatty() and not args.no_progress
    if args.mqtt:
        from simulators.mqtt_run import publish_simulation

        return publish_simulation(sim, args.mqtt, args.prefix, args.speed, show)
    started = time.perf_counter()
    with _progress(show, sim.duration_s) as advance:
        if args.output == "-":
            count = write_jsonl(sim, sys.stdout.buffer, advance)
        else:
            with open(args.output, "wb") as stream:
                count = write_jsonl(sim, stream, advance)
    elapsed = time.perf_counter() - started
    print(
        f"{count} readings of {len(sim.tags)} tags over {sim.duration_s / 3600:.2f} h "
        f"written in {elapsed:.2f} s",
        file=sys.stderr,
    )
    return 0


class _progress:  # noqa: N801 - used as a context manager like a function
    """A rich progress bar over simulated time when `show`, else a no-op."""

    def __init__(self, show: bool, total_s: float) -> None:
        self.show, self.total_s = show, total_s

    def __enter__(self):  # type: ignore[no-untyped-def]
        if not self.show:
            return None
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.start()
        task = self._bar.add_task("simulating", total=self.total_s)
        return lambda done_s: self._bar.update(task, completed=done_s)

    def __exit__(self, *exc: object) -> None:
        if self.show:
            self._bar.stop()
