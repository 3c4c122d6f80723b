"""Major hazard source grading after GB 18218-2018: R = α · Σ βᵢ · qᵢ / Qᵢ.

qᵢ is the actual and Qᵢ the critical quantity of substance i (both in tonnes, only the ratio
matters); β is the correction factor of the substance's category; α depends on how many people
outside the site live or work within 500 m. The grade bands: 1 for R ≥ 100, 2 for 50 ≤ R < 100,
3 for 10 ≤ R < 50, 4 for R < 10. A unit whose Σ qᵢ/Qᵢ stays below 1 is not a major hazard source at
all (GB 18218-2018 §4.2.2) and has no grade.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class SubstanceCategory(StrEnum):
    """β categories of GB 18218-2018 Table 3 (toxic gases by name) and Table 4 (others)."""

    CO = "co"
    SO2 = "so2"
    NH3 = "nh3"
    ETHYLENE_OXIDE = "ethylene_oxide"
    HCL = "hcl"
    CH3BR = "ch3br"
    CL2 = "cl2"
    H2S = "h2s"
    HF = "hf"
    NO2 = "no2"
    HCN = "hcn"
    PHOSGENE = "phosgene"
    PH3 = "ph3"
    METHYL_ISOCYANATE = "methyl_isocyanate"
    EXPLOSIVE = "explosive"
    FLAMMABLE_GAS = "flammable_gas"
    OTHER = "other"


BETA: dict[SubstanceCategory, float] = {
    SubstanceCategory.CO: 2.0,
    SubstanceCategory.SO2: 2.0,
    SubstanceCategory.NH3: 2.0,
    SubstanceCategory.ETHYLENE_OXIDE: 2.0,
    SubstanceCategory.HCL: 3.0,
    SubstanceCategory.CH3BR: 3.0,
    SubstanceCategory.CL2: 4.0,
    SubstanceCategory.H2S: 5.0,
    SubstanceCategory.HF: 5.0,
    SubstanceCategory.NO2: 10.0,
    SubstanceCategory.HCN: 10.0,
    SubstanceCategory.PHOSGENE: 20.0,
    SubstanceCategory.PH3: 20.0,
    SubstanceCategory.METHYL_ISOCYANATE: 20.0,
    SubstanceCategory.EXPLOSIVE: 2.0,
    SubstanceCategory.FLAMMABLE_GAS: 1.5,
    SubstanceCategory.OTHER: 1.0,
}


def alpha_for(people_within_500m: int) -> float:
    """α correction for the number of people outside the site within 500 m (≥ 0)."""
    if people_within_500m < 0:
        raise ValueError("people_within_500m must be ≥ 0")
    if people_within_500m >= 100:
        return 2.0
    if people_within_500m >= 50:
        return 1.5
    if people_within_500m >= 30:
        return 1.2
    if people_within_500m >= 1:
        return 1.0
    return 0.5


def risk_value(items: Iterable[tuple[float, float, float]], alpha: float) -> float:
    """R = α · Σ β·q/Q over `(beta, q, critical_q)` triples; q and Q in the same unit (t)."""
    total = 0.0
    for beta, q, critical_q in items:
        if critical_q <= 0:
            raise ValueError("critical quantity Q must be > 0")
        total += beta * q / critical_q
    return alpha * total


def is_major_hazard(items: Iterable[tuple[float, float, float]]) -> bool:
    """True when Σ q/Q ≥ 1 over `(beta, q, critical_q)` triples (β plays no part here)."""
    return sum(q / critical_q for _beta, q, critical_q in items) >= 1.0


def grade_for(r: float) -> int:
    """Grade 1–4 of a major hazard source from its R value (1 is the most severe)."""
    if r >= 100:
        return 1
    if r >= 50:
        return 2
    if r >= 10:
        return 3
    return 4
