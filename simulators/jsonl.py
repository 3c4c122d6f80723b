"""Fast readings.jsonl writer: numpy byte matrices instead of per-reading string formatting.

Each reading becomes one fixed-width row of bytes — `{"ts":<13 digits>,"tag":"…","gw":"…",
"v":<number>,"q":<int>}` — padded with spaces; the spaces are then dropped in one vectorized
pass (ids cannot contain spaces: the plant's Identifier pattern forbids them). Values are
printed with the tag's instrument decimals, e.g. `12.345`. This is what makes ≥ 1 M readings/s
possible in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from simulators.signals import FloatArray

U8 = npt.NDArray[np.uint8]
SPACE = 32
_TS_DIGITS = 13
_INT_DIGITS = 9  # |value| < 1e9 in any engineering unit we carry


_TABLE = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)
_TABLE32 = _TABLE.view(np.uint32).ravel()
_POW10 = 10 ** np.arange(1, 19, dtype=np.int64)
_QUALITY = np.array([list(f"{i:>3d}".encode()) for i in range(1000)], dtype=np.uint8)


def _digits(numbers: npt.NDArray[np.int64], width: int) -> U8:
    """Right-aligned decimal digits of non-negative integers; leading zeros become spaces.

    Four digits per step through a 10 000-row lookup table: a quarter of the divisions.
    """
    groups = -(-width // 4)
    words = np.empty((numbers.shape[0], groups), dtype=np.uint32)
    rest = numbers
    for g in range(groups - 1, -1, -1):
        rest, low = np.divmod(rest, 10_000)
        words[:, g] = _TABLE32[low]  # four characters moved as one 32-bit word
    out = words.view(np.uint8).reshape(numbers.shape[0], groups * 4)
    count = np.searchsorted(_POW10, numbers, side="right") + 1  # digits, at least one
    lead = np.arange(groups * 4, dtype=np.int64)[None, :] < (groups * 4 - count)[:, None]
    np.copyto(out, np.uint8(SPACE), where=lead)
    return out[:, groups * 4 - width :]


class ReadingsEncoder:
    """Encodes readings of a fixed tag list into JSONL bytes."""

    def __init__(self, tags: Sequence[str], gateways: Sequence[str], decimals: Sequence[int]):
        prefixes = [
            f',"tag":"{tag}","gw":"{gw}","v":'.encode()
            for tag, gw in zip(tags, gateways, strict=True)
        ]
        width = max(len(p) for p in prefixes)
        self._prefix = np.full((len(prefixes), width), SPACE, dtype=np.uint8)
        for i, p in enumerate(prefixes):
            self._prefix[i, : len(p)] = np.frombuffer(p, dtype=np.uint8)
        self._decimals = np.asarray(decimals, dtype=np.int64)

    def encode(
        self,
        ts_ms: npt.NDArray[np.int64],
        tag: npt.NDArray[np.int32],
        value: FloatArray,
        quality: npt.NDArray[np.int8],
    ) -> bytes:
        """JSONL bytes of the readings (non-finite values are skipped: JSON has no NaN)."""
        finite = np.isfinite(value)
        if not finite.all():
            ts_ms, tag, value, quality = ts_ms[finite], tag[finite], value[finite], quality[finite]
        n = ts_ms.shape[0]
        if n == 0:
            return b""
        head = np.frombuffer(b'{"ts":', dtype=np.uint8)
        qhead = np.frombuffer(b',"q":', dtype=np.uint8)
        number = self._numbers(value, self._decimals[tag])
        parts: list[U8] = [
            np.broadcast_to(head, (n, head.shape[0])),
            _digits(ts_ms, _TS_DIGITS),
            self._prefix[tag],
            number,
            np.broadcast_to(qhead, (n, qhead.shape[0])),
            _QUALITY[np.clip(quality, 0, 999)],
            np.broadcast_to(np.frombuffer(b"}\n", dtype=np.uint8), (n, 2)),
        ]
        width = sum(p.shape[1] for p in parts)
        rows = np.empty((n, width), dtype=np.uint8)
        col = 0
        for part in parts:
            rows[:, col : col + part.shape[1]] = part
            col += part.shape[1]
        flat = rows.ravel()
        return bytes(flat[flat != SPACE].tobytes())

    @staticmethod
    def _numbers(value: FloatArray, decimals: npt.NDArray[np.int64]) -> U8:
        """Fixed-point text of each value with its own number of decimals, space padded."""
        n = value.shape[0]
        max_dec = int(decimals.max()) if n else 0
        # Round at each tag's own decimals, then shift to the common column layout.
        scaled = np.rint(np.abs(value) * 10.0**decimals).astype(np.int64)
        scaled *= 10 ** (max_dec - decimals)
        negative = (value < 0) & (scaled > 0)
        digits = _digits(scaled, _INT_DIGITS + max_dec)
        if max_dec:
            int_part, frac = digits[:, :_INT_DIGITS], digits[:, _INT_DIGITS:].copy()
            # The integer part needs at least a "0" before the point.
            int_part[:, -1] = np.where(int_part[:, -1] == SPACE, 48, int_part[:, -1])
            frac[frac == SPACE] = 48
            # Tags with fewer decimals: drop the extra digits (zeros after the per-tag rounding).
            cols = np.arange(max_dec)
            np.copyto(frac, np.uint8(SPACE), where=cols[None, :] >= decimals[:, None])
            point = np.where(decimals > 0, ord("."), SPACE).astype(np.uint8)[:, None]
            digits = np.concatenate([int_part, point, frac], axis=1)
        sign = np.where(negative, ord("-"), SPACE).astype(np.uint8)[:, None]
        # The sign goes right before the first digit; spaces in between are dropped later.
        return np.concatenate([sign, digits], axis=1)


def write_chunk(stream: BinaryIO, encoder: ReadingsEncoder, *arrays: object) -> int:
    """Encode and write; returns the number of bytes written."""
    data = encoder.encode(*arrays)  # type: ignore[arg-type]
    stream.write(data)
    return len(data)
