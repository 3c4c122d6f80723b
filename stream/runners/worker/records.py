"""Telemetry records of the bridge (ingest/records.py, format v1) → engine readings (pure).

A record that cannot be read is a counted rejection with a reason, never an exception: one bad
record must not stop a partition. Readings of tags the partition's engine does not know (a plant
file newer on the bridge than on the worker) are counted per reading.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ingest.protocol import PROTOCOL_VERSION
from stream.engine import ReadingBatch


class RecordRejectedError(Exception):
    """A telemetry record the worker cannot use; `reason` is the metric label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One decoded record: one gateway message's readings of one hazard source."""

    gateway: str
    seq: int
    sent_ms: int
    enterprise: str
    source: str
    tags: list[str]
    ts: list[int]
    values: list[float]
    quality: list[int]


def _ints(value: Any, n: int) -> list[int]:
    if not isinstance(value, list) or len(value) != n:
        raise RecordRejectedError("length_mismatch")
    if not all(type(x) is int for x in value):
        raise RecordRejectedError("bad_field")
    return value


def parse_telemetry(value: bytes | None) -> Telemetry:
    """Decode a record value; RecordRejectedError(reason) when it is not telemetry v1."""
    if not value:
        raise RecordRejectedError("empty")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise RecordRejectedError("bad_json") from None
    if not isinstance(data, dict):
        raise RecordRejectedError("bad_json")
    if data.get("v") != PROTOCOL_VERSION:
        raise RecordRejectedError("bad_version")
    gateway, seq, sent = data.get("gw"), data.get("seq"), data.get("sent")
    enterprise, source, tags = data.get("enterprise"), data.get("source"), data.get("tags")
    if not (
        isinstance(gateway, str) and type(seq) is int and type(sent) is int
        and isinstance(enterprise, str) and isinstance(source, str) and isinstance(tags, list)
        and all(isinstance(t, str) for t in tags)
    ):  # fmt: skip
        raise RecordRejectedError("bad_field")
    n = len(tags)
    ts = _ints(data.get("ts"), n)
    quality = _ints(data.get("q"), n)
    raw = data.get("vals")
    if not isinstance(raw, list) or len(raw) != n:
        raise RecordRejectedError("length_mismatch")
    values: list[float] = []
    for v in raw:
        if v is None:  # NaN/inf travel as null: the engine reports them as a sensor fault
            values.append(math.nan)
        elif type(v) is int or type(v) is float:
            values.append(float(v))
        else:
            raise RecordRejectedError("bad_field")
    return Telemetry(gateway, seq, sent, enterprise, source, tags, ts, values, quality)


class ReadingAssembler:
    """Collects the readings of several records into one ReadingBatch for one engine."""

    def __init__(self, tag_index: dict[str, int]) -> None:
        self._index = tag_index
        self.unknown_tags: Counter[str] = Counter()
        self._tag: list[int] = []
        self._ts: list[int] = []
        self._value: list[float] = []
        self._quality: list[int] = []

    def add(self, record: Telemetry) -> int:
        """Append a record's readings; returns how many were taken."""
        index = self._index
        taken = 0
        for tag, ts, value, quality in zip(
            record.tags, record.ts, record.values, record.quality, strict=True
        ):
            i = index.get(tag)
            if i is None:
                self.unknown_tags[tag] += 1
                continue
            self._tag.append(i)
            self._ts.append(ts)
            self._value.append(value)
            self._quality.append(quality)
            taken += 1
        return taken

    def __len__(self) -> int:
        return len(self._tag)

    def batch(self) -> ReadingBatch:
        """The collected readings in arrival order (the engine orders them by ts)."""
        return ReadingBatch(
            np.asarray(self._tag, np.int32),
            np.asarray(self._ts, np.int64),
            np.asarray(self._value, np.float64),
            np.clip(np.asarray(self._quality, np.int64), -128, 127).astype(np.int8),
        )
