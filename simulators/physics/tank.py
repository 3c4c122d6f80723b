"""Storage tank: level from in/out flow and geometry (mass balance), temperature, pressure.

dL/dt = (Q_in − Q_out) / A with A = volume / height (height = the level gauge's span, in m or %
of the tank). A full tank stays full and the excess leaves as overflow (m³/h), which feeds the
vapour cloud seen by the hazard source's combustible-gas detectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hazardwatch.plant.defaults import Quantity
from hazardwatch.plant.resolve import ResolvedTag
from simulators.physics.base import ChunkContext, UnitModel, daily_wave, normal_value
from simulators.signals import FloatArray, first_order_lag, integrate, lag_coefficient

DEFAULT_VOLUME_M3 = 1000.0


def is_inflow(tag: ResolvedTag) -> bool:
    """A flow tag that feeds its unit: id ending in FI/-IN or a name with 进 (inlet)."""
    ident = tag.id.upper()
    return ident.endswith(("FI", "-IN")) or "进" in tag.name


class TankModel(UnitModel):
    """A tank with level gauges, flows in and out, product temperature and vapour-space pressure.

    Parameters: `inflow`, `outflow` (m³/h), `level` (initial level, tag unit), `temperature`
    (product °C), `pressure` (vapour space at rest, tag unit).
    """

    kind = "tank"

    def __init__(
        self,
        unit_key: str,
        tags: Sequence[ResolvedTag],
        dt_s: float,
        start_hour: float,
        volume_m3: float | None,
    ):
        self.level_tags = [t for t in tags if t.quantity is Quantity.LEVEL]
        self.volume_m3 = volume_m3 or DEFAULT_VOLUME_M3
        gauge = self.level_tags[0]
        self.height = gauge.range_max - gauge.range_min
        self.floor = gauge.range_min
        super().__init__(unit_key, tags, dt_s, start_hour)
        self._level: float | None = None
        self._temp: float | None = None

    @property
    def area(self) -> float:
        """Level change per m³, inverted: m³ per unit of level (m² for a gauge in metres)."""
        return self.volume_m3 / self.height

    def parameters(self) -> dict[str, float]:
        """Defaults: at rest, 30 % full."""
        params = {
            "inflow": 0.0,
            "outflow": 0.0,
            "level": self.floor + 0.3 * self.height,
            "temperature": 18.0,
            "pressure": 0.0,
        }
        for tag in self.tags:
            if tag.quantity is Quantity.TEMPERATURE:
                params["temperature"] = normal_value(tag) - 4.0
            if tag.quantity is Quantity.PRESSURE:
                params["pressure"] = normal_value(tag) * 0.5
        return params

    def true_values(self, t_s: FloatArray, ctx: ChunkContext) -> dict[str, FloatArray]:
        """Integrate the level; flows follow their set-points; overflow goes to `emissions`."""
        inflow = self.controls("inflow", t_s)
        outflow = self.controls("outflow", t_s)
        if self._level is None:
            self._level = float(self.controls("level", t_s[:1])[0])
        # Centrifugal pumps are not perfectly steady: ±0.5 % pulsation when running.
        pulse = 1.0 + 0.005 * ctx.rng.standard_normal(t_s.shape[0])
        inflow = inflow * pulse
        outflow = outflow * pulse
        top = self.floor + self.height
        rate = (inflow - outflow) / 3600.0 / self.area  # level unit per second
        level = integrate(rate, self.dt_s, self._level, self.floor, top)
        at_top = level >= top - 1e-9
        # Outflow stops at the floor; at the top the excess net inflow spills over.
        overflow = np.where(at_top, np.maximum(inflow - outflow, 0.0), 0.0)
        ctx.emissions["overflow_m3h"] = overflow
        if level.size:
            self._level = float(level[-1])
        temp_target = self.controls("temperature", t_s) + daily_wave(
            t_s, 1.5, 16.0, self.start_hour
        )
        if self._temp is None:
            self._temp = float(temp_target[0])
        temp = first_order_lag(temp_target, lag_coefficient(6 * 3600.0, self.dt_s), self._temp)
        if temp.size:
            self._temp = float(temp[-1])
        # Filling pushes vapour out through the breather: pressure rises with net inflow.
        pressure = self.controls("pressure", t_s) + 0.0006 * np.maximum(inflow - outflow, 0.0)
        out: dict[str, FloatArray] = {}
        for tag in self.tags:
            if tag.quantity is Quantity.LEVEL:
                out[tag.id] = level
            elif tag.quantity is Quantity.FLOW:
                out[tag.id] = inflow if is_inflow(tag) else outflow
            elif tag.quantity is Quantity.TEMPERATURE:
                out[tag.id] = temp
            elif tag.quantity is Quantity.PRESSURE:
                out[tag.id] = pressure
            else:
                out[tag.id] = np.full(t_s.shape[0], normal_value(tag))
        return out
