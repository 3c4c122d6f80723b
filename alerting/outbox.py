"""The durable outbox: SQLite in WAL mode, one row per notification, an audit row per attempt.

Schema version 1 (`PRAGMA user_version`; persisted names are a schema — STYLE.md 5):

- `notification`: `key` (idempotency key, UNIQUE: enqueueing twice is a no-op), alert, recipient,
  tier, channel index and type, the notice JSON, `status` (`pending`, `delivered`, `dead`),
  `attempts`, `next_at_ms`, `created_ms`, `event_ms` (when the triggering event happened),
  `delivered_ms`, `last_error`.
- `attempt`: every try with its outcome (`delivered`, `retry`, `permanent`, `dead`,
  `rate_limited`), detail and latency.
- `alert`: the life-cycle state of each alert as JSON, saved on every change.

A restart opens the same file and `due()` returns every pending row again: nothing is lost, and
the idempotency key travels with each retry so receivers can drop a duplicate delivery.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from alerting.alerts import Alert
from hazardwatch.types import Tier

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS notification (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    alert TEXT NOT NULL,
    recipient TEXT NOT NULL,
    tier INTEGER NOT NULL,
    channel INTEGER NOT NULL,
    channel_type TEXT NOT NULL,
    notice TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    event_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS notification_due ON notification (status, next_at_ms);
CREATE TABLE IF NOT EXISTS attempt (
    id INTEGER PRIMARY KEY,
    notification INTEGER NOT NULL REFERENCES notification (id),
    ts_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    latency_ms REAL
);
CREATE INDEX IF NOT EXISTS attempt_time ON attempt (ts_ms);
CREATE TABLE IF NOT EXISTS alert (
    id TEXT PRIMARY KEY,
    active INTEGER NOT NULL,
    state TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Pending:
    """A notification waiting for (another) delivery attempt."""

    id: int
    key: str
    alert: str
    recipient: str
    tier: Tier
    channel: int
    channel_type: str
    notice: dict[str, Any]
    attempts: int
    event_ms: int


class Outbox:
    """The SQLite outbox; thread-safe; every method commits before it returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives process crashes
        self._db.execute("PRAGMA busy_timeout=5000")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise RuntimeError(f"{path}: outbox schema {version}, this version reads 1")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, *args: Any) -> Iterator[tuple[Any, ...]]:
        with self._lock:
            yield from self._db.execute(sql, args).fetchall()

    def enqueue(
        self,
        key: str,
        alert: str,
        recipient: str,
        tier: Tier,
        channel: int,
        channel_type: str,
        notice: dict[str, Any],
        now_ms: int,
        event_ms: int,
    ) -> bool:
        """Add a notification; False (and nothing changes) when `key` is already present."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO notification (key, alert, recipient, tier, channel, "
                "channel_type, notice, next_at_ms, created_ms, event_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, alert, recipient, int(tier), channel, channel_type,
                 orjson.dumps(notice).decode(), now_ms, now_ms, event_ms),
            )  # fmt: skip
            return cursor.rowcount == 1

    def due(self, now_ms: int, limit: int = 100, exclude: set[int] | None = None) -> list[Pending]:
        """Pending notifications whose next attempt is due, oldest first."""
        rows = self._rows(
            "SELECT id, key, alert, recipient, tier, channel, channel_type, notice, attempts, "
            "event_ms FROM notification WHERE status = 'pending' AND next_at_ms <= ? "
            "ORDER BY next_at_ms, id LIMIT ?",
            now_ms,
            limit + len(exclude or ()),
        )
        out = [
            Pending(r[0], r[1], r[2], r[3], Tier(r[4]), r[5], r[6], orjson.loads(r[7]), r[8], r[9])
            for r in rows
            if not exclude or r[0] not in exclude
        ]
        return out[:limit]

    def next_due_ms(self, after_ms: int) -> int | None:
        """The earliest retry time of a pending notification later than `after_ms`, if any."""
        [(found,)] = list(self._rows(
            "SELECT MIN(next_at_ms) FROM notification WHERE status = 'pending' AND next_at_ms > ?",
            after_ms,
        ))  # fmt: skip
        return int(found) if found is not None else None

    def sent_since(self, recipient: str, since_ms: int) -> int:
        """Deliveries to `recipient` after `since_ms` (rate-limit memory; failed attempts reached
        nobody and do not count, as in the dispatcher's refund)."""
        [(count,)] = list(self._rows(
            "SELECT COUNT(*) FROM attempt JOIN notification ON notification.id = "
            "attempt.notification WHERE attempt.ts_ms > ? AND notification.recipient = ? "
            "AND attempt.outcome = 'delivered'",
            since_ms, recipient,
        ))  # fmt: skip
        return int(count)

    def _attempt(
        self, nid: int, now_ms: int, outcome: str, detail: str, latency: float | None
    ) -> None:
        self._db.execute(
            "INSERT INTO attempt (notification, ts_ms, outcome, detail, latency_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            (nid, now_ms, outcome, detail, latency),
        )

    def delivered(self, nid: int, now_ms: int, detail: str, latency_ms: float) -> None:
        """Mark delivered and audit the attempt."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "UPDATE notification SET status='delivered', attempts=attempts+1, "
                "delivered_ms=?, last_error=NULL WHERE id=?",
                (now_ms, nid),
            )
            self._attempt(nid, now_ms, "delivered", detail, latency_ms)

    def failed(
        self, nid: int, now_ms: int, outcome: str, detail: str, latency_ms: float | None,
        next_at_ms: int | None,
    ) -> None:  # fmt: skip
        """Record a failed attempt: retry at `next_at_ms`, or dead-letter when it is None."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            status = "pending" if next_at_ms is not None else "dead"
            self._db.execute(
                "UPDATE notification SET status=?, attempts=attempts+1, next_at_ms=?, "
                "last_error=? WHERE id=?",
                (status, next_at_ms if next_at_ms is not None else now_ms, detail, nid),
            )
            self._attempt(nid, now_ms, outcome if status == "pending" else "dead", detail,
                          latency_ms)  # fmt: skip

    def defer(self, nid: int, now_ms: int, next_at_ms: int, reason: str) -> None:
        """Postpone without spending an attempt (rate limit), audited."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE notification SET next_at_ms=? WHERE id=?", (next_at_ms, nid))
            self._attempt(nid, now_ms, "rate_limited", reason, None)

    def counts(self) -> dict[str, int]:
        """Number of notifications per status."""
        return {
            status: n
            for status, n in self._rows("SELECT status, COUNT(*) FROM notification GROUP BY 1")
        }

    def notifications(self, alert: str | None = None) -> list[dict[str, Any]]:
        """Notifications (of one alert, or all) with status and attempts, for the API and tests."""
        sql = (
            "SELECT id, key, alert, recipient, tier, channel_type, status, attempts, "
            "created_ms, event_ms, delivered_ms, last_error FROM notification"
        )
        rows = (
            self._rows(sql + " WHERE alert=? ORDER BY id", alert)
            if alert
            else self._rows(sql + " ORDER BY id")
        )
        names = ("id", "key", "alert", "recipient", "tier", "channel_type", "status", "attempts",
                 "created_ms", "event_ms", "delivered_ms", "last_error")  # fmt: skip
        return [dict(zip(names, r, strict=True)) for r in rows]

    def audit(self, nid: int) -> list[dict[str, Any]]:
        """Every attempt of one notification, oldest first."""
        rows = self._rows(
            "SELECT ts_ms, outcome, detail, latency_ms FROM attempt WHERE notification=? "
            "ORDER BY id",
            nid,
        )
        return [dict(zip(("ts_ms", "outcome", "detail", "latency_ms"), r, strict=True))
                for r in rows]  # fmt: skip

    def save_alert(self, alert: Alert) -> None:
        """Persist one alert's life-cycle state (on every change)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO alert (id, active, state, updated_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET active=excluded.active, state=excluded.state, "
                "updated_ms=excluded.updated_ms",
                (alert.id, int(alert.active), orjson.dumps(alert.to_dict()).decode(),
                 alert.updated_ms),
            )  # fmt: skip

    def load_alerts(self, active_only: bool = True) -> list[Alert]:
        """Persisted alerts (active ones by default) to restore the book after a restart."""
        sql = "SELECT state FROM alert" + (" WHERE active=1" if active_only else "")
        return [Alert.from_dict(orjson.loads(r[0])) for r in self._rows(sql)]
