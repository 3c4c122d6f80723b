"""Metallurgy equipment: water-cooled converter elements and the blast furnace.

- `CoolingCircuitModel` (oxygen lance, hood): inflow at its set-point, outflow = inflow minus a
  leak, outlet temperature = inlet + P/(ρ·c·Q_out) through a 3 min thermal lag, with the heat
  load P following the converter's blowing cycle (16 min of oxygen blowing every 36 min heat).
  Parameters: `flow` (m³/h), `leak_pct` (% of inflow lost inside the furnace), `heat_mw` (during
  blowing), `inlet_temp` (°C), `blowing` (1 = heats run, 0 = converter idle).
- `BlastFurnaceTopModel`: top temperatures and top pressure around their normal values with gas
  fluctuations; `hanging` (0–1) raises pressure and temperature as the burden stops descending;
  slips are pulses scheduled on `top_temp` and `top_pressure`. Stave ΔT tags follow a baseline
  with a daily cycle, scaled by `<tag>.factor`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hazardwatch.plant.defaults import Quantity
from hazardwatch.plant.resolve import ResolvedTag
from simulators.physics.base import ChunkContext, UnitModel, daily_wave, normal_value
from simulators.physics.tank import is_inflow
from simulators.signals import FloatArray, first_order_lag, lag_coefficient, smooth_noise

WATER_KJ_PER_M3_K = 4186.0  # ρ·c of water: 1000 kg/m³ × 4.186 kJ/(kg·K)
HEAT_CYCLE_S = 36 * 60.0
BLOW_S = 16 * 60.0


class CoolingCircuitModel(UnitModel):
    """Water-cooled element with paired in/out flow meters and an outlet thermometer."""

    kind = "cooling_circuit"

    def __init__(self, unit_key: str, tags: Sequence[ResolvedTag], dt_s: float, start_hour: float):
        super().__init__(unit_key, tags, dt_s, start_hour)
        self._outlet: float | None = None

    def parameters(self) -> dict[str, float]:
        """Design flow 73 % of the meter span; 3 MW while blowing; 30 °C inlet water."""
        flow_span = max((t.range_max for t in self.tags if t.quantity is Quantity.FLOW), default=1)
        return {
            "flow": round(0.733 * flow_span),
            "leak_pct": 0.0,
            "heat_mw": 3.0 * flow_span / 300.0,
            "inlet_temp": 30.0,
            "blowing": 1.0,
        }

    def true_values(self, t_s: FloatArray, ctx: ChunkContext) -> dict[str, FloatArray]:
        """Flows, leak and the lagged outlet temperature."""
        n = t_s.shape[0]
        inflow = self.controls("flow", t_s) * (1.0 + 0.003 * ctx.rng.standard_normal(n))
        outflow = inflow * (1.0 - self.controls("leak_pct", t_s) / 100.0)
        in_heat = (t_s % HEAT_CYCLE_S) < BLOW_S
        heat_kw = np.where(in_heat, self.controls("heat_mw", t_s) * 1000.0, 150.0)
        heat_kw = heat_kw * np.clip(self.controls("blowing", t_s), 0.0, 1.0)
        rise = heat_kw / (WATER_KJ_PER_M3_K * np.maximum(outflow, 1.0) / 3600.0)
        target = self.controls("inlet_temp", t_s) + rise
        if self._outlet is None:
            self._outlet = float(target[0]) if n else 30.0
        outlet = first_order_lag(target, lag_coefficient(180.0, self.dt_s), self._outlet)
        if n:
            self._outlet = float(outlet[-1])
        out: dict[str, FloatArray] = {}
        for tag in self.tags:
            if tag.quantity is Quantity.FLOW:
                out[tag.id] = inflow if is_inflow(tag) else outflow
            elif tag.quantity is Quantity.TEMPERATURE:
                out[tag.id] = outlet
            else:
                out[tag.id] = np.full(n, normal_value(tag))
        return out


class BlastFurnaceModel(UnitModel):
    """Blast-furnace top (temperatures, pressure) and stave ΔT rows of one unit."""

    kind = "blast_furnace"

    def __init__(self, unit_key: str, tags: Sequence[ResolvedTag], dt_s: float, start_hour: float):
        super().__init__(unit_key, tags, dt_s, start_hour)
        self._noise = {tag.id: 0.0 for tag in self.tags}

    def parameters(self) -> dict[str, float]:
        """Normal top temperature 180 °C, top pressure at its normal value, no hanging."""
        params = {"top_temp": 180.0, "top_pressure": 175.0, "hanging": 0.0}
        for tag in self.tags:
            if tag.quantity is Quantity.PRESSURE:
                params["top_pressure"] = normal_value(tag)
            if tag.quantity is Quantity.DIFFERENTIAL_TEMPERATURE:
                params[f"{tag.id}.factor"] = 1.0
        return params

    def true_values(self, t_s: FloatArray, ctx: ChunkContext) -> dict[str, FloatArray]:
        """Top gas fluctuates (charging every ~8 min); hanging builds pressure and heat."""
        n = t_s.shape[0]
        hanging = np.clip(self.controls("hanging", t_s), 0.0, 1.0)
        charging = 12.0 * np.sin(2.0 * np.pi * t_s / 480.0)
        top_temp = self.controls("top_temp", t_s) + charging + 150.0 * hanging
        top_pressure = self.controls("top_pressure", t_s) + 25.0 * hanging
        a = lag_coefficient(300.0, self.dt_s)
        out: dict[str, FloatArray] = {}
        for i, tag in enumerate(self.tags):
            span = tag.range_max - tag.range_min
            wander = smooth_noise(ctx.rng, n, 0.0025 * span, a, self._noise[tag.id])
            if n:
                self._noise[tag.id] = float(wander[-1])
            if tag.quantity is Quantity.TEMPERATURE:
                out[tag.id] = top_temp + wander + 6.0 * i  # thermocouples sit in different spots
            elif tag.quantity is Quantity.PRESSURE:
                out[tag.id] = top_pressure + wander
            elif tag.quantity is Quantity.DIFFERENTIAL_TEMPERATURE:
                base = 6.0 + daily_wave(t_s, 0.4, 15.0, self.start_hour) + 0.5 * i
                out[tag.id] = base * self.controls(f"{tag.id}.factor", t_s) + wander
            else:
                out[tag.id] = np.full(n, normal_value(tag)) + wander
        return out
