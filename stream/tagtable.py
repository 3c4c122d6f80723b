"""The engine's compact, array-based view of a plant (struct of arrays, one row per tag).

The risk engine never walks the pydantic plant tree: it reads these arrays. Build one with
`TagTable.build(tags, rules, grades)` from small specs (tests, benchmarks) or
`stream.plant_adapter.table_from_plant(plant)` from a validated plant.

Alarm *slots* are the unit of the ISA-18.2 life-cycle. Every tag owns four limit slots
(`LL`, `L`, `H`, `HH`, in that order, disabled where the limit is absent) and every derived rule
owns two slots (level 1 and level 2; single-level rules leave the second disabled):

    slot = 4 * tag + k                      k = 0 LL, 1 L, 2 H, 3 HH
    slot = 4 * n_tags + 2 * rule + level    level = 0 / 1

That fixed numbering is also the canonical order in which the engine and the reference
evaluator handle simultaneous changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from hazardwatch.plant.model import Plant

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
BOOL = npt.NDArray[np.bool_]

LIMIT_KEYS = ("LL", "L", "H", "HH")
LIMIT_HIGH = (False, False, True, True)
SLOTS_PER_TAG = 4
SLOTS_PER_RULE = 2


class RuleKind(IntEnum):
    """Derived-condition rules of DOMAIN.md §4 (frozen value is a per-tag setting instead)."""

    RATE_OF_CHANGE = 0  # a: tag; p1: limit per minute; direction: 0 both, 1 rise, 2 fall
    BASELINE = 1  # a: tag; p1/p2: factors; window_ms: bucket length
    FLATLINE = 2  # a: level tag; b: inflow tag; p1: min inflow; p2: min level change
    FLOW_DIFF = 3  # a: inflow tag; b: outflow tag; p1/p2: fractions of inflow; p3: min inflow


RULE_CONDITION = {
    RuleKind.RATE_OF_CHANGE: "roc",
    RuleKind.BASELINE: "baseline",
    RuleKind.FLATLINE: "flatline",
    RuleKind.FLOW_DIFF: "flow_diff",
}


@dataclass(frozen=True, slots=True)
class TagSpec:
    """One resolved tag for `TagTable.build`; numbers in the tag's unit, times in seconds.

    `limits` maps `LL`/`L`/`H`/`HH` to a value; `severity` overrides the default S1 (L/H) or
    S2 (LL/HH); `conditions` renames a limit in events (e.g. `H` → `LEL1`).
    """

    id: str
    unit: str = "U1"
    source: str = "HS1"
    enterprise: str = "E1"
    limits: dict[str, float] = field(default_factory=dict)
    severity: dict[str, int] = field(default_factory=dict)
    conditions: dict[str, str] = field(default_factory=dict)
    deadband: float = 0.0
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    expected_interval_s: float = 0.0  # 0 = no stale detection
    range_min: float = float("-inf")
    range_max: float = float("inf")
    frozen_after_s: float = 0.0  # 0 = off
    frozen_band: float = 0.0
    order10: bool = False
    co_occupied: bool = False  # CO tag in an occupied area: its level 2 makes S3


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One derived rule for `TagTable.build`; see RuleKind for the meaning of a/b/p1–p3."""

    kind: RuleKind
    a: str
    b: str | None = None
    p1: float = 0.0
    p2: float = 0.0
    p3: float = 0.0
    window_s: float = 0.0
    direction: int = 0
    severity: tuple[int, int] = (1, 2)


def _seconds_to_ms(seconds: float) -> int:
    return round(seconds * 1000.0)


