"""Derived-condition rules of DOMAIN.md §4, written under a unit's `rules:` list.

Each rule has a `kind` that selects its model. All rates and amounts are in the engineering unit
of the tag they refer to; times are seconds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hazardwatch.plant.defaults import SpanValue

Positive = Annotated[float, Field(gt=0)]


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def tag_refs(self) -> list[tuple[str, str]]:
        """`(field name, tag id)` of every tag the rule reads, primary tag first."""
        raise NotImplementedError

    @property
    def primary_tag(self) -> str:
        """The tag an event of this rule is reported on."""
        return self.tag_refs()[0][1]


class RateOfChangeRule(_Rule):
    """Alarm when the tag moves faster than `limit_per_min` (its unit per minute)."""

    kind: Literal["rate_of_change"]
    tag: str
    limit_per_min: Positive
    direction: Literal["rise", "fall", "both"] = "both"
    severity: Literal[1, 2] = 1

    def tag_refs(self) -> list[tuple[str, str]]:
        """The one tag."""
        return [("tag", self.tag)]


class FlatlineWhileFillingRule(_Rule):
    """Severity 2 when the level moves less than `min_level_change` in `window_s` while inflow
    stays above `min_inflow` (the Buncefield gauge failure)."""

    kind: Literal["flatline_while_filling"]
    tag: str  # level tag
    inflow_tag: str
    min_inflow: Positive  # inflow tag's unit, e.g. m³/h
    window_s: Positive = 600.0
    min_level_change: Positive  # level tag's unit, e.g. m

    def tag_refs(self) -> list[tuple[str, str]]:
        """Level tag, then inflow tag."""
        return [("tag", self.tag), ("inflow_tag", self.inflow_tag)]


class FlowDifferenceRule(_Rule):
    """In/out flow of a cooling circuit: (in − out) ≥ level1_pct / level2_pct % of inflow."""

    kind: Literal["flow_difference"]
    in_tag: str
    out_tag: str
    level1_pct: Positive = 3.0
    level2_pct: Positive = 6.0
    min_inflow: Annotated[float, Field(ge=0)] = 0.0  # below it the circuit is off: no alarm

    @model_validator(mode="after")
    def _ordered(self) -> FlowDifferenceRule:
        if self.level2_pct < self.level1_pct:
            raise ValueError("level2_pct must be ≥ level1_pct")
        return self

    def tag_refs(self) -> list[tuple[str, str]]:
        """Inflow tag, then outflow tag."""
        return [("in_tag", self.in_tag), ("out_tag", self.out_tag)]


class BaselineDeviationRule(_Rule):
    """S1 above factor1 × and S2 above factor2 × the tag's own rolling baseline (stave ΔT)."""

    kind: Literal["baseline_deviation"]
    tag: str
    window_s: Positive = 86400.0
    factor1: Positive = 1.5
    factor2: Positive = 2.0

    @model_validator(mode="after")
    def _ordered(self) -> BaselineDeviationRule:
        if self.factor2 < self.factor1:
            raise ValueError("factor2 must be ≥ factor1")
        return self

    def tag_refs(self) -> list[tuple[str, str]]:
        """The one tag."""
        return [("tag", self.tag)]


class FrozenValueRule(_Rule):
    """Sensor fault when the value stays within `noise_band` for `duration_s`."""

    kind: Literal["frozen_value"]
    tag: str
    duration_s: Positive
    noise_band: SpanValue = "0.05%"

    def tag_refs(self) -> list[tuple[str, str]]:
        """The one tag."""
        return [("tag", self.tag)]


Rule = Annotated[
    RateOfChangeRule
    | FlatlineWhileFillingRule
    | FlowDifferenceRule
    | BaselineDeviationRule
    | FrozenValueRule,
    Field(discriminator="kind"),
]
