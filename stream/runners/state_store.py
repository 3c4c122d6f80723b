"""Durable engine state for the embedded runner: SQLite in WAL mode under the data directory.

The engine's state is stored as the members of its snapshot format (`stream.state`: named numpy
arrays), each cut into chunks of `chunk_bytes`. A save writes only the chunks whose bytes differ
from the previous save, so an alarm at one tag of a 100,000-tag plant commits a few kilobytes,
not the whole 18 MB state; every save is one transaction, so the stored members always form one
consistent snapshot. `prepare` only copies the members (under the engine's lock); `commit`
compares them with a shadow of what is stored and writes the changed chunks with fsync, on the
runner's writer thread, off the engine's path. `load()` reassembles the members into the
snapshot bytes `RiskEngine.restore` reads, which checks the format version and the plant's shape.

The same transaction can hold the InfluxDB lines of the events the saved state already reflects
(`held` lines): once the state is committed, a redelivered reading no longer produces those
events, so their lines must survive a crash until the sink has written or spooled them
(`release`). A restart hands the held lines back (`held_lines`).

Schema version 2 (tables `engine_member_v2`, `engine_chunk_v2`, `held_lines_v2`); a version 1
database (one row of full snapshot bytes, `engine_state_v1`) is still read, and the first save
replaces it.
"""

from __future__ import annotations

import io
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

from stream.state import COUNTER_NAMES, SNAPSHOT_VERSION, EngineState
from stream.tagtable import TagTable

CHUNK_BYTES = 64 * 1024
SPARE_BUFFERS = 2  # recycled copies per member: deltas in flight to the writer
_SCHEMA = """
CREATE TABLE IF NOT EXISTS engine_member_v2 (
    name TEXT PRIMARY KEY,
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    nbytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS engine_chunk_v2 (
    name TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (name, chunk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS engine_saved_v2 (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    saved_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS held_lines_v2 (
    id INTEGER PRIMARY KEY,
    lines TEXT NOT NULL
);
"""

Members = Mapping[str, npt.NDArray[np.generic]]


def snapshot_members(state: EngineState, table: TagTable) -> dict[str, npt.NDArray[np.generic]]:
    """The arrays of `EngineState.snapshot()` without building the archive (views, not copies).

    Mirrors stream.state's format version 1; a unit test compares the two member by member.
    """
    lengths = [len(t) for t in state.flood_times]
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    members: dict[str, npt.NDArray[np.generic]] = {
        "format_version": np.array([SNAPSHOT_VERSION], np.int64),
        "fingerprint": np.array(table.fingerprint(), np.int64),
        "clock": np.array([state.clock], np.int64),
        "heap": np.array(state.heap, np.int64).reshape(-1, 3),
        "flood_off": offsets,
        "flood_times": np.array([x for t in state.flood_times for x in t], np.int64),
        "counters": np.array([state.counters[c] for c in COUNTER_NAMES], np.int64),
    }
    for name in state.array_names():
        members[name] = getattr(state, name)
    return members


def members_to_snapshot(members: Members) -> bytes:
    """Snapshot bytes (the `.npz` of stream.state) from its members."""
    buffer = io.BytesIO()
    np.savez(buffer, **members)  # type: ignore[arg-type]
    return buffer.getvalue()


@dataclass
class StateDelta:
    """A copy of the engine's snapshot members, taken under the engine's lock; `commit` finds
    and writes the chunks that changed."""

    saved_ms: int
    members: dict[str, npt.NDArray[np.uint8]]
    meta: dict[str, tuple[str, str]]  # name → (dtype, shape as JSON)


@dataclass
class StoreStats:
    """What the store wrote: saves, chunks and bytes (chunks are what a delta save costs)."""

    saves: int = 0
    chunks_written: int = 0
    bytes_written: int = 0


