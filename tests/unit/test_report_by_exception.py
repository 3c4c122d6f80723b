"""Report by exception stores moves beyond the deadband and a heartbeat, nothing else."""

from __future__ import annotations

import numpy as np

from stream.sinks.rbe import ExceptionFilter


def test_stores_first_value_moves_beyond_deadband_and_heartbeat() -> None:
    rbe = ExceptionFilter(np.array([0.5, 1.0]), max_interval_ms=10_000)
    tag = np.array([0, 0, 0, 0, 1, 0, 0], dtype=np.int32)
    ts = np.array([0, 1000, 2000, 3000, 3000, 4000, 14000], dtype=np.int64)
    value = np.array([10.0, 10.3, 10.6, 10.9, 5.0, np.nan, 10.7])
    kept = rbe.keep(tag, ts, value)
    # 10.0 first; 10.3 within 0.5; 10.6 moved 0.6; 10.9 within; tag 1 first; NaN never;
    # 10.7 within the band but 12 s after the last stored value (heartbeat).
    assert kept.tolist() == [True, False, True, False, True, False, True]


def test_state_carries_across_batches() -> None:
    rbe = ExceptionFilter(np.array([1.0]), max_interval_ms=60_000)
    one = np.zeros(1, dtype=np.int32)
    assert rbe.keep(one, np.array([0]), np.array([5.0])).tolist() == [True]
    assert rbe.keep(one, np.array([1000]), np.array([5.5])).tolist() == [False]
    assert rbe.keep(one, np.array([2000]), np.array([3.9])).tolist() == [True]
