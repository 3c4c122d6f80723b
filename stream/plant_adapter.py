"""Adapter: a validated `hazardwatch.plant` Plant → the engine's TagTable.

Reads only the plant's public resolution API (`resolved_tags()`, `resolved_rules()`,
`HazardSource.effective_grade`), so the engine core never depends on the pydantic tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hazardwatch.plant.defaults import Quantity
from hazardwatch.plant.rules import (
    BaselineDeviationRule,
    FlatlineWhileFillingRule,
    FlowDifferenceRule,
    RateOfChangeRule,
)
from stream.tagtable import RuleKind, RuleSpec, TagSpec, TagTable

if TYPE_CHECKING:
    from hazardwatch.plant.model import Plant

_DIRECTION = {"both": 0, "rise": 1, "fall": 2}


def table_from_plant(plant: Plant) -> TagTable:
    """Flatten `plant` into a TagTable (tags in file order, rules in file order)."""
    specs: list[TagSpec] = []
    for tag in plant.resolved_tags():
        limits = {spec.key: spec.value for spec in tag.limits}
        specs.append(
            TagSpec(
                id=tag.id,
                unit=tag.unit,
                source=tag.source,
                enterprise=tag.enterprise,
                limits=limits,
                severity={spec.key: int(spec.severity) for spec in tag.limits},
                conditions={spec.key: spec.condition for spec in tag.limits},
                deadband=tag.deadband,
                on_delay_s=tag.on_delay_s,
                off_delay_s=tag.off_delay_s,
                expected_interval_s=tag.expected_interval_s,
                range_min=tag.range_min,
                range_max=tag.range_max,
                frozen_after_s=tag.frozen_after_s or 0.0,
                frozen_band=tag.frozen_band,
                order10=tag.order10,
                co_occupied=tag.occupied_area and tag.quantity is Quantity.CO_PPM,
            )
        )
    rules: list[RuleSpec] = []
    for placed in plant.resolved_rules():
        rule = placed.rule
        if isinstance(rule, RateOfChangeRule):
            rules.append(RuleSpec(RuleKind.RATE_OF_CHANGE, rule.tag, p1=rule.limit_per_min,
                                  direction=_DIRECTION[rule.direction],
                                  severity=(rule.severity, 2)))  # fmt: skip
        elif isinstance(rule, FlatlineWhileFillingRule):
            rules.append(RuleSpec(RuleKind.FLATLINE, rule.tag, rule.inflow_tag,
                                  p1=rule.min_inflow, p2=rule.min_level_change,
                                  window_s=rule.window_s, severity=(2, 2)))  # fmt: skip
        elif isinstance(rule, FlowDifferenceRule):
            rules.append(RuleSpec(RuleKind.FLOW_DIFF, rule.in_tag, rule.out_tag,
                                  p1=rule.level1_pct / 100.0, p2=rule.level2_pct / 100.0,
                                  p3=rule.min_inflow))  # fmt: skip
        elif isinstance(rule, BaselineDeviationRule):
            rules.append(RuleSpec(RuleKind.BASELINE, rule.tag, p1=rule.factor1,
                                  p2=rule.factor2, window_s=rule.window_s))  # fmt: skip
    grades = {source.id: source.effective_grade for source in plant.hazard_sources}
    return TagTable.build(specs, rules, grades)
