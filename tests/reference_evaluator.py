"""A deliberately simple, per-reading risk evaluator: the oracle for the vectorized engine.

It re-implements the semantics documented in `stream/engine.py` and docs/events.md one reading
at a time with plain Python objects, recomputing unit severity and source colour from scratch
instead of keeping counters. It shares only the table (input), the policy values and the event
classes (output) with the engine — no logic. Slow on purpose: clarity over speed.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from hazardwatch.types import AlarmState, RiskColour, Severity
from stream.engine import Command, CommandKind
from stream.events import AlarmEvent, DataQualityEvent, Event, FloodEvent, RiskEvent
from stream.policy import EnginePolicy
from stream.tagtable import RuleKind, TagTable

# Timer kinds, in the documented firing order at equal deadlines.
SLOT, STALE, SHELVE, S3HOLD, ESCALATE, FLOOD = range(6)
HIGH = (False, False, True, True)  # LL, L, H, HH


@dataclass
class TagState:
    last_ts: int | None = None
    last_v: float = math.nan
    last_vts: int | None = None
    limit_bits: list[bool] = field(default_factory=lambda: [False] * 4)
    fault: bool = False
    frozen: bool = False
    anchor_v: float = math.nan
    anchor_ts: int | None = None
    stale: bool = False
    shelved_until: int | None = None
    oos: bool = False


@dataclass
class Alarm:
    tag: int
    unit: int
    severity: int
    condition: str
    enabled: bool
    co_level2: bool
    on_ms: int
    off_ms: int
    raw: bool = False
    active: bool = False
    acked: bool = True
    pending: int | None = None
    activations: list[int] = field(default_factory=list)
    reported: AlarmState = AlarmState.NORMAL


@dataclass
class RuleState:
    bits: int = 0
    anchor_v: float = math.nan
    anchor_ts: int | None = None
    bucket: int | None = None
    total: float = 0.0
    count: int = 0
    baseline: float = math.nan


class ReferenceEvaluator:
    """One reading at a time; same inputs and outputs as stream.engine.RiskEngine."""

    def __init__(self, table: TagTable, policy: EnginePolicy | None = None) -> None:
        self.t = table
        self.p = policy or EnginePolicy()
        self.tags = [TagState() for _ in table.tag_ids]
        self.rules = [RuleState() for _ in range(table.n_rules)]
        self.alarms: list[Alarm] = []
        for i in range(table.n_tags):
            for k in range(4):
                sev = int(table.limit_sev[i, k])
                present = not math.isnan(table.limit[i, k])
                co2 = sev == 2 and bool(table.co_occupied[i])
                self.alarms.append(self._alarm(i, sev, table.limit_cond[i][k], present, co2))
        names = {0: "roc", 1: "baseline", 2: "flatline", 3: "flow_diff"}
        for r in range(table.n_rules):
            kind = int(table.rule_kind[r])
            a = int(table.rule_a[r])
            for level in (0, 1):
                sev = 2 if kind == RuleKind.FLATLINE else int(table.rule_sev[r, level])
                enabled = level == 0 or kind in (RuleKind.BASELINE, RuleKind.FLOW_DIFF)
                self.alarms.append(self._alarm(a, sev, names[kind], enabled, False))
        self.unit_sev = [0] * len(table.unit_ids)
        self.s2_since: list[int | None] = [None] * len(table.unit_ids)
        self.bypass = [False] * len(table.unit_ids)
        self.colour = [1] * len(table.source_ids)
        self.esc_since: list[int | None] = [None] * len(table.source_ids)
        self.ent_colour = [1] * len(table.enterprise_ids)
        self.flooding = [False] * len(table.enterprise_ids)
        self.new_alarms: list[list[int]] = [[] for _ in table.enterprise_ids]
        self.clock: int | None = None
        self.timers: list[tuple[int, int, int]] = []
        self.out: list[Event] = []
        self.counters = {"accepted": 0, "late": 0, "duplicate": 0, "unknown_tag": 0}

    def _alarm(self, tag: int, sev: int, cond: str, enabled: bool, co2: bool) -> Alarm:
        return Alarm(tag, int(self.t.tag_unit[tag]), sev, cond, enabled, co2,
                     int(self.t.on_delay_ms[tag]), int(self.t.off_delay_ms[tag]))  # fmt: skip

    # ------------------------------------------------------------ public API
    def process(self, tags: list[int], ts: list[int], values: list[float],
                quality: list[int]) -> list[Event]:  # fmt: skip
        self.out = []
        start_clock = self.clock
        order = sorted(range(len(tags)), key=lambda i: ts[i])  # stable: arrival breaks ties
        for i in order:
            tag = tags[i]
            if not 0 <= tag < self.t.n_tags:
                self.counters["unknown_tag"] += 1
            elif start_clock is not None and ts[i] < start_clock:
                self.counters["late"] += 1
            elif self.tags[tag].last_ts is not None and ts[i] <= self.tags[tag].last_ts:  # type: ignore[operator]
                self.counters["duplicate"] += 1
            else:
                self.counters["accepted"] += 1
                self._reading(tag, ts[i], values[i], quality[i])
        if self.clock is not None:
            self._fire(self.clock)
        return self.out

    def advance(self, now: int) -> list[Event]:
        self.out = []
        self._advance(now)
        return self.out

    def _advance(self, now: int) -> int:
        if self.clock is not None:
            now = max(now, self.clock)
        self._fire(now)
        self.clock = now
        return now

    def command(self, cmd: Command) -> list[Event]:
        self.out = []
        now = self._advance(cmd.ts_ms)
        if cmd.kind is CommandKind.INTERLOCK_BYPASSED:
            if 0 <= cmd.unit < len(self.t.unit_ids):
                self.bypass[cmd.unit] = cmd.on
                self._unit(cmd.unit, now)
            return self.out
        if not 0 <= cmd.tag < self.t.n_tags:
            return self.out
        tag = self.tags[cmd.tag]
        mine = [s for s, a in enumerate(self.alarms) if a.tag == cmd.tag and a.enabled]
        if cmd.kind is CommandKind.ACKNOWLEDGE:
            hit = [s for s in mine if (cmd.condition in (None, self.alarms[s].condition))
                   and not self.alarms[s].acked]  # fmt: skip
            for s in hit:
                self.alarms[s].acked = True
                self._report(s, now)
            if not hit:
                return self.out
        elif cmd.kind is CommandKind.SHELVE:
            if cmd.until_ms <= now:
                return self.out
            tag.shelved_until = cmd.until_ms
            heapq.heappush(self.timers, (cmd.until_ms, SHELVE, cmd.tag))
            for s in mine:
                self._report(s, now)
        elif cmd.kind is CommandKind.UNSHELVE:
            if tag.shelved_until is None:
                return self.out
            tag.shelved_until = None
            for s in mine:
                self._report(s, now)
        else:
            tag.oos = cmd.kind is CommandKind.OUT_OF_SERVICE
            for s in mine:
                self._report(s, now)
        self._unit(int(self.t.tag_unit[cmd.tag]), now)
        return self.out

    # ------------------------------------------------------------ readings
    def _reading(self, i: int, ts: int, v: float, q: int) -> None:
        self._fire(ts)
        self.clock = ts if self.clock is None else max(self.clock, ts)
        t, tag = self.t, self.tags[i]
        if tag.stale:
            tag.stale = False
            self._dq(ts, i, "stale", False)
        tag.last_ts = ts
        stale_ms = int(t.interval_ms[i] * self.p.stale_factor)
        if stale_ms > 0:
            heapq.heappush(self.timers, (ts + stale_ms + 1, STALE, i))
        fault = (not math.isfinite(v)) or v < t.range_lo[i] or v > t.range_hi[i] or q != 0
        new_bits = list(tag.limit_bits)
        frozen = tag.frozen
        prev_v, prev_vts = tag.last_v, tag.last_vts
        if not fault:
            for k in range(4):
                lim, db = float(t.limit[i, k]), float(t.deadband[i])
                if HIGH[k]:
                    if v > lim:
                        new_bits[k] = True
                    elif v < lim - db:
                        new_bits[k] = False
                elif v < lim:
                    new_bits[k] = True
                elif v > lim + db:
                    new_bits[k] = False
            if t.frozen_ms[i] > 0:
                if tag.anchor_ts is None or abs(v - tag.anchor_v) > t.frozen_band[i]:
                    tag.anchor_v, tag.anchor_ts = v, ts
                frozen = ts - tag.anchor_ts >= t.frozen_ms[i]
            tag.last_v, tag.last_vts = v, ts
        if fault != tag.fault:
            tag.fault = fault
            self._dq(ts, i, "fault", fault)
        if frozen != tag.frozen:
            tag.frozen = frozen
            self._dq(ts, i, "frozen", frozen)
        for k in range(4):
            if new_bits[k] != tag.limit_bits[k]:
                tag.limit_bits[k] = new_bits[k]
                self._raw(4 * i + k, new_bits[k], ts)
        if fault:
            return
        for r in range(t.n_rules):
            if i in (int(t.rule_a[r]), int(t.rule_b[r])):
                bits = self._rule_bits(r, i, ts, v, prev_v, prev_vts)
                old = self.rules[r].bits
                self.rules[r].bits = bits
                for level in (0, 1):
                    if (old ^ bits) >> level & 1:
                        self._raw(4 * t.n_tags + 2 * r + level, bool(bits >> level & 1), ts)

    def _rule_bits(self, r: int, i: int, ts: int, v: float, prev_v: float,
                   prev_vts: int | None) -> int:  # fmt: skip
        t, rs = self.t, self.rules[r]
        kind, a, b = int(t.rule_kind[r]), int(t.rule_a[r]), int(t.rule_b[r])
        if kind == RuleKind.RATE_OF_CHANGE:
            if prev_vts is None or math.isnan(prev_v):
                return 0
            rate = (v - prev_v) * 60_000.0 / (ts - prev_vts)
            speed = {0: abs(rate), 1: rate, 2: -rate}[int(t.rule_direction[r])]
            return int(speed > t.rule_p1[r])
        if kind == RuleKind.BASELINE:
            bucket = ts // int(t.rule_window_ms[r])
            if bucket != rs.bucket:
                ok = rs.bucket is not None and bucket == rs.bucket + 1 and rs.count > 0
                rs.baseline = rs.total / rs.count if ok else math.nan
                rs.bucket, rs.total, rs.count = bucket, 0.0, 0
            rs.total += v
            rs.count += 1
            return int(v > t.rule_p1[r] * rs.baseline) | int(v > t.rule_p2[r] * rs.baseline) << 1
        if kind == RuleKind.FLATLINE:
            if i == a and (rs.anchor_ts is None or abs(v - rs.anchor_v) > t.rule_p2[r]):
                rs.anchor_v, rs.anchor_ts = v, ts
            inflow = self.tags[b].last_v
            if rs.anchor_ts is None or math.isnan(inflow):
                return 0
            return int(ts - rs.anchor_ts >= t.rule_window_ms[r] and inflow > t.rule_p1[r])
        x, y = self.tags[a].last_v, self.tags[b].last_v
        if math.isnan(x) or math.isnan(y) or not x > t.rule_p3[r]:
            return 0
        return int(x - y >= t.rule_p1[r] * x) | int(x - y >= t.rule_p2[r] * x) << 1

    # ------------------------------------------------------------ timers
    def _fire(self, now: int) -> None:
        while self.timers and self.timers[0][0] <= now:
            when, kind, idx = heapq.heappop(self.timers)
            if kind == SLOT:
                alarm = self.alarms[idx]
                if alarm.pending == when:
                    alarm.pending = None
                    self._set_active(idx, not alarm.active, when)
            elif kind == STALE:
                tag = self.tags[idx]
                stale_ms = int(self.t.interval_ms[idx] * self.p.stale_factor)
                if not tag.stale and tag.last_ts is not None and (
                        tag.last_ts + stale_ms + 1 == when):  # fmt: skip
                    tag.stale = True
                    self._dq(when, idx, "stale", True)
            elif kind == SHELVE:
                if self.tags[idx].shelved_until == when:
                    self.tags[idx].shelved_until = None
                    for s, a in enumerate(self.alarms):
                        if a.tag == idx and a.enabled:
                            self._report(s, when)
                    self._unit(int(self.t.tag_unit[idx]), when)
            elif kind == S3HOLD:
                self._unit(idx, when)
            elif kind == ESCALATE:
                self._source(idx, when)
            else:
                self._flood_end(idx, when)

    # ------------------------------------------------------------ alarm life-cycle
    def _raw(self, s: int, raw: bool, now: int) -> None:
        alarm = self.alarms[s]
        alarm.raw = raw
        if raw == alarm.active:
            alarm.pending = None
            return
        delay = alarm.on_ms if raw else alarm.off_ms
        if delay == 0:
            self._set_active(s, raw, now)
        else:
            alarm.pending = now + delay
            heapq.heappush(self.timers, (now + delay, SLOT, s))

    def _set_active(self, s: int, active: bool, now: int) -> None:
        alarm = self.alarms[s]
        alarm.active = active
        chattering = False
        if active:
            alarm.acked = False
            alarm.activations.append(now)
            n = self.p.chatter_activations
            recent = alarm.activations[-n:]
            chattering = n >= 2 and len(recent) == n and now - recent[0] <= self.p.chatter_window_ms
        self._report(s, now, chattering)
        self._unit(alarm.unit, now)
        if active and alarm.reported is AlarmState.UNACKED:
            self._flood_new(self._ent_of_unit(alarm.unit), now)

    def _in_alarm(self, alarm: Alarm) -> bool:
        tag = self.tags[alarm.tag]
        return alarm.enabled and alarm.active and not tag.oos and tag.shelved_until is None

    def _state(self, alarm: Alarm) -> AlarmState:
        tag = self.tags[alarm.tag]
        if tag.oos:
            return AlarmState.OUT_OF_SERVICE
        if tag.shelved_until is not None:
            return AlarmState.SHELVED
        if alarm.active:
            base = AlarmState.ACKED if alarm.acked else AlarmState.UNACKED
        else:
            base = AlarmState.NORMAL if alarm.acked else AlarmState.RTN_UNACKED
        if (base is not AlarmState.NORMAL and alarm.severity == 1
                and self.p.suppress_s1_while_s3 and self.unit_sev[alarm.unit] == 3):  # fmt: skip
            return AlarmState.SUPPRESSED
        return base

    def _report(self, s: int, now: int, chattering: bool = False) -> None:
        alarm = self.alarms[s]
        state = self._state(alarm)
        if state is not alarm.reported:
            alarm.reported = state
            source = int(self.t.unit_source[alarm.unit])
            self.out.append(AlarmEvent(
                now, self.t.enterprise_ids[int(self.t.source_enterprise[source])],
                self.t.source_ids[source], self.t.unit_ids[alarm.unit],
                self.t.tag_ids[alarm.tag], alarm.condition, state, Severity(alarm.severity),
                chattering))  # fmt: skip

    # ------------------------------------------------------------ severity, colour, flood
    def _unit(self, u: int, now: int) -> None:
        in_alarm = [a for a in self.alarms if a.unit == u and self._in_alarm(a)]
        s2_tags = {a.tag for a in in_alarm if a.severity == 2}
        base = 2 if s2_tags else (1 if in_alarm else 0)
        if base == 2 and self.s2_since[u] is None:
            self.s2_since[u] = now
            heapq.heappush(self.timers, (now + self.p.s3_hold_ms, S3HOLD, u))
        if base < 2:
            self.s2_since[u] = None
        sev = base
        since = self.s2_since[u]
        if base == 2 and ((self.p.two_s2_tags_make_s3 and len(s2_tags) >= 2) or self.bypass[u]
                          or any(a.co_level2 for a in in_alarm)
                          or (since is not None and now - since >= self.p.s3_hold_ms)):  # fmt: skip
            sev = 3
        old = self.unit_sev[u]
        self.unit_sev[u] = sev
        if sev != old and self.p.suppress_s1_while_s3 and (old == 3) != (sev == 3):
            for s, a in enumerate(self.alarms):
                if a.unit == u and a.enabled and a.severity == 1:
                    self._report(s, now)
        self._source(int(self.t.unit_source[u]), now)

    def _source_sev(self, k: int) -> int:
        return max((self.unit_sev[u] for u in range(len(self.t.unit_ids))
                    if self.t.unit_source[u] == k), default=0)  # fmt: skip

    def _source(self, k: int, now: int) -> None:
        sev = self._source_sev(k)
        unacked = any(self._in_alarm(a) and not a.acked for a in self.alarms
                      if self.t.unit_source[a.unit] == k)  # fmt: skip
        warning = sev >= 1 and unacked
        if not warning:
            self.esc_since[k] = None
        else:
            if self.esc_since[k] is None:
                self.esc_since[k] = now
            due = self.esc_since[k] + self.p.escalate_ms(sev)  # type: ignore[operator]
            if due > now:
                heapq.heappush(self.timers, (due, ESCALATE, k))
        matrix = self.p.colour(sev, int(self.t.source_grade[k]))
        colour = matrix
        since = self.esc_since[k]
        if warning and since is not None and now >= since + self.p.escalate_ms(sev):
            colour = max(matrix, min(matrix + 1, self.p.escalation_cap))
        if colour != self.colour[k]:
            previous, self.colour[k] = self.colour[k], colour
            ent = int(self.t.source_enterprise[k])
            self.out.append(RiskEvent(now, self.t.enterprise_ids[ent], self.t.source_ids[k],
                                      "source", RiskColour(colour), RiskColour(previous),
                                      Severity(sev), colour > matrix))  # fmt: skip
            self._enterprise(ent, now)

    def _enterprise(self, e: int, now: int) -> None:
        mine = [k for k in range(len(self.t.source_ids)) if self.t.source_enterprise[k] == e]
        colour = max(self.colour[k] for k in mine)
        if colour != self.ent_colour[e]:
            previous, self.ent_colour[e] = self.ent_colour[e], colour
            sev = max(self._source_sev(k) for k in mine)
            self.out.append(RiskEvent(now, self.t.enterprise_ids[e], None, "enterprise",
                                      RiskColour(colour), RiskColour(previous), Severity(sev),
                                      False))  # fmt: skip

    def _ent_of_unit(self, u: int) -> int:
        return int(self.t.source_enterprise[int(self.t.unit_source[u])])

    def _window(self, e: int, now: int) -> int:
        self.new_alarms[e] = [x for x in self.new_alarms[e] if x > now - self.p.flood_window_ms]
        return len(self.new_alarms[e])

    def _flood_new(self, e: int, now: int) -> None:
        self.new_alarms[e].append(now)
        heapq.heappush(self.timers, (now + self.p.flood_window_ms, FLOOD, e))
        count = self._window(e, now)
        if not self.flooding[e] and count > self.p.flood_start_above:
            self.flooding[e] = True
            self.out.append(FloodEvent(now, self.t.enterprise_ids[e], "begin", count))

    def _flood_end(self, e: int, now: int) -> None:
        count = self._window(e, now)
        if self.flooding[e] and count < self.p.flood_end_below:
            self.flooding[e] = False
            self.out.append(FloodEvent(now, self.t.enterprise_ids[e], "end", count))

    def _dq(self, now: int, i: int, condition: str, active: bool) -> None:
        u = int(self.t.tag_unit[i])
        k = int(self.t.unit_source[u])
        self.out.append(DataQualityEvent(
            now, self.t.enterprise_ids[int(self.t.source_enterprise[k])], self.t.source_ids[k],
            self.t.unit_ids[u], self.t.tag_ids[i], condition, "active" if active else "normal"))  # type: ignore[arg-type]  # fmt: skip