@dataclass(frozen=True, eq=False)
class TagTable:
    """Struct-of-arrays plant description; indices are positions in the id tuples."""

    tag_ids: tuple[str, ...]
    unit_ids: tuple[str, ...]
    source_ids: tuple[str, ...]
    enterprise_ids: tuple[str, ...]
    tag_unit: I32
    unit_source: I32
    source_enterprise: I32
    source_grade: I8  # effective grade 1–4 (Order-10 sources already counted as ≤ 2)
    limit: F64  # (n_tags, 4) LL, L, H, HH; NaN = absent
    limit_sev: I8  # (n_tags, 4) 1 or 2
    limit_cond: tuple[tuple[str, str, str, str], ...]  # event condition names per tag
    deadband: F64
    on_delay_ms: I64
    off_delay_ms: I64
    interval_ms: I64  # expected publishing interval; 0 = stale detection off
    range_lo: F64
    range_hi: F64
    frozen_ms: I64  # 0 = frozen-value detection off
    frozen_band: F64
    co_occupied: BOOL
    rule_kind: I8
    rule_a: I32
    rule_b: I32  # -1 when the rule reads one tag
    rule_p1: F64
    rule_p2: F64
    rule_p3: F64
    rule_window_ms: I64
    rule_direction: I8
    rule_sev: I8  # (n_rules, 2)

    @property
    def n_tags(self) -> int:
        """Number of tags."""
        return len(self.tag_ids)

    @property
    def n_rules(self) -> int:
        """Number of derived rules."""
        return int(self.rule_kind.shape[0])

    @property
    def n_slots(self) -> int:
        """Number of alarm slots (4 per tag + 2 per rule)."""
        return SLOTS_PER_TAG * self.n_tags + SLOTS_PER_RULE * self.n_rules

    @cached_property
    def limit_inf(self) -> F64:
        """(n_tags, 4) limits, absent ones as ±inf (high +inf) so that they always decide clear."""
        out = self.limit.copy()
        high = np.broadcast_to(np.array(LIMIT_HIGH), out.shape)
        absent = np.isnan(out)
        out[absent & high] = np.inf
        out[absent & ~high] = -np.inf
        return out

    @cached_property
    def clear_band(self) -> tuple[F64, F64]:
        """Per tag (below, above): a value strictly between them clears every limit condition
        outright (below every high limit − deadband, above every low limit + deadband, and not
        beyond any limit itself); NaN deadbands make the band empty."""
        lim, db = self.limit_inf, self.deadband[:, None]
        high = np.minimum(lim - db, lim)[:, 2:].min(axis=1)
        low = np.maximum(lim + db, lim)[:, :2].max(axis=1)
        nan = np.isnan(self.deadband)
        high[nan], low[nan] = -np.inf, np.inf
        return high, low

    @cached_property
    def valid_range(self) -> tuple[F64, F64]:
        """Instrument range clipped to finite doubles: `lo <= v <= hi` is false for NaN/±inf;
        a NaN bound is no bound."""
        big = np.finfo(np.float64).max
        lo = np.where(np.isnan(self.range_lo), -big, np.maximum(self.range_lo, -big))
        hi = np.where(np.isnan(self.range_hi), big, np.minimum(self.range_hi, big))
        return lo, hi

    @cached_property
    def tag_rows(self) -> I64:
        """Tag indices 0..n_tags−1 as int64 (numpy indexes fastest with intp)."""
        return np.arange(self.n_tags, dtype=np.int64)

    def rules_of(self, kind: RuleKind) -> I64:
        """Indices of the rules of `kind`, ascending."""
        return self._rules_by_kind[int(kind)]

    @cached_property
    def _rules_by_kind(self) -> tuple[I64, ...]:
        return tuple(np.flatnonzero(self.rule_kind == k).astype(np.int64) for k in RuleKind)

    def tag_index(self) -> dict[str, int]:
        """Map tag id → index."""
        return {tag_id: i for i, tag_id in enumerate(self.tag_ids)}

    def fingerprint(self) -> tuple[int, int, int, int, int]:
        """Shape of the table; a snapshot only restores onto a table with the same shape."""
        return (
            self.n_tags,
            self.n_rules,
            len(self.unit_ids),
            len(self.source_ids),
            len(self.enterprise_ids),
        )

    @classmethod
    def from_plant(cls, plant: Plant, policy: object | None = None) -> TagTable:
        """Flatten a validated plant (see stream.plant_adapter); `policy` is not needed here:
        the engine reads its policy separately (EnginePolicy)."""
        from stream.plant_adapter import table_from_plant

        return table_from_plant(plant)

    @classmethod
    def build(
        cls,
        tags: Sequence[TagSpec],
        rules: Sequence[RuleSpec] = (),
        grades: dict[str, int] | None = None,
    ) -> TagTable:
        """Build a table from specs; `grades` maps source id → effective grade (default 4)."""
        grades = grades or {}
        # Unit (equipment) ids are unique only within their hazard source (plant/checks.py), so a
        # unit is keyed by (source, unit): two sources' "P-101" are two units.
        units: dict[tuple[str, str], int] = {}
        sources: dict[str, int] = {}
        enterprises: dict[str, int] = {}
        unit_source: list[int] = []
        source_enterprise: list[int] = []
        tag_unit: list[int] = []
        for spec in tags:
            if spec.enterprise not in enterprises:
                enterprises[spec.enterprise] = len(enterprises)
            if spec.source not in sources:
                sources[spec.source] = len(sources)
                source_enterprise.append(enterprises[spec.enterprise])
            unit_key = (spec.source, spec.unit)
            if unit_key not in units:
                units[unit_key] = len(units)
                unit_source.append(sources[spec.source])
            tag_unit.append(units[unit_key])
        n = len(tags)
        limit = np.full((n, 4), np.nan)
        limit_sev = np.zeros((n, 4), dtype=np.int8)
        names: list[tuple[str, str, str, str]] = []
        for i, spec in enumerate(tags):
            for k, key in enumerate(LIMIT_KEYS):
                if key in spec.limits:
                    limit[i, k] = spec.limits[key]
                limit_sev[i, k] = spec.severity.get(key, 2 if key in ("LL", "HH") else 1)
                if spec.order10:
                    limit_sev[i, k] = 2  # MEM Order 10: any alarm on the variable is S2
            c = spec.conditions
            names.append((c.get("LL", "LL"), c.get("L", "L"), c.get("H", "H"), c.get("HH", "HH")))
        index = {spec.id: i for i, spec in enumerate(tags)}
        order10 = np.array([spec.order10 for spec in tags], dtype=bool)
        rule_sev = np.array([r.severity for r in rules], dtype=np.int8).reshape(-1, 2)
        rule_a = np.array([index[r.a] for r in rules], dtype=np.int32)
        if len(rules):
            rule_sev[order10[rule_a]] = 2
        return cls(
            tag_ids=tuple(spec.id for spec in tags),
            unit_ids=tuple(unit for _, unit in units),
            source_ids=tuple(sources),
            enterprise_ids=tuple(enterprises),
            tag_unit=np.array(tag_unit, dtype=np.int32),
            unit_source=np.array(unit_source, dtype=np.int32),
            source_enterprise=np.array(source_enterprise, dtype=np.int32),
            source_grade=np.array([grades.get(s, 4) for s in sources], dtype=np.int8),
            limit=limit,
            limit_sev=limit_sev,
            limit_cond=tuple(names),
            deadband=np.array([s.deadband for s in tags], dtype=np.float64),
            on_delay_ms=np.array([_seconds_to_ms(s.on_delay_s) for s in tags], dtype=np.int64),
            off_delay_ms=np.array([_seconds_to_ms(s.off_delay_s) for s in tags], dtype=np.int64),
            interval_ms=np.array(
                [_seconds_to_ms(s.expected_interval_s) for s in tags], dtype=np.int64
            ),
            range_lo=np.array([s.range_min for s in tags], dtype=np.float64),
            range_hi=np.array([s.range_max for s in tags], dtype=np.float64),
            frozen_ms=np.array([_seconds_to_ms(s.frozen_after_s) for s in tags], dtype=np.int64),
            frozen_band=np.array([s.frozen_band for s in tags], dtype=np.float64),
            co_occupied=np.array([s.co_occupied for s in tags], dtype=bool),
            rule_kind=np.array([int(r.kind) for r in rules], dtype=np.int8),
            rule_a=rule_a,
            rule_b=np.array([index[r.b] if r.b else -1 for r in rules], dtype=np.int32),
            rule_p1=np.array([r.p1 for r in rules], dtype=np.float64),
            rule_p2=np.array([r.p2 for r in rules], dtype=np.float64),
            rule_p3=np.array([r.p3 for r in rules], dtype=np.float64),
            rule_window_ms=np.array([_seconds_to_ms(r.window_s) for r in rules], dtype=np.int64),
            rule_direction=np.array([r.direction for r in rules], dtype=np.int8),
            rule_sev=rule_sev,
        )
