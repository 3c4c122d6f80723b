"""Gas holder (position from gas in/out, pressure from the piston) and ladle crane cycles.

- `GasHolderModel`: position dL/dt = (Q_in − Q_out)/A, A = 1333 m² (80 000 m³ over 60 m);
  converter gas arrives in pulses while a heat blows, consumers draw steadily; the piston keeps
  the pressure near its design value. Parameters `inflow`, `outflow` (m³/h averages),
  `position` (initial, m), `pressure` (kPa).
- `LadleCraneModel`: one ladle transfer every 45 min: hoist the full ladle (load rises to
  `ladle_t`), travel, lower at `hoist_speed`, set down. `brake_fault` = 1 opens the brake
  signal; `overspeed` multiplies the lowering speed (control failure, Qinghe 2007); `drop` = 1
  means the ladle fell (load to hook weight).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hazardwatch.plant.defaults import Quantity
from hazardwatch.plant.resolve import ResolvedTag
from simulators.physics.base import ChunkContext, UnitModel, normal_value
from simulators.physics.tank import DEFAULT_VOLUME_M3
from simulators.signals import FloatArray, integrate, lag_coefficient, smooth_noise

HOLDER_AREA_M2 = 80_000.0 / 60.0
CRANE_CYCLE_S = 45 * 60.0
HOOK_T = 4.0


class GasHolderModel(UnitModel):
    """A dry (piston) gas holder: position by mass balance, near-constant pressure."""

    kind = "gas_holder"

    def __init__(
        self,
        unit_key: str,
        tags: Sequence[ResolvedTag],
        dt_s: float,
        start_hour: float,
        volume_m3: float | None,
    ):
        level = next((t for t in tags if t.quantity is Quantity.LEVEL), None)
        self.height = (level.range_max - level.range_min) if level else 60.0
        self.area = (volume_m3 / self.height) if volume_m3 else HOLDER_AREA_M2
        if volume_m3 is None and level is None:
            self.area = DEFAULT_VOLUME_M3
        super().__init__(unit_key, tags, dt_s, start_hour)
        self._position: float | None = None
        self._wander = 0.0

    def parameters(self) -> dict[str, float]:
        """Balanced at 30 000 m³/h in and out, half full, 5 kPa."""
        params = {"inflow": 30_000.0, "outflow": 30_000.0, "position": 0.5 * self.height}
        params["pressure"] = 5.0
        for tag in self.tags:
            if tag.quantity is Quantity.LEVEL:
                params["position"] = normal_value(tag)
            if tag.quantity is Quantity.PRESSURE:
                params["pressure"] = normal_value(tag)
        return params

    def true_values(self, t_s: FloatArray, ctx: ChunkContext) -> dict[str, FloatArray]:
        """Recovery in 16 min pulses per 36 min heat (2.25 × average while recovering)."""
        n = t_s.shape[0]
        recovering = (t_s % 2160.0) < 960.0
        inflow = self.controls("inflow", t_s) * np.where(recovering, 2.25, 0.0)
        outflow = self.controls("outflow", t_s)
        if self._position is None:
            self._position = float(self.controls("position", t_s[:1])[0]) if n else 0.0
        rate = (inflow - outflow) / 3600.0 / self.area
        position = integrate(rate, self.dt_s, self._position, 0.0, self.height)
        if n:
            self._position = float(position[-1])
        wander = smooth_noise(ctx.rng, n, 0.05, lag_coefficient(60.0, self.dt_s), self._wander)
        if n:
            self._wander = float(wander[-1])
        pressure = self.controls("pressure", t_s) + 0.01 * (position - 0.5 * self.height) + wander
        out: dict[str, FloatArray] = {}
        for tag in self.tags:
            if tag.quantity is Quantity.LEVEL:
                out[tag.id] = position
            elif tag.quantity is Quantity.PRESSURE:
                out[tag.id] = pressure
            else:
                out[tag.id] = np.full(n, normal_value(tag))
        return out


class LadleCraneModel(UnitModel):
    """A casting crane's main hoist: load (t), hoist speed (m/min), brake fault (0/1)."""

    kind = "ladle_crane"

    def parameters(self) -> dict[str, float]:
        """A 128 t full ladle, 6 m/min hoisting, brakes healthy."""
        return {
            "ladle_t": 128.0,
            "hoist_speed": 6.0,
            "brake_fault": 0.0,
            "overspeed": 1.0,
            "drop": 0.0,
        }

    def true_values(self, t_s: FloatArray, ctx: ChunkContext) -> dict[str, FloatArray]:
        """Cycle phases: 0–60 s hoist, 60–240 s travel, 240–300 s lower, then hook only."""
        n = t_s.shape[0]
        phase = t_s % CRANE_CYCLE_S
        loaded = phase < 300.0
        hoisting = phase < 60.0
        lowering = (phase >= 240.0) & (phase < 300.0)
        dropped = self.controls("drop", t_s) >= 0.5
        load = np.where(loaded & ~dropped, self.controls("ladle_t", t_s), HOOK_T)
        load = load * (1.0 + 0.004 * ctx.rng.standard_normal(n))  # ladle swing
        speed_set = self.controls("hoist_speed", t_s)
        speed = np.where(hoisting, speed_set, 0.0)
        speed = np.where(lowering, speed_set * self.controls("overspeed", t_s), speed)
        brake = np.clip(np.round(self.controls("brake_fault", t_s)), 0.0, 1.0)
        out: dict[str, FloatArray] = {}
        for tag in self.tags:
            if tag.quantity is Quantity.LOAD:
                out[tag.id] = load
            elif tag.quantity is Quantity.SPEED:
                out[tag.id] = speed
            elif tag.quantity is Quantity.BRAKE:
                out[tag.id] = brake
            else:
                out[tag.id] = np.full(n, normal_value(tag))
        return out
