"""Engine events as the alerting core sees them: plain mappings validated into `EngineEvent`.

The risk engine writes JSON events (DESIGN.md, docs/events.md) with `id`, `ts`, `type`
(`alarm`, `risk`, `flood`, `data_quality`), `enterprise`, `source` and per type:
alarm → `unit` (the equipment), `tag`, `condition`, `state`, `severity` (optionally `value` and
`value_unit`, the engineering unit); risk → `level` (`source`/`enterprise`), `colour`,
`previous`; flood → `state` (`begin`/`end`), `count`; data_quality → `unit`, `tag`, `condition`
(`stale`, `fault`, `frozen`), `state` (`active`/`normal`), optionally `offline_s`.
Alerting reads only these keys, so it never depends on the engine's classes. A bad event raises
`EventRejectedError` with a machine-readable reason; the caller counts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from hazardwatch.errors import HazardwatchError
from hazardwatch.types import RiskColour, Severity

EVENT_TYPES = ("alarm", "risk", "flood", "data_quality")


class EventRejectedError(HazardwatchError):
    """An event alerting cannot use; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """One engine event; `ts_ms` epoch milliseconds UTC; absent fields are None."""

    id: str
    ts_ms: int
    type: str
    enterprise: str
    source: str | None = None
    tag: str | None = None
    condition: str | None = None
    state: str | None = None
    severity: Severity | None = None
    colour: RiskColour | None = None
    previous: RiskColour | None = None
    value: float | None = None
    value_unit: str | None = None
    equipment: str | None = None
    level: str | None = None
    gateway: str | None = None
    offline_s: float | None = None
    count: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)


def parse_ts(value: object) -> int:
    """RFC 3339 with offset, or epoch milliseconds, to epoch ms; EventRejectedError otherwise."""
    if isinstance(value, bool):
        raise EventRejectedError("bad_ts", repr(value))
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise EventRejectedError("bad_ts", value) from exc
        if moment.tzinfo is None:
            raise EventRejectedError("bad_ts", f"{value} has no UTC offset")
        return int(moment.timestamp() * 1000)
    raise EventRejectedError("bad_ts", repr(value))


def _text(data: Mapping[str, Any], key: str, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise EventRejectedError(f"missing_{key}", f"event has no {key!r}")
        return None
    if not isinstance(value, str) or not value:
        raise EventRejectedError(f"bad_{key}", repr(value))
    return value


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventRejectedError(f"bad_{key}", repr(value))
    return float(value)


def _colour(data: Mapping[str, Any], key: str) -> RiskColour | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return RiskColour(value)
        if isinstance(value, str):
            return RiskColour.parse(value)
    except ValueError:
        pass
    raise EventRejectedError(f"bad_{key}", repr(value))


def _severity(data: Mapping[str, Any]) -> Severity | None:
    value = data.get("severity")
    if value is None:
        return None
    if isinstance(value, str) and value.upper() in Severity.__members__:
        return Severity[value.upper()]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
        return Severity(value)
    raise EventRejectedError("bad_severity", repr(value))


def parse_event(data: Mapping[str, Any] | bytes | str) -> EngineEvent:
    """Validate one engine event (mapping or JSON text); raises EventRejectedError with a reason."""
    if isinstance(data, bytes | str):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EventRejectedError("bad_json", str(exc)) from exc
    if not isinstance(data, Mapping):
        raise EventRejectedError("not_an_object", type(data).__name__)
    kind = _text(data, "type", required=True)
    if kind not in EVENT_TYPES:
        raise EventRejectedError("unknown_type", repr(kind))
    if "ts" not in data:
        raise EventRejectedError("missing_ts", "event has no 'ts'")
    event = EngineEvent(
        id=str(_text(data, "id", required=True)),
        ts_ms=parse_ts(data["ts"]),
        type=str(kind),
        enterprise=str(_text(data, "enterprise", required=True)),
        source=_text(data, "source"),
        tag=_text(data, "tag"),
        condition=_text(data, "condition"),
        state=_text(data, "state"),
        severity=_severity(data),
        colour=_colour(data, "colour"),
        previous=_colour(data, "previous"),
        value=_number(data, "value"),
        value_unit=_text(data, "value_unit"),
        equipment=_text(data, "unit"),
        level=_text(data, "level"),
        gateway=_text(data, "gateway"),
        offline_s=_number(data, "offline_s"),
        count=None if data.get("count") is None else int(_number(data, "count") or 0),
        raw=dict(data),
    )
    if event.type == "risk" and event.colour is None:
        raise EventRejectedError("missing_colour", "risk event has no 'colour'")
    if event.type == "alarm" and (event.tag is None or event.state is None):
        raise EventRejectedError("missing_tag_or_state", "alarm event needs 'tag' and 'state'")
    return event
