"""The risk policy: how alarms become severities and colours (DOMAIN.md §4–§5 defaults).

A policy file has two top-level sections:

- `risk:` — `RiskPolicy`, validated here; every field defaults to the DOMAIN.md value.
- `routing:` — owned by the alerting package and validated there; this module keeps it as an
  untyped mapping so that a policy file carrying it loads today.

Any other top-level key is an error. All times are seconds.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from hazardwatch.types import RiskColour, Severity


def _colour(value: object) -> RiskColour:
    if isinstance(value, RiskColour):
        return value
    if isinstance(value, str):
        return RiskColour.parse(value)
    raise ValueError("must be one of blue, yellow, orange, red")


Colour = Annotated[
    RiskColour,
    BeforeValidator(_colour),
    PlainSerializer(lambda c: c.label, return_type=str),
    WithJsonSchema({"type": "string", "enum": ["blue", "yellow", "orange", "red"]}),
]
"""A risk colour written as `blue`/`yellow`/`orange`/`red` (or 蓝/黄/橙/红)."""

Seconds = Annotated[float, Field(gt=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EscalationPolicy(_Frozen):
    """Unacknowledged-warning escalation: one colour up after the delay, never past `cap`."""

    s1_after_s: Seconds = 1800.0
    s2_after_s: Seconds = 600.0
    s3_after_s: Seconds = 600.0
    cap: Colour = RiskColour.ORANGE  # time alone never makes red; red needs S3

    def after_s(self, severity: Severity) -> float | None:
        """Seconds until an unacknowledged warning of `severity` rises; None for NONE."""
        return {
            Severity.S1: self.s1_after_s,
            Severity.S2: self.s2_after_s,
            Severity.S3: self.s3_after_s,
        }.get(severity)


class FloodPolicy(_Frozen):
    """Alarm flood per enterprise: starts above `start_above` new alarms in `window_s`."""

    start_above: Annotated[int, Field(ge=1)] = 10
    end_below: Annotated[int, Field(ge=1)] = 5
    window_s: Seconds = 600.0

    @model_validator(mode="after")
    def _hysteresis(self) -> FloodPolicy:
        if self.end_below > self.start_above:
            raise ValueError("end_below must be ≤ start_above")
        return self


class ChatteringPolicy(_Frozen):
    """An alarm chatters at `activations` or more activations within `window_s`."""

    activations: Annotated[int, Field(ge=2)] = 3
    window_s: Seconds = 60.0


class ColourMatrix(_Frozen):
    """Colour per unit severity: `[grade 1–2, grade 3–4]` (DOMAIN.md §5)."""

    S3: tuple[Colour, Colour] = (RiskColour.RED, RiskColour.ORANGE)
    S2: tuple[Colour, Colour] = (RiskColour.ORANGE, RiskColour.YELLOW)
    S1: tuple[Colour, Colour] = (RiskColour.YELLOW, RiskColour.BLUE)
    none: tuple[Colour, Colour] = (RiskColour.BLUE, RiskColour.BLUE)

    def colour(self, severity: Severity, grade: int) -> RiskColour:
        """Colour of a hazard source of effective `grade` (1–4) whose worst unit is `severity`."""
        row = {
            Severity.NONE: self.none,
            Severity.S1: self.S1,
            Severity.S2: self.S2,
            Severity.S3: self.S3,
        }[severity]
        return row[0] if grade <= 2 else row[1]


class RiskPolicy(_Frozen):
    """The engine's policy; every default is DOMAIN.md's (policy) value."""

    s3_hold_s: Seconds = 600.0  # S2 held this long becomes S3
    two_s2_tags_make_s3: bool = True  # two independent S2 tags in one unit → S3
    suppress_s1_while_s3: bool = True  # flood control, DOMAIN.md §6
    stale_factor: Annotated[float, Field(gt=1)] = 3.0  # stale after factor × expected interval
    escalation: EscalationPolicy = EscalationPolicy()
    flood: FloodPolicy = FloodPolicy()
    chattering: ChatteringPolicy = ChatteringPolicy()
    colour_matrix: ColourMatrix = ColourMatrix()


class PolicyFile(_Frozen):
    """A whole policy file: `risk` (typed) and `routing` (kept untyped for the alerting engine)."""

    risk: RiskPolicy = RiskPolicy()
    routing: dict[str, Any] = Field(default_factory=dict)
