"""The worker's engine offset, not faust's consumer, decides what was evaluated and written.

faust's fetcher can jump over offsets when a rebalance or seek interleaves with a fetch, and counts
the skipped offsets as acknowledged (faust-streaming issues #216, #606). These tests hand the
worker a batch with such a hole, or a failover with a commit past what was written, on a real
Kafka and InfluxDB, and check that every reading still reaches InfluxDB.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from hazardwatch.plant.loader import load_plant
from hazardwatch.settings import InfluxSettings, KafkaSettings, Settings
from stream.policy import EnginePolicy
from stream.runners.worker.app import WorkerRuntime
from stream.runners.worker.partition import PartitionEngine
from stream.runners.worker.rebuild import fill_holes, rebuild
from stream.runners.worker.topics import ensure_topics
from tests.integration.test_worker import (
    PARTITIONS,
    SOURCES,
    TAGS,
    bridge_record,
    influx_count,
    partition,
    plant_yaml,
)
from tests.processes import drop_kafka_topics
from tests.services import Endpoints

pytestmark = pytest.mark.integration

SOURCE, TAG = SOURCES[0], TAGS[0]
T0 = 1_700_000_000_000


def record(seq: int) -> bytes:
    """The bridge's record of GW1's message `seq`: one level reading of SOURCE, in band."""
    return bridge_record(TAG, seq, T0 + seq * 1000, 10.0 + seq % 3)


async def produce(bootstrap: str, topic: str, part: int, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=SOURCE.encode(), partition=part)
    finally:
        await producer.stop()


def test_fill_holes_reads_back_the_offsets_the_consumer_skipped(
    endpoints: Endpoints, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=1)
    values = [f"r{i}".encode() for i in range(20)]
    asyncio.run(produce(endpoints.kafka_bootstrap, topic, 0, values))
    bootstrap = endpoints.kafka_bootstrap

    def fill(after: int, offsets: list[int]) -> tuple[list[tuple[int, bytes | None]], int]:
        delivered = [(o, values[o]) for o in offsets]
        return asyncio.run(fill_holes(bootstrap, topic, 0, after, delivered))

    # a hole inside the batch and one between the engine's offset and the batch
    got, read_back = fill(2, [3, 4, 9, 10, 12])
    assert got == [(o, values[o]) for o in range(3, 13)]
    assert read_back == 5
    got, read_back = fill(2, [7, 8])
    assert got == [(o, values[o]) for o in range(3, 9)] and read_back == 4
    # an engine that has applied nothing, on a log starting at 0
    got, read_back = fill(-1, [5, 7])
    assert got == [(o, values[o]) for o in range(0, 8)] and read_back == 6
    # contiguous: returned as delivered, Kafka not asked (an unreachable broker would fail it)
    contiguous = [(o, values[o]) for o in (3, 4, 5)]
    assert asyncio.run(fill_holes("127.0.0.1:1", topic, 0, 2, contiguous)) == (contiguous, 0)


@dataclass
class Message:
    partition: int
    offset: int


@dataclass
class Delivered:
    """What faust hands `on_telemetry`: an event with its message and value."""

    message: Message
    value: bytes


@pytest.fixture
def runtime(
    endpoints: Endpoints, influx_database: str, unique_name: Callable[[str], str], tmp_path: Path
) -> Iterator[WorkerRuntime]:
    """A worker runtime (faust app not started) with its topics, and its InfluxDB database."""
    (tmp_path / "plant.yaml").write_text(plant_yaml(), "utf-8")
    prefix = unique_name("hwholes")
    settings = Settings(
        data_dir=tmp_path / "data",
        plant=tmp_path / "plant.yaml",
        kafka=KafkaSettings(bootstrap_servers=endpoints.kafka_bootstrap, topic_prefix=prefix,
                            partitions=PARTITIONS),
        influx=InfluxSettings(url=endpoints.influx_url, database=influx_database),
    )  # fmt: skip
    made = WorkerRuntime(settings, load_plant(tmp_path / "plant.yaml"), EnginePolicy(),
                         worker_id="holes")  # fmt: skip
    asyncio.run(ensure_topics(endpoints.kafka_bootstrap, made.topics, PARTITIONS, 1))
    made.sink.ensure_database()
    yield made
    made.sink.close()
    drop_kafka_topics(endpoints.kafka_bootstrap, prefix)


def stored_readings(settings: Settings) -> int:
    return influx_count(settings.influx.url, settings.influx.database,
                        'SELECT count("v") FROM "reading_v1"')  # fmt: skip


def published(runtime: WorkerRuntime, n: int) -> tuple[int, list[bytes]]:
    """SOURCE's partition and `n` records of it on the telemetry topic (offsets 0..n-1)."""
    part = partition(SOURCE)
    values = [record(seq) for seq in range(1, n + 1)]
    asyncio.run(produce(runtime.settings.kafka.bootstrap_servers, runtime.topics.telemetry,
                        part, values))  # fmt: skip
    return part, values


def test_a_batch_with_skipped_offsets_still_writes_every_reading(runtime: WorkerRuntime) -> None:
    part, values = published(runtime, 30)
    runtime.engines[part] = PartitionEngine(part, runtime.plant, runtime.sources[part],
                                            runtime.policy)  # fmt: skip
    # faust delivers offsets 0-9, then jumps to 20-29: 10-19 were fetched over a rebalance
    for batch in (range(0, 10), range(20, 30)):
        events = [Delivered(Message(part, o), values[o]) for o in batch]
        asyncio.run(runtime.on_telemetry(events))  # type: ignore[arg-type]
    assert stored_readings(runtime.settings) == 30
    assert runtime.counters["records_read_back"] == 10
    assert runtime.engines[part].offset == 29


def test_failover_rewrites_the_readings_after_the_snapshot(runtime: WorkerRuntime) -> None:
    """The previous owner's group committed offset 25, though faust had skipped some of the
    offsets before it (counted as acknowledged): the new owner's rebuild writes them."""
    part, _ = published(runtime, 30)
    engine = PartitionEngine(part, runtime.plant, runtime.sources[part], runtime.policy)
    bootstrap = runtime.settings.kafka.bootstrap_servers
    steps, reread = asyncio.run(rebuild(engine, bootstrap, runtime.topics.telemetry, 25, 1000))
    assert reread == 25 and engine.offset == 24
    lines = [line for step in steps for line in step.lines if line.startswith("reading_v1")]
    assert len(lines) == 25


def test_a_first_batch_that_skips_the_log_start_is_completed(runtime: WorkerRuntime) -> None:
    """A partition nothing was committed for: faust starts at the log's start, so a first batch
    at offset 5 means 0-4 were skipped."""
    part, values = published(runtime, 10)
    runtime.engines[part] = asyncio.run(runtime._open_engine(part, -1))
    events = [Delivered(Message(part, o), values[o]) for o in range(5, 10)]
    asyncio.run(runtime.on_telemetry(events))  # type: ignore[arg-type]
    assert stored_readings(runtime.settings) == 10
    assert runtime.counters["records_read_back"] == 5
