"""Simulate and replay against the real Mosquitto: gateway batches, retained status, timing."""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import pytest

from hazardwatch.cli import main
from hazardwatch.plant.loader import load_plant
from hazardwatch.settings import MqttSettings
from ingest.mqtt import LinkOptions, MqttLink
from simulators.engine import Simulation
from simulators.mqtt_run import run_to_broker
from simulators.scenario import Scenario, load_scenario
from tests.services import Endpoints

pytestmark = pytest.mark.integration
SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
Message = tuple[str, bytes, int]


def _url(endpoints: Endpoints) -> str:
    return f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}"


def _listener(endpoints: Endpoints, prefix: str) -> MqttLink[tuple[str, bytes, int]]:
    settings = MqttSettings(url=_url(endpoints))
    options = LinkOptions(client_id=f"listen-{prefix.replace('/', '-')}", clean_start=True,
                          subscriptions=(f"{prefix}/#",))  # fmt: skip
    link: MqttLink[tuple[str, bytes, int]] = MqttLink(
        settings, options, lambda topic, payload, now: (topic, payload, now)
    )
    link.start()
    return link


def _drain(
    link: MqttLink[tuple[str, bytes, int]], until_idle_s: float = 1.0
) -> list[tuple[str, bytes, int]]:
    got: list[tuple[str, bytes, int]] = []
    while True:
        batch = link.next_batch(1000, until_idle_s)
        if not batch:
            return got
        got += [d.item for d in batch]
        link.ack(batch)


def test_simulate_publishes_gateway_batches_with_status(
    endpoints: Endpoints, mqtt_prefix: str
) -> None:
    scenario, plant_path = load_scenario(SCENARIOS / "buncefield-overfill.yaml")
    scenario = Scenario.model_validate({
        **scenario.model_dump(by_alias=True), "start": "2005-12-11T05:55:00+00:00",
        "duration": "4m", "events": [{"at": "+1m", "gateway": {"id": "GW-TF-A", "for": "1m"}}],
    })  # fmt: skip
    sim = Simulation(load_plant(plant_path), scenario)
    listener = _listener(endpoints, mqtt_prefix)
    try:
        stats = run_to_broker(sim, _url(endpoints), mqtt_prefix, speed=0)
        messages = _drain(listener)
    finally:
        listener.stop()
    telemetry = [orjson.loads(p) for t, p, _ in messages if t.endswith("/telemetry")]
    status = [orjson.loads(p) for t, p, _ in messages if t.endswith("/status")]
    assert sum(len(b["points"]) for b in telemetry) == stats.readings > 0
    by_gw: dict[str, list[int]] = {}
    for body in telemetry:
        by_gw.setdefault(body["gw"], []).append(body["seq"])
    assert set(by_gw) == {"GW-TF-A", "GW-TF-B"}
    for seqs in by_gw.values():
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    states_a = [s["state"] for s in status if s["gw"] == "GW-TF-A"]
    assert states_a == ["online", "offline", "online"]
    topics = {t for t, _, _ in messages}
    assert f"{mqtt_prefix}/QZ-PETRO/GW-TF-A/telemetry" in topics


def test_replay_keeps_relative_timing(
    endpoints: Endpoints, mqtt_prefix: str, tmp_path: Path
) -> None:
    recording = tmp_path / "r.jsonl"
    # Four sample times over 3 s of recording; at speed 2 they must arrive over ~1.5 s.
    lines = [{"ts": 1_700_000_000_000 + dt, "tag": "T101-LT", "v": 5.0 + i, "gw": "GW-TF-A"}
             for i, dt in enumerate((0, 1000, 2000, 3000))]  # fmt: skip
    recording.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    listener = _listener(endpoints, mqtt_prefix)
    try:
        plant = str(SCENARIOS.parent / "tank-farm.yaml")
        code = main(["replay", str(recording), "--mqtt", _url(endpoints), "--prefix",
                     mqtt_prefix, "--plant", plant, "--speed", "2", "--from", "+1s"])  # fmt: skip
        messages = _drain(listener, 2.0)
    finally:
        listener.stop()
    assert code == 0
    received = sorted(now for _, _, now in messages)
    assert len(received) == 3  # --from +1s drops the first sample
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(received)]
    assert all(abs(gap - 0.5) < 0.15 for gap in gaps), gaps
    first = orjson.loads(messages[0][1])
    assert first["points"][0]["v"] == 6.0 and first["gw"] == "GW-TF-A"
