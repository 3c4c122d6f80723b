"""Flatten a validated Plant into concrete per-tag records for the risk engine.

`resolve_tags(plant)` applies the defaults chain tag > unit > hazard source > plant >
BUILTIN_DEFAULTS field by field; span percentages become absolute engineering-unit numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hazardwatch.plant.defaults import (
    BUILTIN_DEFAULTS,
    GAS_QUANTITIES,
    Quantity,
    QuantityDefaults,
    span_value_to_absolute,
)
from hazardwatch.plant.rules import FrozenValueRule, Rule
from hazardwatch.types import Severity

if TYPE_CHECKING:
    from hazardwatch.plant.model import Plant, Tag


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """One alarm limit: high alarms when v > value, low alarms when v < value."""

    key: str  # LL, L, H or HH (gas level1 → H, level2 → HH)
    value: float  # tag's engineering unit
    high: bool
    severity: Severity  # S1 or S2 before unit-level escalation
    condition: str  # event condition name, e.g. HH, LEL2, CO1, O2_LOW


@dataclass(frozen=True, slots=True)
class ResolvedTag:
    """A tag with every setting concrete; numbers in the tag's unit, times in seconds."""

    id: str
    name: str
    quantity: Quantity
    eng_unit: str
    enterprise: str
    source: str
    unit: str  # equipment (Unit) id
    gateway: str
    range_min: float
    range_max: float
    limits: tuple[LimitSpec, ...]  # ordered low to high: LL, L, H, HH (those present)
    deadband: float  # absolute
    on_delay_s: float
    off_delay_s: float
    expected_interval_s: float
    frozen_after_s: float | None  # None = frozen-value detection off
    frozen_band: float  # absolute; a change within it counts as "no change"
    order10: bool  # MEM Order-10 variable: any alarm on it is S2
    independent_of: str | None  # the tag this instrument backs up independently
    occupied_area: bool  # the unit is occupied: CO level 2 is S3


@dataclass(frozen=True, slots=True)
class PlacedRule:
    """A derived-condition rule and where it belongs."""

    rule: Rule
    enterprise: str
    source: str
    unit: str


_GAS_PREFIX = {Quantity.LEL: "LEL", Quantity.TOXIC_PPM: "TOX", Quantity.CO_PPM: "CO"}


def condition_name(quantity: Quantity, key: str) -> str:
    """Event condition of a limit: `HH`, or `LEL1`/`LEL2`, `TOX1`, `CO2`, `O2_LOW`/`O2_HIGH`."""
    if quantity in GAS_QUANTITIES and key in ("H", "HH"):
        return f"{_GAS_PREFIX[quantity]}{1 if key == 'H' else 2}"
    if quantity is Quantity.O2_PCT and key in ("L", "H"):
        return "O2_LOW" if key == "L" else "O2_HIGH"
    return key


def default_severity(quantity: Quantity, key: str) -> Severity:
    """S1 for L/H (level 1), S2 for LL/HH (level 2); oxygen enrichment H is level 2 (§3)."""
    if quantity is Quantity.O2_PCT and key == "H":
        return Severity.S2
    return Severity.S2 if key in ("LL", "HH") else Severity.S1


_FIELDS = ("deadband", "on_delay_s", "off_delay_s", "frozen_after_s", "frozen_band")
_Layered = dict[str, float | str | None]


def _layered(quantity: Quantity, layers: Sequence[dict[Quantity, QuantityDefaults]]) -> _Layered:
    """Each defaults field for `quantity`: the first layer (innermost first) that sets it."""
    out: _Layered = dict.fromkeys(_FIELDS)
    for layer in layers:
        block = layer.get(quantity)
        if block is None:
            continue
        for field in _FIELDS:
            if out[field] is None:
                out[field] = getattr(block, field)
    return out


def _limits(tag: Tag) -> tuple[LimitSpec, ...]:
    specs = []
    for _field, key, value in tag.limits.present():
        severity = default_severity(tag.quantity, key)
        if tag.severity and key in tag.severity:
            severity = Severity(tag.severity[key])
        if tag.order10:
            severity = max(severity, Severity.S2)
        specs.append(
            LimitSpec(
                key=key,
                value=value,
                high=key in ("H", "HH"),
                severity=severity,
                condition=condition_name(tag.quantity, key),
            )
        )
    return tuple(specs)


