"""The risk engine: readings and commands in, alarm / risk / flood / data-quality events out.

Pure: no I/O, no wall clock. Time is what the inputs say (epoch ms, UTC):

- The engine clock is the highest reading ts processed or `advance(now_ms)` / command time seen.
- Within `process(batch)` readings are applied in (ts, arrival) order. Before a reading at ts
  every timer due at ≤ ts fires (on/off delays, stale, shelve expiry, S3 hold, escalation,
  flood window), so events come out in time order.
- A reading older than the clock at the start of its batch is **late**: dropped and counted. A
  second reading of a tag at a ts already processed is a **duplicate**: dropped and counted
  (the first one wins, even if the value differs). Unknown tag indices are counted and dropped.
  `counters` holds the totals.
- Timers also fire on `advance(now_ms)`, which moves the clock without readings (stale
  detection needs it when a gateway falls silent).
- Commands act at `max(cmd.ts_ms, clock)`, after the timers due by then.

Per-tag state is a struct of numpy arrays (`stream.state`); the per-reading work is vectorized
(`stream.batch`); only change points and timers are walked in Python (`stream.lifecycle`).
Events at the same ms come out in the engine's deterministic processing order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from stream.batch import analyse_batch, stale_sweep
from stream.events import Event, RiskEvent
from stream.lifecycle import T_STALE, Lifecycle
from stream.policy import EnginePolicy
from stream.slots import SlotTable
from stream.state import NONE_MS, EngineState
from stream.tagtable import TagTable

NONE = int(NONE_MS)


class CommandKind(StrEnum):
    """Operator and system inputs to the alarm life-cycle."""

    ACKNOWLEDGE = "acknowledge"  # tag (+ optional condition)
    SHELVE = "shelve"  # tag, until_ms
    UNSHELVE = "unshelve"  # tag
    OUT_OF_SERVICE = "out_of_service"  # tag
    RETURN_TO_SERVICE = "return_to_service"  # tag
    INTERLOCK_BYPASSED = "interlock_bypassed"  # unit, on


@dataclass(frozen=True, slots=True)
class Command:
    """A command at `ts_ms`; `tag`/`unit` are table indices, `until_ms` the shelve expiry."""

    kind: CommandKind
    ts_ms: int
    tag: int = -1
    unit: int = -1
    condition: str | None = None
    until_ms: int = 0
    on: bool = True


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Readings as parallel arrays: tag index, ts (epoch ms), value, quality (0 = good)."""

    tag: npt.NDArray[np.int32]
    ts: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    quality: npt.NDArray[np.int8]

    @classmethod
    def of(
        cls, tag: object, ts: object, value: object, quality: object | None = None
    ) -> ReadingBatch:
        """Coerce array-likes to the engine's dtypes; quality defaults to all good."""
        t = np.asarray(tag, dtype=np.int32)
        q = np.zeros(t.shape[0], np.int8) if quality is None else np.asarray(quality, np.int8)
        return cls(t, np.asarray(ts, dtype=np.int64), np.asarray(value, dtype=np.float64), q)

    def __len__(self) -> int:
        return int(self.tag.shape[0])


