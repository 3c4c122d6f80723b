"""Sensor faults applied to one tag's sampled readings (DOMAIN.md §7).

Each fault acts on the window [start_s, end_s) of scenario time:

- `stuck` — the reading freezes at the last value before the fault (no noise: a hung gauge);
- `spikes` — isolated one-sample spikes of `size` (negative: dips) at `rate_per_h` (random
  times, seeded), clipped to the range like any reading;
- `drift` — an extra drift of `rate_per_h` tag units per hour from the fault's start;
- `offset` — a constant bias of `size`;
- `out_of_range` — the transmitter saturates outside its range (5 % of span beyond, as a
  4–20 mA loop at 3.6 or 20.8 mA), which the engine must call a sensor fault;
- `dropout` — no readings at all (communication gap of this tag);
- `bad_quality` — readings keep coming with quality flag 1 (the gateway marks them bad).

Gateway-wide outages and MQTT delivery faults live in `gateway.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulators.signals import FloatArray

BoolArray = npt.NDArray[np.bool_]
QUALITY_BAD = 1


@dataclass
class SensorFault:
    """One fault on one tag over [start_s, end_s)."""

    tag: str
    kind: str
    start_s: float
    end_s: float
    size: float = 0.0
    rate_per_h: float = 0.0
    side: str = "high"
    _held: float | None = field(default=None, repr=False)

    def window(self, t_s: FloatArray) -> BoolArray:
        """Which samples fall inside the fault."""
        return (t_s >= self.start_s) & (t_s < self.end_s)


def apply_faults(
    faults: list[SensorFault],
    t_s: FloatArray,
    values: FloatArray,
    last_value: float | None,
    span: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[FloatArray, BoolArray, npt.NDArray[np.int8]]:
    """Apply every fault of one tag to a chunk of readings.

    Returns (values, keep mask, quality). `last_value` is the tag's last reading of the previous
    chunk (a gauge that sticks at a chunk boundary holds it).
    """
    keep = np.ones(t_s.shape[0], dtype=bool)
    quality = np.zeros(t_s.shape[0], dtype=np.int8)
    if not faults:
        return values, keep, quality
    values = values.copy()
    low, high = span
    for fault in faults:
        inside = fault.window(t_s)
        if not inside.any():
            continue
        first = int(np.argmax(inside))
        if fault.kind == "stuck":
            if fault._held is None:
                fault._held = float(values[first - 1]) if first > 0 else last_value
                if fault._held is None:
                    fault._held = float(values[first])
            values[inside] = fault._held
        elif fault.kind == "spikes":
            hits = inside & (rng.random(t_s.shape[0]) < _per_sample(fault.rate_per_h, t_s))
            values[hits] = np.clip(values[hits] + fault.size, low, high)
        elif fault.kind == "drift":
            values[inside] += fault.rate_per_h * (t_s[inside] - fault.start_s) / 3600.0
        elif fault.kind == "offset":
            values[inside] += fault.size
        elif fault.kind == "out_of_range":
            beyond = 0.05 * (high - low)
            values[inside] = high + beyond if fault.side == "high" else low - beyond
        elif fault.kind == "dropout":
            keep &= ~inside
        elif fault.kind == "bad_quality":
            quality[inside] = QUALITY_BAD
    return values, keep, quality


def _per_sample(rate_per_h: float, t_s: FloatArray) -> float:
    if t_s.shape[0] < 2:
        return 0.0
    step = float(t_s[1] - t_s[0])
    return min(1.0, rate_per_h * step / 3600.0)
