"""Enterprise colour and alarm flood, merged from the source changes of all partitions (pure).

The same rules as the engine's own enterprise step (stream/lifecycle.py `_enterprise`, `_flood_*`)
applied to the changes of every source of one enterprise, in time order:

- colour: on a source's colour change, the enterprise colour is the highest of its sources'
  colours; if it moved, a `risk` event at `level: enterprise` with the highest source severity;
- flood: every new alarm is counted in a sliding window; more than `flood_start_above` begins a
  flood, and when the window's timer finds fewer than `flood_end_below` it ends.

Changes arrive from several partitions in arrival order, not time order. They wait in `pending`
until the watermark (wall clock minus a grace period) passes them and are applied in
(ts, source in plant order, arrival) order, so the result does not depend on which partition
was read first; within one ms the engine, too, handles sources in plant order (a gateway lists
its tags so, and timers of one ms fire by plant index). A change
arriving after the watermark passed its time is applied at once and counted as `out_of_order`.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque

import orjson

from hazardwatch.types import RiskColour, Severity
from stream.events import Event, FloodEvent, RiskEvent
from stream.policy import EnginePolicy
from stream.runners.worker.feed import SourceChange

STATE_VERSION = 1
SEEN_IDS = 2048  # changes re-published after a failover come within this many of the original


class EnterpriseMerge:
    """The enterprise-level state of one enterprise; `add` changes, `release` up to a time."""

    def __init__(self, enterprise: str, sources: tuple[str, ...], policy: EnginePolicy) -> None:
        self.enterprise = enterprise
        self.policy = policy
        blue = int(RiskColour.BLUE)
        self.colours: dict[str, int] = dict.fromkeys(sources, blue)
        self.severities: dict[str, int] = dict.fromkeys(sources, 0)
        self.colour = blue
        self.flood_times: list[int] = []
        self.flood_timers: list[int] = []  # heap of deadlines (ms)
        self.flooding = False
        self._rank = {source: i for i, source in enumerate(sources)}
        # heap of (ts, source rank, arrival, change)
        self.pending: list[tuple[int, int, int, SourceChange]] = []
        self.arrivals = 0
        self.released_ms = -(2**62)
        self.out_of_order = 0
        self._seen: deque[str] = deque(maxlen=SEEN_IDS)
        self._seen_set: set[str] = set()

    # -- input ---------------------------------------------------------------------------------
    def add(self, change: SourceChange) -> bool:
        """Queue a change; False (and nothing queued) when its id was seen already."""
        if change.id in self._seen_set:
            return False
        if len(self._seen) == SEEN_IDS:
            self._seen_set.discard(self._seen[0])
        self._seen.append(change.id)
        self._seen_set.add(change.id)
        self._push(change)
        return True

    def _push(self, change: SourceChange) -> None:
        rank = self._rank.get(change.source or "", len(self._rank))
        heapq.heappush(self.pending, (change.ts_ms, rank, self.arrivals, change))
        self.arrivals += 1

    def due(self, watermark_ms: int) -> bool:
        """True when `release(watermark_ms)` has something to do."""
        return bool(
            (self.pending and self.pending[0][0] <= watermark_ms)
            or (self.flood_timers and self.flood_timers[0] <= watermark_ms)
        )

    def release(self, watermark_ms: int) -> list[Event]:
        """Apply every change and flood timer due by `watermark_ms`, in time order."""
        out: list[Event] = []
        while self.pending and self.pending[0][0] <= watermark_ms:
            ts, _, _, change = heapq.heappop(self.pending)
            if ts < self.released_ms:
                self.out_of_order += 1
            # A flood timer due at the very ms of an alarm fires after it, as in the engine, where
            # alarms activate on their on-delay timer (every quantity has one by default) and
            # on-delay timers precede flood timers of the same ms.
            self._fire_until(ts - 1, out)
            self._apply(change, out)
        self._fire_until(watermark_ms, out)
        self.released_ms = max(self.released_ms, watermark_ms)
        return out

    def roll_call(self, now_ms: int) -> list[RiskEvent]:
        """The enterprise's current colour as a risk event whose `previous` equals `colour`
        (the engine's `RiskEngine.roll_call` for the enterprise level), stamped `now_ms`."""
        colour = RiskColour(self.colour)
        severity = Severity(max(self.severities.values(), default=0))
        return [RiskEvent(ts_ms=now_ms, enterprise=self.enterprise, source=None,
                          level="enterprise", colour=colour, previous=colour, severity=severity,
                          escalated=False)]  # fmt: skip

    # -- rules ---------------------------------------------------------------------------------
    def _apply(self, change: SourceChange, out: list[Event]) -> None:
        if change.kind == "new_alarm":
            self._flood_new(change.ts_ms, out)
            return
        source = change.source or ""
        self.severities[source] = change.severity
        if change.kind == "severity":
            return
        self.colours[source] = change.colour
        colour = max(self.colours.values())
        if colour != self.colour:
            previous, self.colour = self.colour, colour
            out.append(
                RiskEvent(
                    ts_ms=change.ts_ms,
                    enterprise=self.enterprise,
                    source=None,
                    level="enterprise",
                    colour=RiskColour(colour),
                    previous=RiskColour(previous),
                    severity=Severity(max(self.severities.values())),
                    escalated=False,
                )
            )

    def _flood_new(self, now: int, out: list[Event]) -> None:
        p = self.policy
        bisect.insort(self.flood_times, now)
        heapq.heappush(self.flood_timers, now + p.flood_window_ms)
        self._purge(now)
        if not self.flooding and len(self.flood_times) > p.flood_start_above:
            self.flooding = True
            out.append(FloodEvent(now, self.enterprise, "begin", len(self.flood_times)))

    def _fire_until(self, now: int, out: list[Event]) -> None:
        while self.flood_timers and self.flood_timers[0] <= now:
            deadline = heapq.heappop(self.flood_timers)
            self._purge(deadline)
            if self.flooding and len(self.flood_times) < self.policy.flood_end_below:
                self.flooding = False
                out.append(FloodEvent(deadline, self.enterprise, "end", len(self.flood_times)))

    def _purge(self, now: int) -> None:
        horizon = now - self.policy.flood_window_ms
        drop = bisect.bisect_right(self.flood_times, horizon)
        del self.flood_times[:drop]

    # -- persistence -----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Versioned JSON of the whole state (a table row)."""
        return orjson.dumps(
            {
                "v": STATE_VERSION,
                "colours": self.colours,
                "severities": self.severities,
                "colour": self.colour,
                "flood_times": self.flood_times,
                "flood_timers": sorted(self.flood_timers),
                "flooding": self.flooding,
                "pending": [orjson.Fragment(c.to_json()) for *_, c in sorted(self.pending)],
                "released_ms": self.released_ms,
                "seen": list(self._seen),
            }
        )

    def restore(self, blob: bytes) -> None:
        """Load `to_bytes()` output; sources unknown to the current plant are dropped."""
        data = orjson.loads(blob)
        if data.get("v") != STATE_VERSION:
            raise ValueError(f"enterprise state version {data.get('v')}")
        for source, colour in data["colours"].items():
            if source in self.colours:
                self.colours[source] = int(colour)
        for source, severity in data["severities"].items():
            if source in self.severities:
                self.severities[source] = int(severity)
        self.colour = int(data["colour"])
        self.flood_times = [int(t) for t in data["flood_times"]]
        self.flood_timers = [int(t) for t in data["flood_timers"]]
        heapq.heapify(self.flood_timers)
        self.flooding = bool(data["flooding"])
        self.released_ms = int(data["released_ms"])
        for ident in data["seen"]:
            self._seen.append(ident)
            self._seen_set.add(ident)
        for raw in data["pending"]:
            self._push(SourceChange.from_json(orjson.dumps(raw)))
