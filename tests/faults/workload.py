"""The fault suite's workload: a shipped scenario, compressed in time, and what it should yield.

`examples/scenarios/alarm-flood.yaml` (cooling-water pump trip at a chlorination unit) gives many
alerts of every kind — a blue alarm notice, yellow raise, orange and red updates to all four tiers
and a flood incident — so a lost or doubled notification shows. Its events keep their order but
come sooner: the pump trips 30 s after the start (+60 min in the file), the condenser follows at
60 s (+61 min), the relief lifts at 100 s (+64 min); the run is cut to 5 min of plant time, before
the standby pump (+75 min). Same 11 notifications as the full scenario, flood at ≈ 166 s and red
at ≈ 191 s.

Runners take the wall clock (minus a small lag) as the engine clock between readings, so readings
must not fall behind it, and ingest refuses points more than 5 min ahead of it. The scenario
therefore starts at "now" and plays at `SPEED` × real time: 300 s of plant time in 100 s, at
most 200 s ahead of the wall clock. Outputs that wait for the wall clock (the distributed
worker's enterprise merge) come when the wall clock reaches their plant time.

The expected results come from the same publications: the readings each tag must end with, and
the notifications the alerting service enqueues for the events `hazardwatch evaluate` (the same
engine, offline) derives from exactly the published values.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from alerting.outbox import Outbox
from alerting.policy import load_routing
from alerting.service import AlertService, areas_from_plant, names_from_plant, tag_units_from_plant
from hazardwatch.plant.loader import load_plant
from hazardwatch.plant.model import Plant
from hazardwatch.region import city_of, province_of
from simulators.engine import Simulation
from simulators.gateway import GatewayFleet, Publication
from simulators.scenario import load_scenario
from tests.faults.receiver import SECRET_ENV

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "examples/scenarios/alarm-flood.yaml"
EVENT_AT_S = {3600.0: 30.0, 3660.0: 60.0, 3840.0: 100.0}  # offset in the file → in the run
DURATION_S = 300.0
SPEED = 3.0
TIERS = ("enterprise", "county", "city", "province")


@dataclass(frozen=True)
class Workload:
    """Everything the gateways publish in one run, in publish order, plus the counts it implies."""

    plant_path: Path
    plant: Plant
    prefix: str
    start_ms: int
    publications: tuple[Publication, ...]
    readings: Counter[str]  # tag → readings published
    last_points: dict[str, tuple[int, int, dict[str, float]]]  # gateway → (seq, ts, tag → value)
    speed: float = SPEED

    @property
    def enterprise_of(self) -> dict[str, str]:
        """Gateway id → its enterprise."""
        return {g.id: g.enterprise for g in self.plant.gateways}

    @property
    def end_ms(self) -> int:
        """Plant time of the last sample."""
        return max(ts for _, ts, _ in self.last_points.values())

    def wall_offset_s(self, pub: Publication) -> float:
        """Seconds after the publisher's start at which `pub` is due."""
        return (pub.at_ms - self.start_ms) / 1000.0 / self.speed

    @property
    def wall_duration_s(self) -> float:
        """How long publishing takes at `speed`."""
        return self.wall_offset_s(self.publications[-1])


