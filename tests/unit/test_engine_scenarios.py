"""Scenario tests: each derived rule, the colour matrix, escalation, flood, chattering, shelving."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hazardwatch.types import AlarmState, RiskColour
from stream.engine import Command, CommandKind, ReadingBatch, RiskEngine
from stream.events import (
    AlarmEvent,
    Event,
    FloodEvent,
    RiskEvent,
    event_to_dict,
    events_json_schema,
)
from stream.policy import EnginePolicy
from stream.tagtable import RuleKind, RuleSpec, TagSpec, TagTable
from tests.engine_fixtures import fast_policy, small_plant

S = 1000
MIN = 60 * S


def feed(engine: RiskEngine, rows: Sequence[tuple[str, int, float]]) -> list[Event]:
    index = engine.table.tag_index()
    return engine.process(
        ReadingBatch.of(
            [index[t] for t, _, _ in rows], [ts for _, ts, _ in rows], [v for _, _, v in rows]
        )
    )


def alarms(events: Sequence[Event], condition: str | None = None) -> list[AlarmEvent]:
    return [e for e in events if isinstance(e, AlarmEvent)
            and (condition is None or e.condition == condition)]  # fmt: skip


def source_colours(events: Sequence[Event]) -> list[RiskColour]:
    return [e.colour for e in events if isinstance(e, RiskEvent) and e.level == "source"]


def one_tag(grade: int = 1, **kw: object) -> RiskEngine:
    spec = TagSpec("X", limits={"H": 10.0, "HH": 20.0}, **kw)  # type: ignore[arg-type]
    return RiskEngine(TagTable.build([spec], grades={"HS1": grade}))


@pytest.mark.parametrize(
    ("grade", "value", "colour"),
    [
        (1, 15, RiskColour.YELLOW), (2, 15, RiskColour.YELLOW),
        (3, 15, RiskColour.BLUE), (4, 15, RiskColour.BLUE),
        (1, 25, RiskColour.ORANGE), (2, 25, RiskColour.ORANGE),
        (3, 25, RiskColour.YELLOW), (4, 25, RiskColour.YELLOW),
    ],
)  # fmt: skip
def test_colour_matrix_s1_s2(grade: int, value: float, colour: RiskColour) -> None:
    engine = one_tag(grade)
    events = feed(engine, [("X", 0, 1.0), ("X", S, value)])
    assert (source_colours(events) or [RiskColour.BLUE])[-1] == colour


@pytest.mark.parametrize(
    ("grade", "colour"),
    [(1, RiskColour.RED), (2, RiskColour.RED), (3, RiskColour.ORANGE), (4, RiskColour.ORANGE)],
)
def test_colour_matrix_s3_by_hold(grade: int, colour: RiskColour) -> None:
    engine = one_tag(grade)
    feed(engine, [("X", 0, 25.0)])
    engine.command(Command(CommandKind.ACKNOWLEDGE, S, tag=0))  # no time escalation
    events = engine.advance(10 * MIN)
    assert source_colours(events) == [colour]


def test_s3_by_two_s2_tags_and_by_bypass() -> None:
    tags = [TagSpec("A", limits={"HH": 5.0}), TagSpec("B", limits={"HH": 5.0})]
    engine = RiskEngine(TagTable.build(tags, grades={"HS1": 1}))
    assert source_colours(feed(engine, [("A", 0, 9.0), ("B", S, 9.0)])) == [
        RiskColour.ORANGE, RiskColour.RED]  # fmt: skip
    single = RiskEngine(TagTable.build(tags, grades={"HS1": 1}))
    feed(single, [("A", 0, 9.0)])
    events = single.command(Command(CommandKind.INTERLOCK_BYPASSED, S, unit=0, on=True))
    assert source_colours(events) == [RiskColour.RED]


def test_same_unit_id_in_two_sources_is_two_units() -> None:
    """Unit ids are unique per hazard source only: one S2 tag in each source's "P-101" is S2 in
    each source (orange at grade 1), not two S2 tags of one unit (S3, red)."""
    tags = [TagSpec("A", "P-101", "HS1", limits={"HH": 5.0}),
            TagSpec("B", "P-101", "HS2", limits={"HH": 5.0})]  # fmt: skip
    engine = RiskEngine(TagTable.build(tags, grades={"HS1": 1, "HS2": 1}))
    events = feed(engine, [("A", 0, 9.0), ("B", S, 9.0)])
    colours = {
        e.source: e.colour for e in events if isinstance(e, RiskEvent) and e.level == "source"
    }
    assert colours == {"HS1": RiskColour.ORANGE, "HS2": RiskColour.ORANGE}
    assert engine.table.unit_ids == ("P-101", "P-101")


def test_co_level2_in_occupied_area_is_s3_and_suppresses_s1() -> None:
    tags = [TagSpec("CO", limits={"H": 24, "HH": 160}, co_occupied=True),
            TagSpec("T", limits={"H": 50})]  # fmt: skip
    engine = RiskEngine(TagTable.build(tags, grades={"HS1": 3}))
    feed(engine, [("T", 0, 60.0)])
    events = feed(engine, [("CO", S, 200.0)])
    assert source_colours(events)[-1] == RiskColour.ORANGE
    states = {(e.tag, e.condition): e.state for e in alarms(events)}
    assert states[("T", "H")] is AlarmState.SUPPRESSED
    assert states[("CO", "H")] is AlarmState.SUPPRESSED


def test_escalation_one_colour_never_above_orange_by_time() -> None:
    engine = one_tag(grade=3)
    assert source_colours(feed(engine, [("X", 0, 15.0)])) == []  # S1 on grade 3: blue
    events = engine.advance(30 * MIN)
    assert source_colours(events) == [RiskColour.YELLOW]
    assert next(e.escalated for e in events if isinstance(e, RiskEvent))
    engine2 = one_tag(grade=1)
    feed(engine2, [("X", 0, 25.0), ("X", S, 15.0)])  # S2 then back inside HH: S1 alarms remain
    feed(engine2, [("X", 2 * S, 25.0)])
    colours = source_colours(engine2.advance(9 * MIN))
    assert RiskColour.RED not in colours


def test_escalation_stops_at_orange_and_ack_drops_it() -> None:
    engine = one_tag(grade=3)
    feed(engine, [("X", 0, 25.0)])  # S2 on grade 3: yellow
    assert source_colours(engine.advance(10 * MIN)) == [RiskColour.ORANGE]  # escalated + S3 hold
    assert source_colours(engine.advance(60 * MIN)) == []  # stays orange: red needs grade 1–2 S3
    events = engine.command(Command(CommandKind.ACKNOWLEDGE, 61 * MIN, tag=0))
    # H is suppressed under S3, so only HH shows the acknowledgement
    assert [(e.condition, e.state) for e in alarms(events)] == [("HH", AlarmState.ACKED)]


def test_on_and_off_delay_and_deadband() -> None:
    engine = one_tag(on_delay_s=60, off_delay_s=30, deadband=2.0)
    assert alarms(feed(engine, [("X", 0, 11.0), ("X", 30 * S, 12.0)])) == []
    events = feed(engine, [("X", 60 * S, 12.0)])
    assert [(e.ts_ms, e.state) for e in alarms(events)] == [(60 * S, AlarmState.UNACKED)]
    assert alarms(feed(engine, [("X", 70 * S, 9.0), ("X", 200 * S, 9.0)])) == []  # in deadband
    events = feed(engine, [("X", 210 * S, 7.0), ("X", 300 * S, 7.0)])
    assert [(e.ts_ms, e.state) for e in alarms(events)] == [(240 * S, AlarmState.RTN_UNACKED)]


def test_chattering_third_activation_within_a_minute() -> None:
    engine = one_tag()
    rows = [("X", i * 5 * S, 15.0 if i % 2 == 0 else 5.0) for i in range(6)]
    flags = [e.chattering for e in alarms(feed(engine, rows)) if e.state is AlarmState.UNACKED]
    assert flags == [False, False, True]


def test_shelve_expiry_and_out_of_service() -> None:
    engine = one_tag()
    feed(engine, [("X", 0, 15.0)])
    events = engine.command(Command(CommandKind.SHELVE, S, tag=0, until_ms=10 * MIN))
    assert [e.state for e in alarms(events)] == [AlarmState.SHELVED, AlarmState.SHELVED]
    assert alarms(feed(engine, [("X", 2 * S, 5.0), ("X", 3 * S, 15.0)])) == []
    events = engine.advance(10 * MIN)
    assert [(e.condition, e.state) for e in alarms(events)] == [
        ("H", AlarmState.UNACKED), ("HH", AlarmState.NORMAL)]  # fmt: skip
    events = engine.command(Command(CommandKind.OUT_OF_SERVICE, 11 * MIN, tag=0))
    assert {e.state for e in alarms(events)} == {AlarmState.OUT_OF_SERVICE}
    assert source_colours(events) == [RiskColour.BLUE]


def test_flood_begins_above_ten_and_ends_below_five() -> None:
    tags = [TagSpec(f"T{i}", limits={"H": 1.0}) for i in range(12)]
    engine = RiskEngine(TagTable.build(tags))
    events = feed(engine, [(f"T{i}", i * S, 5.0) for i in range(12)])
    floods = [e for e in events if isinstance(e, FloodEvent)]
    assert [(f.state, f.count) for f in floods] == [("begin", 11)]
    later = [e for e in engine.advance(20 * MIN) if isinstance(e, FloodEvent)]
    assert [f.state for f in later] == ["end"]


def test_stale_and_fault_are_data_quality() -> None:
    engine = one_tag(expected_interval_s=10, range_min=0, range_max=100)
    feed(engine, [("X", 0, 1.0)])
    events = engine.advance(31 * S)
    assert [(e.type, e.condition, e.state) for e in events] == [  # type: ignore[union-attr]
        ("data_quality", "stale", "active")]  # fmt: skip
    events = feed(engine, [("X", 40 * S, 150.0), ("X", 41 * S, float("nan")), ("X", 42 * S, 1)])
    assert [(e.condition, e.state) for e in events] == [  # type: ignore[union-attr]
        ("stale", "normal"), ("fault", "active"), ("fault", "normal")]  # fmt: skip


def test_flatline_while_filling_buncefield() -> None:
    tags = [TagSpec("LT", limits={"H": 16.5}), TagSpec("FI")]
    rules = [RuleSpec(RuleKind.FLATLINE, "LT", "FI", p1=50.0, p2=0.02, window_s=900)]
    engine = RiskEngine(TagTable.build(tags, rules, grades={"HS1": 2}))
    rows = []
    for i in range(400):  # 10 s cadence; the gauge sticks at step 100 while filling continues
        level = 10.0 + 0.003 * min(i, 100)
        rows += [("LT", i * 10 * S, level), ("FI", i * 10 * S, 550.0)]
    events = feed(engine, rows)
    flat = alarms(events, "flatline")
    assert [(e.ts_ms, e.state, e.severity.name) for e in flat] == [
        (1880 * S, AlarmState.UNACKED, "S2")]  # last anchor at 980 s + 900 s window  # fmt: skip
    assert source_colours(events)[0] == RiskColour.ORANGE


def test_flow_difference_levels_and_rate_of_change_and_baseline() -> None:
    tags = [TagSpec("FI"), TagSpec("FO"), TagSpec("T")]
    rules = [
        RuleSpec(RuleKind.FLOW_DIFF, "FI", "FO", p1=0.03, p2=0.06, p3=1.0),
        RuleSpec(RuleKind.RATE_OF_CHANGE, "T", p1=10.0),
        RuleSpec(RuleKind.BASELINE, "T", p1=1.5, p2=2.0, window_s=3600),
    ]
    engine = RiskEngine(TagTable.build(tags, rules))
    events = feed(engine, [("FI", 0, 100.0), ("FO", 0, 99.0), ("FO", S, 96.0),
                           ("FO", 2 * S, 93.0)])  # fmt: skip
    assert [e.severity.name for e in alarms(events, "flow_diff")] == ["S1", "S2"]
    hour = [("T", i * MIN, 10.0) for i in range(60)]
    events = feed(engine, [*hour, ("T", 60 * MIN, 16.0), ("T", 62 * MIN, 16.0),
                           ("T", 64 * MIN, 21.0), ("T", 64 * MIN + 30 * S, 40.0)])  # fmt: skip
    assert [e.severity.name for e in alarms(events, "baseline")] == ["S1", "S2"]
    assert len(alarms(events, "roc")) >= 1


def test_snapshot_round_trip_mid_stream() -> None:
    table, policy = small_plant(), fast_policy()
    first = [("LT1", i * S, 8.5) for i in range(5)] + [("CO1", 5 * S, 200.0)]
    second = [("LT1", 10 * S + i * S, 1.0) for i in range(5)] + [("TT1", 20 * S, 60.0)]
    a = RiskEngine(table, policy)
    feed(a, first)
    b = RiskEngine.restore(table, policy, a.snapshot())
    assert feed(a, second) == feed(b, second)
    assert a.advance(30 * MIN) == b.advance(30 * MIN)


def test_event_json_has_deterministic_id_and_matches_schema_shape() -> None:
    engine = one_tag()
    events = feed(engine, [("X", 0, 25.0)])
    lines = [event_to_dict(e) for e in events]
    assert lines == [event_to_dict(e) for e in events]
    assert lines[0]["ts"] == "1970-01-01T00:00:00.000+00:00"
    schema = events_json_schema()
    by_type = {s["properties"]["type"]["const"]: s for s in schema["oneOf"]}
    for line in lines:
        spec = by_type[line["type"]]
        assert set(line) == set(spec["properties"]) and set(spec["required"]) <= set(line)


def test_late_and_duplicate_readings_are_counted() -> None:
    engine = RiskEngine(TagTable.build([TagSpec("X")]), EnginePolicy())
    feed(engine, [("X", 10 * S, 1.0), ("X", 10 * S, 2.0)])
    feed(engine, [("X", 5 * S, 1.0)])
    assert engine.counters == {"accepted": 1, "late": 1, "duplicate": 1, "unknown_tag": 0}


def test_roll_call_lists_every_source_and_enterprise_at_the_clock() -> None:
    engine = RiskEngine(small_plant(), fast_policy())
    assert engine.roll_call() == []  # no clock yet: nothing to stamp it with
    events = feed(engine, [("LS1", 0, 9.5)])  # HH at once: TF (grade 1) turns orange
    assert source_colours(events) == [RiskColour.ORANGE]
    calls = engine.roll_call()
    table = engine.table
    assert [(c.level, c.source) for c in calls] == [("source", s) for s in table.source_ids] + [
        ("enterprise", None) for _ in table.enterprise_ids
    ]
    assert all(c.ts_ms == engine.clock_ms and c.previous == c.colour for c in calls)
    colours = {c.source or c.enterprise: c.colour for c in calls}
    assert colours["TF"] == colours["E1"] == RiskColour.ORANGE
    untouched = {key: c for key, c in colours.items() if key not in ("TF", "E1")}
    assert untouched and set(untouched.values()) == {RiskColour.BLUE}
