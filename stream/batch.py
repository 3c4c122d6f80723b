"""The vectorized half of the engine: from a batch of readings to the few change points.

`analyse_batch` does all per-reading work with numpy over the whole batch:

1. drop unknown tags, late readings (ts < engine clock at batch start) and duplicates (a tag's
   second reading at the same ts, or at/below its last processed ts) — counted, never raised;
2. order the rest by (ts, arrival) — the processing order — and group by tag;
3. per reading: sensor fault (NaN/inf, outside instrument range, quality ≠ 0), limit conditions
   with deadband hysteresis, frozen value, stale gaps, and the derived rules;
4. return only the readings where a tag's raw condition word or a rule's bits change, plus the
   stale timers, and write the new per-tag carry-over (last value, word, anchors) into the state.

Speed comes from touching each reading as few times as possible: whole-batch work is a handful
of gathers and compares; the per-limit deadband hysteresis only runs on the few readings that are
not plainly inside every limit (`TagTable.clear_band`), and per-tag carries are read at segment
heads only. Derived rules are vectorized per rule kind in `stream.derived`.

Faulty readings keep a tag alive (no stale) but carry no value: limits, rules and anchors hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from stream.derived import frozen_bits, rule_points
from stream.state import BIT_FAULT, BIT_FROZEN, NONE_MS, EngineState
from stream.tagtable import BOOL, F64, I64, LIMIT_HIGH, TagTable

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


INT64_MAX = np.iinfo(np.int64).max
U8A = npt.NDArray[np.uint8]


def _heads(tg: I64) -> I64:
    """Start index of each tag segment in the tag-sorted `tg`."""
    if tg.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.empty(tg.shape[0], dtype=bool)
    first[0] = True
    np.not_equal(tg[1:], tg[:-1], out=first[1:])
    return np.flatnonzero(first)


def _tails(heads: I64, m: int) -> I64:
    """Last index of each tag segment."""
    return np.append(heads[1:] - 1, m - 1) if m else heads


def _shift(values: npt.NDArray[G], heads: I64, carry: npt.NDArray[G]) -> npt.NDArray[G]:
    """Previous element within each tag segment; `carry` (one per segment) at segment heads."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[heads] = carry
    return out


def _ffill(decided: BOOL, values: npt.NDArray[G], seg_start: I64,
           carry: npt.NDArray[G]) -> npt.NDArray[G]:  # fmt: skip
    """Hold the last decided value within each segment; `carry` before the first decision."""
    pos = np.where(decided, np.arange(decided.shape[0]), -1)
    last = np.maximum.accumulate(pos)
    out: npt.NDArray[G] = np.where(last < seg_start, carry, values[np.maximum(last, 0)])
    return out


def _seg_start(heads: I64, m: int) -> I64:
    """Per element, the index where its segment starts."""
    return np.repeat(heads, np.diff(np.append(heads, m)))


