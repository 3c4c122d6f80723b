"""Durations (`90s`, `8m`, `1h30m`, `2d`) and scenario times (`+3h`, `05:20`, seconds)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?"
                       r"\s*(?:(\d+(?:\.\d+)?)s)?\s*$")  # fmt: skip
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def parse_duration(text: str | float | int) -> float:
    """Seconds of `90s`, `8m`, `1h30m`, `2d`, or a bare number of seconds; ValueError if bad."""
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"negative duration {text}")
        return float(text)
    match = _DURATION.match(text)
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 8m, 1h30m, 2d)")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def parse_offset(text: str | float | int, start: datetime) -> float:
    """Seconds after `start` of a scenario time.

    `+3h20m` (offset), `05:20` or `05:20:30` (the first such wall-clock time at or after
    `start`, in start's UTC offset), or a number of seconds.
    """
    if isinstance(text, int | float):
        return parse_duration(text)
    clock = _CLOCK.match(text)
    if clock:
        hour, minute, second = int(clock[1]), int(clock[2]), int(clock[3] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"not a clock time: {text!r}")
        moment = start.replace(hour=hour, minute=minute, second=second, microsecond=0)
        if moment < start:
            moment += timedelta(days=1)
        return (moment - start).total_seconds()
    return parse_duration(text.lstrip().removeprefix("+"))
