"""Life-cycle: raise, escalate when nobody acknowledges, acknowledge back to the engine, clear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alerting.alerts import Actor
from alerting.commands import CommandQueue
from alerting.lifecycle import LifecycleError
from alerting.outbox import Outbox
from alerting.policy import routing_from_mapping
from alerting.routing import EnterpriseArea
from alerting.samples import sample_routing
from alerting.service import AlertService
from hazardwatch.types import Tier

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
MIN = 60_000
QZ = EnterpriseArea("QZ-PETRO", "湄洲湾储运", "350521", "tank_farm")
CONTROL = Actor("wang.control", Tier.ENTERPRISE, "QZ-PETRO")
COUNTY = Actor("li.county", Tier.COUNTY, "350521")
CITY = Actor("chen.city", Tier.CITY, "350500")
PROVINCE = Actor("zhao.province", Tier.PROVINCE, "350000")


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue() -> CommandQueue:
    return CommandQueue()


@pytest.fixture
def service(tmp_path: Path, clock: Clock, queue: CommandQueue) -> AlertService:
    policy = routing_from_mapping(sample_routing())
    return AlertService(policy, Outbox(tmp_path / "outbox.db"), {"QZ-PETRO": QZ}, clock,
                        {"QZ-TF1": "一号储罐区"}, queue)  # fmt: skip


def risk(eid: str, colour: str, ts: int, source: str = "QZ-TF1") -> dict[str, Any]:
    return {"id": eid, "ts": ts, "type": "risk", "enterprise": "QZ-PETRO", "source": source,
            "colour": colour, "previous": "blue"}  # fmt: skip


def alarm(eid: str, tag: str, state: str, ts: int, severity: str = "S2") -> dict[str, Any]:
    return {"id": eid, "ts": ts, "type": "alarm", "enterprise": "QZ-PETRO", "source": "QZ-TF1",
            "tag": tag, "condition": "HH", "state": state, "severity": severity,
            "unit": "T101", "value": 17.62, "value_unit": "m"}  # fmt: skip


def sent(service: AlertService, kind: str) -> list[dict[str, Any]]:
    return [n for n in service.outbox.notifications() if f":{kind}" in n["key"] or
            (kind == "raise" and n["key"].count(":") == 0)]  # fmt: skip


def tiers_told(service: AlertService) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for n in service.outbox.notifications():
        kind = n["key"].split("/")[0].split(":")[1] if ":" in n["key"].split("/")[0] else "event"
        out.setdefault(kind, set()).add(Tier(n["tier"]).label)
    return out


def test_unacknowledged_orange_reminds_then_escalates_to_province(
    service: AlertService, clock: Clock
) -> None:
    service.handle(risk("r1", "orange", T0))
    assert tiers_told(service) == {"event": {"enterprise", "county", "city"}}
    clock.ms = T0 + 29 * MIN
    assert service.tick() == 0  # 30 min to acknowledge an orange warning
    clock.ms = T0 + 30 * MIN
    assert service.tick() > 0
    assert tiers_told(service)["reminder"] == {"enterprise", "county", "city"}
    clock.ms = T0 + 44 * MIN
    assert service.tick() == 0  # escalation after half the acknowledge time again
    clock.ms = T0 + 45 * MIN
    service.tick()
    assert tiers_told(service)["escalation"] == {"province"}
    clock.ms = T0 + 90 * MIN
    assert service.tick() == 0  # nothing above the province


def test_acknowledgement_stops_escalation_and_reaches_engine(
    service: AlertService, clock: Clock, queue: CommandQueue
) -> None:
    service.handle(alarm("a1", "T101-LS", "unacknowledged", T0))
    service.handle(risk("r1", "yellow", T0 + 1000))
    [alert] = service.book.active()
    clock.ms = T0 + 10 * MIN
    command = service.acknowledge(alert.id, COUNTY)
    assert queue.drain() == [command]
    assert command.to_dict() == {"type": "acknowledge", "alert": alert.id,
                                 "enterprise": "QZ-PETRO", "source": "QZ-TF1",
                                 "tags": ["T101-LS"], "user": "li.county",
                                 "ts": T0 + 10 * MIN}  # fmt: skip
    clock.ms = T0 + 5 * 60 * MIN
    assert service.tick() == 0
    assert "reminder" not in tiers_told(service)


def test_colour_rise_requires_a_new_acknowledgement(service: AlertService, clock: Clock) -> None:
    service.handle(risk("r1", "yellow", T0))
    [alert] = service.book.active()
    service.acknowledge(alert.id, CONTROL)
    clock.ms = T0 + MIN
    service.handle(risk("r2", "red", T0 + MIN))
    assert not alert.acknowledged
    assert alert.ack_due_ms == T0 + 16 * MIN  # red: 15 min
    assert tiers_told(service)["event"] == {"enterprise", "county", "city", "province"}


def test_clearance_needs_normal_feedback_and_regulator(service: AlertService, clock: Clock) -> None:
    service.handle(risk("r1", "orange", T0))
    [alert] = service.book.active()
    with pytest.raises(LifecycleError) as refused:
        service.clear(alert.id, CITY)
    assert refused.value.code == "not_normal"
    service.handle(risk("r2", "blue", T0 + 5 * MIN))
    with pytest.raises(LifecycleError) as refused:
        service.clear(alert.id, CITY)
    assert refused.value.code == "no_feedback"
    service.feedback(alert.id, "液位计卡滞", "更换伺服液位计，加强巡检", CONTROL)
    for actor in (CONTROL, COUNTY):
        with pytest.raises(LifecycleError) as refused:
            service.clear(alert.id, actor)
        assert refused.value.code == "needs_regulator"
    service.clear(alert.id, CITY)
    assert not alert.active and alert.cleared_by == "chen.city"
    assert tiers_told(service)["cleared"] == {"enterprise", "county", "city"}


def test_yellow_is_cleared_by_the_enterprise_after_feedback(service: AlertService) -> None:
    service.handle(risk("r1", "yellow", T0))
    service.handle(risk("r2", "blue", T0 + MIN))
    [alert] = service.book.active()
    service.feedback(alert.id, "进料阀内漏", "已关闭上游阀门", CONTROL)
    service.clear(alert.id, CONTROL)
    assert service.book.active() == []


def test_flood_becomes_one_incident_and_suppressed_alarms_are_quiet(
    service: AlertService,
) -> None:
    for i in range(14):
        service.handle({**alarm(f"f{i}", f"TAG-{i}", "unacknowledged", T0 + i * 1000),
                        "source": f"SRC-{i}"})  # fmt: skip
    keys = [n["key"] for n in service.outbox.notifications() if n["channel_type"] == "webhook"]
    assert len([k for k in keys if ":flood/" in k]) == 1
    assert len([k for k in keys if ":" not in k.split("/")[0]]) == 10  # only the first ten
    assert service.book.counters["flood_grouped"] == 4  # the 11th to the 14th
    before = len(service.outbox.notifications())
    service.handle(alarm("s1", "T101-TT", "suppressed", T0 + 20_000, "S1"))
    assert len(service.outbox.notifications()) == before
    assert service.book.counters["suppressed"] == 1


def test_same_event_twice_sends_once(service: AlertService) -> None:
    assert service.handle(risk("r1", "red", T0)) > 0
    assert service.handle(risk("r1", "red", T0)) == 0


def test_unknown_enterprise_and_bad_event_are_counted(service: AlertService) -> None:
    service.handle({**risk("x", "red", T0), "enterprise": "NOPE"})
    service.handle({"id": "y", "ts": T0, "type": "risk", "enterprise": "QZ-PETRO"})
    assert service.rejected == {"unknown_enterprise": 1, "missing_colour": 1}


def test_data_quality_offline_notifies_county_then_yellow(
    service: AlertService, clock: Clock
) -> None:
    stale = {"id": "d1", "ts": T0, "type": "data_quality", "enterprise": "QZ-PETRO",
             "source": "QZ-TF1", "unit": "T101", "tag": "T101-LT", "condition": "stale",
             "state": "active"}  # fmt: skip
    service.handle(stale)
    service.handle({**stale, "id": "d2", "tag": "T101-TT"})
    assert service.outbox.notifications() == []  # silent until 30 min offline
    clock.ms = T0 + 30 * MIN
    service.tick()
    assert {n["recipient"] for n in service.outbox.notifications()} == {"huian-dq-desk"}
    clock.ms = T0 + 24 * 60 * MIN
    service.tick()
    [alert] = service.book.active()
    assert alert.kind == "data_quality" and alert.colour.label == "yellow"
    told = {n["recipient"] for n in service.outbox.notifications()}
    assert told == {"huian-dq-desk", "qz-control-room"}


def test_enterprise_level_risk_and_engine_flood_events(service: AlertService) -> None:
    service.handle({**risk("e1", "red", T0), "source": None, "level": "enterprise"})
    assert service.outbox.notifications() == []
    service.handle({"id": "fl1", "ts": T0, "type": "flood", "enterprise": "QZ-PETRO",
                    "source": None, "state": "begin", "count": 11})  # fmt: skip
    service.handle(alarm("a1", "T101-LS", "unacknowledged", T0 + 1))
    service.handle({"id": "fl2", "ts": T0 + 2, "type": "flood", "enterprise": "QZ-PETRO",
                    "source": None, "state": "end", "count": 4})  # fmt: skip
    kinds = {n["key"].split("/")[0] for n in service.outbox.notifications()}
    assert kinds == {"fl1:flood", "fl2:flood_end"}  # the alarm during the flood is grouped


def test_state_survives_restart(tmp_path: Path, service: AlertService, clock: Clock) -> None:
    service.handle(risk("r1", "orange", T0))
    [alert] = service.book.active()
    service.acknowledge(alert.id, CONTROL)
    again = AlertService(service.policy, Outbox(tmp_path / "outbox.db"), {"QZ-PETRO": QZ}, clock)
    [restored] = again.book.active()
    assert restored.id == alert.id and restored.acked_by == "wang.control"
    clock.ms = T0 + 5 * 60 * MIN
    assert again.tick() > 0  # only the overdue-feedback reminder: acknowledged already
    assert {n["key"].split("/")[0].split(":")[1] for n in again.outbox.notifications()
            if ":" in n["key"].split("/")[0]} == {"feedback_overdue"}  # fmt: skip


def test_colour_fall_updates_every_tier_told_and_keeps_the_acknowledgement(
    service: AlertService, clock: Clock
) -> None:
    service.handle(risk("r1", "red", T0))
    [alert] = service.book.active()
    service.acknowledge(alert.id, COUNTY)
    clock.ms = T0 + 5 * MIN
    service.handle(risk("r2", "orange", T0 + 5 * MIN))
    assert alert.colour.label == "orange" and alert.max_colour.label == "red"
    assert alert.acknowledged and alert.ack_due_ms == T0 + 15 * MIN  # a fall needs no new ack
    updates = [n for n in service.outbox.notifications() if n["key"].startswith("r2/")]
    assert {Tier(n["tier"]).label for n in updates} == {"enterprise", "county", "city", "province"}
    # the province was told of the red warning, so it hears that it fell too
    clock.ms = T0 + 60 * MIN
    service.tick()
    assert "reminder" not in tiers_told(service)  # still acknowledged: no reminder


def test_shelved_alert_is_not_reminded_until_the_shelve_expires(
    service: AlertService, clock: Clock
) -> None:
    service.handle(risk("r1", "yellow", T0))
    [alert] = service.book.active()
    service.shelve(alert.id, COUNTY, T0 + 2 * 60 * MIN, "检修中，已派人现场处置")
    clock.ms = T0 + 61 * MIN  # past the one-hour acknowledge deadline, but shelved
    assert service.tick() == 0
    clock.ms = T0 + 2 * 60 * MIN  # the shelve runs out: the missed deadline counts again
    assert service.tick() > 0
    assert tiers_told(service)["reminder"] == {"enterprise", "county"}
    assert [h["action"] for h in alert.history][-2:] == ["unshelve", "reminder"]
    with pytest.raises(LifecycleError) as refused:
        service.shelve(alert.id, COUNTY, clock.ms, "")
    assert refused.value.code == "bad_expiry"


def test_a_failure_on_one_event_is_counted_and_the_stream_goes_on(
    service: AlertService, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply = service.book.apply

    def fails_once(*args: Any) -> Any:
        monkeypatch.setattr(service.book, "apply", apply)
        raise ValueError("a bug")

    monkeypatch.setattr(service.book, "apply", fails_once)
    assert service.handle(risk("r1", "red", T0)) == 0
    assert service.rejected == {"internal_error": 1}
    assert service.handle(risk("r2", "red", T0 + 1)) > 0  # the next event is handled
