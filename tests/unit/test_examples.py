"""Every shipped example passes check-config and says what a newcomer expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazardwatch.cli import main
from hazardwatch.plant.loader import load_plant, load_policy
from hazardwatch.plant.policy import PolicyFile

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PLANTS = ["tank-farm.yaml", "chemical-process.yaml", "steel-plant.yaml"]


@pytest.mark.parametrize("name", PLANTS)
def test_example_passes_check_config(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLES / name), str(EXAMPLES / "policy.yaml")]) == 0
    assert capsys.readouterr().err == ""


def test_example_policy_spells_out_the_defaults() -> None:
    assert load_policy(EXAMPLES / "policy.yaml") == PolicyFile()


def test_tank_farm_is_grade_2_with_independent_hh_and_flatline_rules() -> None:
    plant = load_plant(EXAMPLES / "tank-farm.yaml")
    assert plant.hazard_sources[0].resolved_grade == 2
    tags = {t.id: t for t in plant.resolved_tags()}
    tanks = [u for u in plant.hazard_sources[0].units if u.volume_m3 and u.volume_m3 > 100]
    filled = {p.rule.primary_tag for p in plant.resolved_rules()}
    for tank in tanks:
        backups = [tags[t.id] for t in tank.tags if t.independent_of]
        assert backups and {s.key for s in backups[0].limits} == {"LL", "HH"}
        assert f"{tank.id}-LT" in filled
    assert tags["T101-LT"].deadband == pytest.approx(0.1)  # plant-level override


def test_chemical_process_is_grade_1_with_runaway_rule() -> None:
    plant = load_plant(EXAMPLES / "chemical-process.yaml")
    assert plant.hazard_sources[0].resolved_grade == 1
    kinds = {(p.rule.kind, p.rule.primary_tag) for p in plant.resolved_rules()}
    assert ("rate_of_change", "R101-TT") in kinds
    reactor_t = next(t for t in plant.resolved_tags() if t.id == "R101-TT")
    assert reactor_t.on_delay_s == 10  # source-level override of the 60 s default


def test_steel_plant_order10_sources_count_as_grade_2() -> None:
    plant = load_plant(EXAMPLES / "steel-plant.yaml")
    grades = {s.id: s.effective_grade for s in plant.hazard_sources}
    assert grades == {"ZZ-BOF1": 2, "ZZ-BF1": 2, "ZZ-GH1": 3, "ZZ-GAS-PS": 4, "ZZ-CR3": 2}
    co = next(t for t in plant.resolved_tags() if t.id == "GAS-PS-CO1")
    assert co.occupied_area
    assert [(s.condition, s.value) for s in co.limits] == [("CO1", 24), ("CO2", 160)]
