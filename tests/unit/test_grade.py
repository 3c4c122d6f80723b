"""GB 18218-2018 grading: R = α · Σ β·q/Q, α bands and grade thresholds."""

from __future__ import annotations

import pytest

from hazardwatch.plant.grade import (
    BETA,
    SubstanceCategory,
    alpha_for,
    grade_for,
    is_major_hazard,
    risk_value,
)


def test_three_substances_worked_by_hand() -> None:
    # Chlorine 60 t (Q 5 t, β 4), ammonia 20 t (Q 10 t, β 2), toluene 30 t (Q 500 t, β 1):
    # Σ β·q/Q = 48 + 4 + 0.06 = 52.06; 120 people within 500 m → α 2 → R = 104.12 → grade 1.
    items = [
        (BETA[SubstanceCategory.CL2], 60, 5),
        (BETA[SubstanceCategory.NH3], 20, 10),
        (BETA[SubstanceCategory.OTHER], 30, 500),
    ]
    r = risk_value(items, alpha_for(120))
    assert r == pytest.approx(104.12)
    assert grade_for(r) == 1


def test_same_inventory_with_fewer_neighbours_drops_a_grade() -> None:
    # Same Σ 52.06 with 10 people (α 1.0) → R 52.06 → grade 2.
    items = [(4.0, 60, 5), (2.0, 20, 10), (1.0, 30, 500)]
    assert grade_for(risk_value(items, alpha_for(10))) == 2


def test_toxic_gas_beta_values_follow_the_standard() -> None:
    assert BETA[SubstanceCategory.CO] == 2
    assert BETA[SubstanceCategory.HCL] == 3
    assert BETA[SubstanceCategory.CL2] == 4
    assert BETA[SubstanceCategory.H2S] == 5
    assert BETA[SubstanceCategory.HCN] == 10
    assert BETA[SubstanceCategory.PHOSGENE] == 20
    assert BETA[SubstanceCategory.FLAMMABLE_GAS] == 1.5


@pytest.mark.parametrize(
    ("people", "alpha"),
    [(0, 0.5), (1, 1.0), (29, 1.0), (30, 1.2), (49, 1.2), (50, 1.5), (99, 1.5), (100, 2.0)],
)
def test_alpha_bands_at_their_edges(people: int, alpha: float) -> None:
    assert alpha_for(people) == alpha


@pytest.mark.parametrize(
    ("r", "grade"), [(100.0, 1), (99.99, 2), (50.0, 2), (49.9, 3), (10.0, 3), (9.99, 4), (0.0, 4)]
)
def test_grade_thresholds(r: float, grade: int) -> None:
    assert grade_for(r) == grade


def test_below_critical_quantity_is_not_a_major_hazard() -> None:
    assert not is_major_hazard([(1.0, 100, 200), (1.0, 20, 50)])  # 0.5 + 0.4 < 1
    assert is_major_hazard([(1.0, 100, 200), (1.0, 25, 50)])  # 0.5 + 0.5 = 1


def test_negative_people_and_zero_critical_quantity_are_rejected() -> None:
    with pytest.raises(ValueError):
        alpha_for(-1)
    with pytest.raises(ValueError):
        risk_value([(1.0, 1, 0)], 1.0)
