"""Acknowledgements from `alerts serve` (topic `{prefix}.commands`) for the partition engines.

Commands are keyed by enterprise, engines by hazard-source partition, so every worker reads
every commands partition (no consumer group) and each engine applies the commands on its own
tags once: it keeps, per commands partition, the next offset it has not seen, saved in its table
row together with the state the command produced (PartitionEngine.acknowledge).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from alerting.commands import AckCommand
from stream.runners.worker.partition import PartitionEngine

log = logging.getLogger(__name__)


def parse_ack(value: bytes | None) -> AckCommand | None:
    """An `acknowledge` command (alerting/commands.py JSON), or None for anything else."""
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("type") != "acknowledge":
        return None
    tags, ts = data.get("tags"), data.get("ts")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return None
    if type(ts) is not int:
        return None
    source = data.get("source")
    return AckCommand(str(data.get("alert", "")), str(data.get("enterprise", "")),
                      source if isinstance(source, str) else None, tuple(tags),
                      str(data.get("user", "")), ts)  # fmt: skip


@dataclass
class CommandRecord:
    """One record of the commands topic; `ack` None when it is not an acknowledgement."""

    partition: int
    offset: int
    ack: AckCommand | None


@dataclass
class CommandReader:
    """Reads all partitions of the commands topic from positions the engines ask for."""

    bootstrap: str
    topic: str
    rejected: int = 0
    _consumer: AIOKafkaConsumer | None = None
    _tps: dict[int, TopicPartition] = field(default_factory=dict)

    async def start(self) -> None:
        """Connect and assign every partition of the topic."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        partitions = sorted(int(p["partition"]) for p in described.get("partitions") or [])
        if not partitions:
            raise RuntimeError(f"commands topic {self.topic} has no partitions")
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False)  # fmt: skip
        await consumer.start()
        self._tps = {p: TopicPartition(self.topic, p) for p in partitions}
        consumer.assign(list(self._tps.values()))
        self._consumer = consumer

    async def stop(self) -> None:
        """Disconnect."""
        if self._consumer is not None:
            await self._consumer.stop()

    @property
    def partitions(self) -> list[int]:
        """Partitions of the commands topic."""
        return list(self._tps)

    async def end_offsets(self) -> dict[int, int]:
        """The next offset to be written, per partition."""
        assert self._consumer is not None
        ends = await self._consumer.end_offsets(list(self._tps.values()))
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def seek(self, positions: dict[int, int]) -> None:
        """Continue reading each partition at the given offset."""
        assert self._consumer is not None
        for partition, offset in positions.items():
            if partition in self._tps:
                self._consumer.seek(self._tps[partition], offset)

    async def poll(self, timeout_ms: int = 500) -> list[CommandRecord]:
        """The next records of all partitions (possibly none)."""
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=500)
        out = []
        for tp, records in batches.items():
            for record in records:
                ack = parse_ack(record.value)
                if ack is None:
                    self.rejected += 1
                    log.warning("commands %s@%d: not an acknowledgement", tp, record.offset)
                out.append(CommandRecord(tp.partition, record.offset, ack))
        return out


def command_positions(engines: list[PartitionEngine], ends: dict[int, int]) -> dict[int, int]:
    """Where to read each commands partition: the lowest offset an engine has not seen. An
    engine without a position (fresh, or a partition added) starts at the end: no acknowledgement
    written before it existed can concern its alarms."""
    positions = {}
    for partition, end in ends.items():
        wanted = [engine.command_offsets.setdefault(partition, end) for engine in engines]
        positions[partition] = min(wanted, default=end)
    return positions
