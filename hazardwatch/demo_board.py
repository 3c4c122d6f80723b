"""The demo's live board: every hazard source with its colour, active alarms and the last alerts.

`Board` is fed by a pipeline listener (`on_events`, engine events, any thread) and by the demo's
webhook receiver (`on_alert`, notices as JSON mappings); `render()` builds a rich renderable and
`summary()` plain text for a non-terminal, both from a consistent copy of the state. No I/O here:
tests drive it with events and read what it would show.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group as RenderGroup
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from hazardwatch.plant.model import Plant
from hazardwatch.types import AlarmState, RiskColour
from stream.events import AlarmEvent, Event, FloodEvent, RiskEvent, format_ts

STYLE = {
    RiskColour.BLUE: "bold white on blue",
    RiskColour.YELLOW: "bold black on yellow",
    RiskColour.ORANGE: "bold black on dark_orange",
    RiskColour.RED: "bold white on red",
}
ACTIVE_STATES = {AlarmState.UNACKED, AlarmState.ACKED}
LAST_ALERTS = 8


@dataclass
class SourceRow:
    """One hazard source on the board."""

    id: str
    name: str
    enterprise: str
    colour: RiskColour = RiskColour.BLUE
    peak: RiskColour = RiskColour.BLUE  # the worst colour seen this run
    since_ms: int | None = None


@dataclass(frozen=True)
class AlertRow:
    """One notification that reached the demo's webhook receiver."""

    ts_ms: int
    kind: str
    tier: str
    colour: str
    source: str
    detail: str


@dataclass
class BoardState:
    """A copy of what the board shows at one moment."""

    sources: list[SourceRow]
    alarms: list[AlarmEvent]
    alerts: list[AlertRow]
    alerts_total: int
    flooding: list[str]
    events: int
    clock_ms: int | None
    counters: dict[str, Any] = field(default_factory=dict)


