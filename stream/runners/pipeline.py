"""One pipeline step shared by the runners: decoded readings → engine → sink, state, alerts.

Durability order (nothing is acknowledged before it is safe):
1. the engine evaluates the readings (pure, in memory);
2. events go to the listeners at once (the alert outbox commits them to SQLite before returning)
   — before anything that can fail on InfluxDB's account, because a redelivered reading is a
   duplicate to the engine and would not produce its events again;
3. event lines and readings collect in the pipeline's open commit group;
4. `commit()` closes the group: when it holds events (or a checkpoint is due) it takes the
   engine state's delta since the last save (in memory: only changed chunks, `StateStore`);
5. `persist()` writes that delta in one transaction with the group's event lines, which are
   *held* there until written — a crash after the save cannot lose them;
6. the group's lines are written to InfluxDB or its on-disk spool, then the held lines are
   released (`flush()` does 4–6 at once; the embedded runner's writer thread does 5–6).
Only after step 6 may the caller acknowledge the MQTT messages behind the group's readings; a
crash before that makes the broker redeliver them: the engine drops the re-sent readings as
duplicates or late ones (counted), so redelivery creates no second alarm, and their reading lines
are built again (the lines follow the input, not the engine's verdict).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hazardwatch.plant.model import Plant
from stream.engine import Command, ReadingBatch, RiskEngine
from stream.events import Event
from stream.policy import EnginePolicy
from stream.runners.state_store import StateDelta, StateStore, snapshot_members
from stream.sinks.influx import InfluxSink
from stream.sinks.lines import EventLines, ReadingLines
from stream.sinks.rbe import ExceptionFilter
from stream.tagtable import TagTable

log = logging.getLogger(__name__)

EventListener = Callable[[Sequence[Event]], None]
CHECKPOINT_MS = 60_000
"""Without events the state is still saved this often (wall ms), so that a restart resumes the
tags' recent values and timers instead of relearning them."""


ROLL_CALL_MS = 24 * 3600 * 1000
"""Every hazard source's colour is written at start and then this often (engine ms), although
colours are otherwise written on change only: "colour of every source" panels look back 30 days
(dashboards/influxql.py `RETENTION_WINDOW`), and a source that never changed would be missing."""


@dataclass
class Commit:
    """A closed commit group: its lines in order, the state delta and event lines to persist
    before writing them, and the ids of held lines it carries."""

    lines: list[str] = field(default_factory=list)
    event_lines: list[str] = field(default_factory=list)
    delta: StateDelta | None = None
    held: list[int] = field(default_factory=list)


class Pipeline:
    """Engine plus its outputs; restores the engine from the state store when it has a state."""

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
        self.table = TagTable.from_plant(plant)
        saved = store.load()
        self.restored = saved is not None
        self.engine = (
            RiskEngine.restore(self.table, policy, saved)
            if saved
            else RiskEngine(self.table, policy)
        )
        self.sink = sink
        self.store = store
        self.listeners = list(listeners)
        self.rbe = rbe
        self.readings = ReadingLines(plant.resolved_tags())
        self.event_lines = EventLines({e.id: e.region for e in plant.enterprises})
        self.events_out = 0
        self._lines: list[str] = []
        self._event_lines: list[str] = []
        self._dirty = False  # the engine changed since the last save
        self._checkpoint_at: int | None = None
        self._roll_call_at: int | None = None  # engine ms of the next colour roll call
        self._carry: list[int] = []  # held ids whose lines travel with the next group
        # Lines held by a crashed process: written again with the first group (idempotent).
        for held_id, lines in store.held_lines():
            self._lines.extend(lines)
            self._carry.append(held_id)

    @property
    def pending_lines(self) -> int:
        """Lines in the open commit group."""
        return len(self._lines)

    def handle(self, batch: ReadingBatch) -> list[Event]:
        """Evaluate a batch of readings; returns the events it produced."""
        events = self.engine.process(batch)
        self._dirty = True
        self._publish(events)
        tag, ts, value, quality = batch.tag, batch.ts, batch.value, batch.quality
        if self.rbe is not None:
            keep = self.rbe.keep(tag, ts, value)
            tag, ts, value, quality = tag[keep], ts[keep], value[keep], quality[keep]
        self._lines.extend(self.readings.lines(tag, ts, value, quality))
        return events

    def tick(self, now_ms: int) -> list[Event]:
        """Fire timers (delays, stale, escalation) up to `now_ms`."""
        events = self.engine.advance(now_ms)
        self._dirty = True
        self._publish(events)
        return events

    def roll_call_if_due(self) -> bool:
        """Add the colour roll call to the open group once the engine has a clock, then once a
        day (engine time); True when it did."""
        clock = self.engine.clock_ms
        if clock is None or (self._roll_call_at is not None and clock < self._roll_call_at):
            return False
        self._lines.extend(self.event_lines.roll_call(self.engine.roll_call()))
        self._roll_call_at = clock + ROLL_CALL_MS
        return True

    def command(self, cmd: Command) -> list[Event]:
        """Apply an operator command (acknowledge, shelve, …)."""
        events = self.engine.command(cmd)
        self._dirty = True
        self._publish(events)
        return events

    def add_lines(self, lines: Sequence[str]) -> None:
        """Other lines (gateway status, operations) to write with the open group."""
        self._lines.extend(lines)

    def commit(self, now_ms: int = 0) -> Commit:
        """Close the open group, with the state's delta when events need it (or a checkpoint is
        due, `now_ms` on the wall clock); `persist()` it before writing its lines."""
        lines, self._lines = self._lines, []
        event_lines, self._event_lines = self._event_lines, []
        held, self._carry = self._carry, []
        checkpoint = self._checkpoint_at is not None and now_ms >= self._checkpoint_at
        delta = None
        if event_lines or (self._dirty and checkpoint):
            delta = self._delta()
        if delta is not None or self._checkpoint_at is None:
            self._checkpoint_at = now_ms + CHECKPOINT_MS
        return Commit(lines, event_lines, delta, held)

    def persist(self, commit: Commit) -> None:
        """Commit the group's state delta and hold its event lines (one transaction, fsync)."""
        if commit.delta is None and not commit.event_lines:
            return
        held_id = self.store.commit(commit.delta, commit.event_lines)
        commit.delta = None
        commit.event_lines = []
        if held_id:
            commit.held.append(held_id)

    def save_state(self) -> None:
        """Save the engine state now if it changed (at shutdown)."""
        if self._dirty:
            self.store.commit(self._delta())

    def _delta(self) -> StateDelta:
        self._dirty = False
        members = snapshot_members(self.engine.state, self.table)
        return self.store.prepare(members, self.engine.clock_ms or 0)

    def written(self, commit: Commit) -> None:
        """The group's lines are in InfluxDB or the spool: release its held lines."""
        for held_id in commit.held:
            self.store.release(held_id)

    def flush(self) -> None:
        """Commit the open group and write it (InfluxDB or spool) before returning.

        BackpressureError (spool full) keeps the lines in the sink's buffer for the next flush,
        and their held ids travel with the next group.
        """
        commit = self.commit()
        self.persist(commit)
        self.sink.add(commit.lines)
        try:
            self.sink.flush()
        except BaseException:
            self._carry[:0] = commit.held
            raise
        self.written(commit)

    def _publish(self, events: list[Event]) -> None:
        if not events:
            return
        for listener in self.listeners:
            listener(events)
        self.events_out += len(events)
        self._event_lines.extend(self.event_lines.line(e) for e in events)
        self._lines.extend(self._event_lines[-len(events) :])
