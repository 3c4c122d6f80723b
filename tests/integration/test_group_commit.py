"""The embedded runner's writer thread: a group is acknowledged only once InfluxDB or the spool
holds its lines, in order; a full spool holds the group back (and fills the queue) until
InfluxDB is back, and then nothing is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from hazardwatch.settings import InfluxSettings
from stream.runners.commit import Group, SinkWriter
from stream.runners.pipeline import Commit
from stream.sinks.influx import InfluxSink
from stream.sinks.spool import Spool
from tests.processes import influx_rows, wait_until
from tests.proxy import TcpProxy
from tests.services import Endpoints

pytestmark = pytest.mark.integration
T0 = 1_763_800_000_000


def lines(start: int, n: int) -> list[str]:
    return [f"reading_v1,tag=T1 v={float(i)},q=0i {T0 + i}" for i in range(start, start + n)]


def test_groups_are_acknowledged_in_order_and_only_once_stored(
    endpoints: Endpoints, influx_database: str, tmp_path: Path
) -> None:
    host, port = endpoints.influx_url.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port)).start()
    settings = InfluxSettings(url=proxy.url, database=influx_database, token=SecretStr(""))
    # Room on disk for the first group only.
    sink = InfluxSink(settings, Spool(tmp_path / "spool", max_bytes=4000), batch_lines=40,
                      backoff_s=(0.05, 0.1))  # fmt: skip
    acknowledged: list[int] = []
    persisted: list[int] = []

    def persist(group: Group) -> None:
        persisted.append(len(group.commit.lines))

    def written(group: Group) -> None:
        acknowledged.append(len(group.commit.lines))

    writer = SinkWriter(sink, persist, written, max_groups=1, retry_s=0.05)
    writer.start()
    stop = threading.Event()
    try:
        assert writer.put(Group(Commit(lines(0, 30))), stop)
        wait_until(lambda: acknowledged == [30], 10, "the first group written")

        proxy.cut()
        assert writer.put(Group(Commit(lines(30, 40))), stop)  # spooled: durable, acknowledged
        wait_until(lambda: acknowledged == [30, 40], 10, "the second group spooled")
        assert len(sink.spool) == 1

        assert writer.put(Group(Commit(lines(70, 120))), stop)  # does not fit: held back
        # Behind it the writer takes a little more (batches in flight, the queue), then `put`
        # waits — which is what stops the ingest loop.
        queued = 0
        while writer.put(Group(Commit(lines(190 + queued, 1))), stop, timeout_s=0.5):
            queued += 1
            assert queued < 5, "the writer should push back"
        time.sleep(0.5)
        assert acknowledged == [30, 40], "nothing may be acknowledged while it is nowhere"
        assert writer.stats.spool_full_waits > 0

        proxy.start()
        expected = [30, 40, 120] + [1] * queued
        wait_until(lambda: acknowledged == expected, 15, "everything, in order, after recovery")
        assert persisted == expected
    finally:
        assert writer.close()
        proxy.cut()
    stored = influx_rows(endpoints.influx_url, influx_database, 'SELECT "v" FROM "reading_v1"')
    assert [r["v"] for r in stored] == [float(i) for i in range(190 + queued)]
    assert len(sink.spool) == 0