class Board:
    """Thread-safe board state built from engine events and received alerts."""

    def __init__(self, plant: Plant, title: str = "hazardwatch demo") -> None:
        self.title = title
        self._lock = threading.Lock()
        self._sources = {s.id: SourceRow(s.id, s.name, s.enterprise) for s in plant.hazard_sources}
        self._alarms: dict[tuple[str, str], AlarmEvent] = {}
        self._alerts: deque[AlertRow] = deque(maxlen=LAST_ALERTS)
        self._alerts_total = 0
        self._flooding: set[str] = set()
        self._events = 0
        self._clock_ms: int | None = None

    # -- feeds ---------------------------------------------------------------------------------
    def on_events(self, events: Sequence[Event]) -> None:
        """Pipeline listener: apply engine events in order."""
        with self._lock:
            for event in events:
                self._events += 1
                self._clock_ms = max(self._clock_ms or event.ts_ms, event.ts_ms)
                if isinstance(event, RiskEvent) and event.level == "source" and event.source:
                    row = self._sources.get(event.source)
                    if row is not None:
                        row.colour = event.colour
                        row.peak = max(row.peak, event.colour)
                        row.since_ms = event.ts_ms
                elif isinstance(event, AlarmEvent):
                    key = (event.tag, event.condition)
                    if event.state in ACTIVE_STATES:
                        self._alarms[key] = event
                    else:
                        self._alarms.pop(key, None)
                elif isinstance(event, FloodEvent):
                    if event.state == "begin":
                        self._flooding.add(event.enterprise)
                    else:
                        self._flooding.discard(event.enterprise)

    def observe_clock(self, clock_ms: int | None) -> None:
        """The plant's clock (the engine's, which readings move even without events)."""
        if clock_ms is not None:
            with self._lock:
                self._clock_ms = max(self._clock_ms or clock_ms, clock_ms)

    def on_alert(self, notice: Mapping[str, Any]) -> None:
        """A notice that reached a recipient (the webhook body)."""
        source = str(notice.get("source_name") or notice.get("source") or notice.get("enterprise"))
        tier = notice.get("tier")
        row = AlertRow(
            ts_ms=int(notice.get("ts_ms") or 0),
            kind=str(notice.get("kind", "")),
            tier=str(tier) if tier is not None else "",
            colour=str(notice.get("colour") or ""),
            source=source,
            detail=str(notice.get("detail") or ""),
        )
        with self._lock:
            self._alerts.appendleft(row)
            self._alerts_total += 1

    # -- views ---------------------------------------------------------------------------------
    def state(self, counters: Mapping[str, Any] | None = None) -> BoardState:
        """A consistent copy of the board."""
        with self._lock:
            return BoardState(
                sources=[SourceRow(**vars(r)) for r in self._sources.values()],
                alarms=sorted(self._alarms.values(), key=lambda a: (-a.severity, a.ts_ms)),
                alerts=list(self._alerts),
                alerts_total=self._alerts_total,
                flooding=sorted(self._flooding),
                events=self._events,
                clock_ms=self._clock_ms,
                counters=dict(counters or {}),
            )

    def render(self, counters: Mapping[str, Any] | None = None) -> RenderableType:
        """The board as rich tables (colours as coloured cells)."""
        s = self.state(counters)
        head = Text(self.title, style="bold")
        if s.clock_ms is not None:
            head.append(f"   plant time {format_ts(s.clock_ms)[:19]} UTC")
        if s.counters:
            head.append("   " + "  ".join(f"{k} {v}" for k, v in s.counters.items()))
        sources = Table(title="Hazard sources", expand=True)
        for column in ("colour", "peak", "source", "enterprise", "since"):
            sources.add_column(column)
        for row in s.sources:
            sources.add_row(
                Text(f" {row.colour.label} ", style=STYLE[row.colour]),
                Text(f" {row.peak.label} ", style=STYLE[row.peak]),
                f"{row.name} ({row.id})",
                row.enterprise,
                format_ts(row.since_ms)[11:19] if row.since_ms is not None else "",
            )
        alarms = Table(title=f"Active alarms ({len(s.alarms)})", expand=True)
        for column in ("tag", "condition", "state", "severity", "since"):
            alarms.add_column(column)
        for alarm in s.alarms[:12]:
            alarms.add_row(alarm.tag, alarm.condition, alarm.state.value, alarm.severity.name,
                           format_ts(alarm.ts_ms)[11:19])  # fmt: skip
        alerts = Table(title=f"Last alerts ({s.alerts_total} received)", expand=True)
        for column in ("time", "kind", "tier", "colour", "source"):
            alerts.add_column(column)
        for alert in s.alerts:
            style = _colour_style(alert.colour)
            alerts.add_row(format_ts(alert.ts_ms)[11:19], alert.kind, alert.tier,
                           Text(alert.colour, style=style), alert.source)  # fmt: skip
        parts: list[RenderableType] = [head, sources, alarms, alerts]
        if s.flooding:
            parts.insert(1, Text(f"ALARM FLOOD at {', '.join(s.flooding)}", style="bold red"))
        return RenderGroup(*parts)

    def summary(self, counters: Mapping[str, Any] | None = None, full: bool = False) -> str:
        """Plain text: one line, or with `full` every source, alarm and recent alert."""
        s = self.state(counters)
        worst = max((r.colour for r in s.sources), default=RiskColour.BLUE)
        peak = max((r.peak for r in s.sources), default=RiskColour.BLUE)
        clock = format_ts(s.clock_ms)[:19] if s.clock_ms is not None else "-"
        head = (
            f"plant time {clock}  worst colour now {worst.label} (peak {peak.label})  "
            f"active alarms {len(s.alarms)}  alerts {s.alerts_total}  events {s.events}"
        )
        if s.counters:
            head += "  " + "  ".join(f"{k} {v}" for k, v in s.counters.items())
        if not full:
            return head
        lines = [head, "hazard sources:"]
        lines += [
            f"  {r.colour.label:<6} (peak {r.peak.label:<6}) {r.id} {r.name}" for r in s.sources
        ]
        lines.append(f"active alarms ({len(s.alarms)}):")
        lines += [
            f"  {a.tag} {a.condition} {a.state.value} {a.severity.name} since "
            f"{format_ts(a.ts_ms)[:19]}"
            for a in s.alarms
        ]
        lines.append(f"last alerts ({s.alerts_total} received):")
        lines += [
            f"  {format_ts(a.ts_ms)[:19]} {a.kind} tier {a.tier or '-'} {a.colour or '-'} "
            f"{a.source}"
            for a in s.alerts
        ]
        if s.flooding:
            lines.append(f"alarm flood at {', '.join(s.flooding)}")
        return "\n".join(lines)


def _colour_style(name: str) -> str:
    try:
        return STYLE[RiskColour.parse(name)]
    except ValueError:
        return ""
