"""The unit-model interface and helpers every physics model shares.

A `UnitModel` owns the tags of one unit (or the gas detectors of one unit), its set-point
schedules (`controls`) and its state between chunks. `advance(t, ctx)` returns the *true* process
value of every tag on the model's time grid `t` (seconds since the scenario start); the
instrument layer adds noise, drift and quantisation afterwards.

Every model accepts, besides its own parameters, `<tag id>.offset` for each of its tags: an
additive disturbance in the tag's unit that scenarios use for nuisance excursions.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hazardwatch.plant.resolve import ResolvedTag
from simulators.schedule import Controls
from simulators.signals import FloatArray

Vapour = Callable[[FloatArray], FloatArray]
"""Overflowing liquid of the hazard source, m³/h, at the given times."""


@dataclass
class ChunkContext:
    """What a model may read besides its own state while advancing one chunk."""

    rng: np.random.Generator  # process noise of this model (own stream: deterministic)
    vapour: Vapour | None = None  # spill feeding a vapour cloud in the same hazard source
    emissions: dict[str, FloatArray] = field(default_factory=dict)


def limit_value(tag: ResolvedTag, key: str) -> float | None:
    """The value of limit `key` (LL, L, H, HH) of a tag, or None."""
    for spec in tag.limits:
        if spec.key == key:
            return spec.value
    return None


def normal_value(tag: ResolvedTag) -> float:
    """A plausible steady operating value well inside the tag's limits (engineering unit).

    Midway between L and H when both exist; 60 % of the way to the lowest high limit when only
    high limits exist; above the highest low limit otherwise; else 40 % of span.
    """
    low, high = tag.range_min, tag.range_max
    lo = limit_value(tag, "L") or limit_value(tag, "LL")
    hi = limit_value(tag, "H") or limit_value(tag, "HH")
    if lo is not None and hi is not None:
        return (lo + hi) / 2.0
    if hi is not None:
        return low + 0.6 * (hi - low)
    if lo is not None:
        return lo + 0.3 * (high - lo)
    return low + 0.4 * (high - low)


def daily_wave(
    t_s: FloatArray, amplitude: float, peak_hour: float, start_hour: float
) -> FloatArray:
    """A 24 h sinusoid peaking at `peak_hour` local time; `start_hour` is the scenario start."""
    hours = start_hour + t_s / 3600.0
    return amplitude * np.cos(2.0 * math.pi * (hours - peak_hour) / 24.0)


class UnitModel(ABC):
    """A piece of equipment's physics over the tags it owns."""

    kind = "unit"

    def __init__(self, unit_key: str, tags: Sequence[ResolvedTag], dt_s: float, start_hour: float):
        self.unit_key = unit_key  # "SOURCE/UNIT"
        self.tags = tuple(tags)
        self.dt_s = dt_s
        self.start_hour = start_hour
        defaults = self.parameters()
        defaults.update({f"{tag.id}.offset": 0.0 for tag in self.tags})
        self.controls = Controls(defaults)

    @abstractmethod
    def parameters(self) -> dict[str, float]:
        """Names and default values of the model's set-points."""

    @abstractmethod
    def true_values(self, t_s: FloatArray, ctx: ChunkContext) -> dict[str, FloatArray]:
        """True value of every owned tag on `t_s`; advances the model's state."""

    def advance(self, t_s: FloatArray, ctx: ChunkContext) -> dict[str, FloatArray]:
        """True values plus the scheduled `<tag>.offset` disturbances."""
        values = self.true_values(t_s, ctx)
        for tag in self.tags:
            offset = self.controls(f"{tag.id}.offset", t_s)
            if offset.any():
                values[tag.id] = values[tag.id] + offset
        return values


class SteadyModel(UnitModel):
    """Tags with no specific physics: a normal value with slow process wander (AR(1))."""

    kind = "steady"

    def __init__(self, unit_key: str, tags: Sequence[ResolvedTag], dt_s: float, start_hour: float):
        super().__init__(unit_key, tags, dt_s, start_hour)
        self._wander = {tag.id: 0.0 for tag in self.tags}

    def parameters(self) -> dict[str, float]:
        """`<tag>` = the steady value of each tag."""
        return {tag.id: normal_value(tag) for tag in self.tags}

    def true_values(self, t_s: FloatArray, ctx: ChunkContext) -> dict[str, FloatArray]:
        """Each tag's set value plus a wander of 0.3 % span correlated over ~5 min."""
        from simulators.signals import lag_coefficient, smooth_noise

        a = lag_coefficient(300.0, self.dt_s)
        out = {}
        for tag in self.tags:
            span = tag.range_max - tag.range_min
            wander = smooth_noise(ctx.rng, t_s.shape[0], 0.003 * span, a, self._wander[tag.id])
            if wander.size:
                self._wander[tag.id] = float(wander[-1])
            out[tag.id] = self.controls(tag.id, t_s) + wander
        return out
