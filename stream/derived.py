"""Derived conditions over a batch, vectorized across all rules of a kind at once.

Inputs are the batch's valid readings grouped by tag (`vtg` ascending, each tag's readings in
processing order; `vseq` their processing positions). Every rule kind becomes flat "entry"
arrays — one entry per (rule, reading it is evaluated at) — so numpy does the arithmetic for all
rules together; only the anchor scans (frozen value, flatline level) are sequential by nature, and
they run in lock-step across groups (one numpy round per reading position) or, when a few groups
hold many readings, as a plain per-group loop — whichever does fewer Python steps. Both give the
same anchors: the comparisons are the same IEEE operations.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from stream.state import NONE_MS, EngineState
from stream.tagtable import BOOL, F64, I64, RuleKind, TagTable

NONE = int(NONE_MS)
# The lock-step scan costs about one numpy round (~20 µs) per reading position, the plain loop
# about 0.4 µs per reading: lock-step wins once groups average more than ~1/50 of the longest.
LOCKSTEP_MIN_READINGS_PER_ROUND = 50

RulePoints = list[tuple[int, int, int, int, int]]  # (seq, ts, rule, old bits, new bits)


def ranges(starts: I64, lens: I64) -> I64:
    """Concatenation of `arange(s, s + n)` for each (s, n); empty groups contribute nothing."""
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lens) - lens
    out: I64 = np.repeat(starts - offsets, lens) + np.arange(total, dtype=np.int64)
    return out


def segments(vtg: I64, tags: I64) -> tuple[I64, I64]:
    """(start, length) of each tag's readings in the tag-sorted `vtg` (length 0 if none)."""
    start = np.searchsorted(vtg, tags, "left")
    return start, np.searchsorted(vtg, tags, "right") - start


def anchor_scan(starts: I64, lens: I64, t: I64, v: F64, band: F64, anchor_v: F64,
                anchor_t: I64) -> I64:  # fmt: skip
    """Anchor time at each reading of each group: the anchor moves to a reading when none is set
    yet or the value left `band` around the anchor value. Readings of group g are
    `t/v[starts[g] : starts[g] + lens[g]]`; returns the anchors concatenated by group and
    updates `anchor_v`/`anchor_t` (per group) in place."""
    total = int(lens.sum())
    out = np.empty(total, dtype=np.int64)
    if total == 0:
        return out
    offsets = np.cumsum(lens) - lens
    longest = int(lens.max())
    if total < LOCKSTEP_MIN_READINGS_PER_ROUND * longest:
        for g, (a, n, off) in enumerate(zip(starts.tolist(), lens.tolist(), offsets.tolist(),
                                            strict=True)):  # fmt: skip
            av, at, width = float(anchor_v[g]), int(anchor_t[g]), float(band[g])
            anchors = []
            for tj, vj in zip(t[a : a + n].tolist(), v[a : a + n].tolist(), strict=True):
                if at == NONE or abs(vj - av) > width:
                    av, at = vj, tj
                anchors.append(at)
            out[off : off + n] = anchors
            anchor_v[g], anchor_t[g] = av, at
        return out
    order = np.argsort(-lens, kind="stable")  # longest first: active groups are a prefix
    s, o, b = starts[order], offsets[order], band[order]
    vals, times = anchor_v[order], anchor_t[order]
    active = np.searchsorted(-lens[order], -np.arange(longest), "left")  # groups with len > j
    for j in range(longest):
        k = int(active[j])
        p = s[:k] + j
        vj, tj = v[p], t[p]
        reset = (times[:k] == NONE) | (np.abs(vj - vals[:k]) > b[:k])
        vals[:k] = np.where(reset, vj, vals[:k])
        times[:k] = np.where(reset, tj, times[:k])
        out[o[:k] + j] = times[:k]
    anchor_v[order], anchor_t[order] = vals, times
    return out


