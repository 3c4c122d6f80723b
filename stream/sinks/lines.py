"""InfluxDB line protocol for the schema of docs/influx-schema.md (pure; no I/O).

Readings are the hot path: per tag, the measurement and tag set are escaped once into a prefix,
so a reading costs one string join. Events are rare and built one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from hazardwatch.plant.resolve import ResolvedTag
from hazardwatch.region import city_of, province_of
from stream.events import (
    AlarmEvent,
    DataQualityEvent,
    Event,
    FloodEvent,
    RiskEvent,
    event_id,
)

READING = "reading_v1"
ALARM = "alarm_v1"
RISK = "risk_v1"
DATA_QUALITY = "data_quality_v1"
FLOOD = "flood_v1"

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


def escape_tag(value: str) -> str:
    """Escape a tag key or value (commas, equals signs, spaces); empty becomes `-`."""
    return value.translate(_TAG_ESCAPES) if value else "-"


def escape_field_string(value: str) -> str:
    """Quote a string field value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tagset(pairs: Sequence[tuple[str, str]]) -> str:
    # Line protocol performs best with tag keys sorted; our keys are fixed per measurement.
    return ",".join(f"{k}={escape_tag(v)}" for k, v in sorted(pairs))


_LINE = "{}{!r},q={}i {}".format
_GOOD_LINE = "{}{!r},q=0i {}".format


class ReadingLines:
    """Builds `reading_v1` lines for a plant's tags, indexed like `plant.resolved_tags()`."""

    def __init__(self, tags: Sequence[ResolvedTag]) -> None:
        self._prefix = [
            f"{READING},"
            + _tagset(
                [
                    ("enterprise", t.enterprise),
                    ("source", t.source),
                    ("unit", t.unit),
                    ("tag", t.id),
                    ("quantity", str(t.quantity)),
                ]
            )
            + " v="
            for t in tags
        ]

    def lines(
        self,
        tag_index: npt.NDArray[np.int32],
        ts_ms: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
        quality: npt.NDArray[np.int8],
    ) -> list[str]:
        """One line per finite reading (InfluxDB cannot store NaN/inf; the engine reports those
        as sensor faults, so they are not lost)."""
        finite = np.isfinite(value)
        if not finite.all():
            tag_index, ts_ms, value, quality = (
                tag_index[finite], ts_ms[finite], value[finite], quality[finite]
            )  # fmt: skip
        prefixes = map(self._prefix.__getitem__, tag_index.tolist())
        # `map` over a bound `str.format` keeps the per-line work in C (a third faster than a
        # comprehension of f-strings); nearly every reading is of good quality.
        if not quality.any():
            return list(map(_GOOD_LINE, prefixes, value.tolist(), ts_ms.tolist()))
        return list(map(_LINE, prefixes, value.tolist(), quality.tolist(), ts_ms.tolist()))


class EventLines:
    """Builds alarm, risk, data-quality and flood lines; needs each enterprise's region code."""

    def __init__(self, enterprise_regions: dict[str, str]) -> None:
        self._regions = enterprise_regions

    def line(self, event: Event) -> str:
        """The line of one engine event."""
        eid = escape_field_string(event_id(event))
        if isinstance(event, AlarmEvent):
            tags = _tagset(
                [
                    ("enterprise", event.enterprise),
                    ("source", event.source),
                    ("unit", event.unit),
                    ("tag", event.tag),
                    ("condition", event.condition),
                ]
            )
            active = 0 if event.state.value in ("normal", "rtn_unacknowledged") else 1
            fields = (
                f"state={escape_field_string(event.state.value)},active={active}i,"
                f"severity={int(event.severity)}i,event_id={eid}"
            )
            return f"{ALARM},{tags} {fields} {event.ts_ms}"
        if isinstance(event, RiskEvent):
            return self._risk(event, f",event_id={eid}")
        if isinstance(event, DataQualityEvent):
            tags = _tagset(
                [
                    ("enterprise", event.enterprise),
                    ("source", event.source),
                    ("tag", event.tag),
                    ("condition", event.condition),
                ]
            )
            active = 1 if event.state == "active" else 0
            return f"{DATA_QUALITY},{tags} active={active}i,event_id={eid} {event.ts_ms}"
        if isinstance(event, FloodEvent):
            tags = _tagset([("enterprise", event.enterprise)])
            active = 1 if event.state == "begin" else 0
            fields = f"active={active}i,count={event.count}i,event_id={eid}"
            return f"{FLOOD},{tags} {fields} {event.ts_ms}"
        raise TypeError(f"not an engine event: {event!r}")

    def roll_call(self, calls: Sequence[RiskEvent]) -> list[str]:
        """`risk_v1` points of a roll call (`RiskEngine.roll_call`): `previous` equals `colour`
        and there is no `event_id`, since nothing changed."""
        return [self._risk(call, "") for call in calls]

    def _risk(self, event: RiskEvent, extra: str) -> str:
        county = self._regions.get(event.enterprise, "")
        tags = _tagset(
            [
                ("level", event.level),
                ("enterprise", event.enterprise),
                ("source", event.source or ""),
                ("county", county),
                ("city", city_of(county) if county else ""),
                ("province", province_of(county) if county else ""),
            ]
        )
        fields = (
            f"colour={int(event.colour)}i,colour_name={escape_field_string(event.colour.label)},"
            f"previous={int(event.previous)}i,severity={int(event.severity)}i{extra}"
        )
        return f"{RISK},{tags} {fields} {event.ts_ms}"


GATEWAY = "gateway_v1"


def gateway_line(enterprise: str, gateway: str, online: bool, ts_ms: int) -> str:
    """A `gateway_v1` status point (online 1 / offline 0)."""
    tags = _tagset([("enterprise", enterprise), ("gateway", gateway)])
    return f"{GATEWAY},{tags} online={int(online)}i {ts_ms}"
