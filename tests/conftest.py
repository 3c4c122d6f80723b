"""Shared fixtures: real services, isolated per test (unique MQTT topics, Kafka topics, databases).

Factory fixtures, not shared mutable state (STYLE.md practice 7): each test asks for its own
topic or database and the fixture removes it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.services import (
    Endpoints,
    Influx2Api,
    InfluxTarget,
    container_endpoints,
    local_endpoints,
    missing_services,
    use_containers,
)


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    """The running services; fails (never skips) when one is missing."""
    if use_containers():
        with container_endpoints() as found:
            yield found
        return
    found = local_endpoints()
    missing = missing_services(found)
    if missing:
        pytest.fail(
            f"services not running: {', '.join(missing)}. Start them with `scripts/services up`.",
            pytrace=False,
        )
    yield found


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Factory of names unique to this test run: `unique_name("tele")` → `tele_ab12cd34`."""

    def make(prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def mqtt_prefix(unique_name: Callable[[str], str]) -> str:
    """An MQTT topic prefix no other test uses."""
    return f"test/{unique_name('t')}"


@pytest.fixture
def influx_database(endpoints: Endpoints, unique_name: Callable[[str], str]) -> Iterator[str]:
    """A fresh InfluxDB database, dropped after the test."""
    name = unique_name("hwtest")
    with httpx.Client(base_url=endpoints.influx_url, timeout=10) as client:
        client.post("/query", params={"q": f'CREATE DATABASE "{name}"'}).raise_for_status()
        yield name
        client.post("/query", params={"q": f'DROP DATABASE "{name}"'})


@pytest.fixture(params=["1.8", "2.x"])
def influx_target(
    request: pytest.FixtureRequest, endpoints: Endpoints, unique_name: Callable[[str], str]
) -> Iterator[InfluxTarget]:
    """A fresh database on InfluxDB 1.8 and, as a second case, on 2.x (a bucket
    `<name>/autogen` with its InfluxQL mapping, the layout the sink sets up); removed after."""
    name = unique_name("hwtest")
    if request.param == "1.8":
        with httpx.Client(base_url=endpoints.influx_url, timeout=10) as client:
            client.post("/query", params={"q": f'CREATE DATABASE "{name}"'}).raise_for_status()
            yield InfluxTarget("1.8", endpoints.influx_url, name)
            client.post("/query", params={"q": f'DROP DATABASE "{name}"'})
        return
    api = Influx2Api(endpoints)
    try:
        api.create_mapping(name, api.create_bucket(f"{name}/autogen"))
        yield InfluxTarget("2.x", api.url, name, api.org, api.token)
    finally:
        api.drop(name)
        api.close()


@pytest.fixture
def kafka_topic(
    endpoints: Endpoints, unique_name: Callable[[str], str]
) -> Iterator[Callable[..., str]]:
    """Factory creating Kafka topics for this test (`kafka_topic(partitions=4)`); deleted after."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    created: list[str] = []

    async def _admin(action: Callable[[AIOKafkaAdminClient], object]) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
        await admin.start()
        try:
            result = action(admin)
            if asyncio.iscoroutine(result):
                await result
        finally:
            await admin.close()

    def make(prefix: str = "topic", partitions: int = 1) -> str:
        name = unique_name(prefix)
        asyncio.run(
            _admin(
                lambda a: a.create_topics(
                    [NewTopic(name, num_partitions=partitions, replication_factor=1)]
                )
            )
        )
        created.append(name)
        return name

    yield make
    if created:
        with contextlib.suppress(Exception):
            asyncio.run(_admin(lambda a: a.delete_topics(created)))
