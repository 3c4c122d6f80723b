"""The sink sets up its database with >= 30 days of retention on the real InfluxDB 1.8 and 2.x
(stream/sinks/influx_admin.py; ../shared/DOMAIN.md §2: monitoring data kept at least 30 days)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from hazardwatch.settings import InfluxSettings
from stream.sinks.influx_admin import DAY_S, ensure_database
from tests.processes import influx_rows
from tests.services import Endpoints, Influx2Api

pytestmark = pytest.mark.integration


@pytest.fixture
def influx2(endpoints: Endpoints) -> Iterator[Influx2Api]:
    api = Influx2Api(endpoints)
    yield api
    api.close()


@pytest.fixture
def v2_database(influx2: Influx2Api, unique_name: Callable[[str], str]) -> Iterator[str]:
    """A database name on InfluxDB 2.x; its buckets and mappings are removed after the test."""
    name = unique_name("hwtest")
    yield name
    influx2.drop(name)


def test_v2_bucket_keeps_30_days_and_answers_influxql_without_a_retention_policy(
    influx2: Influx2Api, v2_database: str
) -> None:
    database = v2_database
    settings = influx2.settings(database)
    ensure_database(settings)
    ensure_database(settings)  # at every start: finds what it made, adds nothing

    (bucket,) = influx2.buckets(f"{database}/autogen")
    assert [r["everySeconds"] for r in bucket["retentionRules"]] == [30 * DAY_S]
    (mapping,) = influx2.mappings(database)
    assert (mapping["bucketID"], mapping["retention_policy"], mapping["default"]) == (
        bucket["id"], "autogen", True)  # fmt: skip
    # The dashboards' InfluxQL names the database only; 2.x's own (virtual) mapping of a
    # db/rp bucket is not the database's default and would refuse this query.
    now_ms = time.time_ns() // 1_000_000  # older points fall outside the 30 days: refused
    influx2.write(settings.bucket, f"reading_v1,tag=TK-101.LT v=1.5 {now_ms * 1_000_000}")
    rows = influx_rows(influx2.url, database, 'SELECT "v" FROM "reading_v1"', influx2.token)
    assert [(r["time"], r["v"]) for r in rows] == [(now_ms, 1.5)]


def test_v2_bucket_with_a_shorter_retention_is_reported_and_left_alone(
    influx2: Influx2Api, v2_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = v2_database
    influx2.create_bucket(f"{database}/autogen", expire_s=7 * DAY_S)
    with caplog.at_level(logging.WARNING, "stream.sinks.influx_admin"):
        ensure_database(influx2.settings(database))
    (bucket,) = influx2.buckets(f"{database}/autogen")
    assert [r["everySeconds"] for r in bucket["retentionRules"]] == [7 * DAY_S]
    assert "keeps data 7 days, fewer than the 30 required" in caplog.text
    assert len(influx2.mappings(database)) == 1  # still readable with InfluxQL


def test_v2_token_without_rights_is_a_warning_not_a_crash(
    influx2: Influx2Api, v2_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = v2_database
    settings = influx2.settings(database, token="not-a-token")
    with caplog.at_level(logging.WARNING, "stream.sinks.influx_admin"):
        ensure_database(settings)
    assert "did not let the sink set up bucket" in caplog.text and "HTTP 401" in caplog.text
    assert influx2.buckets(f"{database}/autogen") == []


def test_v1_retention_policy_is_created_with_30_days(
    endpoints: Endpoints, unique_name: Callable[[str], str]
) -> None:
    database = unique_name("hwtest")
    settings = InfluxSettings(url=endpoints.influx_url, database=database,
                              retention_policy="monitoring")  # fmt: skip
    try:
        ensure_database(settings)
        policies = influx_rows(endpoints.influx_url, database, "SHOW RETENTION POLICIES")
        durations = {p["name"]: p["duration"] for p in policies}
        assert durations["monitoring"] == "720h0m0s"
    finally:
        httpx.post(f"{endpoints.influx_url}/query", params={"q": f'DROP DATABASE "{database}"'})


def test_unreachable_server_is_a_warning_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    from tests.processes import free_port

    settings = InfluxSettings(url=f"http://127.0.0.1:{free_port()}", database="hw")
    with caplog.at_level(logging.WARNING, "stream.sinks.influx_admin"):
        ensure_database(settings)
    assert "InfluxDB unreachable" in caplog.text
