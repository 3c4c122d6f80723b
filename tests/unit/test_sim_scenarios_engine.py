"""Every shipped scenario, simulated and run through `hazardwatch evaluate`, produces the alarm
and colour sequence its `expect:` list (and the incident it recreates) calls for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from hazardwatch.cli import main
from simulators.expectations import event_offset_s, failures, first_match
from simulators.scenario import Expectation, Scenario, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
SHIPPED = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))


def _evaluate(name: str, tmp_path: Path) -> tuple[Scenario, list[dict[str, Any]]]:
    path = SCENARIOS / f"{name}.yaml"
    scenario, plant = load_scenario(path)
    readings, events = tmp_path / "readings.jsonl", tmp_path / "events.jsonl"
    assert main(["simulate", "--scenario", str(path), "--output", str(readings)]) == 0
    code = main(
        ["evaluate", "--plant", str(plant), "--input", str(readings), "--output", str(events)]
    )
    assert code == 0
    return scenario, [orjson.loads(line) for line in events.read_bytes().splitlines()]


def test_every_required_incident_is_shipped() -> None:
    assert {
        "buncefield-overfill",
        "converter-lance-leak",
        "gas-area-co-release",
        "blast-furnace-hanging-slips",
        "tank-farm-toxic-release",
        "normal-day",
        "alarm-flood",
    } <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_scenario_meets_its_expectations(name: str, tmp_path: Path) -> None:
    scenario, events = _evaluate(name, tmp_path)
    assert scenario.expect, "every shipped scenario states what the engine should do"
    assert failures(events, scenario) == []


def _first(events: list[dict[str, Any]], scenario: Scenario, **fields: Any) -> float:
    at = first_match(events, Expectation(**fields), scenario)
    assert at is not None, f"no {fields}"
    return at


def test_buncefield_flatline_warns_before_the_overflow(tmp_path: Path) -> None:
    scenario, events = _evaluate("buncefield-overfill", tmp_path)
    flatline = _first(events, scenario, type="alarm", tag="T101-LT", condition="flatline")
    first_gas = _first(events, scenario, type="alarm", tag="BUND-GD1", condition="LEL1")
    overflow = scenario.offset_s("05:20")
    assert scenario.offset_s("03:00") < flatline < overflow < first_gas
    red = _first(events, scenario, type="risk", source="QZ-TF1", colour="red")
    assert red < overflow  # S2 held 10 min → S3 → red at a grade-2 tank farm
    level_alarms = [
        e
        for e in events
        if e["type"] == "alarm"
        and e["tag"] in ("T101-LT", "T101-LS")
        and e["condition"] in ("H", "HH")
    ]
    assert level_alarms == []  # both gauges failed: no level alarm ever sounds


def test_lance_leak_alarms_flow_difference_then_goes_red(tmp_path: Path) -> None:
    scenario, events = _evaluate("converter-lance-leak", tmp_path)
    flow_diff = _first(events, scenario, type="alarm", tag="BOF1-LANCE-FI", condition="flow_diff")
    red = _first(events, scenario, type="risk", source="ZZ-BOF1", colour="red")
    assert scenario.offset_s("+62m") < flow_diff < red
    red_event = next(
        e
        for e in events
        if e["type"] == "risk" and e["source"] == "ZZ-BOF1" and e["colour"] == "red"
    )
    assert red_event["severity"] == "S3" and not red_event["escalated"]


def test_alarm_flood_is_detected_once_the_pump_trips(tmp_path: Path) -> None:
    scenario, events = _evaluate("alarm-flood", tmp_path)
    begins = [e for e in events if e["type"] == "flood" and e["state"] == "begin"]
    assert len(begins) == 1
    trip = scenario.offset_s("+60m")
    new_alarms = [
        e
        for e in events
        if e["type"] == "alarm"
        and e["state"] == "unacknowledged"
        and trip <= event_offset_s(e, scenario) <= trip + 600
    ]
    assert len(new_alarms) > 10


def test_normal_day_stays_within_eemua_alarm_rates(tmp_path: Path) -> None:
    scenario, events = _evaluate("normal-day", tmp_path)
    activations = [
        event_offset_s(e, scenario)
        for e in events
        if e["type"] == "alarm" and e["state"] == "unacknowledged"
    ]
    assert len(activations) >= 1
    per_hour = [sum(1 for a in activations if h * 3600 <= a < (h + 1) * 3600) for h in range(24)]
    assert max(per_hour) <= 15
    colours = {e["colour"] for e in events if e["type"] == "risk"}
    assert colours <= {"blue", "yellow"}