def _limit_bits(table: TagTable, st: EngineState, vtg: I64, vvv: F64, heads: I64) -> U8A:
    """Limit bits 0–3 of each valid reading, with deadband hysteresis.

    A reading strictly inside its tag's clear band decides every limit "clear": bits 0. Only
    the others (P, few in steady operation) are classified per limit; an undecided one (inside
    the deadband) holds the bit of the latest decided reading of its tag — the latest decided
    one in P, or the in-band reading just before its run of P readings — or the carried bit."""
    below, above = table.clear_band
    word = np.zeros(vtg.shape[0], dtype=np.uint8)
    p = np.flatnonzero(~((vvv < below[vtg]) & (vvv > above[vtg])))
    if p.shape[0] == 0:
        return word
    ptag, pv = vtg[p], vvv[p]
    pstart = heads[np.searchsorted(heads, p, "right") - 1]
    run_first = np.ones(p.shape[0], dtype=bool)
    run_first[1:] = p[1:] != p[:-1] + 1
    in_band_before = p[np.maximum.accumulate(np.where(run_first, np.arange(p.shape[0]), 0))] - 1
    carry = st.word[ptag]
    db = table.deadband[ptag]
    lim = table.limit_inf[ptag]
    bits = np.zeros(p.shape[0], dtype=np.uint8)
    for k in range(4):
        if LIMIT_HIGH[k]:
            set_, clear = pv > lim[:, k], pv < lim[:, k] - db
        else:
            set_, clear = pv < lim[:, k], pv > lim[:, k] + db
        decided = set_ | clear
        bit = set_.copy()
        undecided = np.flatnonzero(~decided)
        if undecided.shape[0]:
            decided_at = np.append(np.flatnonzero(decided), 0)  # 0: a harmless pad at j = -1
            j = np.searchsorted(decided_at[:-1], undecided) - 1
            src = decided_at[j]
            last_p = np.where(j >= 0, p[src], -1)
            last_band = in_band_before[undecided]
            held = np.where(last_p > last_band, set_[src], False)
            inside = np.maximum(last_p, last_band) >= pstart[undecided]
            bit[undecided] = np.where(inside, held, (carry[undecided] >> k & 1).astype(bool))
        bits |= bit.astype(np.uint8) << k
    word[p] = bits
    return word


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
    n_in = tag.shape[0]
    idx: I64 | None = None  # kept readings as positions in the input; None = all of them
    if n_in and (int(tag.min()) < 0 or int(tag.max()) >= n_tags
                 or (st.clock != NONE and int(ts.min()) < st.clock)):  # fmt: skip
        known = (tag >= 0) & (tag < n_tags)
        counters["unknown_tag"] += int(n_in - np.count_nonzero(known))
        keep = known & (ts >= st.clock) if st.clock != NONE else known
        counters["late"] += int(np.count_nonzero(known) - np.count_nonzero(keep))
        idx = np.flatnonzero(keep)
    tk, tsk = (tag, ts) if idx is None else (tag[idx], ts[idx])
    if tsk.shape[0] > 1 and not bool(np.all(tsk[1:] >= tsk[:-1])):
        order = np.argsort(tsk, kind="stable")
        idx = order if idx is None else idx[order]
        tk = tk[order]
    seq = np.argsort(tk, kind="stable")  # processing position of each reading, grouped by tag
    pick = seq if idx is None else idx[seq]
    tg = tk[seq].astype(np.int64)
    tt = ts[pick]
    heads = _heads(tg)
    prev_t = _shift(tt, heads, st.last_ts[tg[heads]])
    dup = tt <= prev_t  # same tag, same or older ts (sorted, so only equal ts can occur)
    n_dup = int(np.count_nonzero(dup))
    if n_dup:
        ok = ~dup
        pick, seq, tg, tt = pick[ok], seq[ok], tg[ok], tt[ok]
        heads = _heads(tg)
        prev_t = _shift(tt, heads, st.last_ts[tg[heads]])
    m = tg.shape[0]
    head_tags = tg[heads]
    counters["duplicate"] += n_dup
    counters["accepted"] += m
    clock_end = st.clock if m == 0 else max(st.clock, int(tt.max()))
    vv = value[pick]
    lo, hi = table.valid_range
    valid = (vv >= lo[tg]) & (vv <= hi[tg])  # false for NaN/±inf too
    if bool(quality.any()):
        valid &= quality[pick] == 0
    fault = None if bool(valid.all()) else ~valid

    # ---- valid readings: limits with deadband, frozen value
    if fault is None:
        vi, vtg, vtt, vvv, vseq, vheads = None, tg, tt, vv, seq, heads
    else:
        vi = np.flatnonzero(valid)
        vtg, vtt, vvv, vseq = tg[vi], tt[vi], vv[vi], seq[vi]
        vheads = _heads(vtg)
    word_valid = _limit_bits(table, st, vtg, vvv, vheads)
    frozen = frozen_bits(table, st, vtg, vtt, vvv, vheads)
    if vtg.shape[0] and bool(frozen.any()):
        word_valid |= frozen.astype(np.uint8) << BIT_FROZEN

    # ---- all accepted readings: faulty ones hold the last valid word
    carry_word = st.word[head_tags]
    if fault is None:
        word = word_valid
    else:
        full = np.zeros(m, dtype=np.uint8)
        full[vi] = word_valid
        carry_all = np.repeat(carry_word & ~np.uint8(1 << BIT_FAULT), np.diff(np.append(heads, m)))
        word = _ffill(valid, full, _seg_start(heads, m), carry_all)
        word |= fault.astype(np.uint8) << BIT_FAULT
    prev_word = _shift(word, heads, carry_word)

    # ---- stale: a gap of more than stale_ms before a reading
    sms = np.where(stale_ms > 0, stale_ms, INT64_MAX // 4)  # off: a gap that never comes
    limit_t = prev_t + sms[tg]
    limit_t[heads[prev_t[heads] == NONE]] = INT64_MAX
    was_stale = st.stale[head_tags]
    limit_t[heads[was_stale]] = INT64_MAX  # already stale: the reading ends it, no new gap
    gap = limit_t < tt  # prev_t + stale_ms + 1 <= tt
    stale_end = gap.copy()
    stale_end[heads[was_stale]] = True
    g = np.flatnonzero(gap)
    stale_timers = list(zip((prev_t[g] + stale_ms[tg[g]] + 1).tolist(), tg[g].tolist(),
                            strict=True))  # fmt: skip

    points = np.flatnonzero((word != prev_word) | stale_end)
    present = np.zeros(n_tags, dtype=bool)
    present[vtg[vheads]] = True
    rule_pts = rule_points(table, st, vtg, vtt, vvv, vseq, present)

    # ---- carry-over for the next batch
    tails = _tails(heads, m)
    st.last_ts[head_tags] = tt[tails]
    st.word[head_tags] = word[tails]
    vtails = _tails(vheads, vtg.shape[0])
    st.last_v[vtg[vheads]] = vvv[vtails]
    st.last_vts[vtg[vheads]] = vtt[vtails]
    has = np.zeros(n_tags, dtype=bool)
    has[head_tags] = True
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
        tag_old=prev_word[points].astype(np.int64),
        tag_new=word[points].astype(np.int64),
        tag_stale_end=stale_end[points],
        rule_points=rule_pts,
        stale_timers=stale_timers,
    )


def stale_sweep(st: EngineState, stale_ms: I64, now: int) -> list[tuple[int, int]]:
    """Stale timers `(deadline, tag)` due by `now` ms for tags not yet stale."""
    due = (stale_ms > 0) & (st.last_ts != NONE) & ~st.stale & (st.last_ts + stale_ms + 1 <= now)
    tags = np.flatnonzero(due)
    return list(zip((st.last_ts[tags] + stale_ms[tags] + 1).tolist(), tags.tolist(), strict=True))
