"""The durable outbox: SQLite in WAL mode, one row per notification, an audit row per attempt.

Schema version 2 (`PRAGMA user_version`; persisted names are a schema — STYLE.md 5):

- `notification`: `key` (idempotency key, UNIQUE: enqueueing twice is a no-op), alert, recipient,
  tier, channel index and type, the notice JSON, `status` (`pending`, `delivered`, `dead`),
  `attempts`, `next_at_ms`, `created_ms`, `event_ms` (when the triggering event happened),
  `delivered_ms`, `last_error`.
- `attempt`: every try with its outcome (`delivered`, `retry`, `permanent`, `dead`,
  `rate_limited`), detail and latency.
- `alert`: the life-cycle header of each alert as JSON (everything but tags and history);
  `alert_tag`: one row per tag attached to an alert; `alert_step`: one row per history step.
  An alert with thousands of stale tags is saved by writing what changed — the header when it
  changed, the changed tags, the new steps — never the whole record again.

Version 1 kept the whole alert (tags and history included) in `alert.state`; opening such a file
migrates it in one transaction. A restart opens the same file and `due()` returns every pending
row again: nothing is lost, and the idempotency key travels with each retry so receivers can drop
a duplicate delivery.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from alerting.alerts import Alert, TagState
from hazardwatch.types import Tier

SCHEMA_VERSION = 2
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
CREATE TABLE IF NOT EXISTS alert_tag (
    id INTEGER PRIMARY KEY,
    alert TEXT NOT NULL,
    tag TEXT NOT NULL,
    condition TEXT NOT NULL,
    severity INTEGER NOT NULL,
    state TEXT NOT NULL,
    value REAL,
    unit TEXT NOT NULL,
    active INTEGER NOT NULL,
    UNIQUE (alert, tag)
);
CREATE TABLE IF NOT EXISTS alert_step (
    alert TEXT NOT NULL,
    seq INTEGER NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (alert, seq)
) WITHOUT ROWID;
"""
# An upsert keeps a tag's row id, so `ORDER BY id` restores the order tags joined the alert
# (the first tag labels the alert's notices for routing).
_UPSERT_TAG = (
    "INSERT INTO alert_tag (alert, tag, condition, severity, state, value, unit, active) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert, tag) DO UPDATE SET "
    "condition=excluded.condition, severity=excluded.severity, state=excluded.state, "
    "value=excluded.value, unit=excluded.unit, active=excluded.active"
)
_INSERT_STEP = "INSERT OR REPLACE INTO alert_step (alert, seq, entry) VALUES (?, ?, ?)"


