"""Process unit variables (pressure, temperature, flow) held by PI control loops.

Each controlled tag is a first-order process  τ·dy/dt = −(y − y_free) + load − capacity·u
where u ∈ [0, 1] is the controller output (cooling, let-down valve) of a PI controller acting on
e = y − set-point. In normal operation u sits near 0.5 and the loop cancels load changes; a loss
of capacity (cooling failure) or a load beyond it saturates u at 1 and the variable runs away —
the signature of a runaway reaction. A tag that backs up another (`independent_of`) measures the
same process variable.

Parameters per controlled tag: `<tag>.setpoint`, `<tag>.load` (tag unit), `<tag>.capacity`
(fraction of design, 1 = normal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hazardwatch.plant.defaults import Quantity
from hazardwatch.plant.resolve import ResolvedTag
from simulators.physics.base import ChunkContext, UnitModel, normal_value
from simulators.signals import FloatArray, lag_coefficient, smooth_noise

_TAU_S = {Quantity.TEMPERATURE: 240.0, Quantity.PRESSURE: 60.0, Quantity.FLOW: 10.0}


class ProcessLoopModel(UnitModel):
    """PI-controlled variables of one process unit (`R-101` reactor, a refrigeration loop)."""

    kind = "process"

    def __init__(self, unit_key: str, tags: Sequence[ResolvedTag], dt_s: float, start_hour: float):
        ids = {t.id for t in tags}
        self.loops = [t for t in tags if t.independent_of not in ids]
        self.mirrors = {t.id: t.independent_of for t in tags if t.independent_of in ids}
        super().__init__(unit_key, tags, dt_s, start_hour)
        self._y = {t.id: normal_value(t) for t in self.loops}
        self._integral = {t.id: 0.5 for t in self.loops}
        self._wander = {t.id: 0.0 for t in self.loops}
        self._a = lag_coefficient(600.0, dt_s)

    def parameters(self) -> dict[str, float]:
        """Set-point at the tag's normal value, no extra load, full capacity."""
        params: dict[str, float] = {}
        for tag in self.loops:
            params[f"{tag.id}.setpoint"] = normal_value(tag)
            params[f"{tag.id}.load"] = 0.0
            params[f"{tag.id}.capacity"] = 1.0
        return params

    def true_values(self, t_s: FloatArray, ctx: ChunkContext) -> dict[str, FloatArray]:
        """Step each loop through the chunk (a short scalar loop: the controller is stateful)."""
        out: dict[str, FloatArray] = {}
        n = t_s.shape[0]
        for tag in self.loops:
            span = tag.range_max - tag.range_min
            design = 0.2 * span  # the actuator can move the variable by 20 % of span
            tau = _TAU_S.get(tag.quantity, 60.0)
            sp = self.controls(f"{tag.id}.setpoint", t_s)
            # Process noise: small random load changes, 0.15 % of span, over ~10 min.
            wander = smooth_noise(ctx.rng, n, 0.0015 * span, self._a, self._wander[tag.id])
            if n:
                self._wander[tag.id] = float(wander[-1])
            load = self.controls(f"{tag.id}.load", t_s) + wander
            cap = self.controls(f"{tag.id}.capacity", t_s) * design
            free = sp + 0.5 * design  # with u = 0.5 the loop sits at the set-point
            kp, ti = 1.0 / design, 4.0 * tau
            y, integral = self._y[tag.id], self._integral[tag.id]
            ys = np.empty(n)
            dt = self.dt_s
            k = dt / tau
            for i in range(n):
                err = y - float(sp[i])
                integral = min(max(integral + kp * err * dt / ti, 0.0), 1.0)  # anti-windup
                u = min(max(kp * err + integral, 0.0), 1.0)
                y += k * (float(free[i]) + float(load[i]) - float(cap[i]) * u - y)
                ys[i] = y
            self._y[tag.id], self._integral[tag.id] = y, integral
            out[tag.id] = ys
        for tag_id, source in self.mirrors.items():
            if source is not None:
                out[tag_id] = out[source]
        return out
