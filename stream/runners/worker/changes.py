"""From one partition engine's events to the source changes of the enterprise merge (pure).

The engine reports a source's colour (risk events) but neither the moment it counts a new alarm
for flood nor a severity move that leaves the colour alone; both are read off its alarm events:

- every change of an alarm's reported ISA-18.2 state is an event, so a shadow of `reported`
  follows the engine exactly; an alarm going to unacknowledged from normal or returned-to-normal
  is what the engine counts as a new alarm (unshelving or unsuppressing is not);
- a source's severity is at least that of its alarms in alarm (S2 if any level-2 alarm, else S1
  if any level-1), which dates a severity move at the alarm event that caused it. S3 depends on
  timers and pairs of tags the events do not show; an S3 move changes the colour with the default
  matrix, and its risk event then carries the exact severity. Whatever the shadow misses is
  corrected at the end of the engine call, dated at the last alarm moving that way.
"""

from __future__ import annotations

import numpy as np

from hazardwatch.types import AlarmState
from stream.engine import RiskEngine
from stream.events import AlarmEvent, Event, FloodEvent, RiskEvent, event_id
from stream.lifecycle import REPORTED_STATES
from stream.runners.worker.feed import SourceChange

_INDEX = {state: i for i, state in enumerate(REPORTED_STATES)}
_UNACKED = _INDEX[AlarmState.UNACKED]
_INACTIVE = (_INDEX[AlarmState.NORMAL], _INDEX[AlarmState.RTN_UNACKED])
_SUPPRESSED = _INDEX[AlarmState.SUPPRESSED]
_IN_ALARM = (_UNACKED, _INDEX[AlarmState.ACKED])


class SourceChangeTracker:
    """Follows one engine's alarm states and source severities through its events."""

    def __init__(self, engine: RiskEngine) -> None:
        self.engine = engine
        table, slots, state = engine.table, engine.slots, engine.state
        self._reported: list[int] = state.reported.astype(np.int64).tolist()
        self._slots_of: dict[tuple[str, str], list[int]] = {}
        self._source_of: dict[str, int] = {s: i for i, s in enumerate(table.source_ids)}
        # alarms in alarm per source and slot severity (index 1: level 1, 2: level 2)
        self._in_alarm = [[0, 0, 0] for _ in table.source_ids]
        for s in np.flatnonzero(slots.enabled).tolist():
            tag = int(slots.tag[s])
            self._slots_of.setdefault((table.tag_ids[tag], slots.cond[s]), []).append(s)
            if self._reported[s] in _IN_ALARM:
                source = int(table.unit_source[int(table.tag_unit[tag])])
                self._in_alarm[source][min(int(slots.sev[s]), 2)] += 1
        self._told: list[int] = state.ssev.astype(np.int64).tolist()

    def observe(self, produced: list[Event]) -> tuple[list[Event], list[SourceChange]]:
        """The source-level events of one engine call and the source changes they imply."""
        kept: list[Event] = []
        changes: list[SourceChange] = []
        # The engine counts a new alarm for flood after the alarm's own consequences (S1 alarms
        # suppressed by a new S3, the source's colour): hold the change until those have passed.
        new_alarm: SourceChange | None = None
        moved: dict[tuple[int, int], int] = {}  # (source, +1 into alarm / -1 out) → last ts
        for event in produced:
            if isinstance(event, FloodEvent):
                continue  # this engine sees only some of the enterprise's sources
            if isinstance(event, RiskEvent) and event.level == "enterprise":
                continue
            before, after = self._transition(event) if isinstance(event, AlarmEvent) else (0, 0)
            if new_alarm is not None and not (
                event.ts_ms == new_alarm.ts_ms and event.source == new_alarm.source
                and (isinstance(event, RiskEvent) or _SUPPRESSED in (before, after))
            ):  # fmt: skip
                changes.append(new_alarm)
                new_alarm = None
            if isinstance(event, RiskEvent):
                source = self._source_of[event.source or ""]
                self._told[source] = int(event.severity)
                changes.append(SourceChange("colour", event_id(event), event.ts_ms,
                                            event.enterprise, event.source, int(event.colour),
                                            int(event.severity)))  # fmt: skip
            elif isinstance(event, AlarmEvent):
                if after == _UNACKED and before in _INACTIVE:
                    new_alarm = SourceChange("new_alarm", event_id(event), event.ts_ms,
                                             event.enterprise, event.source)  # fmt: skip
                if (before in _IN_ALARM) != (after in _IN_ALARM):
                    changes += self._alarm_moved(event, after in _IN_ALARM, moved)
            kept.append(event)
        if new_alarm is not None:
            changes.append(new_alarm)
        changes += self._corrections(moved)
        changes.sort(key=lambda c: c.ts_ms)
        return kept, changes

    def _transition(self, event: AlarmEvent) -> tuple[int, int]:
        """(before, after) reported state of the alarm behind `event`."""
        state = _INDEX[event.state]
        slots = self._slots_of.get((event.tag, event.condition), [])
        if not slots:
            return state, state
        # Two rules of one kind on one tag share a condition name: the slot that moved is the
        # one whose state differs from the event's.
        slot = next((s for s in slots if self._reported[s] != state), slots[0])
        before, self._reported[slot] = self._reported[slot], state
        return before, state

    def _alarm_moved(
        self, event: AlarmEvent, into: bool, moved: dict[tuple[int, int], int]
    ) -> list[SourceChange]:
        source = self._source_of[event.source]
        counts = self._in_alarm[source]
        counts[min(int(event.severity), 2)] += 1 if into else -1
        moved[(source, 1 if into else -1)] = event.ts_ms
        floor = 2 if counts[2] > 0 else (1 if counts[1] > 0 else 0)
        told = self._told[source]
        # S3 (above the floor) is left to the risk events and the end-of-call correction
        if floor == told or (told == 3 and floor == 2):
            return []
        self._told[source] = floor
        return [self._severity(source, event.ts_ms, floor)]

    def _corrections(self, moved: dict[tuple[int, int], int]) -> list[SourceChange]:
        out = []
        ssev = self.engine.state.ssev.tolist()
        clock = self.engine.clock_ms or 0
        for source, (sev, told) in enumerate(zip(ssev, self._told, strict=True)):
            if sev != told:
                ts = moved.get((source, 1 if sev > told else -1), clock)
                out.append(self._severity(source, ts, sev))
                self._told[source] = sev
        return out

    def _severity(self, source: int, ts: int, severity: int) -> SourceChange:
        table = self.engine.table
        source_id = table.source_ids[source]
        enterprise = table.enterprise_ids[int(table.source_enterprise[source])]
        return SourceChange("severity", f"s:{source_id}:{ts}:{severity}", ts, enterprise,
                            source_id, 0, severity)  # fmt: skip
