"""Fast readings.jsonl writer: every line assembled in place by a few vectorized scatters.

A line is `{"ts":<ms>,"tag":"<tag>","gw":"<gw>","v":<number>,"q":<int>}` and a newline. Its
length is known before any byte is written, so each line's place in the output is a cumulative
sum. The line is cut into pieces (tail, fraction, integer part, sign, tag text, head) and each
piece is written for all lines with one numpy call (`byterows.put`), through a window of fixed
width that ends where the piece ends. A piece shorter than its window leaves junk to its left,
inside its own line; pieces are written right to left, so the next piece overwrites that junk.
No per-reading Python object and no pass to squeeze out padding: this is what makes several
million readings/s possible in Python.

Values are printed with the tag's instrument decimals (`12.345`), rounded half to even at that
resolution; a value that rounds to zero has no minus sign. Non-finite values are skipped (JSON
has no NaN). Quality is clipped to 0..999.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import numpy.typing as npt

from simulators.byterows import (
    I64,
    U8,
    Items,
    as_items,
    digit_count,
    digits,
    groups_for,
    put,
    right_aligned,
)
from simulators.signals import FloatArray

MAX_DECIMALS = 12  # finer than 1e-12 of an engineering unit is no instrument resolution
_SCALED_LIMIT = 9e18  # |value| · 10^decimals must fit an int64
_HEAD = b'{"ts":'
_TAG_OPEN = b',"tag":"'
_TABLE_DECIMALS = 4  # fractions up to 4 decimals come from one table; beyond, digit by digit
_FIRST_FRACTION = [0] + [sum(10**k for k in range(d)) for d in range(1, _TABLE_DECIMALS + 1)]


@cache
def _fraction_items() -> Items:
    """Row _FIRST_FRACTION[d] + f is `.` and f printed with d digits; row 0 is empty."""
    texts = [b""] + [
        f".{f:0{d}d}".encode() for d in range(1, _TABLE_DECIMALS + 1) for f in range(10**d)
    ]
    return as_items(right_aligned(texts))


@cache
def _tails() -> tuple[Items, I64]:
    """`,"q":<q>}` and the newline for q in 0..999, and their lengths."""
    texts = [f',"q":{q}}}\n'.encode() for q in range(1000)]
    return as_items(right_aligned(texts)), np.array([len(t) for t in texts], dtype=np.int64)


class ReadingsEncoder:
    """Encodes readings of a fixed tag list into JSONL bytes."""

    def __init__(self, tags: Sequence[str], gateways: Sequence[str], decimals: Sequence[int]):
        if any(not 0 <= d <= MAX_DECIMALS for d in decimals):
            raise ValueError(f"decimals must be within 0..{MAX_DECIMALS}")
        texts = [
            f'{tag}","gw":"{gw}","v":'.encode() for tag, gw in zip(tags, gateways, strict=True)
        ]
        self._tag_text = right_aligned(texts)
        self._tag_items = as_items(self._tag_text)
        self._tag_len = np.array([len(t) for t in texts], dtype=np.int64)
        # How far a short tag text's junk reaches left: the head in front must be that long.
        self._tag_spread = int(self._tag_text.shape[1] - self._tag_len.min())
        self._decimals = np.asarray(decimals, dtype=np.int64)
        self._scale = 10.0**self._decimals  # float64, as `abs(v) * 10.0**d` per line
        self._unit = 10**self._decimals
        self._point = (self._decimals > 0).astype(np.int64)
        self._first_fraction = np.array(
            [_FIRST_FRACTION[min(d, _TABLE_DECIMALS)] for d in decimals], dtype=np.int64
        )

    def encode(
        self,
        ts_ms: npt.NDArray[np.int64],
        tag: npt.NDArray[np.int32],
        value: FloatArray,
        quality: npt.NDArray[np.int8],
    ) -> bytes:
        """JSONL bytes of the readings (non-finite values are skipped)."""
        return self.encode_array(ts_ms, tag, value, quality).tobytes()

    def encode_array(
        self,
        ts_ms: npt.NDArray[np.int64],
        tag: npt.NDArray[np.int32],
        value: FloatArray,
        quality: npt.NDArray[np.int8],
    ) -> U8:
        """Like `encode`, as a uint8 array: a stream can write it without another copy."""
        finite = np.isfinite(value)
        if not finite.all():
            ts_ms, tag, value, quality = ts_ms[finite], tag[finite], value[finite], quality[finite]
        if ts_ms.shape[0] == 0:
            return np.empty(0, dtype=np.uint8)
        ts_ms = np.asarray(ts_ms, dtype=np.int64)
        if int(ts_ms.min()) < 0:
            raise ValueError("timestamps before 1970 are not readings")
        # Readings come sorted by time, many per stamp: format each run of equal stamps once.
        new_run = np.empty(ts_ms.shape[0], dtype=bool)
        new_run[0] = True
        np.not_equal(ts_ms[1:], ts_ms[:-1], out=new_run[1:])
        run = np.cumsum(new_run) - 1
        stamps = ts_ms[new_run]
        stamp_len = digit_count(stamps, 19)

        tag_i = np.asarray(tag, dtype=np.intp)
        decimals = np.take(self._decimals, tag_i)
        magnitude = np.abs(value) * np.take(self._scale, tag_i)
        if float(magnitude.max()) >= _SCALED_LIMIT:
            raise ValueError("a value is too large to print at its tag's resolution")
        scaled = np.rint(magnitude).astype(np.int64)
        unit = np.take(self._unit, tag_i)
        whole = scaled // unit
        whole_len = digit_count(whole, len(str(int(whole.max()))))
        negative = (value < 0) & (scaled > 0)
        point = np.take(self._point, tag_i)
        q = quality.astype(np.intp)
        np.clip(q, 0, 999, out=q)
        tail_items, tail_lengths = _tails()
        tail_len = np.take(tail_lengths, q)
        tag_len = np.take(self._tag_len, tag_i)
        head_len = np.take(len(_HEAD) + stamp_len + len(_TAG_OPEN), run)
        line_len = head_len + tag_len + negative + whole_len + point + decimals + tail_len
        ends = np.cumsum(line_len)
        out = np.empty(int(ends[-1]), dtype=np.uint8)

        # Right to left. Before the number a line has ≥ 30 bytes (head and tag text), more than
        # any number window is wide, so no window reaches into the previous line.
        put(out, ends, np.take(tail_items, q))
        number_end = ends - tail_len
        frac = scaled - whole * unit
        most_decimals = int(decimals.max())
        if most_decimals <= _TABLE_DECIMALS:
            fraction_row = np.take(self._first_fraction, tag_i) + frac
            put(out, number_end, np.take(_fraction_items(), fraction_row))
        else:
            put(out, number_end, as_items(digits(frac, -(-most_decimals // 4))))
            out[(number_end - decimals - 1)[point.astype(bool)]] = ord(".")
        whole_end = number_end - decimals - point
        put(out, whole_end, as_items(digits(whole, groups_for(int(whole.max())))))
        if negative.any():
            out[(whole_end - whole_len - 1)[negative]] = ord("-")
        tag_end = whole_end - whole_len - negative
        if self._tag_spread <= len(_HEAD) + int(stamp_len.min()) + len(_TAG_OPEN):
            put(out, tag_end, np.take(self._tag_items, tag_i))
        else:
            self._put_tag_text_exactly(out, tag_end, tag_i)
        _put_heads(out, tag_end - tag_len, stamps, stamp_len, run)
        return out

    def _put_tag_text_exactly(self, out: U8, ends: I64, tag_i: npt.NDArray[np.intp]) -> None:
        """Tag texts of very different lengths: each length written on its own, without junk."""
        width = self._tag_text.shape[1]
        line_len = np.take(self._tag_len, tag_i)
        for length in np.unique(self._tag_len).tolist():
            rows = np.flatnonzero(line_len == length)
            exact = as_items(self._tag_text[:, width - length :])
            put(out, ends[rows], np.take(exact, tag_i[rows]))


def _put_heads(out: U8, ends: I64, stamps: I64, stamp_len: I64, run: I64) -> None:
    """`{"ts":<ms>,"tag":"` of each line, written exactly: the previous line is left of it."""
    stamp_digits = digits(stamps, groups_for(int(stamps.max())))
    uniform = int(stamp_len.min()) == int(stamp_len.max())
    for length in np.unique(stamp_len).tolist():
        width = len(_HEAD) + length + len(_TAG_OPEN)
        head = np.empty((stamps.shape[0], width), dtype=np.uint8)
        head[:, : len(_HEAD)] = np.frombuffer(_HEAD, dtype=np.uint8)
        head[:, len(_HEAD) : width - len(_TAG_OPEN)] = stamp_digits[:, -length:]
        head[:, width - len(_TAG_OPEN) :] = np.frombuffer(_TAG_OPEN, dtype=np.uint8)
        if uniform:
            put(out, ends, np.take(as_items(head), run))
        else:
            rows = np.flatnonzero(np.take(stamp_len, run) == length)
            put(out, ends[rows], np.take(as_items(head), run[rows]))
