"""Per-quantity alarm defaults (DOMAIN.md §3) and the override layer that plant files use.

A `QuantityDefaults` block may appear under `defaults:` at plant, hazard-source and unit level,
keyed by quantity. Every field is optional; a field left out falls through to the next outer layer
and finally to `BUILTIN_DEFAULTS`. `off_delay_s` left out everywhere equals the resolved
`on_delay_s` (ISA-18.2 practice, DOMAIN.md §3).

Span values (`deadband`, `frozen_band`) are either a number in the tag's engineering unit or a
string percentage of the instrument span such as `"5%"`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class Quantity(StrEnum):
    """What a tag measures (AQ 3035-2010 monitored quantities plus crane and derived signals)."""

    LEVEL = "level"
    TEMPERATURE = "temperature"
    PRESSURE = "pressure"
    FLOW = "flow"
    VALVE_POSITION = "valve_position"
    LEL = "lel"  # combustible gas, % LEL
    TOXIC_PPM = "toxic_ppm"
    CO_PPM = "co_ppm"
    O2_PCT = "o2_pct"  # oxygen, % vol
    LOAD = "load"
    SPEED = "speed"
    BRAKE = "brake"
    DIFFERENTIAL_TEMPERATURE = "differential_temperature"
    OTHER = "other"


GAS_QUANTITIES = frozenset({Quantity.LEL, Quantity.TOXIC_PPM, Quantity.CO_PPM})
"""Quantities whose limits may be written as `level1` / `level2` (GB/T 50493-2019)."""


def _check_span_value(value: float | str) -> float | str:
    if isinstance(value, str):
        if not _PERCENT.match(value):
            raise ValueError("must be a number in the engineering unit or a percentage like '5%'")
        return value.strip().replace(" ", "")
    if value < 0:
        raise ValueError("must be ≥ 0")
    return value


SpanValue = Annotated[float | str, AfterValidator(_check_span_value)]
"""A non-negative number in the tag's engineering unit, or `"N%"` of the instrument span."""


def span_value_to_absolute(value: float | str, span: float) -> float:
    """Turn a SpanValue into engineering units; `span` = range max − range min."""
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match is None:  # unreachable after validation; kept for direct callers
            raise ValueError(f"not a percentage: {value!r}")
        return float(match.group(1)) / 100.0 * span
    return float(value)


class QuantityDefaults(BaseModel):
    """Alarm-handling defaults for one quantity; any field may be omitted (falls through)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deadband: SpanValue | None = None
    on_delay_s: Annotated[float, Field(ge=0)] | None = None
    off_delay_s: Annotated[float, Field(ge=0)] | None = None
    frozen_after_s: Annotated[float, Field(gt=0)] | None = None
    frozen_band: SpanValue | None = None


def _builtin(deadband: float | str, on_delay_s: float) -> QuantityDefaults:
    return QuantityDefaults(deadband=deadband, on_delay_s=on_delay_s, frozen_band="0.05%")


# Deadbands and delays for flow, level, pressure and temperature are DOMAIN.md §3 (policy, after
# ISA-18.2). Gas detectors get short delays because a gas cloud grows in seconds and the cells
# already smooth (electrochemical CO t90 < 15 s); oxygen's deadband is absolute because 19.5 and
# 23.5 % vol sit close to the 20.9 % normal. Crane signals (load, speed, brake) act within seconds
# (Qinghe 2007), so their on-delays are short too. Frozen-value detection is off unless configured.
BUILTIN_DEFAULTS: dict[Quantity, QuantityDefaults] = {
    Quantity.FLOW: _builtin("5%", 15),
    Quantity.LEVEL: _builtin("5%", 60),
    Quantity.PRESSURE: _builtin("2%", 15),
    Quantity.TEMPERATURE: _builtin("1%", 60),
    Quantity.DIFFERENTIAL_TEMPERATURE: _builtin("1%", 60),
    Quantity.VALVE_POSITION: _builtin("2%", 15),
    Quantity.LEL: _builtin("2%", 5),
    Quantity.TOXIC_PPM: _builtin("2%", 10),
    Quantity.CO_PPM: _builtin("2%", 10),
    Quantity.O2_PCT: _builtin(0.2, 10),
    Quantity.LOAD: _builtin("2%", 2),
    Quantity.SPEED: _builtin("2%", 2),
    Quantity.BRAKE: _builtin(0.0, 1),
    Quantity.OTHER: _builtin("2%", 30),
}
