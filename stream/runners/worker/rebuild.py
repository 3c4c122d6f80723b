"""Side consumers outside faust's group: re-reading telemetry after a failover, and commands.

`read_range` re-reads telemetry a partition's previous owner had committed but whose effect is
not in the engine snapshot (snapshots are saved only when state changed), so rolling state —
last values, stale timers, rule windows — continues exactly. `CommandReader` reads every
partition of the commands topic: an acknowledgement may concern any engine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

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
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                group_id=None)  # fmt: skip
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
        # Readings and their lines were written before that commit: no lines again.
        steps.append(engine.handle(records, lines=False))
    return steps, committed - start