def frozen_bits(table: TagTable, st: EngineState, vtg: I64, vtt: I64, vvv: F64,
                heads: I64) -> BOOL:  # fmt: skip
    """Frozen flag per valid reading: within the band of an anchor for at least frozen_ms.
    Anchored (not consecutive) so a slow ramp counts as moving."""
    out = np.zeros(vtg.shape[0], dtype=bool)
    tags = vtg[heads]
    on = table.frozen_ms[tags] > 0
    if not bool(on.any()):
        return out
    tags, starts = tags[on], heads[on]
    lens = np.diff(np.append(heads, vtg.shape[0]))[on]
    anchor_v, anchor_t = st.frz_v[tags], st.frz_ts[tags]
    anchors = anchor_scan(starts, lens, vtt, vvv, table.frozen_band[tags], anchor_v, anchor_t)
    st.frz_v[tags], st.frz_ts[tags] = anchor_v, anchor_t
    pos = ranges(starts, lens)
    out[pos] = vtt[pos] - anchors >= np.repeat(table.frozen_ms[tags], lens)
    return out


def _changes(rules: I64, group_len: I64, seq: I64, ts: I64, bits: I64, st: EngineState,
             out: RulePoints) -> None:  # fmt: skip
    """Append the entries where a rule's bits change (entries grouped by rule, in processing
    order, `group_len` per rule) and store each rule's last bits."""
    keep = group_len > 0
    rules, group_len = rules[keep], group_len[keep]
    if rules.shape[0] == 0:
        return
    starts = np.cumsum(group_len) - group_len
    prev = np.empty_like(bits)
    prev[1:] = bits[:-1]
    prev[starts] = st.rword[rules]
    rule_of = np.repeat(rules, group_len)
    change = np.flatnonzero(bits != prev)
    out.extend(zip(seq[change].tolist(), ts[change].tolist(), rule_of[change].tolist(),
                   prev[change].tolist(), bits[change].tolist(), strict=True))  # fmt: skip
    st.rword[rules] = bits[starts + group_len - 1].astype(np.uint8)


def rule_points(table: TagTable, st: EngineState, vtg: I64, vtt: I64, vvv: F64, vseq: I64,
                present: BOOL) -> RulePoints:  # fmt: skip
    """Evaluate every rule whose tags have valid readings in the batch; return its bit changes
    (in no particular order: the engine orders them by processing position and rule)."""
    out: RulePoints = []
    if table.n_rules == 0 or vtg.shape[0] == 0:
        return out
    roc = table.rules_of(RuleKind.RATE_OF_CHANGE)
    roc = roc[present[table.rule_a[roc]]]
    if roc.shape[0]:
        _roc(table, st, roc, vtg, vtt, vvv, vseq, out)
    for r in table.rules_of(RuleKind.BASELINE).tolist():
        if present[table.rule_a[r]]:
            start, n = (int(x[0]) for x in segments(vtg, table.rule_a[r : r + 1].astype(np.int64)))
            t, v = vtt[start : start + n], vvv[start : start + n]
            bits = _baseline(table, st, r, t, v)
            _changes(np.array([r]), np.array([n]), vseq[start : start + n], t, bits, st, out)
    pair = np.concatenate([table.rules_of(RuleKind.FLATLINE), table.rules_of(RuleKind.FLOW_DIFF)])
    pair = pair[present[table.rule_a[pair]] | present[table.rule_b[pair]]]
    if pair.shape[0]:
        _pairs(table, st, np.sort(pair), vtg, vtt, vvv, vseq, out)
    return out


def _roc(table: TagTable, st: EngineState, rules: I64, vtg: I64, vtt: I64, vvv: F64, vseq: I64,
         out: RulePoints) -> None:  # fmt: skip
    """Rate of change per minute against the tag's previous valid reading (NaN → no alarm)."""
    tags = table.rule_a[rules].astype(np.int64)
    starts, lens = segments(vtg, tags)
    pos = ranges(starts, lens)
    firsts = np.cumsum(lens) - lens
    prev_v, prev_t = vvv[pos - 1], vtt[pos - 1]
    prev_v[firsts], prev_t[firsts] = st.last_v[tags], st.last_vts[tags]
    t, v = vtt[pos], vvv[pos]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rate = (v - prev_v) * 60_000.0 / (t - prev_t).astype(np.float64)
    direction = np.repeat(table.rule_direction[rules], lens)
    speed = np.where(direction == 0, np.abs(rate), np.where(direction == 1, rate, -rate))
    bits = (speed > np.repeat(table.rule_p1[rules], lens)).astype(np.int64)
    _changes(rules, lens, vseq[pos], t, bits, st, out)


