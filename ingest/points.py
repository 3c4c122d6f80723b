"""Point-level checks of a telemetry message, object and compact form alike.

Both forms are flattened into parallel columns (tag, value, time, quality). A message whose
points all pass is accepted at once with numpy; otherwise one loop checks point by point, so a
bad point is refused with its own reason and position (`points[3].v`, `vals[3]`) while the other
points of the message are kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any, Final, cast

import numpy as np

from ingest.directory import GatewayDirectory, GatewayEntry
from ingest.reasons import Reason, Rejection, shown
from ingest.times import time_ms

MISSING: Final = object()
"""Marks a field absent from the payload (distinct from JSON null)."""
_MAX_QUALITY = 127  # quality travels as int8 in the engine's columns
_VECTOR_MIN_POINTS = 16  # below this numpy's per-call cost outweighs the loop it replaces
_NUMBER_TYPES: Final = frozenset({float, int})  # `type()` sets: bool is not int here
_INT_TYPE: Final = {int}
_EXACT_INT = float(2**53)  # |v| < 2⁵³: an int is exactly representable; NaN/inf fail it too


class RefusedError(Exception):
    """A message-level rejection, raised inside the decoder and turned into a verdict."""

    def __init__(self, reason: Reason, part: str, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, part, detail)


def kind_name(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "null" if value is None else "number"
    )


PartName = Callable[[int, str], str]
Columns = tuple[Sequence[Any], Sequence[Any], Sequence[Any], Sequence[Any], PartName]


def _object_part(i: int, name: str) -> str:
    return f"points[{i}]" if not name else f"points[{i}].{name}"


def _compact_part(i: int, name: str) -> str:
    return {"tag": f"tags[{i}]", "v": f"vals[{i}]", "ts": f"ts[{i}]", "q": f"q[{i}]"}[name]


class _NotObject:
    """A `points` element that is not a JSON object (reported as wrong_type at its index)."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


def object_form(points: Any, max_points: int) -> Columns:
    if type(points) is not list:
        raise RefusedError(
            Reason.WRONG_TYPE, "points", f"expected an array, got {kind_name(points)}"
        )
    _check_count(len(points), max_points)
    if points and set(map(type, points)) == {dict}:
        # Every point an object (the usual case): one C-level pass per column.
        get = dict.get
        return (
            list(map(get, points, repeat("tag"), repeat(MISSING))),
            list(map(get, points, repeat("v"), repeat(MISSING))),
            list(map(get, points, repeat("ts"), repeat(MISSING))),
            list(map(get, points, repeat("q"), repeat(0))),
            _object_part,
        )
    tags: list[Any] = []
    vals: list[Any] = []
    times: list[Any] = []
    quals: list[Any] = []
    for point in points:
        if type(point) is dict:
            tags.append(point.get("tag", MISSING))
            vals.append(point.get("v", MISSING))
            times.append(point.get("ts", MISSING))
            quals.append(point.get("q", 0))
        else:  # the point checker reports it with its index
            tags.append(_NotObject(point))
            vals.append(MISSING)
            times.append(MISSING)
            quals.append(MISSING)
    return tags, vals, times, quals, _object_part


def compact_form(body: dict[str, Any], max_points: int) -> Columns:
    tags = body["tags"]
    vals = body.get("vals", MISSING)
    times = body.get("ts", MISSING)
    quals = body.get("q", MISSING)
    if vals is MISSING or times is MISSING:
        raise RefusedError(
            Reason.MISSING_FIELD, "vals" if vals is MISSING else "ts", "compact form"
        )
    for name, value in (("tags", tags), ("vals", vals)):
        if type(value) is not list:
            raise RefusedError(
                Reason.WRONG_TYPE, name, f"expected an array, got {kind_name(value)}"
            )
    n = len(tags)
    _check_count(n, max_points)
    if type(times) is not list:  # one sample time shared by every point
        shared = time_ms(times)
        if shared is None:
            raise RefusedError(Reason.BAD_TIME, "ts", f"{shown(times)}: not epoch ms or RFC 3339")
        times = [shared] * n
    if quals is MISSING:
        quals = [0] * n
    elif type(quals) is not list:
        raise not_array("q", quals)
    lengths = {"tags": n, "vals": len(vals), "ts": len(times), "q": len(quals)}
    if len(set(lengths.values())) != 1:
        raise RefusedError(Reason.ARRAY_LENGTH_MISMATCH, "tags", f"array lengths differ: {lengths}")
    return tags, vals, times, quals, _compact_part


def not_array(part: str, value: object) -> RefusedError:
    """The refusal of a field that must be a JSON array."""
    return RefusedError(Reason.WRONG_TYPE, part, f"expected an array, got {kind_name(value)}")


def _check_count(n: int, max_points: int) -> None:
    if n > max_points:
        raise RefusedError(Reason.TOO_MANY_POINTS, "points", f"{n} points > limit {max_points}")


