"""Durable engine state for the embedded runner: SQLite in WAL mode under the data directory.

The engine's snapshot (versioned bytes from `RiskEngine.snapshot()`) is saved whenever a batch
changed alarm or risk state, i.e. produced events; state changes are rare, so this costs little,
and a SIGKILL loses at most readings whose MQTT messages were not yet acknowledged (the broker
redelivers them). Rolling windows rebuild from the readings that follow a restart.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS engine_state_v1 (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    saved_ms INTEGER NOT NULL,
    snapshot BLOB NOT NULL
)
"""


class StateStore:
    """One row holding the latest engine snapshot."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # The runner's ingest and ticker threads both save; its engine lock serialises them.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed snapshot survives power loss, not only a process kill.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self.saves = 0

    def load(self) -> bytes | None:
        """The latest snapshot, or None on first start."""
        row = self._db.execute("SELECT snapshot FROM engine_state_v1 WHERE id = 1").fetchone()
        return None if row is None else bytes(row[0])

    def save(self, snapshot: bytes, saved_ms: int) -> None:
        """Replace the stored snapshot atomically."""
        self._db.execute(
            "INSERT INTO engine_state_v1 (id, saved_ms, snapshot) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET saved_ms = excluded.saved_ms, "
            "snapshot = excluded.snapshot",
            (saved_ms, snapshot),
        )
        self.saves += 1

    def close(self) -> None:
        """Close the database."""
        self._db.close()
