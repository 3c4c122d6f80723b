"""Factory helpers shared by the engine tests (factories, not shared mutable fixtures)."""

from __future__ import annotations

from stream.policy import EnginePolicy
from stream.tagtable import RuleKind, RuleSpec, TagSpec, TagTable


def small_plant() -> TagTable:
    """Two enterprises, three sources (grades 1, 3, 2), four units, every rule kind."""
    tags = [
        TagSpec(
            "LT1",
            "TK1",
            "TF",
            "E1",
            limits={"L": 2, "H": 8},
            deadband=0.5,
            on_delay_s=2,
            off_delay_s=1,
            expected_interval_s=10,
            range_min=0,
            range_max=10,
            frozen_after_s=30,
            frozen_band=0.05,
        ),
        TagSpec(
            "LS1",
            "TK1",
            "TF",
            "E1",
            limits={"LL": 1, "HH": 9},
            deadband=0.2,
            on_delay_s=0,
            off_delay_s=0,
            expected_interval_s=10,
            range_min=0,
            range_max=10,
        ),
        TagSpec(
            "FI1",
            "TK1",
            "TF",
            "E1",
            limits={"H": 90},
            deadband=5,
            on_delay_s=1,
            off_delay_s=2,
            expected_interval_s=5,
            range_min=0,
            range_max=100,
        ),
        TagSpec(
            "FO1",
            "TK2",
            "TF",
            "E1",
            limits={"HH": 95},
            expected_interval_s=0,
            range_min=0,
            range_max=100,
        ),
        TagSpec(
            "CO1",
            "AREA",
            "GAS",
            "E1",
            limits={"H": 24, "HH": 160},
            conditions={"H": "CO1", "HH": "CO2"},
            deadband=2,
            on_delay_s=1,
            off_delay_s=1,
            expected_interval_s=20,
            range_min=0,
            range_max=500,
            co_occupied=True,
        ),
        TagSpec(
            "TT1",
            "ST1",
            "BF",
            "E2",
            limits={"H": 50},
            severity={"H": 2},
            order10=True,
            on_delay_s=0,
            off_delay_s=3,
            range_min=-50,
            range_max=200,
        ),
    ]
    rules = [
        RuleSpec(RuleKind.FLATLINE, "LT1", "FI1", p1=10.0, p2=0.1, window_s=20),
        RuleSpec(RuleKind.FLOW_DIFF, "FI1", "FO1", p1=0.03, p2=0.06, p3=5.0),
        RuleSpec(RuleKind.RATE_OF_CHANGE, "TT1", p1=30.0, direction=0, severity=(1, 2)),
        RuleSpec(RuleKind.BASELINE, "TT1", p1=1.5, p2=2.0, window_s=60),
        RuleSpec(RuleKind.RATE_OF_CHANGE, "CO1", p1=100.0, direction=1, severity=(2, 2)),
    ]
    return TagTable.build(tags, rules, grades={"TF": 1, "GAS": 3, "BF": 2})


def fast_policy() -> EnginePolicy:
    """DOMAIN.md shape with short windows so that small streams reach every timer."""
    return EnginePolicy(
        s3_hold_ms=40_000,
        escalate_s1_ms=30_000,
        escalate_s2_ms=20_000,
        escalate_s3_ms=20_000,
        flood_start_above=3,
        flood_end_below=2,
        flood_window_ms=30_000,
        chatter_window_ms=10_000,
    )
