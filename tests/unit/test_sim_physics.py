"""Physics sanity of the simulators: mass balance, sensor lag, control loops, instruments."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hazardwatch.plant.defaults import Quantity
from hazardwatch.plant.resolve import LimitSpec, ResolvedTag, condition_name, default_severity
from simulators.instrument import decimals_for, resolution_for
from simulators.physics.base import ChunkContext
from simulators.physics.gas import GasDetectorModel
from simulators.physics.process import ProcessLoopModel
from simulators.physics.tank import TankModel
from simulators.signals import first_order_lag, integrate, lag_coefficient, tau_from_t90


def resolved_tag(
    tag_id: str,
    quantity: str,
    span: tuple[float, float],
    limits: dict[str, float] | None = None,
    interval_s: float = 10.0,
    **extra: Any,
) -> ResolvedTag:
    """A ResolvedTag with the given limits (level1/level2 → H/HH)."""
    q = Quantity(quantity)
    specs = []
    for key, value in sorted((limits or {}).items(), key=lambda kv: kv[1]):
        canonical = {"level1": "H", "level2": "HH"}.get(key, key)
        severity, condition = default_severity(q, canonical), condition_name(q, canonical)
        specs.append(LimitSpec(canonical, value, canonical in ("H", "HH"), severity, condition))
    fields: dict[str, Any] = dict(
        id=tag_id, name=extra.pop("name", ""), quantity=q, eng_unit="-", enterprise="E",
        source="S", unit="U", gateway="GW", range_min=span[0], range_max=span[1],
        limits=tuple(specs), deadband=0.0, on_delay_s=0.0, off_delay_s=0.0,
        expected_interval_s=interval_s, frozen_after_s=None, frozen_band=0.0, order10=False,
        independent_of=None, occupied_area=False,
    )  # fmt: skip
    fields.update(extra)
    return ResolvedTag(**fields)


def _run(model, seconds: float, chunks: int = 1):  # type: ignore[no-untyped-def]
    out: dict[str, list[np.ndarray]] = {}
    edges = np.linspace(0, seconds, chunks + 1)
    rng = np.random.default_rng(1)
    for a, b in itertools.pairwise(edges):
        t = np.arange(math.ceil(a / model.dt_s), math.ceil(b / model.dt_s)) * model.dt_s
        for k, v in model.advance(t.astype(np.float64), ChunkContext(rng=rng)).items():
            out.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def test_tank_level_follows_the_mass_balance() -> None:
    level = resolved_tag("LT", "level", (0, 20))
    fi, fo = resolved_tag("T-FI", "flow", (0, 1000)), resolved_tag("T-FO", "flow", (0, 1000))
    tank = TankModel("S/T", [level, fi, fo], 10.0, 0.0, volume_m3=5000)
    tank.controls.set_initial("level", 2.0)
    tank.controls.change("inflow", 0, 550)
    tank.controls.change("outflow", 0, 105)
    values = _run(tank, 3 * 3600)
    # 445 m³/h net into 250 m² (5000 m³ over 20 m): 1.78 m/h; pump pulsation averages out.
    assert abs(values["LT"][-1] - (2.0 + 3 * 445 / 250)) < 0.02
    assert abs(values["T-FI"].mean() - 550) < 2 and abs(values["T-FO"].mean() - 105) < 1


def test_a_full_tank_stays_full_and_spills_the_excess() -> None:
    level = resolved_tag("LT", "level", (0, 20))
    tank = TankModel("S/T", [level], 10.0, 0.0, volume_m3=5000)
    tank.controls.set_initial("level", 19.5)
    tank.controls.change("inflow", 0, 500)
    t = np.arange(0, 3600, 10.0)
    ctx = ChunkContext(rng=np.random.default_rng(0))
    lt = tank.advance(t, ctx)["LT"]
    assert lt.max() <= 20.0 and lt[-1] == 20.0
    spill = ctx.emissions["overflow_m3h"]
    assert spill[0] == 0 and abs(spill[-1] - 500) < 10  # all of the inflow spills once full


def test_co_cell_reaches_90_percent_of_a_step_within_15_s() -> None:
    co = resolved_tag("CO1", "co_ppm", (0, 1000), limits={"level1": 24, "level2": 160})
    cell = GasDetectorModel("S/ROOM", [co], 1.0, 0.0)
    cell.controls.change("CO1", 100.0, 200.0)  # a step of 200 ppm at t = 100 s
    values = _run(cell, 200)["CO1"]
    background = values[99]
    t90 = next(i for i in range(100, 200) if values[i] - background >= 0.9 * 200) - 100
    assert 5 <= t90 < 15  # electrochemical cell: lagged, but t90 < 15 s (DOMAIN.md §7)


def test_pi_loop_holds_its_set_point_and_runs_away_without_cooling() -> None:
    tt = resolved_tag("R-TT", "temperature", (0, 200), limits={"L": 60, "H": 95, "HH": 110})
    loop = ProcessLoopModel("S/R", [tt], 5.0, 0.0)
    loop.controls.change("R-TT.capacity", 3600, 0.1, 30)
    loop.controls.change("R-TT.load", 3600, 30, 30)
    values = _run(loop, 7200, chunks=3)["R-TT"]
    steady = values[360:700]
    assert abs(steady.mean() - 77.5) < 1.0 and steady.std() < 1.0
    assert values[-1] > 110  # cooling lost: past HH


@settings(max_examples=30, deadline=None)
@given(
    tau=st.floats(1.0, 600.0),
    dt=st.floats(0.5, 10.0),
    x=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=300),
    y0=st.floats(-100, 100),
)
def test_vectorized_lag_equals_the_recursion(
    tau: float, dt: float, x: list[float], y0: float
) -> None:
    a = lag_coefficient(tau, dt)
    expected, y = [], y0
    for value in x:
        y = a * y + (1 - a) * value
        expected.append(y)
    assert np.allclose(first_order_lag(np.array(x), a, y0), expected, rtol=1e-9, atol=1e-6)


def test_clamped_integral_stops_at_its_bounds() -> None:
    rate = np.array([1.0] * 10 + [-1.0] * 30)
    out = integrate(rate, 1.0, 5.0, 0.0, 8.0)
    assert out.max() == 8.0 and out.min() == 0.0 and out[2] == 8.0 and out[-1] == 0.0


def test_instrument_resolution_and_decimals() -> None:
    assert resolution_for(20.0) == 0.001 and decimals_for(0.001) == 3
    assert resolution_for(1000.0) == 0.1 and decimals_for(0.1) == 1
    assert tau_from_t90(12.0) * math.log(10) == 12.0
