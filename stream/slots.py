"""Alarm slots derived from a TagTable: who owns each slot, its severity, delays and name.

See `stream.tagtable` for the slot numbering. Everything here is computed once per engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.tagtable import (
    BOOL,
    I8,
    I32,
    I64,
    RULE_CONDITION,
    SLOTS_PER_RULE,
    SLOTS_PER_TAG,
    RuleKind,
    TagTable,
)


def _csr(owner: I32, n_owners: int, mask: BOOL) -> tuple[I64, I32]:
    """Group the indices where `mask` holds by `owner` (ascending) → (offsets, members)."""
    members = np.flatnonzero(mask).astype(np.int32)
    members = members[np.argsort(owner[members], kind="stable")]
    counts = np.bincount(owner[members], minlength=n_owners)
    offsets = np.zeros(n_owners + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets, members


@dataclass(frozen=True, eq=False)
class SlotTable:
    """Per-slot constants plus the groupings the life-cycle needs (CSR offset/member pairs)."""

    tag: I32  # primary tag: the tag an alarm is reported on
    unit: I32
    sev: I8  # 1 or 2
    enabled: BOOL
    s3: BOOL  # level 2 of a CO tag in an occupied area: S3 directly
    on_ms: I64
    off_ms: I64
    cond: tuple[str, ...]
    tag_off: I64  # enabled slots per primary tag
    tag_slots: I32
    unit_s1_off: I64  # enabled S1 slots per unit (suppressed while the unit is S3)
    unit_s1_slots: I32
    source_units_off: I64
    source_units: I32
    enterprise_sources_off: I64
    enterprise_sources: I32

    @classmethod
    def of(cls, table: TagTable) -> SlotTable:
        """Derive the slot constants of `table`."""
        n, r = table.n_tags, table.n_rules
        tag = np.concatenate(
            [
                np.repeat(np.arange(n, dtype=np.int32), SLOTS_PER_TAG),
                np.repeat(table.rule_a, SLOTS_PER_RULE),
            ]
        ).astype(np.int32)
        rule_sev = table.rule_sev.copy()
        kind = table.rule_kind
        rule_sev[kind == RuleKind.FLATLINE, 0] = 2  # DOMAIN.md §5: flatline-while-filling is S2
        rule_enabled = np.ones((r, 2), dtype=bool)
        single = (kind == RuleKind.RATE_OF_CHANGE) | (kind == RuleKind.FLATLINE)
        rule_enabled[single, 1] = False
        sev = np.concatenate([table.limit_sev.reshape(-1), rule_sev.reshape(-1)]).astype(np.int8)
        enabled = np.concatenate([~np.isnan(table.limit).reshape(-1), rule_enabled.reshape(-1)])
        s3 = np.zeros(tag.shape[0], dtype=bool)
        s3[: SLOTS_PER_TAG * n] = (sev[: SLOTS_PER_TAG * n] == 2) & table.co_occupied[tag[: 4 * n]]
        names: list[str] = []
        for four in table.limit_cond:
            names.extend(four)
        for k in kind.tolist():
            names.extend([RULE_CONDITION[RuleKind(k)]] * SLOTS_PER_RULE)
        unit = table.tag_unit[tag].astype(np.int32)
        n_units, n_sources = len(table.unit_ids), len(table.source_ids)
        tag_off, tag_slots = _csr(tag, n, enabled)
        s1_off, s1_slots = _csr(unit, n_units, enabled & (sev == 1))
        su_off, su = _csr(table.unit_source, n_sources, np.ones(n_units, dtype=bool))
        es_off, es = _csr(
            table.source_enterprise, len(table.enterprise_ids), np.ones(n_sources, dtype=bool)
        )
        return cls(
            tag=tag,
            unit=unit,
            sev=sev,
            enabled=enabled,
            s3=s3,
            on_ms=table.on_delay_ms[tag],
            off_ms=table.off_delay_ms[tag],
            cond=tuple(names),
            tag_off=tag_off,
            tag_slots=tag_slots,
            unit_s1_off=s1_off,
            unit_s1_slots=s1_slots,
            source_units_off=su_off,
            source_units=su,
            enterprise_sources_off=es_off,
            enterprise_sources=es,
        )