class _Shared:
    """Equal limit sets and span values resolve once: a generated plant repeats a few limit
    sets over 100,000 tags, and LimitSpec tuples are immutable, so the tags can share them."""

    def __init__(self) -> None:
        self._limits: dict[object, tuple[LimitSpec, ...]] = {}
        self._spans: dict[tuple[float | str, float], float] = {}

    def limits(self, tag: Tag) -> tuple[LimitSpec, ...]:
        severity = tuple(sorted(tag.severity.items())) if tag.severity else None
        given = tag.limits  # its fields, not the model: hashing a pydantic model is slow
        key = (tag.quantity, given.LL, given.L, given.H, given.HH, given.level1, given.level2,
               severity, tag.order10)  # fmt: skip
        found = self._limits.get(key)
        if found is None:
            found = self._limits[key] = _limits(tag)
        return found

    def absolute(self, value: float | str, span: float) -> float:
        if not isinstance(value, str):
            return float(value)
        found = self._spans.get((value, span))
        if found is None:
            found = self._spans[(value, span)] = span_value_to_absolute(value, span)
        return found


def resolve_tags(plant: Plant) -> tuple[ResolvedTag, ...]:
    """One ResolvedTag per tag of `plant`, in file order (plant must be cross-checked)."""
    gateway_of = {tag_id: gw for gw in plant.gateways for tag_id in gw.tags}
    frozen_rules = {
        rule.tag: rule
        for source in plant.hazard_sources
        for unit in source.units
        for rule in unit.rules
        if isinstance(rule, FrozenValueRule)
    }
    shared = _Shared()
    out: list[ResolvedTag] = []
    for source in plant.hazard_sources:
        for unit in source.units:
            layers = (unit.defaults, source.defaults, plant.defaults, BUILTIN_DEFAULTS)
            by_quantity: dict[Quantity, _Layered] = {}
            for tag in unit.tags:
                defaults = by_quantity.get(tag.quantity)
                if defaults is None:
                    defaults = by_quantity[tag.quantity] = _layered(tag.quantity, layers)
                span = tag.range[1] - tag.range[0]
                gateway = gateway_of[tag.id]
                deadband = _first(tag.deadband, defaults["deadband"])
                on_delay = float(_first(tag.on_delay_s, defaults["on_delay_s"]) or 0.0)
                off_delay = _first(tag.off_delay_s, defaults["off_delay_s"])
                frozen_after = _first(tag.frozen_after_s, defaults["frozen_after_s"])
                frozen_band = _first(tag.frozen_band, defaults["frozen_band"]) or 0.0
                rule = frozen_rules.get(tag.id)
                if rule is not None:
                    frozen_after, frozen_band = rule.duration_s, rule.noise_band
                out.append(
                    ResolvedTag(
                        id=tag.id,
                        name=tag.name,
                        quantity=tag.quantity,
                        eng_unit=tag.unit,
                        enterprise=source.enterprise,
                        source=source.id,
                        unit=unit.id,
                        gateway=gateway.id,
                        range_min=tag.range[0],
                        range_max=tag.range[1],
                        limits=shared.limits(tag),
                        deadband=shared.absolute(deadband or 0.0, span),
                        on_delay_s=on_delay,
                        off_delay_s=on_delay if off_delay is None else float(off_delay),
                        expected_interval_s=tag.expected_interval_s or gateway.interval_s,
                        frozen_after_s=None if frozen_after is None else float(frozen_after),
                        frozen_band=shared.absolute(frozen_band, span),
                        order10=tag.order10,
                        independent_of=tag.independent_of,
                        occupied_area=unit.occupied_area,
                    )
                )
    return tuple(out)


def _first(value: float | str | None, default: float | str | None) -> float | str | None:
    return value if value is not None else default


def place_rules(plant: Plant) -> tuple[PlacedRule, ...]:
    """Every derived-condition rule except frozen_value, with enterprise/source/unit ids."""
    return tuple(
        PlacedRule(rule=rule, enterprise=source.enterprise, source=source.id, unit=unit.id)
        for source in plant.hazard_sources
        for unit in source.units
        for rule in unit.rules
        if not isinstance(rule, FrozenValueRule)
    )
