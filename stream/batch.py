"""The vectorized half of the engine: from a batch of readings to the few change points.

`analyse_batch` does all per-reading work with numpy over the whole batch:

1. drop unknown tags, late readings (ts < engine clock at batch start) and duplicates (a tag's
   second reading at the same ts, or at/below its last processed ts) — counted, never raised;
2. order the rest by (ts, arrival) — the processing order — and group by tag;
3. per reading: sensor fault (NaN/inf, outside instrument range, quality ≠ 0), limit conditions
   with deadband hysteresis, frozen value, stale gaps, and the derived rules;
4. return only the readings where a tag's raw condition word or a rule's bits change, plus the
   stale timers, and write the new per-tag carry-over (last value, word, anchors) into the state.

Faulty readings keep a tag alive (no stale) but carry no value: limits, rules and anchors hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from stream.state import BIT_FAULT, BIT_FROZEN, NONE_MS, EngineState
from stream.tagtable import BOOL, F64, I64, LIMIT_HIGH, RuleKind, TagTable

NONE = int(NONE_MS)
I8A = npt.NDArray[np.int8]
I32A = npt.NDArray[np.int32]
G = TypeVar("G", bound=np.generic)


@dataclass(slots=True)
class BatchPlan:
    """What the scalar walk must visit, in processing order."""

    clock_end: int
    tag_seq: I64  # processing position of each tag point
    tag_ts: I64
    tag_tag: I64
    tag_old: I64
    tag_new: I64
    tag_stale_end: BOOL
    rule_points: list[tuple[int, int, int, int, int]]  # (seq, ts, rule, old, new)
    stale_timers: list[tuple[int, int]]  # (deadline, tag)


def _shift(values: npt.NDArray[G], first: BOOL, carry: npt.NDArray[G]) -> npt.NDArray[G]:
    """Previous element within each tag segment; `carry` (per element) at segment starts."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[first] = carry[first]
    return out


def _ffill(
    decided: BOOL, values: npt.NDArray[G], seg_start: I64, carry: npt.NDArray[G]
) -> npt.NDArray[G]:
    """Hold the last decided value within each segment; `carry` before the first decision."""
    pos = np.where(decided, np.arange(decided.shape[0]), -1)
    last = np.maximum.accumulate(pos)
    out: npt.NDArray[G] = np.where(last < seg_start, carry, values[np.maximum(last, 0)])
    return out


_LIMIT_CACHE: dict[tuple[int, int], F64] = {}


def _limit_column(table: TagTable, k: int) -> F64:
    """Limit k of every tag with absent limits as ±inf, so that they always decide "clear"."""
    key = (id(table), k)
    column = _LIMIT_CACHE.get(key)
    if column is None:
        column = table.limit[:, k].copy()
        column[np.isnan(column)] = np.inf if LIMIT_HIGH[k] else -np.inf
        if len(_LIMIT_CACHE) > 64:
            _LIMIT_CACHE.clear()
        _LIMIT_CACHE[key] = column
    return column


def _hold(set_: BOOL, decided: BOOL, seg_start: I64, carry: I64) -> I64:
    """Deadband hysteresis: 1 where set, 0 where clear, else the last decided value within the
    tag's segment (or the carried bit). Only the undecided readings — few: values inside the
    deadband — pay for the look-back."""
    out = set_.astype(np.int64)
    undecided = np.flatnonzero(~decided)
    if undecided.shape[0]:
        decided_at = np.concatenate(([-1], np.flatnonzero(decided)))
        last = decided_at[np.searchsorted(decided_at, undecided) - 1]
        inside = last >= seg_start[undecided]
        out[undecided] = np.where(inside, out[np.maximum(last, 0)], carry[undecided])
    return out


def _seg_start(first: BOOL) -> I64:
    idx = np.where(first, np.arange(first.shape[0]), 0)
    return np.maximum.accumulate(idx)


