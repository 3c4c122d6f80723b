"""Replay a recording: select a time window, keep relative timing at a speed factor, batch per
gateway and sample time like the gateways did. Pure except for the injected clock and sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from hazardwatch.types import Reading
from ingest.protocol import encode_batch, telemetry_topic


@dataclass(frozen=True, slots=True)
class Batch:
    """One gateway message of a replay: its points share the gateway and sample time."""

    at_ms: int  # recording time of the points
    gateway: str
    topic: str
    payload: bytes
    points: int


def window(
    readings: Iterable[Reading], from_ms: int | None, to_ms: int | None
) -> Iterator[Reading]:
    """Readings with from_ms ≤ ts < to_ms (either bound optional)."""
    for reading in readings:
        if from_ms is not None and reading.ts_ms < from_ms:
            continue
        if to_ms is not None and reading.ts_ms >= to_ms:
            continue
        yield reading


def batches(
    readings: Iterable[Reading],
    prefix: str,
    enterprise_of: Callable[[Reading], tuple[str, str]],
    seq_start: int = 1,
) -> Iterator[Batch]:
    """Group consecutive readings of one gateway and sample time into protocol batches.

    `enterprise_of(reading)` returns (enterprise, gateway) for the topic and payload.
    """
    seq: dict[str, int] = {}
    group: list[Reading] = []
    key: tuple[str, str, int] | None = None

    def emit() -> Batch:
        enterprise, gateway = key[0], key[1]  # type: ignore[index]
        seq[gateway] = seq.get(gateway, seq_start - 1) + 1
        points = [(r.tag, r.ts_ms, r.v, r.q) for r in group]
        payload = encode_batch(gateway, seq[gateway], group[-1].ts_ms, points)
        topic = telemetry_topic(prefix, enterprise, gateway)
        return Batch(group[0].ts_ms, gateway, topic, payload, len(points))

    for reading in readings:
        enterprise, gateway = enterprise_of(reading)
        this = (enterprise, gateway, reading.ts_ms)
        if key is not None and this != key:
            yield emit()
            group = []
        key = this
        group.append(reading)
    if group:
        yield emit()


class Pacer:
    """Wall-clock pacing: recording time t is due at start + (t − t_first)/speed (0 = no wait)."""

    def __init__(self, speed: float, clock: Callable[[], float], sleep: Callable[[float], None]):
        self.speed, self.clock, self.sleep = speed, clock, sleep
        self._first_ms: int | None = None
        self._start = 0.0

    def wait_until(self, at_ms: int) -> float:
        """Sleep until `at_ms` is due; returns the seconds slept."""
        if self.speed <= 0:
            return 0.0
        if self._first_ms is None:
            self._first_ms, self._start = at_ms, self.clock()
        due = self._start + (at_ms - self._first_ms) / 1000.0 / self.speed
        ahead = due - self.clock()
        if ahead > 0:
            self.sleep(ahead)
            return ahead
        return 0.0
