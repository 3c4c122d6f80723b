"""Side consumers outside faust's group: telemetry re-read after a failover or a skip.

`rebuild` re-reads telemetry a partition's previous owner had committed but whose effect is not
in the engine snapshot (snapshots are saved only when state changed), so rolling state — last
values, stale timers, rule windows — continues exactly. `fill_holes` reads back offsets faust's
consumer skipped: the engine's offset, not faust's, says what was evaluated and written.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from stream.runners.worker.partition import PartitionEngine, Step

log = logging.getLogger(__name__)
Record = tuple[int, bytes | None]


async def committed_offsets(
    bootstrap: str, group: str, topic: str, partitions: list[int]
) -> dict[int, int]:
    """The group's committed offset per partition (-1 where nothing was committed)."""
    if not partitions:
        return {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        found = await admin.list_consumer_group_offsets(group, partitions=tps)
        return {
            p: found[tp].offset if tp in found else -1
            for p, tp in zip(partitions, tps, strict=True)
        }
    finally:
        await admin.close()


async def read_range(
    bootstrap: str, topic: str, partition: int, start: int, end: int, chunk: int = 5000
) -> AsyncIterator[list[Record]]:
    """Records `start <= offset < end` of one partition, in order, in chunks."""
    if start >= end:
        return
    # earliest: a start the retention already deleted begins at the log's start, not its end
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                group_id=None, auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        position = start
        while position < end:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=chunk)
            records = [(r.offset, r.value) for r in batch.get(tp, []) if r.offset < end]
            if records:
                position = records[-1][0] + 1
                yield records
            elif await consumer.position(tp) >= end:
                return  # the rest was compacted or deleted
    finally:
        await consumer.stop()


async def rebuild(
    engine: PartitionEngine, bootstrap: str, topic: str, committed: int, limit: int
) -> tuple[list[Step], int]:
    """Feed `engine` the records between its row's offset and the group's commit (at most
    `limit` of them); returns the steps (events only if the previous owner died between
    publishing them and saving its row) and how many records were read."""
    if committed <= engine.offset + 1:
        return [], 0
    start = max(engine.offset + 1, committed - limit)
    if start > engine.offset + 1 and engine.restored:
        # A gap between the snapshot and `start`: readings the engine will never see, so its
        # rolling windows and stale timers restart there (docs/architecture.md).
        skipped = start - engine.offset - 1
        log.warning("partition %d: %d records after the snapshot are not re-read (limit %d)",
                    engine.partition, skipped, limit)  # fmt: skip
    engine.offset = start - 1
    steps = []
    async for records in read_range(bootstrap, topic, engine.partition, start, committed):
        # The lines are written again: faust may have committed offsets it never delivered
        # (see fill_holes), and InfluxDB keeps one point per series and time, so a line
        # written twice is stored once.
        steps.append(engine.handle(records))
    return steps, committed - start


async def fill_holes(
    bootstrap: str, topic: str, partition: int, after: int, records: Sequence[Record]
) -> tuple[list[Record], int]:
    """`records` (offsets above `after`, as faust delivered them) with every offset faust skipped
    between `after` and the last of them read back from Kafka, in offset order; and how many
    were read back. `after` is the engine's offset, -1 when it has applied none: faust starts a
    partition nothing was committed for at the log's start (earliest), and a start the retention
    deleted is skipped by `read_range`.

    faust takes a jump in the offsets it fetched for a compaction gap and counts the missing
    offsets as acknowledged; a jump also happens when a rebalance or a seek interleaves with a
    fetch (faust-streaming issues #216 and #606), and then records were never delivered. The
    telemetry topic is neither compacted nor transactional, so its offsets have no gaps: every
    hole is a skip.
    """
    offsets = [offset for offset, _ in records]
    first = after + 1
    if offsets == list(range(first, first + len(offsets))):
        return list(records), 0  # the usual case: contiguous, in order
    delivered = dict(records)
    found: dict[int, bytes | None] = {}
    async for chunk in read_range(bootstrap, topic, partition, first, max(delivered) + 1):
        found.update(chunk)
    read_back = len(found.keys() - delivered.keys())
    found.update(delivered)  # also what the retention deleted since faust delivered it
    return sorted(found.items()), read_back
