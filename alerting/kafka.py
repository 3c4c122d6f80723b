"""The one aiokafka adapter of alerting (distributed runner).

Consumes engine events from `{prefix}.alerts` (topic name versioned, e.g. `hazardwatch.v1.alerts`)
with consumer group `{topic}.dispatchers` (one group per topic, so deployments or test runs with
different prefixes on one cluster never rebalance each other), committing offsets only after
`handle` has saved the event's outcome in the outbox (at-least-once; event ids and idempotency
keys make a replay harmless). Publishes acknowledgement commands as JSON to `{prefix}.commands`,
keyed by enterprise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from alerting.commands import AckCommand

EVENTS_TOPIC = "{prefix}.alerts"
COMMANDS_TOPIC = "{prefix}.commands"
GROUP = "{topic}.dispatchers"


async def consume_events(
    bootstrap: str, topic: str, handle: Callable[[bytes], int], stop: asyncio.Event
) -> None:
    """Feed every event of `topic` to `handle` until `stop` is set; commit after each batch."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=GROUP.format(topic=topic),
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                for record in records:
                    if record.value is not None:
                        handle(record.value)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


class KafkaCommandSink:
    """A CommandSink publishing acknowledgements to the commands topic (fire and forget)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        self._pending: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        """Connect the producer."""
        await self._producer.start()

    def __call__(self, command: AckCommand) -> None:
        """Publish one command (keyed by enterprise so one enterprise's commands stay ordered)."""
        task = asyncio.ensure_future(
            self._producer.send_and_wait(
                self.topic, orjson.dumps(command.to_dict()), key=command.enterprise.encode()
            )
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def stop(self) -> None:
        """Flush and close."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._producer.stop()
