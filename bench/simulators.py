"""Simulator throughput, JSON on stdout: `python -m bench.simulators [--days D] [--mqtt-s S]`.

- `file_readings_per_s`: tank-farm normal day stretched to `--days`, simulated and written as
  readings.jsonl to a temporary file (physics + instruments + faults + encoding + write).
  Ceilings measured in the same run: `file_write_ceiling_readings_per_s` — writing the same bytes
  again with no simulation or encoding (the disk and page cache) — and
  `file_simulation_ceiling_readings_per_s` — the same simulation without encoding or writing.
- `mqtt_readings_per_s`: the same plant published unpaced to the local Mosquitto as gateway
  batches with QoS 1 (acks awaited), for `--mqtt-s` simulated seconds. Ceiling:
  `mqtt_publish_ceiling_readings_per_s` — pre-encoded batches of the same size published on one
  client, QoS 1, without simulation.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from hazardwatch.plant.loader import load_plant
from hazardwatch.settings import MqttSettings
from ingest.mqtt import LinkOptions, MqttLink
from simulators.engine import Simulation
from simulators.gateway import GatewayFleet
from simulators.mqtt_run import run_to_broker
from simulators.scenario import Scenario, load_scenario
from simulators.to_file import write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def _simulation(duration_s: float) -> Simulation:
    scenario, plant_path = load_scenario(ROOT / "examples" / "scenarios" / "normal-day.yaml")
    data = {**scenario.model_dump(by_alias=True), "duration": duration_s}
    return Simulation(load_plant(plant_path), Scenario.model_validate(data))


def file_throughput(days: float) -> dict[str, float]:
    """Readings/s simulated to a JSONL file, and the raw write ceiling."""
    sim = _simulation(days * 86400)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.jsonl"
        started = time.perf_counter()
        with path.open("wb") as stream:
            count = write_jsonl(sim, stream)
        elapsed = time.perf_counter() - started
        data = path.read_bytes()
        started = time.perf_counter()
        with (Path(tmp) / "copy.jsonl").open("wb") as stream:
            stream.write(data)
            stream.flush()
        ceiling = time.perf_counter() - started
    again = _simulation(days * 86400)
    started = time.perf_counter()
    simulated = sum(len(chunk) for chunk in again.chunks())
    simulation = time.perf_counter() - started
    return {
        "file_readings": count,
        "file_seconds": round(elapsed, 3),
        "file_readings_per_s": round(count / elapsed),
        "file_write_ceiling_readings_per_s": round(count / max(ceiling, 1e-9)),
        "file_simulation_ceiling_readings_per_s": round(simulated / simulation),
    }


def mqtt_throughput(url: str, seconds: float) -> dict[str, float]:
    """Readings/s published as gateway batches (QoS 1), and a plain-publish ceiling."""
    prefix = f"bench/sim{os.getpid()}"
    stats = run_to_broker(_simulation(seconds), url, prefix, speed=0)
    fleet = GatewayFleet(_simulation(seconds), prefix)
    pubs = [p for c in fleet.sim.chunks() for p in fleet.publications(c) if p.kind == "telemetry"]
    link: MqttLink[None] = MqttLink(
        MqttSettings(url=url), LinkOptions(client_id=f"bench-{os.getpid()}"), lambda *_: None
    )
    link.start()
    started = time.perf_counter()
    infos = [link.publish(p.topic, p.payload, qos=1) for p in pubs]
    for info in infos:
        info.wait_for_publish(60)
    ceiling = time.perf_counter() - started
    link.stop()
    points = sum(p.points for p in pubs)
    return {
        "mqtt_readings": stats.readings,
        "mqtt_batches": stats.batches,
        "mqtt_readings_per_s": round(stats.readings / stats.wall_s),
        "mqtt_publish_ceiling_readings_per_s": round(points / max(ceiling, 1e-9)),
    }


def main() -> None:
    """Print the benchmark JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=6.0, help="simulated days to file")
    parser.add_argument("--mqtt-s", type=float, default=1800.0, help="simulated s to MQTT")
    parser.add_argument("--mqtt", default="mqtt://127.0.0.1:1883")
    args = parser.parse_args()
    result: dict[str, float | str] = {"plant": "examples/tank-farm.yaml (22 tags)"}
    result.update(file_throughput(args.days))
    result.update(mqtt_throughput(args.mqtt, args.mqtt_s))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
