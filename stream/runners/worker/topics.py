"""Kafka topic names of the distributed runner, and their creation at start.

Every name carries the versioned prefix (`kafka.topic_prefix`, default `hazardwatch.v1`):

    {prefix}.telemetry        in   bridge records, keyed by hazard source (ingest/records.py)
    {prefix}.commands         in   acknowledgements from `alerts serve`, keyed by enterprise
    {prefix}.alarms           out  alarm, data-quality and flood events, keyed by enterprise
    {prefix}.risk             out  source and enterprise colour changes, keyed by enterprise
    {prefix}.alerts           out  every event, as `alerts serve` consumes it (alerting/kafka.py)
    {prefix}.source-changes   internal, keyed by enterprise (stream/runners/worker/feed.py)
    {prefix}.worker-engine_v1-changelog, {prefix}.worker-enterprise_v1-changelog
                              the faust tables' changelogs (compacted)

The faust app id (and consumer group) is `{prefix}.worker`. faust-streaming was seen to start only
with its topics already created on Kafka 3.9, so the worker creates them all before faust starts.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hazardwatch.errors import ConfigError
from hazardwatch.settings import Settings

log = logging.getLogger(__name__)

ENGINE_TABLE = "engine_v1"
ENTERPRISE_TABLE = "enterprise_v1"


@dataclass(frozen=True, slots=True)
class WorkerTopics:
    """The worker's topic names and faust app id, from the prefix."""

    prefix: str

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerTopics:
        """Names under `kafka.topic_prefix`."""
        return cls(settings.kafka.topic_prefix)

    @property
    def app_id(self) -> str:
        """faust app id = consumer group id."""
        return f"{self.prefix}.worker"

    @property
    def telemetry(self) -> str:
        """Bridge records."""
        return f"{self.prefix}.telemetry"

    @property
    def commands(self) -> str:
        """Acknowledgements from the alerting service."""
        return f"{self.prefix}.commands"

    @property
    def alarms(self) -> str:
        """Alarm, data-quality and flood events."""
        return f"{self.prefix}.alarms"

    @property
    def risk(self) -> str:
        """Colour changes."""
        return f"{self.prefix}.risk"

    @property
    def alerts(self) -> str:
        """Every event, for `alerts serve`."""
        return f"{self.prefix}.alerts"

    @property
    def source_changes(self) -> str:
        """Partition engines → enterprise merge."""
        return f"{self.prefix}.source-changes"

    def changelog(self, table: str) -> str:
        """faust's changelog topic name of `table`."""
        return f"{self.app_id}-{table}-changelog"

    def copartitioned(self) -> list[str]:
        """Topics whose partition p must mean the same hazard sources and enterprises."""
        return [self.telemetry, self.source_changes, self.changelog(ENGINE_TABLE),
                self.changelog(ENTERPRISE_TABLE)]  # fmt: skip

    def all(self) -> list[str]:
        """Every topic the worker reads or writes."""
        return [*self.copartitioned(), self.commands, self.alarms, self.risk, self.alerts]


async def ensure_topics(
    bootstrap: str, topics: WorkerTopics, partitions: int, replication: int
) -> list[str]:
    """Create the missing topics; ConfigError when a co-partitioned one has another partition
    count (hazard sources would be evaluated in the wrong partition). Returns those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"{topics.app_id}-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        compacted = {topics.changelog(ENGINE_TABLE), topics.changelog(ENTERPRISE_TABLE)}
        missing = [
            NewTopic(name, partitions, replication,
                     topic_configs={"cleanup.policy": "compact"} if name in compacted else {})
            for name in topics.all() if name not in existing
        ]  # fmt: skip
        if missing:
            await admin.create_topics(missing)
            log.info("created Kafka topics %s", [t.name for t in missing])
        counts = await _partition_counts(admin, topics.copartitioned())
        for name, count in counts.items():
            if count != partitions:
                raise ConfigError(
                    f"Kafka topic {name} has {count} partitions, settings "
                    f"kafka.partitions = {partitions}; they must match (hazard sources are "
                    "assigned to partitions by that number)"
                )
        return [t.name for t in missing]
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition count per topic, waiting (up to 30 s) for topics created a moment ago, by us
    or by a worker starting at the same time, to appear in the cluster metadata."""
    deadline = asyncio.get_running_loop().time() + 30.0
    while True:
        described = await admin.describe_topics(names)
        counts = {t["topic"]: len(t.get("partitions") or []) for t in described}
        if all(counts.get(n) for n in names) or asyncio.get_running_loop().time() > deadline:
            return {n: counts.get(n, 0) for n in names}
        await asyncio.sleep(0.2)