@dataclass(slots=True)
class _Saved:
    """What the file holds of one alert: its header JSON and how many history steps."""

    header: bytes
    steps: int


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
    """The SQLite outbox; thread-safe; every method commits before it returns, except inside
    `transaction()`, which commits once at its end."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # Reentrant: a service transaction enqueues and saves through the same methods.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives process crashes
        self._db.execute("PRAGMA busy_timeout=5000")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, 1, SCHEMA_VERSION):
            raise RuntimeError(f"{path}: outbox schema {version}, this version reads 1 and 2")
        self._db.executescript(_SCHEMA)
        if version == 1:
            self._migrate_v1()
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._saved: dict[str, _Saved] = {}  # what the file holds of each alert we know
        self._depth = 0  # nesting of `transaction()`
        # Saves inside the open transaction: alert id → (alert, marks, tags written).
        self._staged: dict[str, tuple[Alert, _Saved, set[str]]] = {}

    def _migrate_v1(self) -> None:
        """Version 1 → 2: split each whole-alert JSON into header, tag rows and step rows."""
        with self._db:
            self._db.execute("BEGIN")
            for alert_id, state in self._db.execute("SELECT id, state FROM alert").fetchall():
                alert = Alert.from_dict(orjson.loads(state))
                self._db.execute("UPDATE alert SET state=? WHERE id=?",
                                 (orjson.dumps(alert.header()).decode(), alert_id))  # fmt: skip
                self._write_tags(alert.id, alert.tags.values())
                self._write_steps(alert.id, 0, alert.history)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")  # in the same commit

    @property
    def rows_written(self) -> int:
        """Rows inserted, updated or deleted through this connection since it opened."""
        with self._lock:
            return self._db.total_changes

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, *args: Any) -> Iterator[tuple[Any, ...]]:
        with self._lock:
            yield from self._db.execute(sql, args).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all (nested calls join the outer one).

        Other threads wait for the commit, so the dispatcher never sees half of an event's
        notifications, and an alert's saved marks move only once its rows are committed.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            self._db.execute("BEGIN")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._staged.clear()
                raise
            finally:
                self._depth = 0
            for alert, saved, tags in self._staged.values():
                self._saved[alert.id] = saved
                alert.dirty_tags.difference_update(tags)
            self._staged.clear()

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

    def _write_tags(self, alert_id: str, tags: Iterable[TagState]) -> None:
        self._db.executemany(_UPSERT_TAG, [(alert_id, t.tag, t.condition, t.severity, t.state,
                                            t.value, t.unit, t.active) for t in tags])  # fmt: skip

    def _write_steps(self, alert_id: str, first: int, steps: list[dict[str, Any]]) -> None:
        self._db.executemany(_INSERT_STEP, [(alert_id, first + i, orjson.dumps(step).decode())
                                            for i, step in enumerate(steps)])  # fmt: skip

    def save_alert(self, alert: Alert) -> bool:
        """Persist what changed in `alert` since its last save; False when nothing did.

        Writes the header only when it differs, the tags in `alert.dirty_tags` and the history
        steps not yet written — the cost of a change, not of the alert's size. Inside
        `transaction()` the marks move (and `dirty_tags` empties) only at the commit.
        """
        header = orjson.dumps(alert.header())
        steps = len(alert.history)
        with self._lock:
            staged = self._staged.get(alert.id)
            saved = staged[1] if staged is not None else self._saved.get(alert.id)
            first = saved.steps if saved is not None else 0
            header_changed = saved is None or saved.header != header
            dirty = set(alert.dirty_tags)
            if not header_changed and steps == first and not dirty:
                return False
            with self.transaction():
                if header_changed:
                    self._db.execute(
                        "INSERT INTO alert (id, active, state, updated_ms) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (id) DO UPDATE SET active=excluded.active, "
                        "state=excluded.state, updated_ms=excluded.updated_ms",
                        (alert.id, int(alert.active), header.decode(), alert.updated_ms),
                    )
                if steps > first:
                    self._write_steps(alert.id, first, alert.history[first:])
                if len(dirty) == 1:
                    self._write_tags(alert.id, [alert.tags[t] for t in dirty])
                elif dirty:  # new tags must reach the table in the order they joined the alert
                    self._write_tags(alert.id, [v for k, v in alert.tags.items() if k in dirty])
                written = dirty | (staged[2] if staged is not None else set())
                self._staged[alert.id] = (alert, _Saved(header, steps), written)
        return True

    def load_alerts(self, active_only: bool = True) -> list[Alert]:
        """Persisted alerts (active ones by default) to restore the book after a restart."""
        where = " WHERE active=1" if active_only else ""
        chosen = f"(SELECT id FROM alert{where})"
        with self._lock:
            headers = self._db.execute(f"SELECT id, state FROM alert{where}").fetchall()
            tag_rows = self._db.execute(
                "SELECT alert, tag, condition, severity, state, value, unit, active FROM "
                f"alert_tag WHERE alert IN {chosen} ORDER BY id"
            ).fetchall()
            step_rows = self._db.execute(
                f"SELECT alert, seq, entry FROM alert_step WHERE alert IN {chosen} "
                "ORDER BY alert, seq"
            ).fetchall()
            tags: dict[str, dict[str, Any]] = {}
            for alert_id, tag, condition, severity, state, value, unit, active in tag_rows:
                tags.setdefault(alert_id, {})[tag] = {
                    "tag": tag, "condition": condition, "severity": severity, "state": state,
                    "value": value, "unit": unit, "active": bool(active),
                }  # fmt: skip
            history: dict[str, list[dict[str, Any]]] = {}
            for alert_id, _seq, entry in step_rows:
                history.setdefault(alert_id, []).append(orjson.loads(entry))
            alerts = []
            for alert_id, state in headers:
                data = orjson.loads(state)
                data["tags"] = tags.get(alert_id, {})
                data["history"] = history.get(alert_id, [])
                alert = Alert.from_dict(data)
                alerts.append(alert)
                self._saved[alert.id] = _Saved(orjson.dumps(alert.header()), len(alert.history))
        return alerts
