"""From an event to concrete deliveries: group key, life-cycle intents, routed targets.

Shared by the service (which enqueues the result) and `hazardwatch routes test` (which prints
it), so what the command shows is exactly what the service does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alerting.events import EngineEvent
from alerting.lifecycle import AlertBook, Intent
from alerting.policy import RoutingPolicy
from alerting.routing import EnterpriseArea, Target, event_labels, group_key, route_targets

AreaLookup = Callable[[str], EnterpriseArea]
"""Enterprise id → its area; raises KeyError for an unknown enterprise."""


@dataclass(frozen=True, slots=True)
class Planned:
    """One intent and the targets it reaches."""

    intent: Intent
    targets: tuple[Target, ...]


def event_group(policy: RoutingPolicy, event: EngineEvent, area: EnterpriseArea) -> str:
    """Group key: data quality per enterprise; otherwise the routing tree's `group_by` labels."""
    if event.type == "data_quality":
        return f"data_quality/{event.enterprise}"
    if event.type == "flood":
        return f"flood/{event.enterprise}"
    base = {"type": event.type, "source": event.source, "tag": event.tag}
    return group_key(policy, event_labels(area, base, None))


def targets_for(
    policy: RoutingPolicy, intent: Intent, area: EnterpriseArea, exclude: tuple[str, ...] = ()
) -> tuple[Target, ...]:
    """Route one intent to its recipients and channels."""
    labels = event_labels(area, intent.labels, intent.notice.colour)
    return route_targets(policy, labels, area, intent.tiers, exclude)


def plan_event(book: AlertBook, event: EngineEvent, area: EnterpriseArea) -> list[Planned]:
    """Apply `event` to `book` and route every resulting intent."""
    intents = book.apply(event, area, event_group(book.policy, event, area))
    return [Planned(i, targets_for(book.policy, i, area)) for i in intents]