def _baseline(table: TagTable, st: EngineState, r: int, t: I64, v: F64) -> I64:
    """Bucketed baseline: the mean of the previous window bucket (e.g. yesterday's 24 h mean);
    NaN until a whole bucket was seen or after a gap of more than one bucket. Sums run in
    reading order (np.cumsum is sequential) so results do not depend on batch boundaries —
    which is also why baseline rules are walked one rule at a time."""
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


def _ffill(decided: BOOL, values: npt.NDArray[np.float64], group_start: I64, carry: F64) -> F64:
    """Hold the last decided value within each group; `carry` before the group's first one."""
    pos = np.where(decided, np.arange(decided.shape[0]), -1)
    last = np.maximum.accumulate(pos)
    out: F64 = np.where(last < group_start, carry, values[np.maximum(last, 0)])
    return out


def _pairs(table: TagTable, st: EngineState, rules: I64, vtg: I64, vtt: I64, vvv: F64,
           vseq: I64, out: RulePoints) -> None:  # fmt: skip
    """Two-tag rules (flatline, flow difference), evaluated at every valid reading of either tag
    with the other's latest value, all rules at once."""
    a_tags = table.rule_a[rules].astype(np.int64)
    b_tags = table.rule_b[rules].astype(np.int64)
    a_start, a_len = segments(vtg, a_tags)
    b_start, b_len = segments(vtg, b_tags)
    a_pos, b_pos = ranges(a_start, a_len), ranges(b_start, b_len)
    flat = table.rule_kind[rules] == RuleKind.FLATLINE
    # value carried by the "a" side: the level's anchor time (flatline) or the inflow (flow diff)
    a_vals = vvv[a_pos]
    a_carry = st.last_v[a_tags]
    if bool(flat.any()):
        fr = rules[flat]
        anchor_v, anchor_t = st.r_v[fr], st.r_ts[fr]
        a_carry[flat] = np.where(anchor_t == NONE, np.nan, anchor_t.astype(np.float64))
        anchors = anchor_scan(a_start[flat], a_len[flat], vtt, vvv, table.rule_p2[fr],
                              anchor_v, anchor_t)  # fmt: skip
        st.r_v[fr], st.r_ts[fr] = anchor_v, anchor_t
        a_off = np.cumsum(a_len) - a_len
        a_vals[ranges(a_off[flat], a_len[flat])] = anchors.astype(np.float64)
    n_rule = rules.shape[0]
    rid = np.concatenate([np.repeat(np.arange(n_rule), a_len), np.repeat(np.arange(n_rule), b_len)])
    seq = np.concatenate([vseq[a_pos], vseq[b_pos]])
    from_b = np.concatenate([np.zeros(a_pos.shape[0], np.int64), np.ones(b_pos.shape[0], np.int64)])
    span = 2 * (int(seq.max()) + 1)
    order = np.argsort(rid * span + 2 * seq + from_b)  # by rule, then processing order, a first
    rid, seq, from_a = rid[order], seq[order], from_b[order] == 0
    times = np.concatenate([vtt[a_pos], vtt[b_pos]])[order]
    vals = np.concatenate([a_vals, vvv[b_pos]])[order]
    group_len = a_len + b_len
    group_start = np.repeat(np.cumsum(group_len) - group_len, group_len)
    x = _ffill(from_a, vals, group_start, a_carry[rid])
    y = _ffill(~from_a, vals, group_start, st.last_v[b_tags][rid])
    p1, p2, p3 = table.rule_p1[rules][rid], table.rule_p2[rules][rid], table.rule_p3[rules][rid]
    with np.errstate(invalid="ignore"):
        # flatline — x: time the level last moved beyond the band (NaN = no level yet); y: inflow
        still = times.astype(np.float64) - x >= table.rule_window_ms[rules][rid].astype(np.float64)
        flat_bits = (still & (y > p1)).astype(np.int64)
        # flow difference — x: inflow, y: outflow; (in − out) ≥ fraction × in while running
        running = x > p3
        loss = x - y
        diff_bits = (running & (loss >= p1 * x)).astype(np.int64)
        diff_bits |= (running & (loss >= p2 * x)).astype(np.int64) << 1
    bits = np.where(flat[rid], flat_bits, diff_bits)
    _changes(rules, group_len, seq, times, bits, st, out)