def analyse_batch(
    table: TagTable,
    st: EngineState,
    stale_ms: I64,
    tag: I32A,
    ts: I64,
    value: F64,
    quality: I8A,
) -> BatchPlan:
    """Classify a batch, update per-tag carry-over state, and return the change points."""
    counters = st.counters
    n_tags = table.n_tags
    known = (tag >= 0) & (tag < n_tags)
    counters["unknown_tag"] += int(tag.shape[0] - np.count_nonzero(known))
    keep = known & (ts >= st.clock) if st.clock != NONE else known
    counters["late"] += int(np.count_nonzero(known) - np.count_nonzero(keep))
    idx = np.flatnonzero(keep)
    tsk = ts[idx]
    if tsk.shape[0] > 1 and not bool(np.all(tsk[1:] >= tsk[:-1])):
        idx = idx[np.argsort(tsk, kind="stable")]
    by_tag = np.argsort(tag[idx], kind="stable")
    pick = idx[by_tag]
    seq = by_tag.astype(np.int64)
    tg = tag[pick].astype(np.int64)
    tt = ts[pick]
    m = tg.shape[0]
    first = np.ones(m, dtype=bool)
    first[1:] = tg[1:] != tg[:-1]
    prev_t = _shift(tt, first, st.last_ts[tg])
    dup = tt <= prev_t  # same tag, same or older ts (sorted, so only equal ts can occur)
    n_dup = int(np.count_nonzero(dup))
    if n_dup:
        ok = ~dup
        pick, seq, tg, tt = pick[ok], seq[ok], tg[ok], tt[ok]
        m = tg.shape[0]
        first = np.ones(m, dtype=bool)
        first[1:] = tg[1:] != tg[:-1]
        prev_t = _shift(tt, first, st.last_ts[tg])
    counters["duplicate"] += n_dup
    counters["accepted"] += m
    clock_end = st.clock if m == 0 else max(st.clock, int(tt.max()))
    vv = value[pick]
    fault = ~np.isfinite(vv) | (vv < table.range_lo[tg]) | (vv > table.range_hi[tg])
    fault |= quality[pick] != 0

    # ---- valid readings: limits with deadband, frozen value
    vi = np.flatnonzero(~fault)
    vtg, vtt, vvv = tg[vi], tt[vi], vv[vi]
    vfirst = np.ones(vi.shape[0], dtype=bool)
    vfirst[1:] = vtg[1:] != vtg[:-1]
    vstart = _seg_start(vfirst)
    carry_word = st.word[vtg].astype(np.int64)
    word_valid = np.zeros(vi.shape[0], dtype=np.int64)
    db = table.deadband[vtg]
    for k in range(4):
        lim = _limit_column(table, k)[vtg]
        if LIMIT_HIGH[k]:
            set_, clear = vvv > lim, vvv < lim - db
        else:
            set_, clear = vvv < lim, vvv > lim + db
        bit = _hold(set_, set_ | clear, vstart, carry_word >> k & 1)
        word_valid |= bit << k
    frozen = _frozen(table, st, vtg, vtt, vvv, vfirst)
    word_valid |= frozen.astype(np.int64) << BIT_FROZEN

    # ---- all accepted readings: faulty ones hold the last valid word
    start = _seg_start(first)
    if vi.shape[0] == m:
        word = word_valid  # no faulty reading in the batch
    else:
        full = np.zeros(m, dtype=np.int64)
        full[vi] = word_valid
        carry_all = st.word[tg].astype(np.int64) & ~(1 << BIT_FAULT)
        word = _ffill(~fault, full, start, carry_all) | (fault.astype(np.int64) << BIT_FAULT)
    prev_word = _shift(word, first, st.word[tg].astype(np.int64))

    # ---- stale: a gap of more than stale_ms before a reading
    sms = stale_ms[tg]
    was_stale = first & st.stale[tg]
    gap = (sms > 0) & (prev_t != NONE) & (prev_t + sms + 1 <= tt) & ~was_stale
    stale_end = gap | was_stale
    stale_timers = list(zip((prev_t[gap] + sms[gap] + 1).tolist(), tg[gap].tolist(), strict=True))

    points = np.flatnonzero((word != prev_word) | stale_end)
    rule_points = _rules(table, st, vtg, vtt, vvv, vfirst, seq[vi])

    # ---- carry-over for the next batch
    last = np.ones(m, dtype=bool)
    last[:-1] = tg[1:] != tg[:-1]
    st.last_ts[tg[last]] = tt[last]
    st.word[tg[last]] = word[last].astype(np.uint8)
    vlast = np.ones(vi.shape[0], dtype=bool)
    vlast[:-1] = vtg[1:] != vtg[:-1]
    st.last_v[vtg[vlast]] = vvv[vlast]
    st.last_vts[vtg[vlast]] = vtt[vlast]
    has = np.zeros(n_tags, dtype=bool)
    has[tg] = True
    sweep = (
        (stale_ms > 0)
        & (st.last_ts != NONE)
        & ~(st.stale & ~has)
        & (st.last_ts + stale_ms + 1 <= clock_end)
    ) if clock_end != NONE else np.zeros(n_tags, dtype=bool)  # fmt: skip
    swept = np.flatnonzero(sweep)
    stale_timers.extend(zip((st.last_ts[swept] + stale_ms[swept] + 1).tolist(),
                            swept.tolist(), strict=True))  # fmt: skip
    st.clock = clock_end
    return BatchPlan(
        clock_end=clock_end,
        tag_seq=seq[points],
        tag_ts=tt[points],
        tag_tag=tg[points],
        tag_old=prev_word[points],
        tag_new=word[points],
        tag_stale_end=stale_end[points],
        rule_points=rule_points,
        stale_timers=stale_timers,
    )


