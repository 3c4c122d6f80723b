"""Fixed gas detectors: combustible %LEL, toxic ppm, CO ppm (electrochemical) and O₂ %vol.

The concentration at a detector is its background plus scheduled releases (`<tag>`, in the
tag's unit; for O₂ a change in %vol) plus the hazard source's vapour cloud for %LEL detectors.
The cell answers with a first-order lag of its t90: electrochemical CO t90 = 12 s (< 15 s,
DOMAIN.md §7), toxic cells 25 s, catalytic/IR %LEL 15 s, O₂ 10 s.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hazardwatch.plant.defaults import Quantity
from hazardwatch.plant.resolve import ResolvedTag
from simulators.physics.base import ChunkContext, UnitModel
from simulators.signals import FloatArray, first_order_lag, lag_coefficient, tau_from_t90

T90_S: dict[Quantity, float] = {
    Quantity.CO_PPM: 12.0,
    Quantity.TOXIC_PPM: 25.0,
    Quantity.LEL: 15.0,
    Quantity.O2_PCT: 10.0,
}
GAS_DETECTOR_QUANTITIES = frozenset(T90_S)

O2_AIR_PCT = 20.9
CLOUD_TAU_S = 600.0  # a vapour cloud in a bund builds and disperses over ~10 min
CLOUD_LEL_PER_M3H = 0.25  # equilibrium %LEL in the bund per m³/h of spilled gasoline


class GasDetectorModel(UnitModel):
    """The gas detectors of one unit; parameters `<tag>` (release) and `<tag>.vapour_weight`."""

    kind = "gas"

    def __init__(self, unit_key: str, tags: Sequence[ResolvedTag], dt_s: float, start_hour: float):
        super().__init__(unit_key, tags, dt_s, start_hour)
        self._cell = {tag.id: self._background(tag) for tag in self.tags}
        self._cloud = 0.0

    @staticmethod
    def _background(tag: ResolvedTag) -> float:
        if tag.quantity is Quantity.O2_PCT:
            return O2_AIR_PCT
        # Steel-plant gas areas carry a little CO all the time; elsewhere clean air.
        return 1.5 if tag.quantity is Quantity.CO_PPM else 0.0

    def parameters(self) -> dict[str, float]:
        """`<tag>`: release concentration at the detector; `<tag>.vapour_weight`: cloud share."""
        params: dict[str, float] = {}
        for tag in self.tags:
            params[tag.id] = 0.0
            params[f"{tag.id}.vapour_weight"] = 0.5 if tag.quantity is Quantity.LEL else 0.0
        return params

    def true_values(self, t_s: FloatArray, ctx: ChunkContext) -> dict[str, FloatArray]:
        """Cell outputs (lagged) for every detector."""
        cloud = np.zeros(t_s.shape[0])
        if ctx.vapour is not None:
            spill = ctx.vapour(t_s) * CLOUD_LEL_PER_M3H
            cloud = first_order_lag(spill, lag_coefficient(CLOUD_TAU_S, self.dt_s), self._cloud)
            if cloud.size:
                self._cloud = float(cloud[-1])
        out: dict[str, FloatArray] = {}
        for tag in self.tags:
            exposure = self._background(tag) + self.controls(tag.id, t_s)
            weight = self.controls(f"{tag.id}.vapour_weight", t_s)
            exposure = exposure + weight * cloud
            a = lag_coefficient(tau_from_t90(T90_S[tag.quantity]), self.dt_s)
            cell = first_order_lag(exposure, a, self._cell[tag.id])
            if cell.size:
                self._cell[tag.id] = float(cell[-1])
            out[tag.id] = cell
        return out