class RiskEngine:
    """Vectorized ISA-18.2 alarm life-cycle and DOMAIN.md §5 risk colours over a TagTable."""

    def __init__(
        self,
        table: TagTable,
        policy: EnginePolicy | None = None,
        *,
        _state: EngineState | None = None,
    ) -> None:
        self.table = table
        self.policy = policy or EnginePolicy()
        self.slots = SlotTable.of(table)
        self.state = _state or EngineState.fresh(table, self.policy.chatter_activations)
        self._life = Lifecycle(table, self.slots, self.policy, self.state)

    @property
    def clock_ms(self) -> int | None:
        """Engine clock (epoch ms), None before any input."""
        return None if self.state.clock == NONE else self.state.clock

    @property
    def counters(self) -> dict[str, int]:
        """Totals of accepted, late, duplicate and unknown-tag readings."""
        return dict(self.state.counters)

    def process(self, batch: ReadingBatch) -> list[Event]:
        """Apply a batch of readings; returns the events it causes, in time order."""
        life = self._life
        life.out = []
        plan = analyse_batch(
            self.table, self.state, life.stale_ms, batch.tag, batch.ts, batch.value, batch.quality
        )
        for deadline, tag in plan.stale_timers:
            life.push(deadline, T_STALE, tag)
        n_rules = self.table.n_rules
        keys = [(int(s) * (n_rules + 1), i) for i, s in enumerate(plan.tag_seq.tolist())]
        keys += [(p[0] * (n_rules + 1) + 1 + p[2], -1 - j) for j, p in enumerate(plan.rule_points)]
        keys.sort()
        tag_ts, tag_tag = plan.tag_ts.tolist(), plan.tag_tag.tolist()
        tag_old, tag_new = plan.tag_old.tolist(), plan.tag_new.tolist()
        stale_end = plan.tag_stale_end.tolist()
        for _, i in keys:
            if i >= 0:
                now = tag_ts[i]
                life.fire_until(now)
                life.tag_point(now, tag_tag[i], tag_old[i], tag_new[i], stale_end[i])
            else:
                _, now, rule, old, new = plan.rule_points[-1 - i]
                life.fire_until(now)
                life.rule_point(now, rule, old, new)
        if plan.clock_end != NONE:
            life.fire_until(plan.clock_end)
        return life.out

    def advance(self, now_ms: int) -> list[Event]:
        """Move the clock to `now_ms` (never back) and fire the timers due by then."""
        life = self._life
        life.out = []
        self._advance(now_ms)
        return life.out

    def _advance(self, now_ms: int) -> int:
        now = max(now_ms, self.state.clock)
        for deadline, tag in stale_sweep(self.state, self._life.stale_ms, now):
            self._life.push(deadline, T_STALE, tag)
        self._life.fire_until(now)
        self.state.clock = now
        return now

    def command(self, cmd: Command) -> list[Event]:
        """Apply an operator/system command at max(cmd.ts_ms, clock); returns its events."""
        life = self._life
        life.out = []
        now = self._advance(cmd.ts_ms)
        kind = cmd.kind
        if kind is CommandKind.INTERLOCK_BYPASSED:
            if 0 <= cmd.unit < len(self.table.unit_ids):
                life.set_bypass(cmd.unit, cmd.on, now)
            return life.out
        if not 0 <= cmd.tag < self.table.n_tags:
            return life.out
        if kind is CommandKind.ACKNOWLEDGE:
            life.acknowledge(cmd.tag, cmd.condition, now)
        elif kind is CommandKind.SHELVE:
            if cmd.until_ms > now:
                life.set_shelved(cmd.tag, cmd.until_ms, now)
        elif kind is CommandKind.UNSHELVE:
            if int(self.state.shelved_until[cmd.tag]) != NONE:
                life.set_shelved(cmd.tag, NONE, now)
        elif kind is CommandKind.OUT_OF_SERVICE:
            life.set_out_of_service(cmd.tag, True, now)
        else:
            life.set_out_of_service(cmd.tag, False, now)
        return life.out

    def roll_call(self) -> list[RiskEvent]:
        """Every hazard source's and enterprise's current colour, stamped with the clock (empty
        before any input). Changes only come later: none can carry an earlier ts than the clock,
        so a roll call written before them never hides one in a "last colour" query."""
        if self.state.clock == NONE:
            return []
        return self._life.roll_call(self.state.clock)

    def snapshot(self) -> bytes:
        """The whole engine state in the versioned snapshot format (stream.state)."""
        return self.state.snapshot(self.table)

    @classmethod
    def restore(cls, table: TagTable, policy: EnginePolicy | None, blob: bytes) -> RiskEngine:
        """An engine continuing exactly where the snapshotting engine stood."""
        policy = policy or EnginePolicy()
        state = EngineState.restore(table, policy.chatter_activations, blob)
        return cls(table, policy, _state=state)

    def state_bytes(self) -> int:
        """Bytes of engine state (arrays, timers, flood windows)."""
        return self.state.nbytes()
