"""`hazardwatch routes test --policy Y --event JSON`: who receives an event, how, by when.

The event is JSON text or `@file`. The enterprise's region comes from `--plant` (the enterprise's
`region`) or, without a plant, from `--region CODE`. Output is a table, or JSON with `--json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alerting.events import EventRejectedError, parse_event
from alerting.lifecycle import AlertBook
from alerting.messages import beijing_time
from alerting.planner import plan_event
from alerting.policy import RoutingPolicy, load_routing
from alerting.routing import EnterpriseArea
from hazardwatch.commands import config_failure
from hazardwatch.plant.loader import ConfigFileError, load_plant


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`test` sub-action with the policy, the event and where the enterprise sits."""
    parser.add_argument("action", choices=["test"], help="the only action: test")
    parser.add_argument("--policy", required=True, help="policy YAML with a routing: section")
    parser.add_argument("--event", required=True, help="event JSON, or @FILE")
    parser.add_argument("--plant", help="plant YAML (gives the enterprise's region and names)")
    parser.add_argument("--region", help="county-level region code when no plant is given")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _area(args: argparse.Namespace, enterprise: str) -> tuple[EnterpriseArea, dict[str, str]]:
    if args.plant:
        plant = load_plant(args.plant)
        found = plant.enterprise(enterprise)
        names = {e.id: e.name for e in plant.enterprises}
        names.update({s.id: s.name for s in plant.hazard_sources})
        area = EnterpriseArea(found.id, found.name, found.region, found.industry.value)
        return area, names
    if not args.region:
        raise KeyError(f"enterprise {enterprise!r}: give --plant or --region")
    return EnterpriseArea(enterprise, enterprise, args.region), {}


def _address(policy: RoutingPolicy, recipient: str, index: int) -> str:
    channel = policy.recipient(recipient).channels[index]
    if channel.type == "sms":
        return f"{channel.phone} via {channel.provider}"
    return channel.url


def run(args: argparse.Namespace) -> int:
    """Print the deliveries; exit 1 on a bad policy, plant or event."""
    try:
        policy = load_routing(args.policy)
        text = Path(args.event[1:]).read_text("utf-8") if args.event.startswith("@") else args.event
        event = parse_event(text)
        area, names = _area(args, event.enterprise)
    except (ConfigFileError, EventRejectedError, KeyError, OSError) as exc:
        return config_failure("routes test", exc)
    rows = []
    for planned in plan_event(AlertBook(policy, names), event, area):
        notice = planned.intent.notice
        for target in planned.targets:
            rows.append(
                {
                    "kind": notice.kind,
                    "colour": notice.colour.label if notice.colour else None,
                    "tier": target.tier.label,
                    "recipient": target.recipient,
                    "channel": target.channel_type,
                    "address": _address(policy, target.recipient, target.channel),
                    "ack_by": beijing_time(notice.ack_due_ms) if notice.ack_due_ms else None,
                    "feedback_by": (
                        beijing_time(notice.feedback_due_ms) if notice.feedback_due_ms else None
                    ),
                    "tiers": [t.label for t in planned.intent.tiers],
                }
            )
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("nobody: the event raises no notification (or no recipient matches)")
        return 0
    print(f"{'kind':<10} {'colour':<7} {'tier':<10} {'recipient':<24} {'channel':<17} "
          f"{'ack by (CST)':<12} {'feedback by':<12} address")  # fmt: skip
    for r in rows:
        print(f"{r['kind']:<10} {r['colour'] or '-':<7} {r['tier']:<10} {r['recipient']:<24} "
              f"{r['channel']:<17} {r['ack_by'] or '-':<12} {r['feedback_by'] or '-':<12} "
              f"{r['address']}")  # fmt: skip
    return 0
