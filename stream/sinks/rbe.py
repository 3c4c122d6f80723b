"""Report by exception for raw readings: store a value only when it moved beyond the tag's
deadband since the last stored value, or when `max_interval_ms` passed since then.

Off by default (every reading is stored). Alarm, risk and data-quality events are always stored;
this filter only thins `reading_v1`. Non-finite values are never stored (the engine reports them
as sensor faults).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class ExceptionFilter:
    """Per-tag last stored value and time; `keep()` returns the mask of readings to store."""

    def __init__(self, deadband: npt.NDArray[np.float64], max_interval_ms: int) -> None:
        self.deadband = deadband.astype(np.float64)
        self.max_interval_ms = max_interval_ms
        self.last_value = np.full(deadband.shape[0], np.nan)
        self.last_ts = np.full(deadband.shape[0], np.iinfo(np.int64).min // 2, dtype=np.int64)

    def keep(
        self,
        tag: npt.NDArray[np.int32],
        ts: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.bool_]:
        """Mask of readings to store, in the given (arrival) order."""
        mask = np.zeros(tag.shape[0], dtype=np.bool_)
        last_v, last_t, band = self.last_value, self.last_ts, self.deadband
        limit = self.max_interval_ms
        # Sequential per tag by nature (each decision depends on the last stored value), so a
        # plain loop; it runs only when the option is on.
        for i, (k, t, v) in enumerate(zip(tag.tolist(), ts.tolist(), value.tolist(), strict=True)):
            if not np.isfinite(v):
                continue
            if np.isnan(last_v[k]) or abs(v - last_v[k]) > band[k] or t - last_t[k] >= limit:
                mask[i] = True
                last_v[k] = v
                last_t[k] = t
        return mask
