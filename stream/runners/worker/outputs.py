"""Where a worker's results go, each step durable before the next (see app.py's guarantee).

1. InfluxDB lines: written, or spooled to this worker's disk when InfluxDB is down; a full spool
   holds the worker (backpressure: Kafka keeps the backlog, /healthz turns 503).
2. Events to `{prefix}.alarms` (alarm, data quality, flood) or `{prefix}.risk` (colours) and every
   event to `{prefix}.alerts`, all keyed by enterprise, as the engine's event JSON
   (stream/events.py, the same bytes `hazardwatch evaluate` writes); source changes to
   `{prefix}.source-changes`. The call returns once Kafka acknowledged every record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hazardwatch.errors import BackpressureError
from stream.events import AlarmEvent, DataQualityEvent, Event, FloodEvent, event_to_json
from stream.runners.worker.feed import SourceChange
from stream.runners.worker.topics import WorkerTopics
from stream.sinks.influx import InfluxSink

log = logging.getLogger(__name__)

# (topic name, key, value, partition or None) → awaitable of the delivery future
Send = Callable[[str, bytes, bytes, int | None], Awaitable[Awaitable[Any]]]


class Outputs:
    """The InfluxDB sink and the output topics of one worker."""

    def __init__(
        self, sink: InfluxSink, topics: WorkerTopics, send: Send, partition: Callable[[str], int]
    ) -> None:
        self.sink = sink
        self.topics = topics
        self._send = send
        self._partition = partition
        self.backpressure = False
        self.events_out = 0

    async def write_lines(self, lines: list[str]) -> None:
        """Hand lines to the sink and flush; while the spool is full, hold and retry."""
        call: Callable[[], None] = lambda: self._add_and_flush(lines)  # noqa: E731
        while True:
            try:
                await asyncio.to_thread(call)
                self.backpressure = False
                return
            except BackpressureError as exc:
                if not self.backpressure:
                    log.error("InfluxDB spool full, holding telemetry: %s", exc)
                self.backpressure = True
                call = self.sink.flush  # the lines stay buffered in the sink: only flush again
                await asyncio.sleep(1.0)

    def _add_and_flush(self, lines: list[str]) -> None:
        self.sink.add(lines)
        self.sink.flush()

    async def publish(self, events: list[Event], changes: list[SourceChange]) -> None:
        """Send events and source changes; return when Kafka acknowledged all of them."""
        if not events and not changes:
            return
        pending = []
        topics = self.topics
        for event in events:
            value, key = event_to_json(event), event.enterprise.encode()
            alarmish = isinstance(event, AlarmEvent | DataQualityEvent | FloodEvent)
            for name in (topics.alarms if alarmish else topics.risk, topics.alerts):
                pending.append(await self._send(name, key, value, None))
        for change in changes:
            key, partition = change.enterprise.encode(), self._partition(change.enterprise)
            pending.append(await self._send(topics.source_changes, key, change.to_json(),
                                            partition))  # fmt: skip
        await asyncio.gather(*pending)
        self.events_out += len(events)
