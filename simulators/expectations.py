"""Check a scenario's `expect:` list against the events the engine produced (events.jsonl)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from simulators.scenario import Expectation, Scenario

_MATCH_FIELDS = ("source", "tag", "condition", "colour", "state")


def event_offset_s(event: Mapping[str, Any], scenario: Scenario) -> float:
    """Seconds after the scenario start of an event's `ts` (RFC 3339 or epoch ms)."""
    ts = event["ts"]
    if isinstance(ts, int | float):
        return ts / 1000.0 - scenario.start.timestamp()
    return datetime.fromisoformat(ts).timestamp() - scenario.start.timestamp()


def matches(event: Mapping[str, Any], expectation: Expectation) -> bool:
    """Whether one event is of the expected kind (type and every given field)."""
    if event.get("type") != expectation.type:
        return False
    if expectation.type == "risk" and event.get("level") == "enterprise":
        return False  # expectations name hazard sources; the enterprise roll-up repeats them
    return all(
        getattr(expectation, name) is None or event.get(name) == getattr(expectation, name)
        for name in _MATCH_FIELDS
    )


def first_match(
    events: Iterable[Mapping[str, Any]], expectation: Expectation, scenario: Scenario
) -> float | None:
    """Offset (s) of the first matching event inside the expectation's window, or None."""
    after = scenario.offset_s(expectation.after) if expectation.after is not None else None
    before = scenario.offset_s(expectation.before) if expectation.before is not None else None
    for event in events:
        if not matches(event, expectation):
            continue
        at = event_offset_s(event, scenario)
        if (after is None or at >= after) and (before is None or at <= before):
            return at
    return None


def failures(events: list[Mapping[str, Any]], scenario: Scenario) -> list[str]:
    """A readable line per unmet expectation; empty when the engine did what was expected."""
    out = []
    for exp in scenario.expect:
        at = first_match(events, exp, scenario)
        fields = ", ".join(
            f"{k}={v}"
            for k, v in exp.model_dump(exclude_none=True, exclude_defaults=True).items()
            if k != "note"
        )
        if exp.absent and at is not None:
            out.append(f"{scenario.name}: unexpected {fields} at +{at / 60:.1f} min")
        elif not exp.absent and at is None:
            out.append(f"{scenario.name}: missing {fields}")
    return out
