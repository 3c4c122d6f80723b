"""Cross-reference and consistency checks of a structurally valid Plant.

`plant_problems(plant)` returns every problem found (not just the first), each with the location
of the offending field as a pydantic-style tuple, so the loader can point at its file line.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hazardwatch.plant.defaults import GAS_QUANTITIES, Quantity
from hazardwatch.plant.rules import FrozenValueRule

if TYPE_CHECKING:
    from hazardwatch.plant.model import Plant, Tag

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One invalid field: its location (keys and list indexes) and what is wrong."""

    loc: Loc
    message: str

    @property
    def field(self) -> str:
        """Dotted path such as `hazard_sources[0].units[1].tags[2].limits.HH`."""
        return format_loc(self.loc)


def format_loc(loc: Iterable[str | int]) -> str:
    """Render a location tuple as `a[0].b.c`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _duplicates(items: Iterable[tuple[Loc, str]], what: str) -> list[Problem]:
    seen: dict[str, Loc] = {}
    problems = []
    for loc, ident in items:
        if ident in seen:
            problems.append(
                Problem(loc, f"duplicate {what} id {ident!r} (first at {format_loc(seen[ident])})")
            )
        else:
            seen[ident] = loc
    return problems


def _tag_problems(tag: Tag, loc: Loc) -> list[Problem]:
    problems = []
    low, high = tag.range
    if low >= high:
        problems.append(Problem((*loc, "range"), f"min {low} must be < max {high}"))
    present = tag.limits.present()
    for field, _key, value in present:
        if value < low:
            problems.append(
                Problem((*loc, "limits", field), f"must be ≥ instrument range min {low}")
            )
        elif value > high:
            problems.append(
                Problem((*loc, "limits", field), f"must be ≤ instrument range max {high}")
            )
    keys = [key for _f, key, _v in present]
    for key, count in Counter(keys).items():
        if count > 1:
            problems.append(
                Problem((*loc, "limits"), f"{key} given twice (level1 is H, level2 is HH)")
            )
    for (f1, k1, v1), (f2, k2, v2) in itertools.pairwise(present):
        crosses = k1 in ("LL", "L") and k2 in ("H", "HH")
        if v2 < v1 or (crosses and v2 == v1):
            rel = "<" if crosses else "≤"
            problems.append(
                Problem((*loc, "limits", f2), f"must satisfy {f1} {rel} {f2} ({v1} vs {v2})")
            )
    if (tag.limits.level1 is not None or tag.limits.level2 is not None) and (
        tag.quantity not in GAS_QUANTITIES
    ):
        problems.append(
            Problem(
                (*loc, "limits"),
                "level1/level2 are for gas detectors (lel, toxic_ppm, co_ppm); use H/HH",
            )
        )
    if tag.severity:
        for key in tag.severity:
            if key not in keys:
                problems.append(Problem((*loc, "severity", key), f"no {key} limit on this tag"))
    if tag.independent_of == tag.id:
        problems.append(Problem((*loc, "independent_of"), "a tag cannot be independent of itself"))
    if tag.quantity is Quantity.O2_PCT and any(k in ("LL", "HH") for k in keys):
        problems.append(
            Problem((*loc, "limits"), "oxygen uses L (< 19.5 % vol) and H (> 23.5 % vol) only")
        )
    return problems


def plant_problems(plant: Plant) -> list[Problem]:
    """Every cross-reference and consistency problem of `plant`, in file order."""
    problems: list[Problem] = []
    enterprises = {e.id for e in plant.enterprises}
    problems += _duplicates(
        ((("enterprises", i, "id"), e.id) for i, e in enumerate(plant.enterprises)), "enterprise"
    )
    problems += _duplicates(
        ((("gateways", i, "id"), g.id) for i, g in enumerate(plant.gateways)), "gateway"
    )
    problems += _duplicates(
        ((("hazard_sources", i, "id"), s.id) for i, s in enumerate(plant.hazard_sources)),
        "hazard source",
    )

    tag_loc: dict[str, Loc] = {}
    tag_unit: dict[str, tuple[int, int]] = {}
    unit_ids: list[tuple[Loc, str]] = []
    tag_ids: list[tuple[Loc, str]] = []
    for si, source in enumerate(plant.hazard_sources):
        sloc: Loc = ("hazard_sources", si)
        if source.enterprise not in enterprises:
            problems.append(
                Problem((*sloc, "enterprise"), f"unknown enterprise {source.enterprise!r}")
            )
        if source.inventory and source.people_within_500m is None:
            problems.append(
                Problem((*sloc, "people_within_500m"), "required with an inventory (sets α)")
            )
        if source.grade is None and not source.inventory:
            pass  # not a major hazard source: allowed, counts as grade 4 in the colour matrix
        elif source.grade is not None and source.computed_grade not in (None, source.grade):
            problems.append(
                Problem(
                    (*sloc, "grade"),
                    f"grade {source.grade} given but the inventory computes grade "
                    f"{source.computed_grade} (R = {source.risk_value:.1f})",
                )
            )
        for ui, unit in enumerate(source.units):
            uloc: Loc = (*sloc, "units", ui)
            unit_ids.append(((*uloc, "id"), f"{source.id}/{unit.id}"))
            for ti, tag in enumerate(unit.tags):
                tloc: Loc = (*uloc, "tags", ti)
                tag_ids.append(((*tloc, "id"), tag.id))
                tag_loc.setdefault(tag.id, tloc)
                tag_unit.setdefault(tag.id, (si, ui))
                problems += _tag_problems(tag, tloc)
    problems += _duplicates(unit_ids, "unit")
    problems += _duplicates(tag_ids, "tag")

    for si, source in enumerate(plant.hazard_sources):
        for ui, unit in enumerate(source.units):
            for ti, tag in enumerate(unit.tags):
                ref = tag.independent_of
                if ref is None or ref == tag.id:
                    continue
                ref_loc = ("hazard_sources", si, "units", ui, "tags", ti, "independent_of")
                if ref not in tag_loc:
                    problems.append(Problem(ref_loc, f"unknown tag {ref!r}"))
                elif tag_unit[ref] != (si, ui):
                    problems.append(
                        Problem(
                            ref_loc,
                            f"tag {ref!r} is in another unit; an independent instrument backs up "
                            "a tag of its own unit",
                        )
                    )
            frozen_seen: set[str] = set()
            for ri, rule in enumerate(unit.rules):
                rloc: Loc = ("hazard_sources", si, "units", ui, "rules", ri)
                for field, ref in rule.tag_refs():
                    if ref not in tag_loc:
                        problems.append(Problem((*rloc, field), f"unknown tag {ref!r}"))
                    elif tag_unit[ref][0] != si:
                        problems.append(
                            Problem((*rloc, field), f"tag {ref!r} belongs to another hazard source")
                        )
                if isinstance(rule, FrozenValueRule):
                    if rule.tag in frozen_seen:
                        problems.append(
                            Problem((*rloc, "tag"), f"second frozen_value rule for {rule.tag!r}")
                        )
                    frozen_seen.add(rule.tag)

    carried: dict[str, Loc] = {}
    for gi, gateway in enumerate(plant.gateways):
        gloc: Loc = ("gateways", gi)
        if gateway.enterprise not in enterprises:
            problems.append(
                Problem((*gloc, "enterprise"), f"unknown enterprise {gateway.enterprise!r}")
            )
        for ti, tag_id in enumerate(gateway.tags):
            if tag_id not in tag_loc:
                problems.append(Problem((*gloc, "tags", ti), f"unknown tag {tag_id!r}"))
            elif tag_id in carried:
                problems.append(
                    Problem(
                        (*gloc, "tags", ti),
                        f"tag {tag_id!r} is already carried by {format_loc(carried[tag_id])}",
                    )
                )
            else:
                carried[tag_id] = gloc
                owner = plant.hazard_sources[tag_unit[tag_id][0]].enterprise
                if owner != gateway.enterprise:
                    problems.append(
                        Problem(
                            (*gloc, "tags", ti),
                            f"tag {tag_id!r} belongs to enterprise {owner!r}, not the gateway's",
                        )
                    )
    for tag_id, loc in tag_loc.items():
        if tag_id not in carried:
            problems.append(Problem((*loc, "id"), f"tag {tag_id!r} is carried by no gateway"))
    return problems
