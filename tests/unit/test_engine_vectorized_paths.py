"""Differential tests for the engine's vectorized paths on a plant with many rules per kind.

The small fixture plant has one or two rules of each kind; here several rules of a kind share
tags (two rate-of-change rules and two flatline rules on one level, a tag both inflow of one rule
and outflow of another), many tags detect frozen values, and the anchor scans are forced through
both of their strategies (lock-step across groups, and the per-group loop).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stream.derived
from hazardwatch.types import AlarmState
from stream.engine import ReadingBatch, RiskEngine
from stream.events import AlarmEvent, Event
from stream.tagtable import RuleKind, RuleSpec, TagSpec, TagTable
from tests.engine_fixtures import fast_policy
from tests.reference_evaluator import ReferenceEvaluator


def _plant() -> TagTable:
    tags = [
        TagSpec(
            f"T{i}",
            f"U{i // 3}",
            f"S{i // 6}",
            "E1",
            limits={"L": 10, "H": 80, "HH": 90},
            deadband=2.0,
            on_delay_s=1 if i % 2 else 0,
            off_delay_s=1,
            expected_interval_s=5 if i % 3 else 0,
            range_min=0,
            range_max=100,
            frozen_after_s=6 if i % 2 == 0 else 0,
            frozen_band=0.5,
        )
        for i in range(9)
    ]
    rules = [
        RuleSpec(RuleKind.RATE_OF_CHANGE, "T0", p1=300.0, direction=0),
        RuleSpec(RuleKind.RATE_OF_CHANGE, "T0", p1=100.0, direction=1),
        RuleSpec(RuleKind.RATE_OF_CHANGE, "T5", p1=200.0, direction=2),
        RuleSpec(RuleKind.FLATLINE, "T1", "T2", p1=20.0, p2=1.0, window_s=8),
        RuleSpec(RuleKind.FLATLINE, "T1", "T3", p1=40.0, p2=3.0, window_s=4),
        RuleSpec(RuleKind.FLATLINE, "T6", "T2", p1=10.0, p2=0.5, window_s=6),
        RuleSpec(RuleKind.FLOW_DIFF, "T2", "T3", p1=0.05, p2=0.2, p3=5.0),
        RuleSpec(RuleKind.FLOW_DIFF, "T3", "T4", p1=0.1, p2=0.3, p3=1.0),
        RuleSpec(RuleKind.BASELINE, "T7", p1=1.2, p2=1.5, window_s=10),
        RuleSpec(RuleKind.BASELINE, "T8", p1=1.1, p2=1.3, window_s=7),
    ]
    return TagTable.build(tags, rules, grades={"S0": 1, "S1": 3})


TABLE = _plant()
VALUES = [5.0, 9.0, 11.0, 12.5, 30.0, 30.2, 30.4, 50.0, 78.5, 79.0, 81.0, 88.5, 91.0, 95.0,
          -1.0, 120.0, math.nan, math.inf]  # fmt: skip
reading = st.tuples(
    st.integers(-1, TABLE.n_tags),
    st.sampled_from([0, 0, 500, 1000, 1000, 2000, 3000, 9000]),
    st.one_of(st.sampled_from(VALUES), st.floats(0, 100, allow_nan=False)),
    st.sampled_from([0, 0, 0, 0, 0, 1]),
)
batches = st.lists(st.tuples(st.lists(reading, max_size=60), st.booleans()), max_size=8)


def _compare(rows_by_batch: list[tuple[list[tuple[int, int, float, int]], bool]]) -> int:
    engine = RiskEngine(TABLE, fast_policy())
    ref = ReferenceEvaluator(TABLE, fast_policy())
    now, got, want = 0, list[Event](), list[Event]()
    for rows, shuffle in rows_by_batch:
        tags, ts, vs, qs = [], [], [], []
        for tag, dt, v, q in rows:
            now += dt
            tags.append(tag)
            ts.append(now)
            vs.append(v)
            qs.append(q)
        if shuffle:
            ts = ts[::-1]
        got += engine.process(ReadingBatch.of(tags, ts, vs, qs))
        want += ref.process(tags, ts, vs, qs)
        assert got == want
    got += engine.advance(now + 60_000)
    want += ref.advance(now + 60_000)
    assert got == want
    assert engine.counters == ref.counters
    return len(got)


@pytest.mark.parametrize("readings_per_round", [0, 10**9], ids=["lockstep", "per-group-loop"])
@settings(max_examples=60, deadline=None)
@given(rows_by_batch=batches)
def test_many_rules_match_reference(
    readings_per_round: int,
    rows_by_batch: list[tuple[list[tuple[int, int, float, int]], bool]],
) -> None:
    saved = stream.derived.LOCKSTEP_MIN_READINGS_PER_ROUND
    stream.derived.LOCKSTEP_MIN_READINGS_PER_ROUND = readings_per_round
    try:
        _compare(rows_by_batch)
    finally:
        stream.derived.LOCKSTEP_MIN_READINGS_PER_ROUND = saved


def test_level_held_still_while_filling_raises_flatline_on_both_rules() -> None:
    """A steady ramp of T1's inflows with T1 frozen: both flatline rules on T1 alarm."""
    rows = [(t, 1000 * k, v, 0) for k in range(12)
            for t, v in ((1, 50.0), (2, 30.0 + k), (3, 45.0 + k))]  # fmt: skip
    engine = RiskEngine(TABLE, fast_policy())
    tags, ts, vs, qs = (list(x) for x in zip(*rows, strict=True))
    events = engine.process(ReadingBatch.of(tags, ts, vs, qs))
    raised = [e for e in events if isinstance(e, AlarmEvent) and e.condition == "flatline"
              and e.state is AlarmState.UNACKED]  # fmt: skip
    assert [(e.tag, e.ts_ms) for e in raised] == [("T1", 5000), ("T1", 9000)]
    _compare([(list(rows), False)])  # and the reference agrees