def stale_sweep(st: EngineState, stale_ms: I64, now: int) -> list[tuple[int, int]]:
    """Stale timers `(deadline, tag)` due by `now` ms for tags not yet stale."""
    due = (stale_ms > 0) & (st.last_ts != NONE) & ~st.stale & (st.last_ts + stale_ms + 1 <= now)
    tags = np.flatnonzero(due)
    return list(zip((st.last_ts[tags] + stale_ms[tags] + 1).tolist(), tags.tolist(), strict=True))


def _segments(vtg: I64, tags: I64) -> tuple[I64, I64]:
    return np.searchsorted(vtg, tags, "left"), np.searchsorted(vtg, tags, "right")


def _frozen(table: TagTable, st: EngineState, vtg: I64, vtt: I64, vvv: F64, vfirst: BOOL) -> BOOL:
    """Frozen bit per valid reading: the value stayed within the band since an anchor reading
    for at least frozen_ms. Anchored (not consecutive) so a slow ramp counts as moving; only
    tags with detection on are walked, in plain Python."""
    out = np.zeros(vtg.shape[0], dtype=bool)
    heads = vtg[vfirst]
    heads = heads[table.frozen_ms[heads] > 0]
    if heads.shape[0] == 0:
        return out
    starts, ends = _segments(vtg, heads)
    for tag, a, b in zip(heads.tolist(), starts.tolist(), ends.tolist(), strict=True):
        band, limit = float(table.frozen_band[tag]), int(table.frozen_ms[tag])
        anchor_v, anchor_t = float(st.frz_v[tag]), int(st.frz_ts[tag])
        flags = []
        for t, v in zip(vtt[a:b].tolist(), vvv[a:b].tolist(), strict=True):
            if anchor_t == NONE or abs(v - anchor_v) > band:
                anchor_v, anchor_t = v, t
            flags.append(t - anchor_t >= limit)
        out[a:b] = flags
        st.frz_v[tag], st.frz_ts[tag] = anchor_v, anchor_t
    return out


def _rules(table: TagTable, st: EngineState, vtg: I64, vtt: I64, vvv: F64, vfirst: BOOL,
           vseq: I64) -> list[tuple[int, int, int, int, int]]:  # fmt: skip
    """Evaluate every rule whose tags have valid readings; return its bit changes."""
    if table.n_rules == 0 or vtg.shape[0] == 0:
        return []
    present = np.zeros(table.n_tags, dtype=bool)
    present[vtg[vfirst]] = True
    b_present = np.where(table.rule_b >= 0, present[np.maximum(table.rule_b, 0)], False)
    todo = np.flatnonzero(present[table.rule_a] | b_present)
    if todo.shape[0] == 0:
        return []
    a_start, a_end = _segments(vtg, table.rule_a[todo].astype(np.int64))
    b_start, b_end = _segments(vtg, np.maximum(table.rule_b[todo], 0).astype(np.int64))
    out: list[tuple[int, int, int, int, int]] = []
    for i, r in enumerate(todo.tolist()):
        kind = int(table.rule_kind[r])
        sa = slice(int(a_start[i]), int(a_end[i]))
        if kind == RuleKind.RATE_OF_CHANGE:
            seqs, times, bits = vseq[sa], vtt[sa], _roc(table, st, r, vtt[sa], vvv[sa])
        elif kind == RuleKind.BASELINE:
            seqs, times, bits = vseq[sa], vtt[sa], _baseline(table, st, r, vtt[sa], vvv[sa])
        else:
            sb = slice(int(b_start[i]), int(b_end[i]))
            seqs, times, bits = _pair(table, st, r, vtt[sa], vvv[sa], vseq[sa],
                                      vtt[sb], vvv[sb], vseq[sb])  # fmt: skip
        if bits.shape[0] == 0:
            continue
        prev = np.empty_like(bits)
        prev[0] = int(st.rword[r])
        prev[1:] = bits[:-1]
        change = np.flatnonzero(bits != prev)
        for j in change.tolist():
            out.append((int(seqs[j]), int(times[j]), r, int(prev[j]), int(bits[j])))
        st.rword[r] = int(bits[-1])
    return out


