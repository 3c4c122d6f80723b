"""Vectorized signal building blocks shared by the physics models.

All functions work on numpy arrays sampled on a uniform grid of step `dt` seconds and carry
their state explicitly, so a long run can be computed chunk by chunk with identical results.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_BLOCK = 64  # a^-64 stays well inside float64 for any lag this package uses (a ≥ 0.3)


def lag_coefficient(tau_s: float, dt_s: float) -> float:
    """Per-step factor a = exp(−dt/τ) of a first-order lag; τ ≤ 0 means no lag (a = 0)."""
    return 0.0 if tau_s <= 0 else math.exp(-dt_s / tau_s)


def tau_from_t90(t90_s: float) -> float:
    """Time constant τ (s) of a first-order sensor of 90 % response time `t90_s`: t90/ln 10."""
    return t90_s / math.log(10.0)


def first_order_lag(x: FloatArray, a: float, y0: float) -> FloatArray:
    """y[n] = a·y[n−1] + (1−a)·x[n], starting from y[−1] = y0; exact for step-wise input.

    Vectorized in blocks of 64 steps via the closed form y[n] = aⁿ⁺¹·y0 + (1−a)Σ aⁿ⁻ᵏ·x[k].
    """
    n = x.shape[0]
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    if a <= 0.0:
        out[:] = x
        return out
    if a < 0.3:  # closed form would lose precision; the loop is short-lived for such fast lags
        y = y0
        for i in range(n):
            y = a * y + (1.0 - a) * float(x[i])
            out[i] = y
        return out
    k = np.arange(_BLOCK, dtype=np.float64)
    up = a ** (k + 1.0)  # a^(n+1)
    down = a ** (-k)  # a^-k
    y = y0
    for start in range(0, n, _BLOCK):
        block = x[start : start + _BLOCK]
        m = block.shape[0]
        acc = np.cumsum(block * down[:m])
        seg = up[:m] * y + (1.0 - a) * acc * (up[:m] / a)
        out[start : start + m] = seg
        y = float(seg[-1])
    return out


def integrate(rate: FloatArray, dt_s: float, y0: float, low: float, high: float) -> FloatArray:
    """Cumulative sum of `rate`·dt from y0, clamped to [low, high] after every step.

    A clamped integral needs the running min/max trick: without a bound hit this is y0 + cumsum;
    when one is hit the remainder restarts from the bound (handled by a short loop over hits).
    """
    out = np.empty(rate.shape[0], dtype=np.float64)
    start, y = 0, y0
    n = rate.shape[0]
    while start < n:
        seg = y + np.cumsum(rate[start:] * dt_s)
        over = np.flatnonzero((seg > high) | (seg < low))
        if over.size == 0:
            out[start:] = seg
            break
        hit = int(over[0])
        out[start : start + hit] = seg[:hit]
        y = high if seg[hit] > high else low
        out[start + hit] = y
        # Stay at the bound while the rate keeps pushing into it (e.g. a full tank overflowing).
        rest = rate[start + hit + 1 :]
        pushing = rest > 0 if y == high else rest < 0
        stop = int(np.argmin(pushing)) if not pushing.all() else rest.shape[0]
        out[start + hit + 1 : start + hit + 1 + stop] = y
        start = start + hit + 1 + stop
    return out


def smooth_noise(rng: np.random.Generator, n: int, sigma: float, a: float, y0: float) -> FloatArray:
    """Coloured (AR(1)) process noise of stationary std `sigma`, correlation `a` per step."""
    white = (
        rng.standard_normal(n) * sigma * math.sqrt(max(1.0 - a * a, 1e-12)) / max(1.0 - a, 1e-12)
    )
    return first_order_lag(white, a, y0)
