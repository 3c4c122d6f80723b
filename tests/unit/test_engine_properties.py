"""Differential property tests: the vectorized engine against the per-reading reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine import Command, CommandKind, ReadingBatch, RiskEngine
from stream.events import Event
from tests.engine_fixtures import fast_policy, small_plant
from tests.reference_evaluator import ReferenceEvaluator

TABLE = small_plant()
N_TAGS = TABLE.n_tags
VALUES = [0.0, 0.5, 0.95, 1.0, 1.9, 2.0, 2.3, 5.0, 7.8, 8.0, 8.3, 9.0, 9.5, 20.0, 25.0, 48.0,
          50.0, 60.0, 89.0, 91.0, 96.0, 99.0, 150.0, 170.0, 600.0, -1.0,
          math.nan, math.inf, -math.inf]  # fmt: skip

reading = st.tuples(
    st.integers(-1, N_TAGS),  # -1 and N_TAGS: unknown tags
    st.sampled_from([0, 0, 500, 1000, 1000, 2000, 5000, 15_000, 40_000, 120_000]),  # Δts
    st.one_of(st.sampled_from(VALUES), st.floats(-10, 200, allow_nan=False)),
    st.sampled_from([0, 0, 0, 0, 0, 0, 1]),
)


@st.composite
def commands(draw: st.DrawFn) -> Command:
    kind = draw(st.sampled_from(list(CommandKind)))
    return Command(
        kind=kind,
        ts_ms=draw(st.integers(0, 400_000)),
        tag=draw(st.integers(-1, N_TAGS)),
        unit=draw(st.integers(0, len(TABLE.unit_ids) - 1)),
        condition=draw(st.sampled_from([None, "H", "HH", "flatline", "CO2"])),
        until_ms=draw(st.integers(0, 500_000)),
        on=draw(st.booleans()),
    )


op = st.one_of(
    st.tuples(st.just("batch"), st.lists(reading, max_size=25), st.booleans()),
    st.tuples(st.just("cmd"), commands()),
    st.tuples(st.just("advance"), st.integers(0, 200_000)),
)


def _run(ops: list[tuple[object, ...]]) -> tuple[list[Event], list[Event], RiskEngine,
                                                  ReferenceEvaluator]:  # fmt: skip
    engine = RiskEngine(TABLE, fast_policy())
    ref = ReferenceEvaluator(TABLE, fast_policy())
    got: list[Event] = []
    want: list[Event] = []
    now = 0
    for item in ops:
        if item[0] == "batch":
            rows, shuffle = item[1], item[2]
            tags, ts, vs, qs = [], [], [], []
            for tag, dt, v, q in rows:  # type: ignore[attr-defined]
                now += dt
                tags.append(tag)
                ts.append(now)
                vs.append(v)
                qs.append(q)
            if shuffle:  # out-of-order delivery within the batch and against the clock
                ts = ts[::-1]
            got += engine.process(ReadingBatch.of(tags, ts, vs, qs))
            want += ref.process(tags, ts, vs, qs)
        elif item[0] == "cmd":
            got += engine.command(item[1])  # type: ignore[arg-type]
            want += ref.command(item[1])  # type: ignore[arg-type]
        else:
            now += item[1]  # type: ignore[operator]
            got += engine.advance(now)
            want += ref.advance(now)
        assert got == want, (len(got), len(want))
    return got, want, engine, ref


@settings(max_examples=200, deadline=None)
@given(st.lists(op, max_size=12))
def test_engine_matches_reference(ops: list[tuple[object, ...]]) -> None:
    _, _, engine, ref = _run(ops)
    assert engine.counters == ref.counters


@settings(max_examples=100, deadline=None)
@given(st.lists(reading, min_size=1, max_size=80), st.lists(st.integers(0, 80), max_size=6))
def test_batch_splits_do_not_change_events(rows: list[tuple[int, int, float, int]],
                                           cuts: list[int]) -> None:  # fmt: skip
    """A time-ordered stream gives the same events however it is cut into batches."""
    ts = np.cumsum([dt for _, dt, _, _ in rows])
    tags = [t for t, _, _, _ in rows]
    vs = [v for _, _, v, _ in rows]
    qs = [q for _, _, _, q in rows]
    whole = RiskEngine(TABLE, fast_policy()).process(ReadingBatch.of(tags, ts, vs, qs))
    engine = RiskEngine(TABLE, fast_policy())
    parts: list[Event] = []
    edges = sorted({0, len(rows), *[c for c in cuts if c <= len(rows)]})
    for a, b in itertools.pairwise(edges):
        parts += engine.process(ReadingBatch.of(tags[a:b], ts[a:b], vs[a:b], qs[a:b]))
    assert parts == whole


@settings(max_examples=60, deadline=None)
@given(st.lists(op, max_size=8), st.lists(op, max_size=8))
def test_snapshot_restore_continues_identically(
    first: list[tuple[object, ...]], second: list[tuple[object, ...]]
) -> None:
    _, _, engine, _ = _run(first)
    clone = RiskEngine.restore(TABLE, fast_policy(), engine.snapshot())
    now = engine.clock_ms or 0
    for item in second:
        if item[0] == "batch":
            rows = item[1]
            ts = [now + 1000 * (i + 1) for i in range(len(rows))]  # type: ignore[arg-type]
            now = ts[-1] if ts else now
            batch = ReadingBatch.of([r[0] for r in rows], ts, [r[2] for r in rows],  # type: ignore[attr-defined]
                                    [r[3] for r in rows])  # type: ignore[attr-defined]  # fmt: skip
            assert engine.process(batch) == clone.process(batch)
        elif item[0] == "cmd":
            assert engine.command(item[1]) == clone.command(item[1])  # type: ignore[arg-type]
        else:
            now += item[1]  # type: ignore[operator]
            assert engine.advance(now) == clone.advance(now)
    assert engine.snapshot() == clone.snapshot()
