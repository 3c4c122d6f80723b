"""One risk engine per telemetry partition, over the hazard sources hashed to it (no I/O).

`handle` takes the partition's records in offset order, drops what the bridge sent twice by
(gateway, seq, source), evaluates the readings, and returns a `Step`: the source-level events
(alarm, source colour, data quality), the source changes for the enterprise merge, and the
InfluxDB lines. Enterprise-level events of this engine (enterprise colour, flood) are dropped:
it sees only some of an enterprise's sources; `stream.runners.worker.enterprise` computes them
from all partitions' source changes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from alerting.commands import AckCommand
from hazardwatch.plant.model import Plant
from ingest.sequence import SequenceTracker, SeqVerdict
from stream.engine import Command, CommandKind, RiskEngine
from stream.events import Event
from stream.policy import EnginePolicy
from stream.runners.pipeline import ROLL_CALL_MS
from stream.runners.worker.changes import SourceChangeTracker
from stream.runners.worker.codec import EngineRow
from stream.runners.worker.feed import SourceChange
from stream.runners.worker.partitioning import sub_plant
from stream.runners.worker.records import ReadingAssembler, RecordRejectedError, parse_telemetry
from stream.sinks.lines import EventLines, ReadingLines
from stream.state import SnapshotError
from stream.tagtable import TagTable

log = logging.getLogger(__name__)


@dataclass
class Step:
    """What one engine call produced; `changed` = state moved, so the row must be saved."""

    events: list[Event] = field(default_factory=list)
    changes: list[SourceChange] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    changed: bool = False


@dataclass
class PartitionCounters:
    """Record-level counts of one partition (readings are counted by the engine)."""

    records: int = 0
    duplicates: int = 0
    readings: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


class PartitionEngine:
    """The engine of one partition, its dedup window and its position in Kafka."""

    def __init__(
        self,
        partition: int,
        plant: Plant,
        sources: tuple[str, ...],
        policy: EnginePolicy,
        row: EngineRow | None = None,
    ) -> None:
        self.partition = partition
        part = sub_plant(plant, sources)
        self.sources = frozenset(sources)
        self.plant_sources = frozenset(s.id for s in plant.hazard_sources)
        table = TagTable.from_plant(part)
        self.engine = RiskEngine(table, policy)
        self.offset = -1  # last telemetry offset applied
        self.command_offsets: dict[int, int] = {}
        self.restored = False
        if row is not None:
            try:
                self.engine = RiskEngine.restore(table, policy, row.snapshot)
                self.offset, self.command_offsets = row.offset, dict(row.commands)
                self.restored = True
            except SnapshotError as exc:  # plant changed shape: start over, loudly
                log.error("partition %d: snapshot not restored (%s); starting fresh",
                          partition, exc)  # fmt: skip
        self.tag_index = {tag: i for i, tag in enumerate(table.tag_ids)}
        self.readings = ReadingLines(part.resolved_tags())
        self.event_lines = EventLines({e.id: e.region for e in plant.enterprises})
        self.dedup = SequenceTracker()
        self.counters = PartitionCounters()
        self.changes = SourceChangeTracker(self.engine)
        self.roll_call_at: int | None = None  # engine ms of the next colour roll call

    # -- inputs --------------------------------------------------------------------------------
    def handle(self, records: Sequence[tuple[int, bytes | None]]) -> Step:
        """Evaluate records `(offset, value)` of this partition in offset order."""
        assembler = ReadingAssembler(self.tag_index)
        counters = self.counters
        for offset, value in records:
            self.offset = max(self.offset, offset)
            counters.records += 1
            try:
                record = parse_telemetry(value)
            except RecordRejectedError as exc:
                counters.rejected[exc.reason] += 1
                continue
            if record.source not in self.sources:
                reason = (
                    "foreign_source" if record.source in self.plant_sources else "unknown_source"
                )
                counters.rejected[reason] += 1
                continue
            key = f"{record.gateway}\x00{record.source}"
            verdict = self.dedup.check(key, record.seq, record.sent_ms)
            if verdict in (SeqVerdict.DUPLICATE, SeqVerdict.REPLAY):
                counters.duplicates += 1
                continue
            self.dedup.commit(key, record.seq, record.sent_ms, verdict)
            counters.readings += assembler.add(record)
        for tag, n in assembler.unknown_tags.items():
            counters.rejected["unknown_tag"] += n
            log.debug("partition %d: %d readings of unknown tag %s", self.partition, n, tag)
        if not len(assembler):
            return Step()
        batch = assembler.batch()
        step = self._run(lambda: self.engine.process(batch))
        step.lines[:0] = self.readings.lines(batch.tag, batch.ts, batch.value, batch.quality)
        return step

    def advance(self, now_ms: int) -> Step:
        """Fire the timers due by `now_ms` (stale, on/off delays, escalation, shelve expiry)."""
        return self._run(lambda: self.engine.advance(now_ms))

    def acknowledge(self, ack: AckCommand, partition: int, offset: int) -> Step | None:
        """Apply an acknowledgement read at (`partition`, `offset`) of the commands topic.

        None when this engine has seen that offset already or owns none of its tags. A command
        on an owned tag always marks the row changed, so the offset is saved with the state it
        produced and the command is never applied twice.
        """
        if offset < self.command_offsets.get(partition, 0):
            return None
        self.command_offsets[partition] = offset + 1
        tags = [self.tag_index[t] for t in ack.tags if t in self.tag_index]
        if not tags:
            return None
        step = Step(changed=True)
        for tag in tags:
            command = Command(CommandKind.ACKNOWLEDGE, ack.ts_ms, tag=tag)
            part = self._run(partial(self.engine.command, command))
            step.events += part.events
            step.changes += part.changes
            step.lines += part.lines
        return step

    def roll_call_if_due(self) -> list[str]:
        """`risk_v1` roll-call lines of this partition's hazard sources once the engine has a
        clock, then once a day (engine time), as the embedded runner writes them
        (`Pipeline.roll_call_if_due`). The engine's enterprise entries are left out: it sees
        only some of an enterprise's sources (the enterprise merge calls the enterprise)."""
        clock = self.engine.clock_ms
        if clock is None or (self.roll_call_at is not None and clock < self.roll_call_at):
            return []
        self.roll_call_at = clock + ROLL_CALL_MS
        calls = [call for call in self.engine.roll_call() if call.level == "source"]
        return self.event_lines.roll_call(calls)

    # -- state -----------------------------------------------------------------------------------
    def row(self) -> EngineRow:
        """The table row of the current state."""
        return EngineRow(self.offset, self.engine.snapshot(), dict(self.command_offsets),
                         self.engine.clock_ms or 0)  # fmt: skip

    # -- the engine call and what follows from it -------------------------------------------------
    def _run(self, call: Callable[[], list[Event]]) -> Step:
        produced = call()
        if not produced:
            return Step()
        events, changes = self.changes.observe(produced)
        lines = [self.event_lines.line(e) for e in events]
        return Step(events, changes, lines, changed=True)
