"""One pipeline step shared by the runners: decoded readings → engine → sink, state, alerts.

Durability order (nothing is acknowledged before it is safe):
1. the engine evaluates the readings (pure, in memory);
2. events go to the listeners (the alert outbox commits them to SQLite before returning) and
   the engine snapshot is committed to the state store — before anything that can fail on
   InfluxDB's account, because a redelivered reading is a duplicate to the engine and would
   not produce its events again;
3. event lines and readings go to the InfluxDB sink's buffer (a full spool raises
   BackpressureError but keeps the lines buffered);
4. `flush()` writes the sink's buffer to InfluxDB or its on-disk spool.
Only after `flush()` returns may the caller acknowledge the MQTT messages behind the readings;
a crash before that makes the broker redeliver them, and the engine drops the re-sent readings as
duplicates or late ones (counted), so redelivery creates no second alarm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hazardwatch.plant.model import Plant
from stream.engine import Command, ReadingBatch, RiskEngine
from stream.events import Event
from stream.policy import EnginePolicy
from stream.runners.state_store import StateStore
from stream.sinks.influx import InfluxSink
from stream.sinks.lines import EventLines, ReadingLines
from stream.sinks.rbe import ExceptionFilter
from stream.tagtable import TagTable

EventListener = Callable[[Sequence[Event]], None]


class Pipeline:
    """Engine plus its outputs; restores the engine from the state store when it has a snapshot."""

    def __init__(
        self,
        plant: Plant,
        policy: EnginePolicy,
        sink: InfluxSink,
        store: StateStore,
        listeners: Sequence[EventListener] = (),
        rbe: ExceptionFilter | None = None,
    ) -> None:
        self.plant = plant
        table = TagTable.from_plant(plant)
        saved = store.load()
        self.restored = saved is not None
        self.engine = (
            RiskEngine.restore(table, policy, saved) if saved else RiskEngine(table, policy)
        )
        self.sink = sink
        self.store = store
        self.listeners = list(listeners)
        self.rbe = rbe
        self.readings = ReadingLines(plant.resolved_tags())
        self.event_lines = EventLines({e.id: e.region for e in plant.enterprises})
        self.events_out = 0

    def handle(self, batch: ReadingBatch) -> list[Event]:
        """Evaluate a batch of readings; returns the events it produced."""
        events = self.engine.process(batch)
        self._publish(events)
        tag, ts, value, quality = batch.tag, batch.ts, batch.value, batch.quality
        if self.rbe is not None:
            keep = self.rbe.keep(tag, ts, value)
            tag, ts, value, quality = tag[keep], ts[keep], value[keep], quality[keep]
        self.sink.add(self.readings.lines(tag, ts, value, quality))
        return events

    def tick(self, now_ms: int) -> list[Event]:
        """Fire timers (delays, stale, escalation) up to `now_ms`."""
        events = self.engine.advance(now_ms)
        self._publish(events)
        return events

    def command(self, cmd: Command) -> list[Event]:
        """Apply an operator command (acknowledge, shelve, …)."""
        events = self.engine.command(cmd)
        self._publish(events)
        return events

    def flush(self) -> None:
        """Make everything handed in so far durable (InfluxDB or spool)."""
        self.sink.flush()

    def _publish(self, events: list[Event]) -> None:
        if not events:
            return
        for listener in self.listeners:
            listener(events)
        self.store.save(self.engine.snapshot(), self.engine.clock_ms or 0)
        self.events_out += len(events)
        self.sink.add([self.event_lines.line(e) for e in events])
