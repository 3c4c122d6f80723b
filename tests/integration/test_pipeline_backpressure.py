"""InfluxDB down and the spool full: input is refused with backpressure, nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from hazardwatch.errors import BackpressureError
from hazardwatch.plant.loader import load_plant
from hazardwatch.settings import InfluxSettings
from stream.engine import ReadingBatch
from stream.events import Event
from stream.policy import EnginePolicy
from stream.runners.pipeline import Pipeline
from stream.runners.state_store import StateStore
from stream.sinks.influx import InfluxSink
from stream.sinks.spool import Spool
from tests.integration.test_embedded_runner import PLANT
from tests.processes import influx_rows
from tests.proxy import TcpProxy
from tests.services import Endpoints

pytestmark = pytest.mark.integration
T0 = 1_763_800_000_000


def test_alarm_during_outage_with_full_spool_is_kept_and_written_later(
    endpoints: Endpoints, influx_database: str, tmp_path: Path
) -> None:
    (tmp_path / "plant.yaml").write_text(PLANT, "utf-8")
    plant = load_plant(tmp_path / "plant.yaml")
    host, port = endpoints.influx_url.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port)).start()
    now = [0.0]
    sink = InfluxSink(
        InfluxSettings(url=proxy.url, database=influx_database, token=SecretStr("")),
        Spool(tmp_path / "spool", max_bytes=300),  # room for a couple of lines only
        batch_lines=2,
        clock=lambda: now[0],
    )
    heard: list[Event] = []
    store = StateStore(tmp_path / "engine.db")
    pipeline = Pipeline(plant, EnginePolicy(), sink, store, listeners=[heard.extend])
    proxy.cut()

    # TK1-LT above HH (17 m) for longer than its 1 s on-delay: the second batch raises HH.
    levels = [(T0, 17.5), (T0 + 1500, 17.6), (T0 + 3000, 17.7)]
    refused: list[ReadingBatch] = []
    for ts, level in levels:
        batch = ReadingBatch.of([0, 1], [ts, ts], [level, 20.0])
        try:
            pipeline.handle(batch)
            pipeline.flush()
        except BackpressureError:
            refused.append(batch)  # not acknowledged: the broker redelivers the message
    assert refused, "the tiny spool should have filled"
    hh = [e for e in heard if getattr(e, "condition", None) == "HH"]
    assert hh, "the alarm must reach the alert outbox even while InfluxDB is unreachable"
    assert store.load() is not None

    proxy.start()
    now[0] = 3600.0  # past any backoff
    sink.drain(force=True)
    for batch in refused:  # redelivered by the broker, as IngestService retries a hand-off
        pipeline.handle(batch)
    pipeline.flush()
    assert len(sink.spool) == 0 and sink.buffered == 0
    rows = influx_rows(proxy.url, influx_database, 'SELECT "v" FROM "reading_v1"')
    assert len(rows) == 2 * len(levels)
    alarms = influx_rows(
        proxy.url, influx_database, 'SELECT * FROM "alarm_v1" WHERE "condition" = \'HH\''
    )
    assert len(alarms) == 1
    proxy.cut()


def test_alarm_lines_held_with_the_state_survive_a_crash_before_the_write(
    endpoints: Endpoints, influx_database: str, tmp_path: Path
) -> None:
    """The state that suppresses an alarm is saved before its alarm_v1 line is written; a crash
    in between must not lose the line, since redelivery no longer produces the event."""
    (tmp_path / "plant.yaml").write_text(PLANT, "utf-8")
    plant = load_plant(tmp_path / "plant.yaml")
    settings = InfluxSettings(url=endpoints.influx_url, database=influx_database,
                              token=SecretStr(""))  # fmt: skip
    pipeline = Pipeline(plant, EnginePolicy(), InfluxSink(settings, Spool(tmp_path / "spool")),
                        StateStore(tmp_path / "engine.db"))  # fmt: skip
    for ts, level in [(T0, 17.5), (T0 + 1500, 17.6)]:
        pipeline.handle(ReadingBatch.of([0, 1], [ts, ts], [level, 20.0]))
    commit = pipeline.commit()
    assert commit.event_lines, "HH should have been raised"
    pipeline.persist(commit)  # state + held lines committed; the process dies before writing
    pipeline.store.close()

    restarted = Pipeline(plant, EnginePolicy(), InfluxSink(settings, Spool(tmp_path / "spool")),
                         StateStore(tmp_path / "engine.db"))  # fmt: skip
    assert restarted.restored
    # The broker redelivers the unacknowledged readings: duplicates to the restored engine.
    for ts, level in [(T0, 17.5), (T0 + 1500, 17.6)]:
        assert restarted.handle(ReadingBatch.of([0, 1], [ts, ts], [level, 20.0])) == []
    restarted.flush()
    q = 'SELECT * FROM "alarm_v1" WHERE "condition" = \'HH\''
    assert len(influx_rows(endpoints.influx_url, influx_database, q)) == 1
    assert len(influx_rows(endpoints.influx_url, influx_database,
                           'SELECT "v" FROM "reading_v1"')) == 4  # fmt: skip
    restarted.store.close()
    assert StateStore(tmp_path / "engine.db").held_lines() == []