def build_workload(
    prefix: str, speed: float = SPEED, duration_s: float = DURATION_S, lead_s: float = 2.0
) -> Workload:
    """The compressed scenario starting `lead_s` from now, as its gateways publish it."""
    scenario, plant_path = load_scenario(SCENARIO)
    data = scenario.model_dump(by_alias=True)
    events = []
    for event in data["events"]:
        at = EVENT_AT_S.get(scenario.offset_s(event["at"]))
        if at is not None:
            events.append({**event, "at": at})
    start = datetime.fromtimestamp(round(time.time() + lead_s), tz=UTC)
    data.update(start=start, duration=duration_s, events=events, expect=[])
    plant = load_plant(plant_path)
    sim = Simulation(plant, type(scenario).model_validate(data))
    fleet = GatewayFleet(sim, prefix)
    pubs = [p for chunk in sim.chunks() for p in fleet.publications(chunk)]
    pubs += list(fleet.flush())
    assert all(p.kind == "telemetry" and not p.fault for p in pubs), "plain telemetry expected"
    readings: Counter[str] = Counter()
    last: dict[str, tuple[int, int, dict[str, float]]] = {}
    for pub in pubs:
        body = orjson.loads(pub.payload)
        points = body["points"]
        readings.update(p["tag"] for p in points)
        ts = max(p["ts"] for p in points)
        values = {**last.get(pub.gateway, (0, 0, {}))[2], **{p["tag"]: p["v"] for p in points}}
        last[pub.gateway] = (pub.seq, ts, values)
    return Workload(plant_path, plant, prefix, sim.start_ms, tuple(pubs), readings, last, speed)


def readings_jsonl(workload: Workload) -> bytes:
    """The published points as readings.jsonl (exact values, as ingest decodes them)."""
    lines = []
    for pub in workload.publications:
        for p in orjson.loads(pub.payload)["points"]:
            lines.append(
                orjson.dumps(
                    {
                        "ts": p["ts"],
                        "tag": p["tag"],
                        "gw": pub.gateway,
                        "v": p["v"],
                        "q": p.get("q", 0),
                    }
                )
            )
    return b"\n".join(lines) + b"\n"


def policy_yaml(plant: Plant, receiver_url: str) -> str:
    """Risk defaults and one webhook recipient per tier and enterprise, at `<url>/<recipient>`.

    Delivery settings are the defaults (10 attempts, backoff 2 s doubling to 300 s, jitter 0.5).
    """
    recipients = []
    for e in plant.enterprises:
        areas = (e.id, e.region, city_of(e.region), province_of(e.region))
        for tier, area in zip(TIERS, areas, strict=True):
            rid = f"{tier}-{e.id.lower()}"
            recipients.append(
                f'    - {{id: {rid}, name: "{tier} desk", tier: {tier}, area: "{area}", '
                f'channels: [{{type: webhook, url: "{receiver_url}/{rid}", '
                f"secret_env: {SECRET_ENV}}}]}}"
            )
    return "risk: {}\nrouting:\n  recipients:\n" + "\n".join(recipients) + "\n"


@dataclass(frozen=True)
class ExpectedNotice:
    """A notification the alerting service should deliver."""

    key: str
    recipient: str
    notice: dict[str, Any]


@dataclass(frozen=True)
class Reference:
    """Engine events and webhook notifications expected from a workload."""

    events: tuple[dict[str, Any], ...]
    notices: tuple[ExpectedNotice, ...]


def reference(workload: Workload, policy: Path, workdir: Path) -> Reference:
    """Evaluate the published readings offline and route the events like the runners do."""
    workdir.mkdir(parents=True, exist_ok=True)
    readings, events_file = workdir / "readings.jsonl", workdir / "events.jsonl"
    readings.write_bytes(readings_jsonl(workload))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hazardwatch.cli",
            "evaluate",
            "--plant",
            str(workload.plant_path),
            "--input",
            str(readings),
            "--output",
            str(events_file),
            "--policy",
            str(policy),
        ],
        check=True,
        capture_output=True,
    )
    events = tuple(orjson.loads(line) for line in events_file.read_bytes().splitlines() if line)
    plant = workload.plant
    outbox = Outbox(workdir / "reference-outbox.db")
    service = AlertService(
        load_routing(policy),
        outbox,
        areas_from_plant(plant),
        lambda: workload.start_ms,
        names_from_plant(plant),
        None,
        tag_units_from_plant(plant),
    )
    for event in events:
        service.handle(event)
    pending = outbox.due(2**62, limit=100_000)
    outbox.close()
    notices = tuple(
        ExpectedNotice(p.key, p.recipient, p.notice) for p in pending if p.channel_type == "webhook"
    )
    return Reference(events, notices)
