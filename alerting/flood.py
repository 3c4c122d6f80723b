"""Flood control (DOMAIN.md §4, §6): > 10 new alarms in 10 min at one enterprise → one incident.

`FloodGate.admit(enterprise, ts_ms)` counts a new alarm notice and says whether to send it, and
whether a flood started (send one grouped incident notification instead) or ended (below
`end_below` in the window; send a summary with the number of alarms held back). The engine may
also announce floods with `flood` events; `force` keeps the gate in step with it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FloodVerdict:
    """What to do with one alarm notice."""

    send: bool
    started: bool = False
    ended: bool = False
    held: int = 0  # alarms grouped into the incident when it ends


@dataclass(slots=True)
class _Enterprise:
    times: deque[int] = field(default_factory=deque)
    flooding: bool = False
    held: int = 0
    forced: bool = False  # the engine announced this flood; only its `end` event ends it


class FloodGate:
    """Per-enterprise sliding-window count of new alarms with start/end hysteresis."""

    def __init__(self, start_above: int = 10, end_below: int = 5, window_s: float = 600.0) -> None:
        self.start_above = start_above
        self.end_below = end_below
        self.window_ms = int(window_s * 1000)
        self._state: dict[str, _Enterprise] = {}

    def _trim(self, state: _Enterprise, ts_ms: int) -> None:
        while state.times and state.times[0] <= ts_ms - self.window_ms:
            state.times.popleft()

    def admit(self, enterprise: str, ts_ms: int) -> FloodVerdict:
        """Count one new alarm at `ts_ms` (epoch ms) and decide; time must not run backwards."""
        state = self._state.setdefault(enterprise, _Enterprise())
        self._trim(state, ts_ms)
        ended = False
        held = 0
        if state.flooding and not state.forced and len(state.times) < self.end_below:
            ended, held = True, state.held
            state.flooding, state.held = False, 0
        state.times.append(ts_ms)
        if state.flooding:
            state.held += 1
            return FloodVerdict(send=False)
        if len(state.times) > self.start_above:
            state.flooding, state.held = True, 1
            return FloodVerdict(send=False, started=True, ended=ended, held=held)
        return FloodVerdict(send=True, ended=ended, held=held)

    def check_end(self, enterprise: str, now_ms: int) -> int | None:
        """At a timer tick: if the flood ended, return the number of held alarms, else None."""
        state = self._state.get(enterprise)
        if state is None or not state.flooding or state.forced:
            return None
        self._trim(state, now_ms)
        if len(state.times) < self.end_below:
            held, state.flooding, state.held = state.held, False, 0
            return held
        return None

    def force(self, enterprise: str, flooding: bool) -> None:
        """Follow the engine's `flood` event (start → True, end → False)."""
        state = self._state.setdefault(enterprise, _Enterprise())
        state.flooding = state.forced = flooding
        if not flooding:
            state.held = 0

    def flooding(self, enterprise: str) -> bool:
        """True while alarm notices of `enterprise` are grouped."""
        state = self._state.get(enterprise)
        return state is not None and state.flooding

    def enterprises(self) -> list[str]:
        """Enterprises currently in flood."""
        return [e for e, s in self._state.items() if s.flooding]
