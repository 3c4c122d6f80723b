"""Reading timestamps for `hazardwatch evaluate`: RFC 3339 strings (with offset) or epoch ms.

Gateways stamp a whole batch with one time, so most strings repeat: `Timestamps` memoises them.
Recordings with a distinct string per reading (historian exports) are parsed in bulk by
`rfc3339_ms`, with numpy, for the common layout `YYYY-MM-DDTHH:MM:SS[.f|.ff|.fff](Z|±HH:MM)`;
any other string (other layouts, more digits, out-of-range fields) goes through
`datetime.fromisoformat`, which is the definition the bulk path reproduces exactly.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]
U8 = npt.NDArray[np.uint8]

MIN_MS, MAX_MS = -(2**62), 2**62  # far beyond any real time; keeps ms arithmetic in int64
CACHE_LIMIT = 200_000
_WIDEST = 29  # 2024-05-01T08:00:00.050+08:00
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_D = ord("0")


class Timestamps:
    """RFC 3339 strings (with offset) or epoch ms → epoch ms, memoised: gateways share stamps."""

    def __init__(self) -> None:
        self.cache: dict[str, int] = {}

    def __call__(self, raw: object) -> int:
        """Epoch ms of `raw`; ValueError if it is neither an offset RFC 3339 string nor an int
        in ±2^62 (bools are not ints here)."""
        if isinstance(raw, int) and not isinstance(raw, bool):
            if not MIN_MS <= raw <= MAX_MS:
                raise ValueError("ts in epoch ms out of range")
            return raw
        if not isinstance(raw, str):
            raise ValueError("ts must be an RFC 3339 string or epoch milliseconds")
        hit = self.cache.get(raw)
        if hit is None:
            hit = self.parse(raw)  # C fromisoformat: faster than any Python-level shortcut
            if len(self.cache) > CACHE_LIMIT:
                self.cache.clear()
            self.cache[raw] = hit
        return hit

    @staticmethod
    def parse(raw: str) -> int:
        """One RFC 3339 string → epoch ms (rounded); ValueError without a UTC offset."""
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            raise ValueError("ts has no UTC offset")
        return round(moment.timestamp() * 1000)


def rfc3339_ms(texts: list[str]) -> tuple[I64, BOOL]:
    """Epoch ms of each string and whether the bulk layout applied; where it did not (other
    layout, a field out of range, a year outside 1900–2199), parse that string one by one."""
    n = len(texts)
    ms = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    lengths = np.fromiter(map(len, texts), np.int64, n)
    fits = lengths <= _WIDEST
    if not bool(fits.any()):
        return ms, ok
    rows = np.flatnonzero(fits)
    wide = np.array([texts[i] for i in rows.tolist()], dtype=f"U{_WIDEST}")
    codes = wide.view(np.uint32).reshape(rows.shape[0], _WIDEST)
    ascii_ = (codes < 128).all(axis=1)
    chars = codes.astype(np.uint8)
    for frac in (0, 1, 2, 3):
        for zone in (1, 6):
            width = 19 + (frac + 1 if frac else 0) + zone
            pick = np.flatnonzero((lengths[rows] == width) & ascii_)
            if pick.shape[0]:
                got, good = _layout(chars[pick, :width], frac, zone)
                ms[rows[pick]], ok[rows[pick]] = got, good
    return ms, ok


def _num(c: U8, start: int, digits: int) -> tuple[I64, BOOL]:
    part = c[:, start : start + digits].astype(np.int64) - _D
    value = part[:, 0]
    for k in range(1, digits):
        value = value * 10 + part[:, k]
    good = np.asarray(((part >= 0) & (part <= 9)).all(axis=1), dtype=bool)
    return value, good


def _layout(c: U8, frac: int, zone: int) -> tuple[I64, BOOL]:
    """One fixed layout: `frac` fraction digits (0 = no fraction), `zone` 1 (Z) or 6 (±HH:MM)."""
    year, ok = _num(c, 0, 4)
    month, ok2 = _num(c, 5, 2)
    day, ok3 = _num(c, 8, 2)
    hour, ok4 = _num(c, 11, 2)
    minute, ok5 = _num(c, 14, 2)
    second, ok6 = _num(c, 17, 2)
    ok &= ok2 & ok3 & ok4 & ok5 & ok6
    for pos, ch in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":")):
        ok &= c[:, pos] == ord(ch)
    z = 19
    milli = np.zeros(c.shape[0], dtype=np.int64)
    if frac:
        ok &= c[:, 19] == ord(".")
        digits, ok7 = _num(c, 20, frac)
        ok &= ok7
        milli = digits * 10 ** (3 - frac)
        z = 20 + frac
    offset = np.zeros(c.shape[0], dtype=np.int64)
    if zone == 1:
        ok &= c[:, z] == ord("Z")
    else:
        sign = np.where(c[:, z] == ord("-"), -1, 1)
        ok &= (c[:, z] == ord("+")) | (c[:, z] == ord("-"))
        oh, ok8 = _num(c, z + 1, 2)
        om, ok9 = _num(c, z + 4, 2)
        ok &= ok8 & ok9 & (c[:, z + 3] == ord(":")) & (oh <= 23) & (om <= 59)
        offset = sign * (oh * 60 + om) * 60_000
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    days_in = _DAYS[np.where(month_ok, month, 1)] + ((month == 2) & leap)
    ok &= (year >= 1900) & (year <= 2199) & month_ok & (day >= 1) & (day <= days_in)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    # days since 1970-01-01 (proleptic Gregorian, March-based year)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468
    ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli - offset
    return ms, ok
