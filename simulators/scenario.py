"""Scenario files: a plant, a start time, a seed and timed events (docs/scenarios.md).

A scenario YAML names its plant file (relative to the scenario), a `start` (RFC 3339 with
offset), a `duration`, a `seed`, optional `initial` parameter values per unit and a list of
`events`, each with `at` (`+3h`, `05:20`, seconds) and exactly one action:

- `set: {UNIT: {param: value}}` with optional `ramp` — change set-points;
- `pulse: {UNIT: {param: size}}` with `decay` — a decaying pulse (a blast-furnace slip);
- `release: {tags: {TAG: concentration}, rise, hold, fall}` — a gas release at detectors;
- `fault: {tag, kind, for, ...}` — a sensor fault (see `faults.SensorFault`);
- `gateway: {id, state: offline, for}` — a gateway goes offline (LWT) and comes back;
- `delivery: {gateway, kind, for, ...}` — MQTT delivery faults (duplicate, out_of_order,
  clock_skew, malformed).

`expect` lists what the risk engine should make of it; tests check it through `evaluate`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hazardwatch.errors import ConfigError
from simulators.timeparse import parse_duration, parse_offset

TimeSpec = str | float
Params = dict[str, dict[str, float]]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Release(_Frozen):
    """Gas reaching detectors: peak concentration per tag (tag unit), trapezoid in time."""

    tags: dict[str, float] = Field(min_length=1)
    rise: TimeSpec = "2m"
    hold: TimeSpec = "10m"
    fall: TimeSpec = "5m"


class FaultAction(_Frozen):
    """A sensor fault on one tag."""

    tag: str
    kind: Literal["stuck", "spikes", "drift", "offset", "out_of_range", "dropout", "bad_quality"]
    duration: TimeSpec | None = Field(default=None, alias="for")  # None = until the end
    size: float | None = None  # spikes: height; offset: bias (tag unit)
    rate_per_h: float | None = None  # spikes per hour; drift: tag unit per hour
    side: Literal["high", "low"] = "high"  # out_of_range


class GatewayAction(_Frozen):
    """A gateway goes offline (its LWT fires) for a while, then reconnects."""

    id: str
    state: Literal["offline"] = "offline"
    duration: TimeSpec = Field(alias="for")


class DeliveryAction(_Frozen):
    """MQTT delivery faults of one gateway for ingest tests."""

    gateway: str
    kind: Literal["duplicate", "out_of_order", "clock_skew", "malformed"]
    duration: TimeSpec | None = Field(default=None, alias="for")
    probability: Annotated[float, Field(ge=0, le=1)] = 0.2
    skew: TimeSpec = "90s"  # clock_skew: gateway clock ahead by this much
    negative: bool = False  # clock_skew: behind instead of ahead


class Event(_Frozen):
    """One timed action; exactly one of the action fields is given."""

    at: TimeSpec
    note: str = ""
    set: Params | None = None
    ramp: TimeSpec = 0.0
    pulse: Params | None = None
    decay: TimeSpec = "60s"
    release: Release | None = None
    fault: FaultAction | None = None
    gateway: GatewayAction | None = None
    delivery: DeliveryAction | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Event:
        given = [
            name
            for name in ("set", "pulse", "release", "fault", "gateway", "delivery")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "an event needs exactly one of set, pulse, release, fault, gateway, delivery "
                f"(got {', '.join(given) or 'none'})"
            )
        return self


class Expectation(_Frozen):
    """An event the engine should (or, with `absent`, should not) emit in a time window."""

    type: Literal["alarm", "risk", "flood", "data_quality"]
    source: str | None = None
    tag: str | None = None
    condition: str | None = None
    colour: Literal["blue", "yellow", "orange", "red"] | None = None
    state: str | None = None
    after: TimeSpec | None = None
    before: TimeSpec | None = None
    absent: bool = False
    note: str = ""


class Scenario(_Frozen):
    """A whole scenario file."""

    version: Literal[1] = 1
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    description: str = ""
    plant: str
    start: datetime
    duration: TimeSpec
    seed: int = 0
    initial: Params = Field(default_factory=dict)
    events: tuple[Event, ...] = ()
    expect: tuple[Expectation, ...] = ()

    @model_validator(mode="after")
    def _aware(self) -> Scenario:
        if self.start.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2005-12-10T19:00:00+00:00")
        parse_duration(self.duration)
        for event in self.events:
            parse_offset(event.at, self.start)
        return self

    @property
    def duration_s(self) -> float:
        """Length of the run in seconds."""
        return parse_duration(self.duration)

    def offset_s(self, at: TimeSpec) -> float:
        """Seconds after the start of a scenario time."""
        return parse_offset(at, self.start)

    @property
    def start_ms(self) -> int:
        """Start as epoch milliseconds."""
        return round(self.start.timestamp() * 1000)


def load_scenario(path: str | Path) -> tuple[Scenario, Path]:
    """Parse and validate a scenario file; returns it with its plant file's resolved path.

    Raises ConfigError naming the file and field on any problem.
    """
    path = Path(path)
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return scenario, (path.parent / scenario.plant).resolve()
