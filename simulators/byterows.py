"""Byte-level building blocks for assembling many text lines at once with numpy.

A piece of every line is written through windows `out[end - w : end]` of one width `w`, in a
single fancy assignment, each window moved as one `V{w}` item (a row of a byte table or of a
computed byte matrix). That costs a few nanoseconds per line whatever `w` is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
Items = npt.NDArray[np.void]

_WORDS = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)
_WORDS32 = _WORDS.view(np.uint32).ravel()  # four digit characters moved as one 32-bit word


def right_aligned(texts: Sequence[bytes]) -> U8:
    """Byte table with each text right-aligned in one row (junk on the left is never read)."""
    width = max(len(t) for t in texts)
    table = np.zeros((len(texts), width), dtype=np.uint8)
    for row, text in enumerate(texts):
        table[row, width - len(text) :] = np.frombuffer(text, dtype=np.uint8)
    return table


def as_items(table: U8) -> Items:
    """A (n, w) byte matrix as n items of w bytes, so a row moves as one element."""
    table = np.ascontiguousarray(table)
    return table.view(f"V{table.shape[1]}").reshape(table.shape[0])


def put(out: U8, ends: I64, rows: Items) -> None:
    """Write item i of `rows` to out[ends[i] - w : ends[i]], for all i in one call.

    Windows must not overlap one another (numpy does not promise an order of assignment).
    """
    width = rows.dtype.itemsize
    window: Items = np.ndarray(
        shape=(out.shape[0] - width + 1,), dtype=rows.dtype, buffer=out, strides=(1,)
    )
    window[ends - width] = rows


def digit_count(numbers: I64, most: int) -> I64:
    """Decimal digits of non-negative integers with at most `most` digits (0 has one)."""
    count = np.ones(numbers.shape[0], dtype=np.int64)
    for k in range(1, most):
        count += numbers >= 10**k
    return count


def digits(numbers: I64, groups: int) -> U8:
    """(n, 4·groups) zero-padded decimal digits of non-negative integers below 10^(4·groups)."""
    words = np.empty((numbers.shape[0], groups), dtype=np.uint32)
    rest = numbers
    for g in range(groups - 1, 0, -1):
        rest, low = np.divmod(rest, 10_000)
        words[:, g] = _WORDS32[low]
    words[:, 0] = _WORDS32[rest]
    return words.view(np.uint8)


def groups_for(largest: int) -> int:
    """Four-digit groups needed to print `largest`."""
    return max(1, -(-len(str(largest)) // 4))
