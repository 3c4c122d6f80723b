"""Who may publish what: the plant's gateways, their enterprise and tags, in engine tag order.

Built once from a validated plant; the decoder looks every identity question up here. Tag
indexes follow `plant.resolved_tags()` order, the order the numpy engine uses for its arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hazardwatch.plant.model import Plant


@dataclass(frozen=True, slots=True)
class GatewayEntry:
    """A registered gateway: its enterprise, expected interval and carried tags → tag index."""

    id: str
    enterprise: str
    interval_s: float
    tag_index: dict[str, int]


@dataclass(frozen=True, slots=True)
class TagOwner:
    """Where a tag belongs: the gateway carrying it, its enterprise and hazard source."""

    gateway: str
    enterprise: str
    source: str


@dataclass(frozen=True, slots=True)
class GatewayDirectory:
    """Identity lookups for the decoder, the bridge and gateway status."""

    tag_ids: tuple[str, ...]  # index → tag id, plant.resolved_tags() order
    tag_sources: tuple[str, ...]  # index → hazard source id
    tag_intervals_s: tuple[float, ...]  # index → expected interval, seconds
    gateways: dict[str, GatewayEntry]
    owners: dict[str, TagOwner]

    @classmethod
    def from_plant(cls, plant: Plant) -> GatewayDirectory:
        """Index a validated plant (every tag carried by exactly one gateway of its enterprise)."""
        resolved = plant.resolved_tags()
        index = {tag.id: i for i, tag in enumerate(resolved)}
        gateways = {
            gw.id: GatewayEntry(
                id=gw.id,
                enterprise=gw.enterprise,
                interval_s=gw.interval_s,
                tag_index={tag: index[tag] for tag in gw.tags if tag in index},
            )
            for gw in plant.gateways
        }
        owners = {
            tag.id: TagOwner(gateway=tag.gateway, enterprise=tag.enterprise, source=tag.source)
            for tag in resolved
        }
        return cls(
            tag_ids=tuple(tag.id for tag in resolved),
            tag_sources=tuple(tag.source for tag in resolved),
            tag_intervals_s=tuple(tag.expected_interval_s for tag in resolved),
            gateways=gateways,
            owners=owners,
        )
