"""Alert persistence under many data-quality events: incremental, exact across restarts, atomic.

A gateway outage makes every tag behind it stale, all on one data-quality alert per enterprise.
Saving must cost what changed (not the alert's size), a restart must restore the same alerts,
and a failed commit must lose no notification.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from alerting.alerts import Actor, Alert
from alerting.outbox import Outbox
from alerting.policy import RoutingPolicy, routing_from_mapping
from alerting.routing import EnterpriseArea
from alerting.samples import sample_routing
from alerting.service import AlertService
from hazardwatch.types import Tier

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
MIN = 60_000
AREAS = {
    "QZ-PETRO": EnterpriseArea("QZ-PETRO", "湄洲湾储运", "350521", "tank_farm"),
    "JJ-CHEM": EnterpriseArea("JJ-CHEM", "晋江化工", "350582", "chemical"),
}
CONTROL = Actor("wang.control", Tier.ENTERPRISE, "QZ-PETRO")
POLICY: RoutingPolicy = routing_from_mapping(sample_routing())


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms


def open_service(db: Path, clock: Clock) -> AlertService:
    return AlertService(POLICY, Outbox(db), AREAS, clock, {"QZ-TF1": "一号储罐区"})


def tag_name(i: int) -> str:
    """Tag names whose sorted order is not the order they go stale in (B00001 after A00026)."""
    return f"{chr(65 + i % 26)}{i:05d}"


def stale(n: int, tag: str, state: str = "active", enterprise: str = "QZ-PETRO") -> dict[str, Any]:
    return {"id": f"dq{n}-{enterprise}-{tag}-{state}", "ts": T0 + n, "type": "data_quality",
            "enterprise": enterprise, "source": "QZ-TF1", "unit": "T101", "tag": tag,
            "condition": "stale", "state": state}  # fmt: skip


def alarm(eid: str, tag: str, state: str, ts: int) -> dict[str, Any]:
    return {"id": eid, "ts": ts, "type": "alarm", "enterprise": "QZ-PETRO", "source": "QZ-TF1",
            "tag": tag, "condition": "HH", "state": state, "severity": "S2", "unit": "T101",
            "value": 17.62, "value_unit": "m"}  # fmt: skip


def risk(eid: str, colour: str, ts: int) -> dict[str, Any]:
    return {"id": eid, "ts": ts, "type": "risk", "enterprise": "QZ-PETRO", "source": "QZ-TF1",
            "colour": colour, "previous": "blue"}  # fmt: skip


def snapshot(service: AlertService) -> dict[str, tuple[dict[str, Any], list[str], int]]:
    """Every active alert's whole state, its tag order (routing labels use the first tag) and
    its active-tag count."""
    return {a.id: (a.to_dict(), list(a.tags), a.active_count) for a in service.book.active()}


def outage(service: AlertService, clock: Clock, tags: int, start: int = 0) -> None:
    """`tags` tags go stale at QZ-PETRO and a few at JJ-CHEM; every 10th flaps back and stale."""
    for i in range(start, start + tags):
        clock.ms = T0 + i
        service.handle(stale(i, tag_name(i)))
        if i % 10 == 0:
            service.handle(stale(i, tag_name(i), "normal"))
            service.handle(stale(i + 1, tag_name(i)))
        if i % 500 == 0:
            service.handle(stale(i, f"J{i:05d}", enterprise="JJ-CHEM"))


def phase_two(service: AlertService, clock: Clock) -> None:
    """After the restart point: offline long enough to notify, then to turn yellow, an alarm
    notice grown into an orange warning, an acknowledgement, and half the tags back."""
    clock.ms = T0 + 31 * MIN
    service.tick()
    service.handle(alarm("a1", "T101-LS", "unacknowledged", clock.ms))
    service.handle(risk("r1", "orange", clock.ms + 1))
    [warning] = [a for a in service.book.active() if a.kind == "risk"]
    service.acknowledge(warning.id, CONTROL)
    clock.ms = T0 + 24 * 60 * MIN
    service.tick()
    for i in range(0, 1500, 2):
        service.handle(stale(10_000 + i, tag_name(i), "normal"))
    for i in range(0, 1500, 500):  # JJ-CHEM's gateway is back: a yellow alert awaiting clearance
        service.handle(stale(20_000 + i, f"J{i:05d}", "normal", enterprise="JJ-CHEM"))
    clock.ms += 40 * MIN
    service.tick()


def test_restart_after_many_data_quality_events_restores_the_same_alerts(
    tmp_path: Path,
) -> None:
    clock = Clock()
    service = open_service(tmp_path / "outbox.db", clock)
    outage(service, clock, 1500)
    service.handle(alarm("a0", "T102-LS", "unacknowledged", clock.ms))  # a second kind of alert
    before = snapshot(service)
    [dq] = [a for a in service.book.active() if a.key == "data_quality/QZ-PETRO"]
    assert len(dq.tags) == 1500 and dq.active_count == 1500
    service.outbox.close()

    again = open_service(tmp_path / "outbox.db", clock)
    assert snapshot(again) == before
    assert again.book.by_key("data_quality/QZ-PETRO") is not None  # indexed by group key again


def test_restart_mid_outage_changes_nothing_a_receiver_or_user_sees(tmp_path: Path) -> None:
    def run(db: Path, restart: bool) -> tuple[list[tuple[str, str]], dict[str, Any]]:
        clock = Clock()
        service = open_service(db, clock)
        outage(service, clock, 1500)
        if restart:
            service.outbox.close()
            service = open_service(db, clock)
        phase_two(service, clock)
        rows = service.outbox._rows("SELECT key, notice FROM notification ORDER BY key")
        notices = [(key, notice) for key, notice in rows]
        alerts = {a.id: a.to_dict() for a in service.outbox.load_alerts(active_only=False)}
        service.outbox.close()
        return notices, alerts

    straight = run(tmp_path / "straight.db", restart=False)
    restarted = run(tmp_path / "restarted.db", restart=True)
    assert restarted == straight
    notices, alerts = straight
    kinds = {orjson.loads(n)["kind"] for _, n in notices}
    assert {"data_quality", "alarm", "raise", "normal"} <= kinds  # the scenario exercised them
    [dq] = [a for a in alerts.values() if a["enterprise"] == "QZ-PETRO" and not a["cleared_ms"]
            and a["kind"] == "data_quality"]  # fmt: skip
    assert dq["colour"] == "yellow" and sum(t["active"] for t in dq["tags"].values()) == 750


def test_one_data_quality_event_writes_the_same_few_rows_on_a_small_or_huge_alert(
    tmp_path: Path,
) -> None:
    clock = Clock()
    service = open_service(tmp_path / "outbox.db", clock)

    def rows_for(event: dict[str, Any]) -> int:
        before = service.outbox.rows_written
        service.handle(event)
        return service.outbox.rows_written - before

    outage(service, clock, 20)
    small = [rows_for(stale(100_000, "X1")), rows_for(stale(100_001, "X1", "normal"))]
    outage(service, clock, 4000, start=20)
    huge = [rows_for(stale(200_000, "X2")), rows_for(stale(200_001, "X2", "normal"))]
    assert small == huge == [1, 1]  # one tag row: the alert's header did not change
    assert rows_for(stale(200_002, tag_name(21))) == 0  # still stale: nothing to write


def test_on_saved_sees_each_new_history_step_once_and_at_once(tmp_path: Path) -> None:
    seen: dict[str, int] = {}
    steps: list[tuple[str, int, str]] = []

    def observe(alert: Alert) -> None:  # what AlertLines does: lines for steps after the last
        for n, step in enumerate(alert.history[seen.get(alert.id, 0) :], seen.get(alert.id, 0)):
            steps.append((alert.id, n, step["action"]))
        seen[alert.id] = len(alert.history)

    def watched(service: AlertService, action: Callable[[], object]) -> None:
        action()
        for alert in service.book.alerts.values():  # every step observed before returning
            assert seen.get(alert.id, 0) == len(alert.history), alert.id

    clock = Clock()
    service = open_service(tmp_path / "outbox.db", clock)
    service.on_saved = observe
    for i in range(300):
        watched(service, lambda i=i: service.handle(stale(i, tag_name(i))))
    watched(service, lambda: service.handle(alarm("a1", "T101-LS", "unacknowledged", T0)))
    watched(service, lambda: service.handle(risk("r1", "orange", T0 + 1)))
    clock.ms = T0 + 24 * 60 * MIN
    watched(service, service.tick)
    for i in range(300):
        watched(service, lambda i=i: service.handle(stale(1000 + i, tag_name(i), "normal")))
    assert len(steps) == len(set(steps))
    expected = {(a.id, n, s["action"]) for a in service.book.alerts.values()
                for n, s in enumerate(a.history)}  # fmt: skip
    assert set(steps) == expected
    assert ("A-r1", 0, "raise") in steps and ("A-r1", 1, "reminder") in steps

    # After a restart only new steps are announced: the restored ones were written before.
    service.outbox.close()
    again = open_service(tmp_path / "outbox.db", clock)
    seen = {a.id: len(a.history) for a in again.book.alerts.values()}
    steps.clear()
    again.on_saved = observe
    [warning] = [a for a in again.book.active() if a.kind == "risk"]
    watched(again, lambda: again.acknowledge(warning.id, CONTROL))
    assert steps == [(warning.id, len(warning.history) - 1, "acknowledge")]


V1_SCHEMA = """
CREATE TABLE notification (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, alert TEXT NOT NULL,
    recipient TEXT NOT NULL, tier INTEGER NOT NULL, channel INTEGER NOT NULL,
    channel_type TEXT NOT NULL, notice TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, next_at_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,
    event_ms INTEGER NOT NULL, delivered_ms INTEGER, last_error TEXT);
