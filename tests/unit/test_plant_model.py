"""The plant model: grades, defaults resolution, limits, cross-references."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from hazardwatch.plant.model import SHARE_EQUAL, Plant
from hazardwatch.plant.policy import PolicyFile, RiskPolicy
from hazardwatch.types import RiskColour, Severity


def plant_data(**source_overrides: Any) -> dict[str, Any]:
    """A small valid tank-farm plant as a dict; each test gets its own copy."""
    source: dict[str, Any] = {
        "id": "S1",
        "enterprise": "E1",
        "name": "罐区",
        "kind": "tank_farm",
        "units": [
            {
                "id": "T1",
                "tags": [
                    {
                        "id": "LT1",
                        "quantity": "level",
                        "unit": "m",
                        "range": [0, 20],
                        "limits": {"L": 1, "H": 17},
                    },
                    {
                        "id": "LS1",
                        "quantity": "level",
                        "unit": "m",
                        "range": [0, 20],
                        "limits": {"HH": 18},
                        "independent_of": "LT1",
                    },
                    {"id": "FT1", "quantity": "flow", "unit": "m³/h", "range": [0, 1000]},
                    {
                        "id": "GD1",
                        "quantity": "lel",
                        "unit": "%LEL",
                        "range": [0, 100],
                        "limits": {"level1": 25, "level2": 50},
                    },
                ],
                "rules": [
                    {
                        "kind": "flatline_while_filling",
                        "tag": "LT1",
                        "inflow_tag": "FT1",
                        "min_inflow": 50,
                        "min_level_change": 0.02,
                    },
                ],
            }
        ],
    }
    source.update(source_overrides)
    return {
        "enterprises": [{"id": "E1", "name": "x", "region": "410102", "industry": "tank_farm"}],
        "gateways": [
            {
                "id": "G1",
                "enterprise": "E1",
                "interval_s": 10,
                "tags": ["LT1", "LS1", "FT1", "GD1"],
            },
        ],
        "hazard_sources": [source],
    }


def tag_of(plant: Plant, tag_id: str) -> Any:
    return next(t for t in plant.resolved_tags() if t.id == tag_id)


def test_enterprise_knows_its_city_and_province() -> None:
    enterprise = Plant.model_validate(plant_data()).enterprises[0]
    assert (enterprise.city, enterprise.province) == ("410100", "410000")


def test_builtin_defaults_follow_domain_table() -> None:
    plant = Plant.model_validate(plant_data())
    level, flow = tag_of(plant, "LT1"), tag_of(plant, "FT1")
    assert level.deadband == pytest.approx(1.0)  # 5 % of a 20 m span
    assert (level.on_delay_s, level.off_delay_s) == (60, 60)
    assert flow.deadband == pytest.approx(50.0)  # 5 % of 1000 m³/h
    assert (flow.on_delay_s, flow.off_delay_s) == (15, 15)
    assert level.expected_interval_s == 10  # from the gateway
    assert level.frozen_after_s is None


def test_defaults_resolve_tag_over_unit_over_source_over_plant() -> None:
    data = plant_data(defaults={"level": {"on_delay_s": 30, "deadband": 0.2}})
    data["defaults"] = {"level": {"on_delay_s": 45, "off_delay_s": 5}, "flow": {"deadband": "1%"}}
    data["hazard_sources"][0]["units"][0]["defaults"] = {"level": {"deadband": "2%"}}
    data["hazard_sources"][0]["units"][0]["tags"][1]["on_delay_s"] = 3
    plant = Plant.model_validate(data)
    lt1, ls1, ft1 = tag_of(plant, "LT1"), tag_of(plant, "LS1"), tag_of(plant, "FT1")
    assert lt1.deadband == pytest.approx(0.4)  # unit's 2 % beats the source's 0.2 m
    assert lt1.on_delay_s == 30  # source beats plant
    assert lt1.off_delay_s == 5  # only the plant sets it
    assert ls1.on_delay_s == 3  # the tag itself wins
    assert ft1.deadband == pytest.approx(10.0)  # plant's 1 % of 1000


def test_off_delay_follows_a_changed_on_delay_when_unset() -> None:
    data = plant_data()
    data["hazard_sources"][0]["units"][0]["tags"][2]["on_delay_s"] = 40
    assert tag_of(Plant.model_validate(data), "FT1").off_delay_s == 40


def test_limits_carry_severity_and_condition_names() -> None:
    plant = Plant.model_validate(plant_data())
    gas = tag_of(plant, "GD1")
    assert [(s.key, s.condition, s.severity) for s in gas.limits] == [
        ("H", "LEL1", Severity.S1),
        ("HH", "LEL2", Severity.S2),
    ]
    level = tag_of(plant, "LT1")
    assert [(s.key, s.high) for s in level.limits] == [("L", False), ("H", True)]
    assert tag_of(plant, "LS1").independent_of == "LT1"


def test_order10_tag_alarms_are_s2_and_source_counts_as_grade_2() -> None:
    data = plant_data(kind="converter", grade=4)
    data["hazard_sources"][0]["units"][0]["tags"][0]["order10"] = True
    plant = Plant.model_validate(data)
    assert {s.severity for s in tag_of(plant, "LT1").limits} == {Severity.S2}
    assert plant.hazard_sources[0].effective_grade == 2


def test_grade_is_computed_from_inventory() -> None:
    data = plant_data(
        people_within_500m=60,
        inventory=[
            {"name": "gasoline", "q": 6200, "Q": 200},
            {"name": "benzene", "q": 1500, "Q": 50},
        ],
    )
    source = Plant.model_validate(data).hazard_sources[0]
    assert source.risk_value == pytest.approx(91.5)
    assert source.resolved_grade == 2
    assert source.effective_grade == 2


def test_source_without_grade_counts_as_grade_4() -> None:
    source = Plant.model_validate(plant_data()).hazard_sources[0]
    assert source.resolved_grade is None
    assert source.effective_grade == 4


def test_given_grade_contradicting_inventory_is_rejected() -> None:
    data = plant_data(
        grade=1, people_within_500m=60, inventory=[{"name": "gasoline", "q": 6200, "Q": 200}]
    )
    with pytest.raises(ValidationError, match="inventory computes grade 3"):
        Plant.model_validate(data)


def test_frozen_value_rule_is_folded_into_the_tag() -> None:
    data = plant_data()
    data["hazard_sources"][0]["units"][0]["rules"].append(
        {"kind": "frozen_value", "tag": "LT1", "duration_s": 3600, "noise_band": "0.1%"}
    )
    plant = Plant.model_validate(data)
    lt1 = tag_of(plant, "LT1")
    assert (lt1.frozen_after_s, lt1.frozen_band) == (3600, pytest.approx(0.02))
    assert [p.rule.kind for p in plant.resolved_rules()] == ["flatline_while_filling"]
    assert plant.resolved_rules()[0].unit == "T1"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["gateways"][0]["tags"].remove("GD1"), "'GD1' is carried by no gateway"),
        (lambda d: d["gateways"][0]["tags"].append("LT1"), "already carried"),
        (lambda d: d["gateways"][0].update(enterprise="E9"), "unknown enterprise 'E9'"),
        (
            lambda d: d["hazard_sources"][0]["units"][0]["tags"][1].update(independent_of="X"),
            "unknown tag 'X'",
        ),
        (
            lambda d: d["hazard_sources"][0]["units"][0]["rules"][0].update(inflow_tag="F9"),
            "unknown tag 'F9'",
        ),
        (lambda d: d["hazard_sources"][0]["units"][0]["tags"][0]["limits"].update(H=0.5), "L < H"),
        (
            lambda d: d["hazard_sources"][0]["units"][0]["tags"][0]["limits"].update(H=25),
            "≤ instrument range max 20",
        ),
        (
            lambda d: d["hazard_sources"][0]["units"][0]["tags"][2].update(limits={"level1": 5}),
            "level1/level2 are for gas",
        ),
        (
            lambda d: d["hazard_sources"][0]["units"][0]["tags"].append(
                copy.deepcopy(d["hazard_sources"][0]["units"][0]["tags"][0])
            ),
            "duplicate tag id",
        ),
    ],
)
def test_cross_reference_errors_are_reported(mutate: Any, message: str) -> None:
    data = plant_data()
    mutate(data)
    with pytest.raises(ValidationError, match=message):
        Plant.model_validate(data)


def test_bad_region_and_unknown_key_are_rejected() -> None:
    data = plant_data()
    data["enterprises"][0]["region"] = "4101"
    data["enterprises"][0]["colour"] = "red"
    with pytest.raises(ValidationError) as info:
        Plant.model_validate(data)
    kinds = {e["type"] for e in info.value.errors()}
    assert {"value_error", "extra_forbidden"} <= kinds


def test_policy_defaults_are_the_domain_values() -> None:
    risk = RiskPolicy()
    assert risk.s3_hold_s == 600
    assert risk.escalation.after_s(Severity.S1) == 1800
    assert risk.escalation.after_s(Severity.S2) == 600
    assert risk.escalation.cap is RiskColour.ORANGE
    assert (risk.flood.start_above, risk.flood.end_below, risk.flood.window_s) == (10, 5, 600)
    assert (risk.chattering.activations, risk.chattering.window_s) == (3, 60)
    assert risk.stale_factor == 3
    matrix = risk.colour_matrix
    assert matrix.colour(Severity.S3, 1) is RiskColour.RED
    assert matrix.colour(Severity.S3, 3) is RiskColour.ORANGE
    assert matrix.colour(Severity.S2, 4) is RiskColour.YELLOW
    assert matrix.colour(Severity.NONE, 1) is RiskColour.BLUE


def test_policy_overrides_and_keeps_routing_untyped() -> None:
    policy = PolicyFile.model_validate(
        {
            "risk": {"escalation": {"cap": "红"}, "colour_matrix": {"S1": ["orange", "yellow"]}},
            "routing": {"anything": [1, 2]},
        }
    )
    assert policy.risk.escalation.cap is RiskColour.RED
    assert policy.risk.colour_matrix.colour(Severity.S1, 2) is RiskColour.ORANGE
    assert policy.routing == {"anything": [1, 2]}
    assert policy.model_dump(mode="json")["risk"]["escalation"]["cap"] == "red"
    with pytest.raises(ValidationError):
        PolicyFile.model_validate({"risk": {}, "alerts": {}})


def test_resolved_tags_are_resolved_once_and_sub_plants_resolve_their_own() -> None:
    data = plant_data()
    data["hazard_sources"].append(copy.deepcopy(data["hazard_sources"][0]))
    second = data["hazard_sources"][1]
    second["id"] = "S2"
    for tag in second["units"][0]["tags"]:
        tag["id"] = "X" + tag["id"]
        data["gateways"][0]["tags"].append(tag["id"])
    second["units"][0]["tags"][1]["independent_of"] = "XLT1"
    second["units"][0]["rules"][0].update(tag="XLT1", inflow_tag="XFT1")
    plant = Plant.model_validate(data)
    tags = plant.resolved_tags()
    assert plant.resolved_tags() is tags and len(tags) == 8
    assert plant == Plant.model_validate(data)  # the memo is no field: equality ignores it
    sub = plant.model_copy(update={"hazard_sources": plant.hazard_sources[1:]})
    assert [t.id for t in sub.resolved_tags()] == ["XLT1", "XLS1", "XFT1", "XGD1"]
    assert [p.source for p in sub.resolved_rules()] == ["S2"]
    assert len(plant.resolved_tags()) == 8


def test_shared_equal_parts_keep_every_tags_given_fields() -> None:
    data = plant_data()
    tags = data["hazard_sources"][0]["units"][0]["tags"]
    tags.append({**copy.deepcopy(tags[0]), "id": "LT2", "name": "second gauge"})
    data["gateways"][0]["tags"].append("LT2")
    shared = Plant.model_validate(data, context={SHARE_EQUAL: {}})
    alone = Plant.model_validate(data)
    lt1, lt2 = shared.hazard_sources[0].units[0].tags[0], shared.hazard_sources[0].units[0].tags[4]
    assert lt1.limits is lt2.limits and lt1.range is lt2.range  # stored once
    assert shared == alone
    assert shared.model_dump(exclude_unset=True) == alone.model_dump(exclude_unset=True)
    assert lt2.model_fields_set == {"id", "name", "quantity", "unit", "range", "limits"}
    assert lt1.model_fields_set == {"id", "quantity", "unit", "range", "limits"}
    renamed = lt1.model_copy(update={"name": "renamed"})
    assert "name" in renamed.model_fields_set and "name" not in lt1.model_fields_set
