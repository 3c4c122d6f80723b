"""Operations lines the dashboards read: alert_v1 from the alerting service's life-cycle,
pipeline_v1 counter snapshots, gateway_v1 online rates (stream/sinks/ops_lines.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from alerting.alerts import Actor
from alerting.outbox import Outbox
from alerting.policy import routing_from_mapping
from alerting.routing import EnterpriseArea
from alerting.service import AlertService
from hazardwatch.plant.loader import load_plant
from hazardwatch.types import Tier
from ingest.directory import GatewayDirectory
from ingest.status import GatewayStatusBoard
from stream.runners.metrics import RunnerSources
from stream.sinks.ops_lines import AlertLines, OpsLines, gateway_rate_lines, pipeline_lines

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
MIN = 60_000
QZ = EnterpriseArea("QZ-PETRO", "湄洲湾储运", "350521", "tank_farm")
CONTROL = Actor("wang.control", Tier.ENTERPRISE, "QZ-PETRO")
CITY = Actor("chen.city", Tier.CITY, "350500")
TANK_FARM = Path(__file__).parents[2] / "examples" / "tank-farm.yaml"

Point = tuple[str, dict[str, str], dict[str, Any], int]


def parse(line: str) -> Point:
    """Line protocol → (measurement, tags, fields, ts); enough for the lines built here."""
    head, fields, ts = re.split(r"(?<!\\) ", line)
    measurement, *pairs = re.split(r"(?<!\\),", head)
    tags = dict(p.split("=", 1) for p in pairs)
    values: dict[str, Any] = {}
    for item in re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,]+)', fields):
        key, raw = item
        if raw.startswith('"'):
            values[key] = raw[1:-1]
        elif raw.endswith("i"):
            values[key] = int(raw[:-1])
        else:
            values[key] = float(raw)
    return measurement, tags, values, int(ts)


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_service(path: Path, clock: Clock) -> AlertService:
    return AlertService(routing_from_mapping({}), Outbox(path), {"QZ-PETRO": QZ}, clock)


@pytest.fixture
def service(tmp_path: Path, clock: Clock) -> AlertService:
    return make_service(tmp_path / "outbox.db", clock)


@pytest.fixture
def lines(service: AlertService, clock: Clock) -> AlertLines:
    alert_lines = AlertLines(service.book.alerts.values(), clock)
    service.on_saved = alert_lines.observe
    return alert_lines


def risk(eid: str, colour: str, ts: int) -> dict[str, Any]:
    return {"id": eid, "ts": ts, "type": "risk", "enterprise": "QZ-PETRO", "source": "QZ-TF1",
            "level": "source", "colour": colour, "previous": "blue"}  # fmt: skip


def rows(alert_lines: AlertLines) -> list[tuple[str, str, str, int]]:
    """(colour, tier, state, ts) of the drained alert_v1 points."""
    out = []
    for measurement, tags, fields, ts in map(parse, alert_lines.drain()):
        assert measurement == "alert_v1"
        assert (tags["enterprise"], tags["source"]) == ("QZ-PETRO", "QZ-TF1")
        out.append((tags["colour"], tags["tier"], fields["state"], ts))
    return out


def awaiting(points: list[tuple[str, str, str, int]]) -> set[tuple[str, str]]:
    """What the control room's "awaiting acknowledgement" panel shows: the last state of each
    (colour, tier) series still raised, reminded or escalated."""
    last: dict[tuple[str, str], str] = {}
    for colour, tier, state, _ in sorted(points, key=lambda p: p[3]):
        last[(colour, tier)] = state
    return {key for key, state in last.items() if state in ("raised", "reminded", "escalated")}


def test_orange_warning_life_cycle_writes_each_step_per_tier(
    service: AlertService, lines: AlertLines, clock: Clock
) -> None:
    service.handle(risk("r1", "orange", T0))
    [alert] = service.book.active()
    points = [parse(line) for line in lines.drain()]
    assert {(p[2]["deadline_ms"], p[2]["alert_id"], p[2]["kind"]) for p in points} == {
        (T0 + 30 * MIN, alert.id, "risk")  # 30 min to acknowledge orange
    }
    raised = [(p[1]["colour"], p[1]["tier"], p[2]["state"], p[3]) for p in points]
    assert raised == [("orange", t, "raised", T0) for t in ("enterprise", "county", "city")]
    history = list(raised)

    clock.ms = T0 + 30 * MIN
    service.tick()
    reminded = rows(lines)
    assert {(c, t, s) for c, t, s, _ in reminded} == {
        ("orange", t, "reminded") for t in ("enterprise", "county", "city")
    }
    clock.ms = T0 + 45 * MIN
    service.tick()
    assert rows(lines) == [("orange", "province", "escalated", T0 + 45 * MIN)]
    history += [*reminded, ("orange", "province", "escalated", T0 + 45 * MIN)]
    assert awaiting(history) == {("orange", t) for t in ("enterprise", "county", "city",
                                                         "province")}  # fmt: skip

    clock.ms = T0 + 50 * MIN
    service.acknowledge(alert.id, CONTROL)
    acked = rows(lines)
    assert {t for _, t, s, _ in acked if s == "acknowledged"} == {
        "enterprise",
        "county",
        "city",
        "province",
    }
    assert awaiting(history + acked) == set()

    service.handle(risk("r2", "blue", T0 + 55 * MIN))
    assert rows(lines) == []  # back to normal is not a step of the warning's tiers
    clock.ms = T0 + 60 * MIN
    service.feedback(alert.id, "液位计卡滞", "更换液位计", CONTROL)
    assert {s for _, _, s, _ in rows(lines)} == {"fed_back"}
    service.clear(alert.id, CITY)
    cleared = rows(lines)
    assert len(cleared) == 4 and {s for _, _, s, _ in cleared} == {"cleared"}


def test_colour_rise_closes_the_old_colour_and_waits_on_the_new(
    service: AlertService, lines: AlertLines
) -> None:
    service.handle(risk("r1", "yellow", T0))
    service.handle(risk("r2", "orange", T0 + MIN))
    points = rows(lines)
    assert points == [
        ("yellow", "enterprise", "raised", T0),
        ("yellow", "county", "raised", T0),
        ("yellow", "enterprise", "updated", T0 + MIN),
        ("yellow", "county", "updated", T0 + MIN),
        ("orange", "enterprise", "raised", T0 + MIN),
        ("orange", "county", "raised", T0 + MIN),
        ("orange", "city", "raised", T0 + MIN),
    ]
    assert awaiting(points) == {("orange", t) for t in ("enterprise", "county", "city")}


def test_colour_fall_after_acknowledgement_stays_acknowledged(
    service: AlertService, lines: AlertLines
) -> None:
    service.handle(risk("r1", "orange", T0))
    [alert] = service.book.active()
    service.acknowledge(alert.id, CONTROL)
    service.handle(risk("r2", "yellow", T0 + MIN))
    points = rows(lines)
    assert awaiting(points) == set()
    assert ("yellow", "city", "acknowledged", T0 + MIN) in points


def test_blue_alarm_notice_has_no_deadline_and_flood_notices_no_rows(
    service: AlertService, lines: AlertLines
) -> None:
    for i in range(12):  # more than 10 new alarms in 10 min: a flood begins
        event = {"id": f"a{i}", "ts": T0 + i * 1000, "type": "alarm", "enterprise": "QZ-PETRO",
                 "source": f"S{i}", "tag": f"T{i}", "condition": "HH",
                 "state": "unacknowledged", "severity": "S1"}  # fmt: skip
        service.handle(event)
    points = [parse(line) for line in lines.drain()]
    assert {(p[1]["colour"], p[1]["tier"], p[2]["state"]) for p in points} == {
        ("blue", "enterprise", "raised")
    }
    assert all("deadline_ms" not in p[2] for p in points)
    assert {p[2]["kind"] for p in points} == {"alarm"}
    assert service.book.counters.get("flood_started") == 1  # the flood alert wrote nothing


def test_restart_writes_only_steps_after_it(tmp_path: Path, clock: Clock) -> None:
    first = make_service(tmp_path / "outbox.db", clock)
    before = AlertLines([], clock)
    first.on_saved = before.observe
    first.handle(risk("r1", "orange", T0))
    assert len(before.drain()) == 3
    first.outbox.close()

    again = make_service(tmp_path / "outbox.db", clock)
    after = AlertLines(again.book.alerts.values(), clock)
    again.on_saved = after.observe
    clock.ms = T0 + 30 * MIN
    again.tick()
    assert {(c, s) for c, _, s, _ in rows(after)} == {("orange", "reminded")}


def test_a_failing_line_never_breaks_the_alerting_service(
    service: AlertService, lines: AlertLines, caplog: pytest.LogCaptureFixture
) -> None:
    service.handle(risk("r1", "orange", T0))
    [alert] = service.book.active()
    alert.history.append({"ts_ms": T0, "action": "update", "colour": "purple"})
    lines.observe(alert)
    assert "alert_v1 lines" in caplog.text
    service.acknowledge(alert.id, CONTROL)  # still works, and still writes
    assert any(s == "acknowledged" for _, _, s, _ in rows(lines))


def sources(rejected: dict[str, int], spool_fill: float = 0.25) -> RunnerSources:
    return RunnerSources(
        readings_in=lambda: 1000,
        rejected_by_reason=lambda: rejected,
        evaluated=lambda: {"accepted": 990, "late": 10},
        sink=lambda: {"written": 1200, "spooled": 40, "replayed": 40},
        spool_fill=lambda: spool_fill,
        queue_depth=lambda: 0,
    )


def test_pipeline_snapshot_counts_rejections_by_reason() -> None:
    counters = {"rejected_unknown_tag": 3, "rejected_invalid_json": 2, "rejected_oversize": 0}
    points = [parse(line) for line in pipeline_lines("run", sources(counters), T0)]
    assert points == [
        ("pipeline_v1", {"process": "run"}, {"readings_in": 1000, "rejected": 5,
         "evaluated": 990, "written": 1200, "spooled": 40, "spool_fill": 0.25}, T0),
        ("pipeline_v1", {"process": "run", "reason": "invalid_json"}, {"rejected": 2}, T0),
        ("pipeline_v1", {"process": "run", "reason": "unknown_tag"}, {"rejected": 3}, T0),
    ]  # fmt: skip


def test_gateway_online_rate_over_the_window() -> None:
    plant = load_plant(TANK_FARM)
    board = GatewayStatusBoard(GatewayDirectory.from_plant(plant))
    gateways = {g.id: g.enterprise for g in plant.gateways}
    board.tick(T0)
    board.tick(T0 + 5 * MIN)  # never heard from in its silence period: offline since T0
    points = [parse(line) for line in gateway_rate_lines(board, gateways, 10 * MIN, T0 + 5 * MIN)]
    assert [(p[1]["gateway"], p[2]["online"], p[2]["online_rate"]) for p in points] == [
        (g, 0, 0.5) for g in sorted(gateways)
    ]
    assert {p[1]["enterprise"] for p in points} == {"QZ-PETRO"}


def test_snapshots_every_period_alert_lines_at_once(
    service: AlertService, lines: AlertLines
) -> None:
    board = GatewayStatusBoard(GatewayDirectory.from_plant(load_plant(TANK_FARM)))
    ops = OpsLines("run", sources({}), board, lines, period_ms=10_000)
    measurements = [parse(line)[0] for line in ops.due(T0 + 1000)]
    assert measurements.count("pipeline_v1") == 1 and measurements.count("gateway_v1") == 2
    service.handle(risk("r1", "yellow", T0 + 2000))
    assert {parse(line)[0] for line in ops.due(T0 + 3000)} == {"alert_v1"}
    assert ops.due(T0 + 9999) == []
    assert {parse(line)[0] for line in ops.due(T0 + 10_000)} == {"pipeline_v1", "gateway_v1"}
