"""The InfluxDB sink against the real InfluxDB, 1.8 and 2.x: schema, outage spooling, order,
rejections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hazardwatch.plant.resolve import ResolvedTag
from hazardwatch.types import AlarmState, RiskColour, Severity
from stream.events import AlarmEvent, RiskEvent, event_id
from stream.sinks.influx import InfluxSink
from stream.sinks.lines import EventLines, ReadingLines
from stream.sinks.spool import Spool, SpoolFullError
from tests.proxy import TcpProxy
from tests.services import InfluxTarget

pytestmark = pytest.mark.integration
T0 = 1_763_800_000_000


def _tag(tag_id: str, quantity: str = "level") -> ResolvedTag:
    return ResolvedTag(
        id=tag_id, name=tag_id, quantity=quantity, eng_unit="m", enterprise="E1",  # type: ignore[arg-type]
        source="TF-1", unit="TK 101", gateway="GW1", range_min=0.0, range_max=20.0, limits=(),
        deadband=0.1, on_delay_s=60, off_delay_s=60, expected_interval_s=10,
        frozen_after_s=None, frozen_band=0.0, order10=False, independent_of=None,
        occupied_area=False,
    )  # fmt: skip


def _readings(n: int, start: int = 0) -> tuple[np.ndarray, ...]:
    idx = np.zeros(n, dtype=np.int32)
    ts = T0 + (np.arange(n, dtype=np.int64) + start) * 1000
    return idx, ts, np.arange(n, dtype=np.float64) + start, np.zeros(n, dtype=np.int8)


def test_readings_and_events_land_in_the_documented_schema(
    influx_target: InfluxTarget, tmp_path: Path
) -> None:
    sink = InfluxSink(influx_target.settings(), Spool(tmp_path))
    sink.ensure_database()
    readings = ReadingLines([_tag("TK-101.LT")])
    values = np.array([1.5, np.nan, 2.5])
    sink.add(
        readings.lines(
            np.zeros(3, np.int32), np.array([T0, T0 + 1, T0 + 2]), values, np.zeros(3, np.int8)
        )
    )
    alarm = AlarmEvent(T0 + 5, "E1", "TF-1", "TK 101", "TK-101.LT", "HH", AlarmState.UNACKED,
                       Severity.S2)  # fmt: skip
    risk = RiskEvent(T0 + 5, "E1", "TF-1", "source", RiskColour.ORANGE, RiskColour.BLUE,
                     Severity.S2, escalated=False)  # fmt: skip
    events = EventLines({"E1": "410102"})
    sink.add([events.line(alarm), events.line(risk)])
    sink.close()

    rows = influx_target.query('SELECT * FROM "reading_v1"')
    # NaN cannot be stored; the engine reports it as a sensor fault instead.
    assert [(r["time"], r["v"], r["tag"], r["unit"]) for r in rows] == [
        (T0, 1.5, "TK-101.LT", "TK 101"),
        (T0 + 2, 2.5, "TK-101.LT", "TK 101"),
    ]
    (alarm_row,) = influx_target.query('SELECT * FROM "alarm_v1"')
    assert alarm_row["condition"] == "HH" and alarm_row["active"] == 1
    assert alarm_row["state"] == "unacknowledged" and alarm_row["event_id"] == event_id(alarm)
    (risk_row,) = influx_target.query('SELECT * FROM "risk_v1"')
    assert (risk_row["colour"], risk_row["colour_name"], risk_row["previous"]) == (3, "orange", 1)
    assert (risk_row["county"], risk_row["city"], risk_row["province"]) == (
        "410102",
        "410100",
        "410000",
    )


def test_outage_spools_in_order_and_replays_everything(
    influx_target: InfluxTarget, tmp_path: Path
) -> None:
    host, port = influx_target.url.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port)).start()
    now = [0.0]
    sink = InfluxSink(
        influx_target.settings(proxy.url),
        Spool(tmp_path),
        batch_lines=100,
        clock=lambda: now[0],
    )
    lines = ReadingLines([_tag("TK-101.LT")])
    sink.add(lines.lines(*_readings(250)))  # 2 batches written, 50 buffered
    proxy.cut()
    sink.add(lines.lines(*_readings(450, start=250)))  # InfluxDB down: batches spool
    sink.flush()
    assert sink.stats.spooled >= 500 and len(sink.spool) >= 5

    # The process restarts while InfluxDB is still down: the spool is on disk.
    sink2 = InfluxSink(
        influx_target.settings(proxy.url), Spool(tmp_path), batch_lines=100,
        clock=lambda: now[0],
    )  # fmt: skip
    assert len(sink2.spool) == len(sink.spool)
    proxy.start()
    now[0] = 60.0  # past the backoff
    sink2.add(lines.lines(*_readings(100, start=700)))  # queues behind the spool, then all drain
    sink2.flush()
    sink2.drain(force=True)
    assert len(sink2.spool) == 0

    rows = influx_target.query('SELECT "v" FROM "reading_v1"')
    assert [r["v"] for r in rows] == [float(i) for i in range(800)]
    assert sink.stats.written + sink2.stats.written == 800
    assert sink2.stats.replayed == sink.stats.spooled == 500
    proxy.cut()


def test_full_spool_refuses_with_backpressure_and_keeps_what_it_has(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=2000)
    spool.append(["reading_v1,tag=a v=1 1"] * 40)
    with pytest.raises(SpoolFullError, match="full"):
        spool.append(["reading_v1,tag=a v=2 2"] * 100)
    assert len(spool) == 1 and Spool(tmp_path, max_bytes=2000).bytes == spool.bytes


def test_malformed_batch_is_counted_as_rejected_not_retried(
    influx_target: InfluxTarget, tmp_path: Path
) -> None:
    sink = InfluxSink(influx_target.settings(), Spool(tmp_path))
    sink.add(["reading_v1,tag=a v=1 1", 'reading_v1,tag=a v="text" 2'])  # field type conflict
    sink.close()
    assert sink.stats.rejected == 2 and len(sink.spool) == 0 and sink.stats.spooled == 0


def test_a_file_system_that_refuses_the_spool_is_backpressure_not_a_crash(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    # The next batch's file cannot be created: the write fails with a real OSError, as ENOSPC
    # on a full disk would.
    blocker = tmp_path / "000000000001.tmp"
    blocker.mkdir()
    with pytest.raises(SpoolFullError, match="cannot take a batch"):
        spool.append(["reading_v1,tag=a v=1 1"])
    assert len(spool) == 0 and spool.bytes == 0
    blocker.rmdir()  # space again: the same batch goes in
    spool.append(["reading_v1,tag=a v=1 1"])
    assert Spool(tmp_path).peek() is not None and len(Spool(tmp_path)) == 1
