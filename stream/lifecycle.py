"""The scalar half of the engine: ISA-18.2 alarm life-cycle, unit severity, colours and flood.

It only runs on the few moments where something changes — a tag's raw condition word flips, a
rule's bits flip, a timer falls due, a command arrives — so plain Python on numpy scalars is fast
enough. Timers live in one heap of `(deadline_ms, kind, index)`; entries are validated when they
fall due (lazy cancellation). At equal deadlines kinds fire in the order of the constants below.
"""

from __future__ import annotations

import heapq

from hazardwatch.types import AlarmState, RiskColour, Severity
from stream.events import AlarmEvent, DataQualityEvent, Event, FloodEvent, RiskEvent
from stream.policy import EnginePolicy
from stream.slots import SlotTable
from stream.state import BIT_FAULT, BIT_FROZEN, NONE_MS, EngineState
from stream.tagtable import SLOTS_PER_RULE, SLOTS_PER_TAG, TagTable

T_SLOT, T_STALE, T_SHELVE, T_S3HOLD, T_ESCALATE, T_FLOOD = range(6)
NONE = int(NONE_MS)

REPORTED_STATES = (
    AlarmState.NORMAL,
    AlarmState.UNACKED,
    AlarmState.ACKED,
    AlarmState.RTN_UNACKED,
    AlarmState.SHELVED,
    AlarmState.SUPPRESSED,
    AlarmState.OUT_OF_SERVICE,
)
R_NORMAL, R_UNACKED, R_ACKED, R_RTN, R_SHELVED, R_SUPPRESSED, R_OOS = range(7)


