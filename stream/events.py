"""Events the risk engine emits, and their JSON form (one object per line in events.jsonl).

Every event has `id` (deterministic: a hash of its content, so downstream can be idempotent),
`ts` (RFC 3339, UTC, millisecond precision, with offset), `type`, `enterprise` and `source`
(null where no hazard source applies). See docs/events.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson

from hazardwatch.event_id import with_event_id
from hazardwatch.types import AlarmState, RiskColour, Severity

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_ts(ts_ms: int) -> str:
    """Epoch milliseconds → RFC 3339 UTC string, e.g. `2024-05-01T03:00:00.000+00:00`."""
    seconds, millis = divmod(ts_ms, 1000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}+00:00"


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """An ISA-18.2 state change of one alarm (tag + condition); `severity` is the alarm's own."""

    type: ClassVar[str] = "alarm"
    ts_ms: int
    enterprise: str
    source: str
    unit: str
    tag: str
    condition: str
    state: AlarmState
    severity: Severity
    chattering: bool = False  # this activation is the Nth within the chattering window

    def fields(self) -> dict[str, Any]:
        """Type-specific JSON fields."""
        return {
            "unit": self.unit,
            "tag": self.tag,
            "condition": self.condition,
            "state": self.state.value,
            "severity": self.severity.name,
            "chattering": self.chattering,
        }


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """A colour change of a hazard source (`level` source) or an enterprise (`level` enterprise)."""

    type: ClassVar[str] = "risk"
    ts_ms: int
    enterprise: str
    source: str | None
    level: Literal["source", "enterprise"]
    colour: RiskColour
    previous: RiskColour
    severity: Severity  # highest unit severity behind the colour
    escalated: bool  # the colour was raised one step by time (unacknowledged warning)

    def fields(self) -> dict[str, Any]:
        """Type-specific JSON fields."""
        return {
            "level": self.level,
            "colour": self.colour.label,
            "previous": self.previous.label,
            "severity": self.severity.name,
            "escalated": self.escalated,
        }


@dataclass(frozen=True, slots=True)
class FloodEvent:
    """Alarm flood at one enterprise begins (> N new alarms in the window) or ends."""

    type: ClassVar[str] = "flood"
    ts_ms: int
    enterprise: str
    state: Literal["begin", "end"]
    count: int  # new alarms within the window at this moment

    @property
    def source(self) -> None:
        """Floods belong to an enterprise, not to a hazard source."""
        return None

    def fields(self) -> dict[str, Any]:
        """Type-specific JSON fields."""
        return {"state": self.state, "count": self.count}


@dataclass(frozen=True, slots=True)
class DataQualityEvent:
    """Data-quality channel: a tag goes `stale`, reports a `fault` or a `frozen` value, or
    recovers (`state` active / normal). Not a hazard colour (DOMAIN.md §6)."""

    type: ClassVar[str] = "data_quality"
    ts_ms: int
    enterprise: str
    source: str
    unit: str
    tag: str
    condition: Literal["stale", "fault", "frozen"]
    state: Literal["active", "normal"]

    def fields(self) -> dict[str, Any]:
        """Type-specific JSON fields."""
        return {"unit": self.unit, "tag": self.tag, "condition": self.condition,
                "state": self.state}  # fmt: skip


Event = AlarmEvent | RiskEvent | FloodEvent | DataQualityEvent


def event_to_dict(event: Event) -> dict[str, Any]:
    """The JSON object of an event, including its deterministic `id`."""
    body: dict[str, Any] = {
        "ts": format_ts(event.ts_ms),
        "type": event.type,
        "enterprise": event.enterprise,
        "source": event.source,
    }
    body.update(event.fields())
    return with_event_id(body)


def event_id(event: Event) -> str:
    """Deterministic id of an event: 24 hex digits of a BLAKE2b hash of its content."""
    return str(event_to_dict(event)["id"])


def event_to_json(event: Event) -> bytes:
    """One events.jsonl line (without the newline)."""
    return orjson.dumps(event_to_dict(event))


_TS = {"type": "string", "format": "date-time", "description": "RFC 3339 UTC with offset"}
_COLOURS = [c.label for c in RiskColour]
_SEVERITIES = [s.name for s in Severity]


def _object(type_name: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    common: dict[str, Any] = {
        "id": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
        "ts": _TS,
        "type": {"const": type_name},
        "enterprise": {"type": "string"},
        "source": {"type": ["string", "null"]},
    }
    return {
        "type": "object",
        "title": type_name,
        "properties": {**common, **props},
        "required": ["id", "ts", "type", "enterprise", "source", *required],
        "additionalProperties": False,
    }


def events_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one events.jsonl line."""
    tagged = {"unit": {"type": "string"}, "tag": {"type": "string"}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://hazardwatch.example/schemas/events.json",
        "title": "hazardwatch event",
        "oneOf": [
            _object(
                "alarm",
                {
                    **tagged,
                    "condition": {"type": "string"},
                    "state": {"enum": [s.value for s in AlarmState]},
                    "severity": {"enum": _SEVERITIES[1:3]},
                    "chattering": {"type": "boolean"},
                },
                ["unit", "tag", "condition", "state", "severity", "chattering"],
            ),
            _object(
                "risk",
                {
                    "level": {"enum": ["source", "enterprise"]},
                    "colour": {"enum": _COLOURS},
                    "previous": {"enum": _COLOURS},
                    "severity": {"enum": _SEVERITIES},
                    "escalated": {"type": "boolean"},
                },
                ["level", "colour", "previous", "severity", "escalated"],
            ),
            _object(
                "flood",
                {"state": {"enum": ["begin", "end"]}, "count": {"type": "integer"}},
                ["state", "count"],
            ),
            _object(
                "data_quality",
                {
                    **tagged,
                    "condition": {"enum": ["stale", "fault", "frozen"]},
                    "state": {"enum": ["active", "normal"]},
                },
                ["unit", "tag", "condition", "state"],
            ),
        ],
    }


json_schema = events_json_schema  # the name `hazardwatch schema events` looks up
