"""Which hazard sources live in which telemetry partition (pure).

The bridge produces telemetry keyed by hazard source with aiokafka's default partitioner
(murmur2 of the key, as Kafka's Java client), so every tag of a source is in one partition, in
order. The worker computes the same function to know, per partition, the sources it must
evaluate; enterprise-keyed topics use it too, so a partition number means the same thing on
every topic of the worker.
"""

from __future__ import annotations

from collections import defaultdict

from aiokafka.partitioner import murmur2

from hazardwatch.plant.model import Plant


def partition_of(key: str | bytes, partitions: int) -> int:
    """The partition aiokafka's (and Kafka's Java) default partitioner picks for `key`."""
    data = key.encode() if isinstance(key, str) else key
    return (int(murmur2(data)) & 0x7FFFFFFF) % partitions


def sources_by_partition(plant: Plant, partitions: int) -> dict[int, tuple[str, ...]]:
    """Hazard source ids per partition, in plant file order; partitions without sources absent."""
    out: dict[int, list[str]] = defaultdict(list)
    for source in plant.hazard_sources:
        out[partition_of(source.id, partitions)].append(source.id)
    return {p: tuple(ids) for p, ids in sorted(out.items())}


def sub_plant(plant: Plant, sources: tuple[str, ...]) -> Plant:
    """The plant restricted to `sources` (gateways and enterprises kept: the adapter only needs
    them to resolve the tags of these sources). Rules never span hazard sources (plant checks),
    so a sub-plant's engine sees everything its sources' alarms depend on."""
    keep = set(sources)
    return plant.model_copy(
        update={"hazard_sources": tuple(s for s in plant.hazard_sources if s.id in keep)}
    )