def _roc(table: TagTable, st: EngineState, r: int, t: I64, v: F64) -> I64:
    tag = int(table.rule_a[r])
    prev_v = np.empty_like(v)
    prev_t = np.empty_like(t)
    prev_v[0], prev_t[0] = st.last_v[tag], st.last_vts[tag]
    prev_v[1:], prev_t[1:] = v[:-1], t[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = (v - prev_v) * 60_000.0 / (t - prev_t).astype(np.float64)
    direction = int(table.rule_direction[r])
    speed = np.abs(rate) if direction == 0 else (rate if direction == 1 else -rate)
    bits: I64 = (speed > table.rule_p1[r]).astype(np.int64)
    return bits  # NaN (no previous value) compares False


def _baseline(table: TagTable, st: EngineState, r: int, t: I64, v: F64) -> I64:
    """Bucketed baseline: the mean of the previous window bucket (e.g. yesterday's 24 h mean);
    NaN until a whole bucket was seen or after a gap of more than one bucket. Sums run in
    reading order (np.cumsum is sequential) so results do not depend on batch boundaries."""
    window = int(table.rule_window_ms[r])
    bucket = t // window
    base = np.empty(t.shape[0])
    cur, total, count, mean = int(st.r_ts[r]), float(st.r_v[r]), int(st.r_n[r]), float(st.r_base[r])
    edges = np.flatnonzero(np.diff(bucket)) + 1
    for a, b in zip([0, *edges.tolist()], [*edges.tolist(), t.shape[0]], strict=True):
        day = int(bucket[a])
        if day != cur:
            mean = total / count if (cur != NONE and day == cur + 1 and count > 0) else np.nan
            cur, total, count = day, 0.0, 0
        base[a:b] = mean
        total = float(np.cumsum(np.concatenate(([total], v[a:b])))[-1])
        count += b - a
    st.r_ts[r], st.r_v[r], st.r_n[r], st.r_base[r] = cur, total, count, mean
    level1 = v > table.rule_p1[r] * base
    level2 = v > table.rule_p2[r] * base
    bits: I64 = level1.astype(np.int64) | (level2.astype(np.int64) << 1)
    return bits


def _pair(table: TagTable, st: EngineState, r: int, at: I64, av: F64, aseq: I64,
          bt: I64, bv: F64, bseq: I64) -> tuple[I64, I64, I64]:  # fmt: skip
    """Two-tag rules, evaluated at every valid reading of either tag with the other's latest."""
    a, b = int(table.rule_a[r]), int(table.rule_b[r])
    kind = int(table.rule_kind[r])
    if kind == RuleKind.FLATLINE:
        band = float(table.rule_p2[r])
        anchor_v, anchor_t = float(st.r_v[r]), int(st.r_ts[r])
        a_carry = np.nan if anchor_t == NONE else float(anchor_t)
        anchors = []
        for t, v in zip(at.tolist(), av.tolist(), strict=True):
            if anchor_t == NONE or abs(v - anchor_v) > band:
                anchor_v, anchor_t = v, t
            anchors.append(anchor_t)
        st.r_v[r], st.r_ts[r] = anchor_v, anchor_t
        a_vals = np.array(anchors, dtype=np.float64)
    else:
        a_vals = av
        a_carry = float(st.last_v[a])
    seqs = np.concatenate([aseq, bseq])
    order = np.argsort(seqs, kind="stable")
    seqs = seqs[order]
    times = np.concatenate([at, bt])[order]
    from_a = np.concatenate([np.ones(at.shape[0], bool), np.zeros(bt.shape[0], bool)])[order]
    merged_a = np.concatenate([a_vals, np.zeros(bt.shape[0])])[order]
    merged_b = np.concatenate([np.zeros(at.shape[0]), bv])[order]
    zero = np.zeros(seqs.shape[0], dtype=np.int64)
    x = _ffill(from_a, merged_a, zero, np.full(seqs.shape[0], a_carry))
    y = _ffill(~from_a, merged_b, zero, np.full(seqs.shape[0], float(st.last_v[b])))
    if kind == RuleKind.FLATLINE:
        # x: time the level last moved beyond the band (NaN = no level yet); y: inflow
        still = times.astype(np.float64) - x >= float(table.rule_window_ms[r])
        bits = (still & (y > table.rule_p1[r])).astype(np.int64)
    else:
        # x: inflow, y: outflow; (in − out) ≥ fraction × in, only while the circuit runs
        running = x > table.rule_p3[r]
        loss = x - y
        bits = (running & (loss >= table.rule_p1[r] * x)).astype(np.int64)
        bits |= (running & (loss >= table.rule_p2[r] * x)).astype(np.int64) << 1
    return seqs, times, bits