class StateStore:
    """Chunked, delta-saved engine snapshot members plus held event lines; thread-safe.

    `prepare()` copies the state (cheap; under the engine's lock) and `commit()` finds and
    writes what changed (on the writer thread). Deltas are committed in the order prepared.
    """

    def __init__(self, path: Path, chunk_bytes: int = CHUNK_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.chunk_bytes = chunk_bytes
        self.stats = StoreStats()
        # Deltas come from the ingest and ticker threads, commits from the sink writer.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed state survives power loss, not only a process kill.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._shadow: dict[str, npt.NDArray[np.uint8]] = {}  # member bytes as stored
        self._released: list[int] = []  # held ids to delete with the next transaction
        self._spare: dict[str, list[npt.NDArray[np.uint8]]] = {}  # buffers for `prepare`

    @property
    def saves(self) -> int:
        """Committed saves since this store was opened."""
        return self.stats.saves

    def load(self) -> bytes | None:
        """The latest snapshot bytes, or None on first start."""
        with self._lock:
            members = self._load_members()
            if members:
                self._shadow = {k: _as_bytes(v).copy() for k, v in members.items()}
                return members_to_snapshot(members)
            if self._has_v1():
                row = self._db.execute("SELECT snapshot FROM engine_state_v1 WHERE id = 1")
                found = row.fetchone()
                return None if found is None else bytes(found[0])
            return None

    def prepare(self, members: Members, saved_ms: int) -> StateDelta:
        """Copy the members (a memcpy: cheap enough under the engine's lock)."""
        return StateDelta(
            saved_ms,
            {name: _as_bytes(a).copy() for name, a in members.items()},
            {
                name: (a.dtype.str, orjson.dumps(list(a.shape)).decode())
                for name, a in members.items()
            },
        )

    def commit(self, delta: StateDelta | None, held: Sequence[str] = ()) -> int:
        """Write the chunks of `delta` that changed since the last commit (if any) and `held`
        lines in one transaction; returns the held lines' id for `release` (0 when none)."""
        with self._lock:
            db = self._db
            changes = self._diff(delta) if delta is not None else []
            db.execute("BEGIN IMMEDIATE")
            try:
                if delta is not None:
                    self._write(delta, changes)
                held_id = self._hold(held)
                if self._released:
                    db.executemany("DELETE FROM held_lines_v2 WHERE id = ?",
                                   [(i,) for i in self._released])  # fmt: skip
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._released.clear()
            if delta is not None:
                self._remember(delta, changes)
                self.stats.saves += 1
            return held_id

    def save(self, members: Members, saved_ms: int, held: Sequence[str] = ()) -> int:
        """`prepare` and `commit` in one step."""
        return self.commit(self.prepare(members, saved_ms), held)

    def hold(self, lines: Sequence[str]) -> int:
        """Keep `lines` durably until `release`; returns their id (0 when `lines` is empty)."""
        return self.commit(None, lines) if lines else 0

    def release(self, held_id: int) -> None:
        """The held lines reached InfluxDB or the spool: forget them with the next transaction
        (a crash before that only writes them once more, which InfluxDB takes as the same
        points)."""
        if held_id:
            with self._lock:
                self._released.append(held_id)

    def held_lines(self) -> list[tuple[int, list[str]]]:
        """Held lines not yet released (left by a crash), oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, lines FROM held_lines_v2 ORDER BY id").fetchall()
        released = set(self._released)
        return [(int(i), list(orjson.loads(t))) for i, t in rows if int(i) not in released]

    def close(self) -> None:
        """Forget released lines and close the database."""
        if self._released:
            self.commit(None)
        with self._lock:
            self._db.close()

    # -- internals (called with the lock held) -------------------------------------------------
    def _diff(self, delta: StateDelta) -> list[tuple[str, list[int] | None]]:
        """Per member: the changed chunk indices, or None when it is written whole."""
        changes: list[tuple[str, list[int] | None]] = []
        for name, data in delta.members.items():
            old = self._shadow.get(name)
            if old is None or old.shape[0] != data.shape[0]:
                changes.append((name, None))
            elif chunks := _changed_chunks(old, data, self.chunk_bytes):
                changes.append((name, chunks))
        return changes

    def _write(self, delta: StateDelta, changes: list[tuple[str, list[int] | None]]) -> None:
        db, step = self._db, self.chunk_bytes
        for name, chunks in changes:
            data = delta.members[name]
            size = data.shape[0]
            if chunks is None:
                dtype, shape = delta.meta[name]
                db.execute(
                    "INSERT INTO engine_member_v2 (name, dtype, shape, nbytes) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET dtype = excluded.dtype, "
                    "shape = excluded.shape, nbytes = excluded.nbytes",
                    (name, dtype, shape, size),
                )
                chunks = list(range((size + step - 1) // step))
                db.execute("DELETE FROM engine_chunk_v2 WHERE name = ? AND chunk >= ?",
                           (name, len(chunks)))  # fmt: skip
            rows = [(name, c, data[c * step : (c + 1) * step].tobytes()) for c in chunks]
            db.executemany(
                "INSERT INTO engine_chunk_v2 (name, chunk, data) VALUES (?, ?, ?) "
                "ON CONFLICT (name, chunk) DO UPDATE SET data = excluded.data",
                rows,
            )
            self.stats.chunks_written += len(rows)
            self.stats.bytes_written += sum(len(r[2]) for r in rows)
        db.execute(
            "INSERT INTO engine_saved_v2 (id, saved_ms) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET saved_ms = excluded.saved_ms",
            (delta.saved_ms,),
        )
        if self._has_v1():
            db.execute("DELETE FROM engine_state_v1")

    def _remember(self, delta: StateDelta, changes: list[tuple[str, list[int] | None]]) -> None:
        """After a commit, the shadow holds what is stored."""
        step = self.chunk_bytes
        adopted = set()
        for name, chunks in changes:
            data = delta.members[name]
            old = self._shadow.get(name)
            if chunks is None or old is None:
                self._shadow[name] = data  # the delta's own copy
                adopted.add(name)
                continue
            for c in chunks:
                old[c * step : (c + 1) * step] = data[c * step : (c + 1) * step]
        for name, data in delta.members.items():
            spare = self._spare.setdefault(name, [])
            if name not in adopted and len(spare) < SPARE_BUFFERS:
                spare.append(data)
        delta.members = {}

    def _hold(self, lines: Sequence[str]) -> int:
        if not lines:
            return 0
        cursor = self._db.execute(
            "INSERT INTO held_lines_v2 (lines) VALUES (?)", (orjson.dumps(list(lines)).decode(),)
        )
        return int(cursor.lastrowid or 0)

    def _load_members(self) -> dict[str, npt.NDArray[np.generic]]:
        members: dict[str, npt.NDArray[np.generic]] = {}
        specs = self._db.execute("SELECT name, dtype, shape, nbytes FROM engine_member_v2")
        for name, dtype, shape, nbytes in specs.fetchall():
            rows = self._db.execute(
                "SELECT data FROM engine_chunk_v2 WHERE name = ? ORDER BY chunk", (name,)
            ).fetchall()
            data = b"".join(bytes(r[0]) for r in rows)
            if len(data) != nbytes:
                raise sqlite3.DatabaseError(f"{self.path}: member {name} has {len(data)} bytes")
            array = np.frombuffer(data, dtype=np.dtype(dtype)).reshape(orjson.loads(shape))
            members[name] = array.copy()  # writable: the engine updates its state in place
        return members

    def _has_v1(self) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'engine_state_v1'"
        ).fetchone()
        return row is not None


def _as_bytes(array: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def _changed_chunks(old: npt.NDArray[np.uint8], new: npt.NDArray[np.uint8], step: int) -> list[int]:
    """Indices of the `step`-byte chunks where `old` and `new` differ (same length)."""
    full = old.shape[0] // step
    differs = (old[: full * step] != new[: full * step]).reshape(full, step).any(axis=1)
    chunks: list[int] = np.flatnonzero(differs).tolist()
    if full * step < old.shape[0] and not np.array_equal(old[full * step :], new[full * step :]):
        chunks.append(full)
    return chunks
