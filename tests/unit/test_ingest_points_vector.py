"""The all-at-once acceptance of a message's points gives exactly the point-by-point verdicts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ingest.points
from ingest.points import MISSING, PointChecker, compact_form, object_form
from tests.unit.ingest_plants import NOW_MS, directory

LIMIT = 5000
LO, HI = NOW_MS - 3_600_000, NOW_MS + 300_000
DIRECTORY = directory()
G1 = DIRECTORY.gateways["G1"]  # carries T1 and T2

good_value = st.one_of(
    st.floats(min_value=-1e15, max_value=1e15, allow_nan=False), st.integers(-(10**15), 10**15)
)
good_point = st.fixed_dictionaries(
    {"tag": st.sampled_from(["T1", "T2"]), "v": good_value, "ts": st.integers(LO, HI)},
    optional={"q": st.integers(0, 127)},
)
# Values at the loop's edges: the vector path must refuse them or agree.
ODD = {
    "v": [True, None, "1.5", float("nan"), float("inf"), 2**53, -(2**53), 2**53 + 1, 2**64,
          10**400, float(2**53), 1e300, [1], {"v": 1}, MISSING],
    "ts": [True, "2024-05-01T08:00:00Z", LO - 1, HI + 1, 2**63, -1, 1.5e12, MISSING],
    "tag": ["T3", "U1", "nope", 5, ["T1"], {"t": 1}, None, "", MISSING],
    "q": [-1, 128, True, 1.0, "0", 2**70],
}  # fmt: skip
odd_value, odd_time = st.sampled_from(ODD["v"]), st.sampled_from(ODD["ts"])
odd_tag, odd_quality = st.sampled_from(ODD["tag"]), st.sampled_from(ODD["q"])
odd_point = st.one_of(
    good_point.map(lambda p: {**p, "v": MISSING}),
    st.tuples(good_point, odd_value).map(lambda t: {**t[0], "v": t[1]}),
    st.tuples(good_point, odd_time).map(lambda t: {**t[0], "ts": t[1]}),
    st.tuples(good_point, odd_tag).map(lambda t: {**t[0], "tag": t[1]}),
    st.tuples(good_point, odd_quality).map(lambda t: {**t[0], "q": t[1]}),
    st.sampled_from([None, 1, "x", [1, 2]]),  # not an object at all
)


def strip_missing(point: Any) -> Any:
    if type(point) is dict:
        return {k: v for k, v in point.items() if v is not MISSING}
    return point


def verdicts(points: list[Any], loop_only: bool) -> tuple[Any, ...]:
    checker = PointChecker(DIRECTORY, G1, LO, HI)
    if loop_only:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ingest.points, "_VECTOR_MIN_POINTS", 10**9)
            checker.check_all(*object_form(points, LIMIT))
    else:
        checker.check_all(*object_form(points, LIMIT))
    return (checker.tag_index, checker.ts_ms, checker.values, checker.quality,
            checker.rejections)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(good_point, min_size=16, max_size=64))
def test_good_messages_take_the_vector_path_with_identical_columns(points: list[Any]) -> None:
    checker = PointChecker(DIRECTORY, G1, LO, HI)
    columns = object_form(points, LIMIT)
    assert checker._accept_all(*columns[:4])
    assert verdicts(points, loop_only=False) == verdicts(points, loop_only=True)
    assert all(type(v) is float for v in checker.values)  # ints arrive as floats, as in the loop


@settings(max_examples=300, deadline=None)
@given(
    st.lists(good_point, min_size=15, max_size=40),
    st.lists(odd_point, min_size=1, max_size=3),
    st.randoms(use_true_random=False),
)
def test_messages_with_odd_points_get_the_loops_verdicts(
    good: list[Any], odd: list[Any], rnd: Any
) -> None:
    points = good + [strip_missing(p) for p in odd]
    rnd.shuffle(points)
    assert verdicts(points, loop_only=False) == verdicts(points, loop_only=True)


@pytest.mark.parametrize(
    ("field", "odd"), [(field, odd) for field, values in ODD.items() for odd in values]
)
def test_each_odd_field_alone_gets_the_loops_verdict(field: str, odd: Any) -> None:
    points: list[Any] = [{"tag": "T1", "v": float(i), "ts": NOW_MS + i} for i in range(20)]
    points[7] = strip_missing({**points[7], field: odd})
    got = verdicts(points, loop_only=False)
    assert got == verdicts(points, loop_only=True)
    assert len(got[0]) + len(got[4]) == 20  # every point either accepted or refused


def test_compact_form_takes_the_vector_path() -> None:
    n = 32
    body = {"tags": ["T1", "T2"] * (n // 2), "vals": list(range(n)), "ts": NOW_MS}
    checker = PointChecker(DIRECTORY, G1, LO, HI)
    assert checker._accept_all(*compact_form(body, LIMIT)[:4])
    assert checker.values == [float(i) for i in range(n)] and checker.ts_ms == [NOW_MS] * n
    assert checker.quality == [0] * n and checker.tag_index == [0, 1] * (n // 2)
