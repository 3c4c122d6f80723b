"""What a transmitter adds to the true process value (DOMAIN.md §7).

Noise 0.2–0.5 % of span (white, per sample; the figure is read as the peak-to-peak band, 4σ,
which is how transmitter data sheets quote it — taken as σ, sample-to-sample rate-of-change
rules at 2–10 s sampling would chatter on noise alone), drift 0.5–2 % of span per month
(linear from the start of the run, random sign), quantisation to the instrument resolution, and
the range clamp a 4–20 mA loop imposes (a gas cell over its range reads full scale).
Out-of-range *faults* are added after the clamp by `faults.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hazardwatch.plant.defaults import Quantity
from hazardwatch.plant.resolve import ResolvedTag
from simulators.signals import FloatArray

MONTH_S = 30 * 86400.0

# Gas cells and switches are quieter than process transmitters relative to their span; the
# brake signal is a discrete 0/1 and gets neither noise nor drift.
_NOISE_PCT: dict[Quantity, float] = {
    Quantity.LEL: 0.2,
    Quantity.TOXIC_PPM: 0.2,
    Quantity.CO_PPM: 0.2,
    Quantity.O2_PCT: 0.2,
    Quantity.BRAKE: 0.0,
    Quantity.FLOW: 0.5,
    Quantity.PRESSURE: 0.3,
    Quantity.TEMPERATURE: 0.1,  # RTDs and thermocouples behind a transmitter are quiet
    Quantity.DIFFERENTIAL_TEMPERATURE: 0.1,
}


def resolution_for(span: float) -> float:
    """Instrument resolution: the power of ten at or below span/10 000 (e.g. 20 m → 0.001 m)."""
    if span <= 0:
        return 1.0
    return float(10.0 ** math.floor(math.log10(span / 10_000.0)))


def decimals_for(resolution: float) -> int:
    """Decimal places needed to print values of this resolution (0.001 → 3)."""
    return max(0, -math.floor(math.log10(resolution) + 1e-9))


@dataclass(frozen=True, slots=True)
class Instrument:
    """Transmitter characteristics of one tag, in its engineering unit."""

    low: float
    high: float
    noise_sd: float
    drift_per_s: float
    resolution: float
    zero_clip: bool  # gas cells suppress readings below zero

    @classmethod
    def for_tag(cls, tag: ResolvedTag, rng: np.random.Generator) -> Instrument:
        """Draw drift for one tag from `rng`; noise by quantity (0.2–0.5 % of span)."""
        span = tag.range_max - tag.range_min
        noise_pct = _NOISE_PCT.get(tag.quantity, 0.2)
        drift_pct_month = 0.0 if noise_pct == 0 else float(rng.uniform(0.5, 2.0))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        discrete = tag.quantity is Quantity.BRAKE
        return cls(
            low=tag.range_min,
            high=tag.range_max,
            noise_sd=noise_pct / 100.0 * span / 4.0,
            drift_per_s=sign * drift_pct_month / 100.0 * span / MONTH_S,
            resolution=1.0 if discrete else resolution_for(span),
            zero_clip=tag.quantity
            in (Quantity.LEL, Quantity.TOXIC_PPM, Quantity.CO_PPM, Quantity.BRAKE),
        )

    @property
    def decimals(self) -> int:
        """Decimal places of a printed reading."""
        return decimals_for(self.resolution)

    def measure(self, true: FloatArray, t_s: FloatArray, rng: np.random.Generator) -> FloatArray:
        """Readings of the true values at times `t_s` (seconds since the run started)."""
        value = true + self.drift_per_s * t_s
        if self.noise_sd > 0:
            value = value + rng.standard_normal(true.shape[0]) * self.noise_sd
        value = np.round(value / self.resolution) * self.resolution
        low = max(self.low, 0.0) if self.zero_clip else self.low
        return np.clip(value, low, self.high)
