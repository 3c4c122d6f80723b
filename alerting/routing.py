"""Routing: a pure function from an event's labels and its enterprise's area to deliveries.

Two steps, as DOMAIN.md §6 and Alertmanager's routing tree suggest:

1. the colour gives the tiers (blue → enterprise … red → + province; escalation may add more);
2. the tree picks recipients: a node matches when all its matchers match; its children are tried
   in order, the first match wins unless that child says `continue: true`; when no child
   matches, the node itself is the result. Recipients and channel filters are inherited.

A recipient receives the event only when its tier is among the tiers and its `area` is the
enterprise's area at that tier (enterprise id, county, city or province code).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alerting.policy import Route, RoutingPolicy
from hazardwatch.region import city_of, province_of
from hazardwatch.types import RiskColour, Tier

DEFAULT_GROUP_BY = ("enterprise", "source")


@dataclass(frozen=True, slots=True)
class EnterpriseArea:
    """Where an enterprise sits: its county-level region and the city and province above."""

    enterprise: str
    name: str
    county: str
    industry: str = ""

    @property
    def city(self) -> str:
        """City code, e.g. `410100`."""
        return city_of(self.county)

    @property
    def province(self) -> str:
        """Province code, e.g. `410000`."""
        return province_of(self.county)

    def code_at(self, tier: Tier) -> str:
        """The area key a recipient of `tier` must carry to receive this enterprise's alerts."""
        return {
            Tier.ENTERPRISE: self.enterprise,
            Tier.COUNTY: self.county,
            Tier.CITY: self.city,
            Tier.PROVINCE: self.province,
        }[tier]


@dataclass(frozen=True, slots=True)
class Target:
    """One delivery: recipient, its tier, and which of its channels (index and type)."""

    recipient: str
    tier: Tier
    channel: int
    channel_type: str


@dataclass(frozen=True, slots=True)
class _Resolved:
    recipients: tuple[str, ...]
    channels: tuple[str, ...] | None
    group_by: tuple[str, ...]


def tiers_for(policy: RoutingPolicy, colour: RiskColour) -> tuple[Tier, ...]:
    """Tiers a warning of `colour` is pushed to (DOMAIN.md §6 unless the policy says otherwise)."""
    return tuple(sorted(policy.tiers[colour]))


def next_tier(tier: Tier) -> Tier | None:
    """The tier above (enterprise → county → city → province); None above province."""
    return Tier(tier + 1) if tier < Tier.PROVINCE else None


def event_labels(
    area: EnterpriseArea, base: Mapping[str, str | None], colour: RiskColour | None
) -> dict[str, str]:
    """Labels the matchers see: the event's fields plus region, city, province and industry."""
    labels = {k: v for k, v in base.items() if v is not None}
    labels.update(
        enterprise=area.enterprise,
        county=area.county,
        city=area.city,
        province=area.province,
        industry=area.industry,
    )
    if colour is not None:
        labels["colour"] = colour.label
    return labels


def _walk(route: Route, labels: Mapping[str, str], parent: _Resolved) -> list[_Resolved]:
    if not all(m.matches(labels) for m in route.parsed_matchers()):
        return []
    here = _Resolved(
        recipients=route.recipients if route.recipients is not None else parent.recipients,
        channels=route.channels if route.channels is not None else parent.channels,
        group_by=route.group_by if route.group_by is not None else parent.group_by,
    )
    found: list[_Resolved] = []
    for child in route.routes:
        matched = _walk(child, labels, here)
        if matched:
            found.extend(matched)
            if not child.continue_:
                break
    return found or [here]


def matching_routes(policy: RoutingPolicy, labels: Mapping[str, str]) -> list[_Resolved]:
    """The tree nodes an event ends at; the root always matches (its matchers are ignored)."""
    root = policy.route.model_copy(update={"matchers": ()})
    return _walk(root, labels, _Resolved(("*",), None, DEFAULT_GROUP_BY))


def group_key(policy: RoutingPolicy, labels: Mapping[str, str]) -> str:
    """Grouping key of an event: values of the first matching node's `group_by` labels."""
    group_by = matching_routes(policy, labels)[0].group_by
    return "/".join(f"{name}={labels.get(name, '')}" for name in group_by)


def route_targets(
    policy: RoutingPolicy,
    labels: Mapping[str, str],
    area: EnterpriseArea,
    tiers: Iterable[Tier],
    exclude: Iterable[str] = (),
) -> tuple[Target, ...]:
    """Every (recipient, channel) that receives an event at `tiers`; stable order, no duplicates."""
    wanted = set(tiers)
    skip = set(exclude)
    out: dict[tuple[str, int], Target] = {}
    for node in matching_routes(policy, labels):
        everyone = "*" in node.recipients
        for recipient in policy.recipients:
            if recipient.id in skip or recipient.tier not in wanted:
                continue
            if not everyone and recipient.id not in node.recipients:
                continue
            if recipient.area != area.code_at(recipient.tier):
                continue
            for index, channel in enumerate(recipient.channels):
                if node.channels is not None and channel.type not in node.channels:
                    continue
                out.setdefault(
                    (recipient.id, index), Target(recipient.id, recipient.tier, index, channel.type)
                )
    return tuple(sorted(out.values(), key=lambda t: (t.tier, t.recipient, t.channel)))