CREATE TABLE attempt (id INTEGER PRIMARY KEY, notification INTEGER NOT NULL, ts_ms INTEGER
    NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL, latency_ms REAL);
CREATE TABLE alert (id TEXT PRIMARY KEY, active INTEGER NOT NULL, state TEXT NOT NULL,
    updated_ms INTEGER NOT NULL);
PRAGMA user_version=1;
"""


def test_a_version_1_outbox_is_migrated_with_its_alerts_intact(tmp_path: Path) -> None:
    clock = Clock()
    source = open_service(tmp_path / "source.db", clock)
    outage(source, clock, 40)
    source.handle(alarm("a1", "T101-LS", "unacknowledged", T0))
    source.handle(risk("r1", "red", T0 + 1))
    source.acknowledge("A-r1", CONTROL)
    alerts = {a.id: (a.to_dict(), list(a.tags)) for a in source.book.active()}
    source.outbox.close()
    old = sqlite3.connect(tmp_path / "v1.db")
    old.executescript(V1_SCHEMA)  # version 1 kept each whole alert as one JSON document
    old.executemany("INSERT INTO alert VALUES (?, 1, ?, ?)",
                    [(i, orjson.dumps(d).decode(), d["updated_ms"]) for i, (d, _) in
                     alerts.items()])  # fmt: skip
    old.commit()
    old.close()

    service = open_service(tmp_path / "v1.db", clock)
    assert {a.id: (a.to_dict(), list(a.tags)) for a in service.book.active()} == alerts
    [(version,)] = service.outbox._rows("PRAGMA user_version")
    [(state,)] = service.outbox._rows("SELECT state FROM alert WHERE id='A-r1'")
    assert version == 2 and "tags" not in orjson.loads(state)
    service.outbox.close()
    reopened = open_service(tmp_path / "v1.db", clock)  # migrated once, readable again
    assert {a.id: (a.to_dict(), list(a.tags)) for a in reopened.book.active()} == alerts


def test_a_failed_commit_enqueues_nothing_and_its_notifications_follow_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    service = open_service(tmp_path / "outbox.db", clock)
    real = service.outbox.enqueue
    calls = [0]

    def disk_error_on_second_row(*args: Any) -> bool:
        calls[0] += 1
        if calls[0] == 2:  # the first row is already inside the transaction
            raise sqlite3.OperationalError("disk I/O error")
        return real(*args)

    monkeypatch.setattr(service.outbox, "enqueue", disk_error_on_second_row)
    with pytest.raises(sqlite3.OperationalError):
        service.handle(risk("r1", "orange", T0))
    assert service.outbox.notifications() == []  # all or nothing
    assert service.outbox.load_alerts() == []
    monkeypatch.setattr(service.outbox, "enqueue", real)
    assert service.handle(risk("r1", "orange", T0)) == 0  # redelivered: a duplicate to the book
    reference = open_service(tmp_path / "reference.db", Clock())
    reference.handle(risk("r1", "orange", T0))
    assert [n["key"] for n in service.outbox.notifications()] == [
        n["key"] for n in reference.outbox.notifications()
    ]
    assert snapshot(open_service(tmp_path / "outbox.db", clock)) == snapshot(reference)
