"""The engine's mutable state as a struct of numpy arrays, and its versioned snapshot format.

Snapshot format (version 1): an uncompressed `.npz` archive (numpy's zip of `.npy` arrays, no
pickles) holding every array below plus `format_version`, `fingerprint` (table shape), `heap`
(n × 3 int64 timers), `flood_off`/`flood_times` (per-enterprise alarm times, CSR) and `counters`.
Changing any name or meaning needs a new version and a migration note (STYLE.md practice 5).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

from hazardwatch.errors import HazardwatchError
from hazardwatch.types import RiskColour
from stream.tagtable import BOOL, F64, I8, I32, I64, TagTable

SNAPSHOT_VERSION = 1
NONE_MS = np.iinfo(np.int64).min  # "no time": never a real epoch-ms value
COUNTER_NAMES = ("accepted", "late", "duplicate", "unknown_tag")

U8 = npt.NDArray[np.uint8]

# Raw condition word of a tag: one bit per limit slot, then data-quality bits.
BIT_FAULT = 4
BIT_FROZEN = 5


class SnapshotError(HazardwatchError):
    """A snapshot is of another format version or was taken on a differently shaped plant."""


@dataclass(eq=False)
class EngineState:
    """All per-tag, per-slot, per-unit, per-source and per-enterprise state."""

    # per tag
    last_ts: I64  # last accepted reading (any quality), ms
    last_v: F64  # last valid value
    last_vts: I64  # time of the last valid value
    word: U8  # raw condition bits: 0–3 LL/L/H/HH (after deadband), 4 fault, 5 frozen
    stale: BOOL
    frz_v: F64  # frozen-value anchor: value and since when it has stayed within the band
    frz_ts: I64
    shelved_until: I64  # NONE_MS = not shelved
    oos: BOOL
    tag_s2: I32  # S2 alarms in alarm on this tag
    # per rule
    rword: U8  # raw bits of the rule: 0 level 1, 1 level 2
    r_v: F64  # flatline: level anchor value; baseline: running bucket sum
    r_ts: I64  # flatline: anchor time; baseline: current bucket number
    r_n: I64  # baseline: readings in the current bucket
    r_base: F64  # baseline: mean of the previous bucket (NaN = none yet)
    # per slot
    raw: BOOL
    active: BOOL
    acked: BOOL
    inalarm: BOOL  # active and neither shelved nor out of service: counts for severity
    unacked: BOOL  # counted in its source's unacknowledged total
    reported: U8  # index into REPORTED_STATES of the last state emitted
    pending: I64  # on- or off-delay deadline; NONE_MS = none
    acts: I64  # (n_slots, chatter_activations − 1) previous activation times, newest first
    # per unit
    usev: I8
    s2_since: I64
    bypass: BOOL
    u_s1: I32
    u_s2tags: I32
    u_s3d: I32
    # per source
    colour: I8
    ssev: I8
    unacked_n: I32
    esc_since: I64
    # per enterprise
    ecolour: I8
    flooding: BOOL
    flood_times: list[list[int]] = field(default_factory=list)
    # global
    clock: int = int(NONE_MS)
    heap: list[tuple[int, int, int]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTER_NAMES, 0))

    @classmethod
    def fresh(cls, table: TagTable, chatter_activations: int) -> EngineState:
        """All tags without history, alarms normal, every colour blue."""
        n, r, s = table.n_tags, table.n_rules, table.n_slots
        u, k, e = len(table.unit_ids), len(table.source_ids), len(table.enterprise_ids)
        none = int(NONE_MS)
        blue = int(RiskColour.BLUE)
        return cls(
            last_ts=np.full(n, none, np.int64),
            last_v=np.full(n, np.nan),
            last_vts=np.full(n, none, np.int64),
            word=np.zeros(n, np.uint8),
            stale=np.zeros(n, bool),
            frz_v=np.full(n, np.nan),
            frz_ts=np.full(n, none, np.int64),
            shelved_until=np.full(n, none, np.int64),
            oos=np.zeros(n, bool),
            tag_s2=np.zeros(n, np.int32),
            rword=np.zeros(r, np.uint8),
            r_v=np.zeros(r),
            r_ts=np.full(r, none, np.int64),
            r_n=np.zeros(r, np.int64),
            r_base=np.full(r, np.nan),
            raw=np.zeros(s, bool),
            active=np.zeros(s, bool),
            acked=np.ones(s, bool),
            inalarm=np.zeros(s, bool),
            unacked=np.zeros(s, bool),
            reported=np.zeros(s, np.uint8),
            pending=np.full(s, none, np.int64),
            acts=np.full((s, max(chatter_activations - 1, 1)), none, np.int64),
            usev=np.zeros(u, np.int8),
            s2_since=np.full(u, none, np.int64),
            bypass=np.zeros(u, bool),
            u_s1=np.zeros(u, np.int32),
            u_s2tags=np.zeros(u, np.int32),
            u_s3d=np.zeros(u, np.int32),
            colour=np.full(k, blue, np.int8),
            ssev=np.zeros(k, np.int8),
            unacked_n=np.zeros(k, np.int32),
            esc_since=np.full(k, none, np.int64),
            ecolour=np.full(e, blue, np.int8),
            flooding=np.zeros(e, bool),
            flood_times=[[] for _ in range(e)],
        )

    def array_names(self) -> list[str]:
        """Names of the numpy-array fields (the bulk of the state)."""
        return [f.name for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)]

    def nbytes(self) -> int:
        """Bytes held by the state arrays, timers and flood windows."""
        total = sum(int(getattr(self, name).nbytes) for name in self.array_names())
        return total + 24 * len(self.heap) + 8 * sum(len(t) for t in self.flood_times)

    def snapshot(self, table: TagTable) -> bytes:
        """Serialise to the versioned snapshot format (see module docstring)."""
        arrays = {name: getattr(self, name) for name in self.array_names()}
        lengths = [len(t) for t in self.flood_times]
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = [x for times in self.flood_times for x in times]
        buffer = io.BytesIO()
        np.savez(
            buffer,
            format_version=np.array([SNAPSHOT_VERSION], np.int64),
            fingerprint=np.array(table.fingerprint(), np.int64),
            clock=np.array([self.clock], np.int64),
            heap=np.array(self.heap, np.int64).reshape(-1, 3),
            flood_off=offsets,
            flood_times=np.array(flat, np.int64),
            counters=np.array([self.counters[c] for c in COUNTER_NAMES], np.int64),
            **arrays,
        )
        return buffer.getvalue()

    @classmethod
    def restore(cls, table: TagTable, chatter_activations: int, blob: bytes) -> EngineState:
        """Rebuild a state from `snapshot()` bytes; SnapshotError on version or shape mismatch."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            version = int(data["format_version"][0])
            if version != SNAPSHOT_VERSION:
                raise SnapshotError(f"snapshot format {version}, engine reads {SNAPSHOT_VERSION}")
            if tuple(int(x) for x in data["fingerprint"]) != table.fingerprint():
                raise SnapshotError("snapshot was taken on a plant of another shape")
            state = cls.fresh(table, chatter_activations)
            for name in state.array_names():
                loaded = data[name]
                if loaded.shape != getattr(state, name).shape:
                    raise SnapshotError(f"snapshot array {name} has shape {loaded.shape}")
                setattr(state, name, loaded.copy())
            state.clock = int(data["clock"][0])
            state.heap = [(int(a), int(b), int(c)) for a, b, c in data["heap"].tolist()]
            off, flat = data["flood_off"].tolist(), data["flood_times"].tolist()
            state.flood_times = [flat[off[i] : off[i + 1]] for i in range(len(off) - 1)]
            state.counters = dict(zip(COUNTER_NAMES, data["counters"].tolist(), strict=True))
        return state
