"""Protocol times: epoch milliseconds or RFC 3339 with an explicit offset, to epoch ms."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: beyond it no calendar can show it


def time_ms(value: object) -> int | None:
    """Epoch ms from an int/float epoch-ms number or an RFC 3339 string with offset.

    Returns None for anything else: booleans, NaN/inf, strings without an offset (a local time
    is ambiguous), ISO 8601 forms RFC 3339 does not allow, numbers past year 9999. Fractions of
    a millisecond are truncated.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        ms = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        ms = int(value)
    elif isinstance(value, str):
        return _parse_rfc3339(value)
    else:
        return None
    return ms if -_MAX_MS <= ms <= _MAX_MS else None


def _parse_rfc3339(text: str) -> int | None:
    if not _RFC3339.match(text):
        return None
    normal = text.upper()
    if "." in normal:  # datetime parses at most microseconds; drop digits beyond them
        head, _, tail = normal.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        normal = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    try:
        parsed = datetime.fromisoformat(normal)
    except ValueError:  # e.g. month 13, hour 25
        return None
    return (parsed - _EPOCH) // _MS


def rfc3339(ms: int) -> str:
    """Epoch ms as RFC 3339 UTC with milliseconds, e.g. `2024-05-01T08:00:00.000Z`."""
    when = _EPOCH + timedelta(milliseconds=ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