class PointChecker:
    """Point-level checks of one message; collects accepted columns and point rejections."""

    __slots__ = (
        "directory",
        "entry",
        "hi",
        "lo",
        "quality",
        "rejections",
        "tag_index",
        "ts_ms",
        "values",
    )

    def __init__(
        self, directory: GatewayDirectory, entry: GatewayEntry, lo_ms: int, hi_ms: int
    ) -> None:
        """Check points of `entry`'s message; times must lie within [lo_ms, hi_ms] epoch ms."""
        self.directory = directory
        self.entry = entry
        self.lo = lo_ms
        self.hi = hi_ms
        self.tag_index: list[int] = []
        self.ts_ms: list[int] = []
        self.values: list[float] = []
        self.quality: list[int] = []
        self.rejections: list[Rejection] = []

    def check_all(
        self,
        tags: Sequence[Any],
        vals: Sequence[Any],
        times: Sequence[Any],
        quals: Sequence[Any],
        part: PartName,
    ) -> None:
        """Check every point; accepted ones go to the columns, the others to `rejections`."""
        if len(tags) >= _VECTOR_MIN_POINTS and self._accept_all(tags, vals, times, quals):
            return
        carried = self.entry.tag_index
        lo, hi = self.lo, self.hi
        reject = self.rejections.append
        isfinite = math.isfinite
        for i, (tag, v, ts, q) in enumerate(zip(tags, vals, times, quals, strict=True)):
            index = carried.get(tag) if type(tag) is str else None
            if index is None:
                reject(self._tag_rejection(tag, i, part))
                continue
            kind = type(v)
            if kind is float:
                if not isfinite(v):
                    reject(Rejection(Reason.NOT_FINITE, part(i, "v"), shown(v)))
                    continue
            elif kind is int and -(2**53) <= v <= 2**53:
                v = float(v)
            else:
                reject(self._value_rejection(v, i, part))
                continue
            ms = ts if type(ts) is int else time_ms(ts)
            if ms is None or ts is MISSING:
                reason = Reason.MISSING_FIELD if ts is MISSING else Reason.BAD_TIME
                reject(Rejection(reason, part(i, "ts"), f"{shown(ts)}: not epoch ms or RFC 3339"))
                continue
            if not lo <= ms <= hi:
                reject(self._skew_rejection(ms, i, part))
                continue
            if type(q) is not int or not 0 <= q <= _MAX_QUALITY:
                reject(Rejection(Reason.BAD_QUALITY, part(i, "q"), f"{shown(q)}: not 0…127"))
                continue
            self.tag_index.append(index)
            self.ts_ms.append(ms)
            self.values.append(v)
            self.quality.append(q)

    def _accept_all(
        self, tags: Sequence[Any], vals: Sequence[Any], times: Sequence[Any], quals: Sequence[Any]
    ) -> bool:
        """Accept every point at once when all of them pass (the usual message); False leaves
        the columns untouched for the point-by-point loop, which names each refusal.

        Same verdicts as the loop: known tags of this gateway; values float or int (never bool)
        with ints and floats below 2⁵³ in magnitude and finite; times int epoch ms in range;
        qualities int 0…127. Anything else (including ints the loop accepts at exactly ±2⁵³)
        falls back to the loop."""
        try:
            index = list(map(self.entry.tag_index.get, tags))
        except TypeError:  # an unhashable tag (array, object)
            return False
        if None in index:
            return False
        vtypes = set(map(type, vals))
        if not vtypes <= _NUMBER_TYPES or set(map(type, times)) != _INT_TYPE:
            return False
        if set(map(type, quals)) != _INT_TYPE:
            return False
        try:
            value = np.array(vals, dtype=np.float64)
            ts = np.array(times, dtype=np.int64)
            quality = np.array(quals, dtype=np.int64)
        except OverflowError:
            return False
        ok = (
            (np.abs(value) < _EXACT_INT).all()
            and (ts >= self.lo).all()
            and (ts <= self.hi).all()
            and (quality >= 0).all()
            and (quality <= _MAX_QUALITY).all()
        )
        if not ok:
            return False
        self.tag_index = cast(list[int], index)  # None was ruled out above
        self.ts_ms = list(times)
        self.values = value.tolist() if int in vtypes else list(vals)
        self.quality = list(quals)
        return True

    def _tag_rejection(self, tag: object, i: int, part: PartName) -> Rejection:
        if tag is MISSING:
            return Rejection(Reason.MISSING_FIELD, part(i, "tag"), "`tag` is required")
        if isinstance(tag, _NotObject):
            detail = f"{shown(tag.value)}: expected an object, got {kind_name(tag.value)}"
            return Rejection(Reason.WRONG_TYPE, part(i, ""), detail)
        if type(tag) is not str:
            return Rejection(Reason.WRONG_TYPE, part(i, "tag"), f"{shown(tag)}: expected a string")
        owner = self.directory.owners.get(tag)
        if owner is None:
            return Rejection(Reason.UNKNOWN_TAG, part(i, "tag"), f"{tag!r} is not in the plant")
        if owner.enterprise != self.entry.enterprise:
            return Rejection(
                Reason.CROSS_ENTERPRISE_TAG,
                part(i, "tag"),
                f"{tag!r} belongs to enterprise {owner.enterprise!r}, "
                f"gateway {self.entry.id!r} to {self.entry.enterprise!r}",
            )
        return Rejection(
            Reason.TAG_NOT_ON_GATEWAY,
            part(i, "tag"),
            f"{tag!r} is carried by gateway {owner.gateway!r}, not {self.entry.id!r}",
        )

    def _value_rejection(self, v: object, i: int, part: PartName) -> Rejection:
        if v is MISSING:
            return Rejection(Reason.MISSING_FIELD, part(i, "v"), "`v` is required")
        if v is None:
            return Rejection(Reason.NOT_FINITE, part(i, "v"), "null (no value)")
        if type(v) is int:
            return Rejection(Reason.WRONG_TYPE, part(i, "v"), f"{shown(v)}: beyond ±2⁵³")
        return Rejection(Reason.WRONG_TYPE, part(i, "v"), f"{shown(v)}: expected a number")

    def _skew_rejection(self, ms: int, i: int, part: PartName) -> Rejection:
        if ms > self.hi:
            return Rejection(Reason.TIME_IN_FUTURE, part(i, "ts"), f"{ms} > now + allowed skew")
        hint = " (epoch seconds? the protocol uses ms)" if 0 < ms < 10**11 else ""
        return Rejection(Reason.TIME_TOO_OLD, part(i, "ts"), f"{ms} < now - allowed age{hint}")