class Lifecycle:
    """Applies changes to an EngineState and appends the resulting events to `out`."""

    def __init__(
        self, table: TagTable, slots: SlotTable, policy: EnginePolicy, state: EngineState
    ) -> None:
        self.table = table
        self.slots = slots
        self.policy = policy
        self.st = state
        self.out: list[Event] = []
        self.stale_ms = (table.interval_ms * policy.stale_factor).astype("int64")
        # Python lists: scalar reads of lists are several times faster than of numpy arrays.
        self._slot_tag = slots.tag.tolist()
        self._slot_unit = slots.unit.tolist()
        self._slot_sev = slots.sev.tolist()
        self._slot_s3 = slots.s3.tolist()
        self._slot_on = slots.on_ms.tolist()
        self._slot_off = slots.off_ms.tolist()
        self._unit_source = table.unit_source.tolist()
        self._source_ent = table.source_enterprise.tolist()
        self._grade = table.source_grade.tolist()
        self._tag_unit = table.tag_unit.tolist()

    # ----------------------------------------------------------------- timers
    def push(self, deadline: int, kind: int, index: int) -> None:
        """Schedule a timer at `deadline` ms."""
        heapq.heappush(self.st.heap, (deadline, kind, index))

    def fire_until(self, now: int) -> None:
        """Fire every timer with deadline ≤ `now` (ms), in (deadline, kind, index) order."""
        heap = self.st.heap
        while heap and heap[0][0] <= now:
            deadline, kind, index = heapq.heappop(heap)
            if kind == T_SLOT:
                if int(self.st.pending[index]) == deadline:
                    self.st.pending[index] = NONE
                    if self.st.active[index]:
                        self._deactivate(index, deadline)
                    else:
                        self._activate(index, deadline)
            elif kind == T_STALE:
                self.st.stale[index] = True
                self._dq(deadline, index, "stale", True)
            elif kind == T_SHELVE:
                if int(self.st.shelved_until[index]) == deadline:
                    self.set_shelved(index, NONE, deadline)
            elif kind == T_S3HOLD:
                self._unit(index, deadline)
            elif kind == T_ESCALATE:
                self._source(index, deadline)
            else:
                self._flood_check(index, deadline)

    # ----------------------------------------------------------------- points
    def tag_point(self, now: int, tag: int, old: int, new: int, stale_end: bool) -> None:
        """A reading of `tag` at `now` ms ended staleness and/or changed its raw word."""
        if stale_end:
            self.st.stale[tag] = False
            self._dq(now, tag, "stale", False)
        diff = old ^ new
        if diff >> BIT_FAULT & 1:
            self._dq(now, tag, "fault", bool(new >> BIT_FAULT & 1))
        if diff >> BIT_FROZEN & 1:
            self._dq(now, tag, "frozen", bool(new >> BIT_FROZEN & 1))
        for k in range(SLOTS_PER_TAG):
            if diff >> k & 1:
                self.slot_raw(SLOTS_PER_TAG * tag + k, bool(new >> k & 1), now)

    def rule_point(self, now: int, rule: int, old: int, new: int) -> None:
        """A reading changed the raw bits (level 1, level 2) of derived rule `rule`."""
        base = SLOTS_PER_TAG * self.table.n_tags + SLOTS_PER_RULE * rule
        diff = old ^ new
        for j in range(SLOTS_PER_RULE):
            if diff >> j & 1:
                self.slot_raw(base + j, bool(new >> j & 1), now)

    def _dq(self, now: int, tag: int, condition: str, active: bool) -> None:
        t = self.table
        unit = self._tag_unit[tag]
        source = self._unit_source[unit]
        self.out.append(
            DataQualityEvent(
                ts_ms=now,
                enterprise=t.enterprise_ids[self._source_ent[source]],
                source=t.source_ids[source],
                unit=t.unit_ids[unit],
                tag=t.tag_ids[tag],
                condition=condition,  # type: ignore[arg-type]
                state="active" if active else "normal",
            )
        )

    # ----------------------------------------------------------------- alarm life-cycle
    def slot_raw(self, s: int, raw: bool, now: int) -> None:
        """The raw (undelayed) condition of slot `s` became `raw` at `now` ms."""
        st = self.st
        st.raw[s] = raw
        active = bool(st.active[s])
        if raw == active:
            st.pending[s] = NONE  # back to the current state: cancel the pending delay
            return
        delay = self._slot_on[s] if raw else self._slot_off[s]
        if delay == 0:
            if raw:
                self._activate(s, now)
            else:
                self._deactivate(s, now)
        else:
            st.pending[s] = now + delay
            self.push(now + delay, T_SLOT, s)

    def _activate(self, s: int, now: int) -> None:
        st = self.st
        st.active[s] = True
        st.acked[s] = False
        acts = st.acts[s]
        oldest = int(acts[-1])
        chattering = (
            self.policy.chatter_activations >= 2
            and oldest != NONE
            and now - oldest <= self.policy.chatter_window_ms
        )
        acts[1:] = acts[:-1].copy()
        acts[0] = now
        self.refresh(s, now, chattering)
        unit = self._slot_unit[s]
        self._unit(unit, now)
        if int(st.reported[s]) == R_UNACKED:
            self._flood_new(self._source_ent[self._unit_source[unit]], now)

    def _deactivate(self, s: int, now: int) -> None:
        self.st.active[s] = False
        self.refresh(s, now)
        self._unit(self._slot_unit[s], now)

    def refresh(self, s: int, now: int, chattering: bool = False) -> None:
        """Recount slot `s` for severity and emit an alarm event if its reported state moved."""
        st = self.st
        tag = self._slot_tag[s]
        unit = self._slot_unit[s]
        in_alarm = bool(st.active[s]) and not st.oos[tag] and int(st.shelved_until[tag]) == NONE
        if in_alarm != bool(st.inalarm[s]):
            st.inalarm[s] = in_alarm
            d = 1 if in_alarm else -1
            if self._slot_sev[s] == 1:
                st.u_s1[unit] += d
            else:
                before = int(st.tag_s2[tag])
                st.tag_s2[tag] = before + d
                if (before == 0) != (before + d == 0):
                    st.u_s2tags[unit] += d
                if self._slot_s3[s]:
                    st.u_s3d[unit] += d
        unacked = in_alarm and not st.acked[s]
        if unacked != bool(st.unacked[s]):
            st.unacked[s] = unacked
            st.unacked_n[self._unit_source[unit]] += 1 if unacked else -1
        state = self._reported(s, tag, unit)
        if state != int(st.reported[s]):
            st.reported[s] = state
            t = self.table
            source = self._unit_source[unit]
            self.out.append(
                AlarmEvent(
                    ts_ms=now,
                    enterprise=t.enterprise_ids[self._source_ent[source]],
                    source=t.source_ids[source],
                    unit=t.unit_ids[unit],
                    tag=t.tag_ids[tag],
                    condition=self.slots.cond[s],
                    state=REPORTED_STATES[state],
                    severity=Severity(self._slot_sev[s]),
                    chattering=chattering,
                )
            )

    def _reported(self, s: int, tag: int, unit: int) -> int:
        st = self.st
        if st.oos[tag]:
            return R_OOS
        if int(st.shelved_until[tag]) != NONE:
            return R_SHELVED
        active, acked = bool(st.active[s]), bool(st.acked[s])
        base = (R_ACKED if acked else R_UNACKED) if active else (R_NORMAL if acked else R_RTN)
        if (
            base != R_NORMAL
            and self._slot_sev[s] == 1
            and self.policy.suppress_s1_while_s3
            and int(st.usev[unit]) == Severity.S3
        ):
            return R_SUPPRESSED
        return base

    # ----------------------------------------------------------------- commands on a tag
    def tag_slots(self, tag: int) -> list[int]:
        """Enabled alarm slots reported on `tag`, in slot order."""
        off = self.slots.tag_off
        members: list[int] = self.slots.tag_slots[int(off[tag]) : int(off[tag + 1])].tolist()
        return members

    def acknowledge(self, tag: int, condition: str | None, now: int) -> None:
        """Operator acknowledgement of the tag's alarms (all, or those named `condition`)."""
        touched = False
        for s in self.tag_slots(tag):
            if (condition is None or self.slots.cond[s] == condition) and not self.st.acked[s]:
                self.st.acked[s] = True
                self.refresh(s, now)
                touched = True
        if touched:
            self._unit(self._tag_unit[tag], now)

    def set_shelved(self, tag: int, until: int, now: int) -> None:
        """Shelve the tag's alarms until `until` ms (NONE_MS = unshelve)."""
        self.st.shelved_until[tag] = until
        if until != NONE:
            self.push(until, T_SHELVE, tag)
        self._refresh_tag(tag, now)

    def set_out_of_service(self, tag: int, oos: bool, now: int) -> None:
        """Take the tag out of service for maintenance, or return it."""
        self.st.oos[tag] = oos
        self._refresh_tag(tag, now)

    def set_bypass(self, unit: int, on: bool, now: int) -> None:
        """The unit's interlock/SIS is bypassed (`on`) or restored."""
        self.st.bypass[unit] = on
        self._unit(unit, now)

    def _refresh_tag(self, tag: int, now: int) -> None:
        for s in self.tag_slots(tag):
            self.refresh(s, now)
        self._unit(self._tag_unit[tag], now)

    # ----------------------------------------------------------------- severity and colour
    def _unit(self, unit: int, now: int) -> None:
        st, p = self.st, self.policy
        n_s2 = int(st.u_s2tags[unit])
        base = 2 if n_s2 > 0 else (1 if int(st.u_s1[unit]) > 0 else 0)
        since = int(st.s2_since[unit])
        if base == 2 and since == NONE:
            since = now
            st.s2_since[unit] = now
            self.push(now + p.s3_hold_ms, T_S3HOLD, unit)
        elif base < 2:
            st.s2_since[unit] = NONE
        sev = base
        if base == 2 and (
            (p.two_s2_tags_make_s3 and n_s2 >= 2)
            or st.bypass[unit]
            or int(st.u_s3d[unit]) > 0
            or now - since >= p.s3_hold_ms
        ):
            sev = 3
        old = int(st.usev[unit])
        if sev != old:
            st.usev[unit] = sev
            if p.suppress_s1_while_s3 and (old == 3) != (sev == 3):
                off = self.slots.unit_s1_off
                for s in self.slots.unit_s1_slots[int(off[unit]) : int(off[unit + 1])].tolist():
                    self.refresh(s, now)
        self._source(self._unit_source[unit], now)

    def _source(self, source: int, now: int) -> None:
        st, p = self.st, self.policy
        off = self.slots.source_units_off
        units = self.slots.source_units[int(off[source]) : int(off[source + 1])]
        sev = int(st.usev[units].max()) if len(units) else 0
        warning = sev >= 1 and int(st.unacked_n[source]) > 0
        since = int(st.esc_since[source])
        if warning:
            if since == NONE:
                since = now
                st.esc_since[source] = now
                self.push(now + p.escalate_ms(sev), T_ESCALATE, source)
            elif sev != int(st.ssev[source]) and since + p.escalate_ms(sev) > now:
                self.push(since + p.escalate_ms(sev), T_ESCALATE, source)
        else:
            st.esc_since[source] = NONE
        st.ssev[source] = sev
        matrix = p.colour(sev, self._grade[source])
        colour = matrix
        if warning and now >= since + p.escalate_ms(sev):
            colour = max(matrix, min(matrix + 1, p.escalation_cap))
        previous = int(st.colour[source])
        if colour != previous:
            st.colour[source] = colour
            ent = self._source_ent[source]
            self.out.append(
                RiskEvent(
                    ts_ms=now,
                    enterprise=self.table.enterprise_ids[ent],
                    source=self.table.source_ids[source],
                    level="source",
                    colour=RiskColour(colour),
                    previous=RiskColour(previous),
                    severity=Severity(sev),
                    escalated=colour > matrix,
                )
            )
            self._enterprise(ent, now)

    def _enterprise(self, ent: int, now: int) -> None:
        st = self.st
        off = self.slots.enterprise_sources_off
        sources = self.slots.enterprise_sources[int(off[ent]) : int(off[ent + 1])]
        colour = int(st.colour[sources].max())
        previous = int(st.ecolour[ent])
        if colour != previous:
            st.ecolour[ent] = colour
            self.out.append(
                RiskEvent(
                    ts_ms=now,
                    enterprise=self.table.enterprise_ids[ent],
                    source=None,
                    level="enterprise",
                    colour=RiskColour(colour),
                    previous=RiskColour(previous),
                    severity=Severity(int(st.ssev[sources].max())),
                    escalated=False,
                )
            )

    def roll_call(self, now: int) -> list[RiskEvent]:
        """The current colour of every hazard source and enterprise as risk events whose
        `previous` equals `colour`: a roll call, not a change (nothing to alert on)."""
        st, t, p = self.st, self.table, self.policy
        calls: list[RiskEvent] = []
        for source, colour in enumerate(st.colour.tolist()):
            sev = int(st.ssev[source])
            calls.append(
                RiskEvent(
                    ts_ms=now,
                    enterprise=t.enterprise_ids[self._source_ent[source]],
                    source=t.source_ids[source],
                    level="source",
                    colour=RiskColour(colour),
                    previous=RiskColour(colour),
                    severity=Severity(sev),
                    escalated=colour > p.colour(sev, self._grade[source]),
                )
            )
        off = self.slots.enterprise_sources_off
        for ent, colour in enumerate(st.ecolour.tolist()):
            sources = self.slots.enterprise_sources[int(off[ent]) : int(off[ent + 1])]
            sev = int(st.ssev[sources].max()) if len(sources) else 0
            calls.append(
                RiskEvent(
                    ts_ms=now,
                    enterprise=t.enterprise_ids[ent],
                    source=None,
                    level="enterprise",
                    colour=RiskColour(colour),
                    previous=RiskColour(colour),
                    severity=Severity(sev),
                    escalated=False,
                )
            )
        return calls

    # ----------------------------------------------------------------- flood
    def _flood_new(self, ent: int, now: int) -> None:
        p = self.policy
        times = self.st.flood_times[ent]
        times.append(now)
        self.push(now + p.flood_window_ms, T_FLOOD, ent)
        self._purge(times, now)
        if not self.st.flooding[ent] and len(times) > p.flood_start_above:
            self.st.flooding[ent] = True
            self._flood_event(ent, now, "begin", len(times))

    def _flood_check(self, ent: int, now: int) -> None:
        times = self.st.flood_times[ent]
        self._purge(times, now)
        if self.st.flooding[ent] and len(times) < self.policy.flood_end_below:
            self.st.flooding[ent] = False
            self._flood_event(ent, now, "end", len(times))

    def _purge(self, times: list[int], now: int) -> None:
        horizon = now - self.policy.flood_window_ms
        drop = 0
        while drop < len(times) and times[drop] <= horizon:
            drop += 1
        del times[:drop]

    def _flood_event(self, ent: int, now: int, state: str, count: int) -> None:
        self.out.append(
            FloodEvent(
                ts_ms=now,
                enterprise=self.table.enterprise_ids[ent],
                state=state,  # type: ignore[arg-type]
                count=count,
            )
        )
