"""Routing: every colour reaches exactly its DOMAIN.md §6 tiers in the enterprise's own region."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerting.events import parse_event
from alerting.lifecycle import AlertBook
from alerting.matchers import parse_matcher
from alerting.planner import Planned, plan_event
from alerting.policy import RoutingPolicy, load_routing, routing_from_mapping
from alerting.routing import EnterpriseArea, next_tier, route_targets, tiers_for
from alerting.samples import sample_routing, sample_routing_yaml
from hazardwatch.cli import main
from hazardwatch.plant.loader import ConfigFileError
from hazardwatch.types import RiskColour, Tier

QZ = EnterpriseArea("QZ-PETRO", "湄洲湾储运", "350521", "tank_farm")
JJ = EnterpriseArea("JJ-CHEM", "晋江化工", "350582", "hazardous_chemicals")
XM = EnterpriseArea("XM-STEEL", "厦门钢铁", "350203", "metallurgy")  # other city, same province


@pytest.fixture
def policy() -> RoutingPolicy:
    return routing_from_mapping(sample_routing())


def risk_event(colour: str, enterprise: str = "QZ-PETRO", eid: str = "e1") -> dict[str, object]:
    return {"id": eid, "ts": 1_767_225_600_000, "type": "risk", "enterprise": enterprise,
            "source": "S1", "colour": colour, "previous": "blue"}  # fmt: skip


def recipients(policy: RoutingPolicy, colour: str, area: EnterpriseArea) -> set[str]:
    planned = plan_event(AlertBook(policy), parse_event(risk_event(colour, area.enterprise)), area)
    return {t.recipient for p in planned for t in p.targets}


@pytest.mark.parametrize(
    ("colour", "tiers"),
    [
        (RiskColour.BLUE, [Tier.ENTERPRISE]),
        (RiskColour.YELLOW, [Tier.ENTERPRISE, Tier.COUNTY]),
        (RiskColour.ORANGE, [Tier.ENTERPRISE, Tier.COUNTY, Tier.CITY]),
        (RiskColour.RED, [Tier.ENTERPRISE, Tier.COUNTY, Tier.CITY, Tier.PROVINCE]),
    ],
)
def test_default_tiers_follow_domain_table(colour: RiskColour, tiers: list[Tier]) -> None:
    assert list(tiers_for(RoutingPolicy(), colour)) == tiers


@pytest.mark.parametrize(
    ("colour", "expected"),
    [
        ("yellow", {"qz-control-room", "huian-safety"}),
        ("orange", {"qz-control-room", "huian-safety", "quanzhou-safety"}),
        ("red", {"qz-control-room", "huian-safety", "quanzhou-safety", "fujian-safety"}),
    ],
)
def test_routing_table_per_colour(policy: RoutingPolicy, colour: str, expected: set[str]) -> None:
    assert recipients(policy, colour, QZ) == expected


def test_blue_risk_alone_notifies_nobody(policy: RoutingPolicy) -> None:
    assert recipients(policy, "blue", QZ) == set()


def test_other_county_gets_only_its_own_enterprises(policy: RoutingPolicy) -> None:
    # JJ-CHEM is in Jinjiang: Huian's county office must not hear of it, the shared city must.
    assert recipients(policy, "red", JJ) == {"jinjiang-safety", "quanzhou-safety", "fujian-safety"}


def test_other_city_reaches_only_province(policy: RoutingPolicy) -> None:
    assert recipients(policy, "red", XM) == {"fujian-safety"}


def test_route_tree_restricts_channels_and_recipients(policy: RoutingPolicy) -> None:
    labels = {"type": "alarm", "enterprise": "QZ-PETRO", "county": "350521"}
    targets = route_targets(policy, labels, QZ, [Tier.ENTERPRISE, Tier.COUNTY])
    assert {t.channel_type for t in targets} == {"webhook"}  # alarm route: webhook only
    dq = route_targets(policy, {"type": "data_quality"}, QZ, [Tier.COUNTY])
    assert {t.recipient for t in dq} == {"huian-dq-desk"}  # the dq desk only sees data quality


def test_continue_lets_siblings_match_too() -> None:
    base = sample_routing()
    base["route"] = {
        "recipients": [],
        "routes": [
            {"matchers": ['colour=~"orange|red"'], "recipients": ["huian-safety"],
             "continue": True},
            {"matchers": ["industry=tank_farm"], "recipients": ["huian-dq-desk"]},
        ],
    }  # fmt: skip
    policy = routing_from_mapping(base)
    assert recipients(policy, "orange", QZ) == {"huian-safety", "huian-dq-desk"}
    assert recipients(policy, "yellow", QZ) == {"huian-dq-desk"}
    base["route"]["routes"][0]["continue"] = False
    assert recipients(routing_from_mapping(base), "orange", QZ) == {"huian-safety"}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('colour="red"', {"colour": "red"}, True),
        ("colour!=red", {"colour": "red"}, False),
        ('condition=~"LEL.*"', {"condition": "LEL2"}, True),
        ('condition!~"LEL.*"', {"condition": "HH"}, True),
        ('industry!="metallurgy"', {}, True),
    ],
)
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


def test_bad_matcher_is_rejected() -> None:
    with pytest.raises(ValueError, match="not label=value"):
        parse_matcher("colour red")


def _issues(tmp_path: Path, text: str) -> dict[tuple[int, str], str]:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_routing(path)
    assert all(i.file == str(path) for i in info.value.issues)
    return {(i.line, i.field): i.message for i in info.value.issues}


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_load_routing_reports_file_line_and_field(tmp_path: Path) -> None:
    text = sample_routing_yaml().replace('area: "350582"', 'area: "3505"')
    issues = _issues(tmp_path, text)
    assert list(issues) == [(_line_of(text, '"3505"') - 3, "routing.recipients[3]")]
    assert "6-digit region code" in next(iter(issues.values()))
    text = sample_routing_yaml().replace("provider: tencent", "provider: huawei")
    issues = _issues(tmp_path, text)
    key = (_line_of(text, "huawei"), "routing.recipients[4].channels[1].provider")
    assert issues == {key: "unknown SMS provider 'huawei'"}
    text = sample_routing_yaml().replace("fujian-safety]", "nobody]")
    issues = _issues(tmp_path, text)
    assert list(issues.values()) == ["unknown recipient 'nobody'"] * 2  # root and dq route


def test_load_routing_accepts_sample_and_empty_section(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(sample_routing_yaml(), encoding="utf-8")
    assert len(load_routing(path).recipients) == 6
    path.write_text("risk: {}\nrouting: {}\n", encoding="utf-8")
    empty = load_routing(path)
    assert empty.deadlines_for(RiskColour.RED) is not None
    assert empty.deadlines_for(RiskColour.RED).ack_s == 900  # type: ignore[union-attr]


def test_routes_test_command_prints_recipients_and_deadlines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(sample_routing_yaml(), encoding="utf-8")
    event = json.dumps(risk_event("red"))
    code = main(["routes", "test", "--policy", str(path), "--event", event,
                 "--region", "350521", "--json"])  # fmt: skip
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["tier"] for r in rows} == {"enterprise", "county", "city", "province"}
    # 2026-01-01T00:00Z is 08:00 Beijing; red: acknowledge in 15 min, feedback in 1 h
    assert {r["ack_by"] for r in rows} == {"01-01 08:15"}
    assert {r["feedback_by"] for r in rows} == {"01-01 09:00"}
    assert main(["routes", "test", "--policy", str(path), "--event", "{}", "--region",
                 "350521"]) == 1  # fmt: skip


# colour → tier → (recipient, channel types) for an enterprise in Huian county, Quanzhou, Fujian
ROUTING_TABLE: dict[str, dict[Tier, dict[str, set[str]]]] = {
    "blue": {Tier.ENTERPRISE: {"qz-control-room": {"webhook"}}},  # alarm notice: no SMS
    "yellow": {
        Tier.ENTERPRISE: {"qz-control-room": {"webhook", "sms"}},
        Tier.COUNTY: {"huian-safety": {"webhook", "sms", "command_platform"}},
    },
    "orange": {
        Tier.ENTERPRISE: {"qz-control-room": {"webhook", "sms"}},
        Tier.COUNTY: {"huian-safety": {"webhook", "sms", "command_platform"}},
        Tier.CITY: {"quanzhou-safety": {"webhook", "sms"}},
    },
    "red": {
        Tier.ENTERPRISE: {"qz-control-room": {"webhook", "sms"}},
        Tier.COUNTY: {"huian-safety": {"webhook", "sms", "command_platform"}},
        Tier.CITY: {"quanzhou-safety": {"webhook", "sms"}},
        Tier.PROVINCE: {"fujian-safety": {"webhook", "command_platform"}},
    },
}
DEADLINES_MIN = {"blue": None, "yellow": (60, 24 * 60), "orange": (30, 4 * 60), "red": (15, 60)}


def first_warning(policy: RoutingPolicy, colour: str) -> list[Planned]:
    """The first notification of a colour: a risk raise, or for blue an alarm notice."""
    event: dict[str, object] = risk_event(colour)
    if colour == "blue":
        event = {**event, "type": "alarm", "tag": "T101-LS", "condition": "HH",
                 "state": "unacknowledged", "severity": "S2"}  # fmt: skip
    return plan_event(AlertBook(policy), parse_event(event), QZ)


@pytest.mark.parametrize("tier", list(Tier), ids=lambda t: t.label)
@pytest.mark.parametrize("colour", list(ROUTING_TABLE))
def test_routing_table_every_colour_and_tier(
    policy: RoutingPolicy, colour: str, tier: Tier
) -> None:
    [planned] = first_warning(policy, colour)
    got: dict[str, set[str]] = {}
    for target in planned.targets:
        if target.tier == tier:
            got.setdefault(target.recipient, set()).add(target.channel_type)
    assert got == ROUTING_TABLE[colour].get(tier, {})
    notice = planned.intent.notice
    deadlines = DEADLINES_MIN[colour]
    if deadlines is None:
        assert notice.ack_due_ms is None
    else:
        ts = 1_767_225_600_000
        assert notice.ack_due_ms == ts + deadlines[0] * 60_000
        assert notice.feedback_due_ms == ts + deadlines[1] * 60_000


def test_the_policy_file_decides_the_tiers() -> None:
    data = sample_routing()
    data["tiers"] = {"yellow": ["enterprise", "county", "city"]}  # a stricter province
    policy = routing_from_mapping(data)
    [planned] = first_warning(policy, "yellow")
    assert {t.tier for t in planned.targets} == {Tier.ENTERPRISE, Tier.COUNTY, Tier.CITY}
    assert list(tiers_for(policy, RiskColour.RED)) == list(Tier)  # others keep the defaults


def test_escalation_ladder() -> None:
    assert [next_tier(t) for t in Tier] == [Tier.COUNTY, Tier.CITY, Tier.PROVINCE, None]
