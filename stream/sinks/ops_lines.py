"""Operations lines for the dashboards: alert life-cycle, pipeline counters, gateway online rates.

What the engine's events do not carry (docs/influx-schema.md):

- `alert_v1`: one point per alert life-cycle step and notified tier, derived from what the
  alerting service saved (`AlertLines.observe`, called under the service's lock from any
  thread; lines wait in a buffer until the runner drains them);
- `pipeline_v1`: a snapshot of the runner's cumulative counters, one point per process and
  one per rejection reason, every `period_ms`;
- `gateway_v1`: each gateway's online state and online rate over `online_window_ms`, every
  `period_ms`.

Line building is pure; the only shared state is the alert buffer behind a lock. `OpsWriter`
is the one piece of I/O: it writes a process's operations lines to its own `InfluxSink` from an
asyncio task, for the processes that have no group commit of their own (`hazardwatch bridge`,
`alerts serve`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from alerting.alerts import Alert
from hazardwatch.errors import BackpressureError
from hazardwatch.types import RiskColour, Tier
from ingest.status import GatewayStatusBoard
from stream.runners.metrics import RunnerSources
from stream.sinks.influx import InfluxSink
from stream.sinks.lines import GATEWAY, escape_field_string, escape_tag

log = logging.getLogger(__name__)

ALERT = "alert_v1"
PIPELINE = "pipeline_v1"
OPS_PERIOD_MS = 10_000
ONLINE_WINDOW_MS = 3_600_000
"""Online rates cover the last hour: long enough to smooth a reconnect, short enough that a
trend panel shows an outage the same hour (the monthly score is computed from the trend)."""

ALERT_STATES = ("raised", "reminded", "escalated", "acknowledged", "fed_back", "cleared", "updated")
"""Every `alert_v1.state` written; the dashboards map each one to a text and a colour."""

_REASON_PREFIX = "rejected_"


def _tagset(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f"{k}={escape_tag(v)}" for k, v in sorted(pairs))


@dataclass(frozen=True, slots=True)
class _Seen:
    """What was already written for one alert."""

    steps: int  # history entries turned into lines
    notified: frozenset[Tier]
    colour: RiskColour


def _seen(alert: Alert) -> _Seen:
    return _Seen(len(alert.history), frozenset(alert.notified), alert.colour)


class AlertLines:
    """Turns each saved alert's new life-cycle steps into `alert_v1` lines (one per tier).

    States: raised (pushed to a tier), reminded, escalated (pushed to the next tier up),
    acknowledged, fed_back, cleared, and updated — the alert moved to another colour, so the
    old colour's series stops waiting for an acknowledgement and the new colour's starts.
    """

    def __init__(self, existing: Iterable[Alert], clock_ms: Callable[[], int]) -> None:
        # Alerts restored from the outbox were written before the restart: start after them.
        self._seen = {a.id: _seen(a) for a in existing}
        self._clock_ms = clock_ms
        self._pending: list[str] = []
        self._lock = threading.Lock()

    def observe(self, alert: Alert) -> None:
        """The alerting service saved `alert`: queue lines for what changed since last time."""
        if alert.kind == "flood":  # an incident notice, already in flood_v1; nothing to ack
            return
        seen = self._seen.get(alert.id) or _Seen(0, frozenset(), alert.colour)
        try:
            lines = self._lines(alert, seen)
        except Exception:  # a dashboard row must never break alert delivery, which called us
            log.exception("alert_v1 lines for %s not built", alert.id)
            lines = []
        self._seen[alert.id] = _seen(alert)
        if lines:
            with self._lock:
                self._pending.extend(lines)

    def drain(self) -> list[str]:
        """Lines queued since the last drain, in the order the steps happened."""
        with self._lock:
            lines, self._pending = self._pending, []
        return lines

    def _lines(self, alert: Alert, seen: _Seen) -> list[str]:
        out: list[str] = []
        notified = set(seen.notified)
        colour = seen.colour
        ts = self._clock_ms()
        for step in alert.history[seen.steps :]:
            ts, action = int(step["ts_ms"]), step["action"]
            if action == "raise":
                colour = RiskColour.parse(step["colour"])
                notified = set(alert.notified)
                out += [self._line(alert, colour, t, "raised", ts) for t in sorted(notified)]
            elif action == "update":
                new = RiskColour.parse(step["colour"])
                if new != colour:  # back from normal at the same colour: nothing was replaced
                    out += [self._line(alert, colour, t, "updated", ts) for t in sorted(notified)]
                notified |= alert.notified
                state = "acknowledged" if alert.acknowledged else "raised"
                out += [self._line(alert, new, t, state, ts) for t in sorted(notified)]
                colour = new
            elif action == "escalate":
                tier = Tier[str(step["tier"]).upper()]
                notified.add(tier)
                out.append(self._line(alert, colour, tier, "escalated", ts))
            elif action in _FOR_EVERY_TIER:
                state = _FOR_EVERY_TIER[action]
                out += [self._line(alert, colour, t, state, ts) for t in sorted(notified)]
        # Tiers told without a history step (a data-quality notice after 30 min offline, a
        # delivery failure passed to the next tier): raised for them now.
        for tier in sorted(alert.notified - notified):
            out.append(self._line(alert, alert.colour, tier, "raised", max(ts, self._clock_ms())))
        return out

    @staticmethod
    def _line(alert: Alert, colour: RiskColour, tier: Tier, state: str, ts_ms: int) -> str:
        tags = _tagset(
            [
                ("enterprise", alert.enterprise),
                ("source", alert.source or ""),
                ("colour", colour.label),
                ("tier", tier.label),
            ]
        )
        fields = f"state={escape_field_string(state)},alert_id={escape_field_string(alert.id)}"
        fields += f",kind={escape_field_string(alert.kind)}"
        if alert.ack_due_ms is not None:
            fields += f",deadline_ms={alert.ack_due_ms}i"
        return f"{ALERT},{tags} {fields} {ts_ms}"


_FOR_EVERY_TIER = {
    "reminder": "reminded",
    "acknowledge": "acknowledged",
    "feedback": "fed_back",
    "cleared": "cleared",
}
"""History actions that concern every tier told so far, and the state written for them."""


def pipeline_lines(process: str, sources: RunnerSources, ts_ms: int) -> list[str]:
    """`pipeline_v1`: cumulative counters of the process, and one point per rejection reason."""
    by_reason = {
        key.removeprefix(_REASON_PREFIX): n
        for key, n in sources.rejected_by_reason().items()
        if key.startswith(_REASON_PREFIX) and n > 0
    }
    sink = sources.sink()
    fields = (
        f"readings_in={sources.readings_in()}i,rejected={sum(by_reason.values())}i,"
        f"evaluated={sources.evaluated().get('accepted', 0)}i,"
        f"written={sink.get('written', 0)}i,spooled={sink.get('spooled', 0)}i,"
        f"spool_fill={float(sources.spool_fill())!r}"
    )
    lines = [f"{PIPELINE},{_tagset([('process', process)])} {fields} {ts_ms}"]
    for reason, n in sorted(by_reason.items()):
        tags = _tagset([("process", process), ("reason", reason)])
        lines.append(f"{PIPELINE},{tags} rejected={n}i {ts_ms}")
    return lines


def gateway_rate_lines(
    board: GatewayStatusBoard, enterprises: Mapping[str, str], window_ms: int, ts_ms: int
) -> list[str]:
    """`gateway_v1`: online state and online rate over `window_ms` of every gateway."""
    lines = []
    for gateway, enterprise in sorted(enterprises.items()):
        try:
            online = board.is_online(gateway)
            rate = board.gateway_online_rate(gateway, window_ms, ts_ms)
        except TypeError:
            # The ingest thread closed the gateway's offline interval while we read it; the
            # next period writes the rate.
            continue
        tags = _tagset([("enterprise", enterprise), ("gateway", gateway)])
        lines.append(f"{GATEWAY},{tags} online={int(online)}i,online_rate={rate!r} {ts_ms}")
    return lines


class OpsLines:
    """The runner's operations lines: `due(now_ms)` returns alert lines at once and the
    periodic pipeline and gateway snapshots every `period_ms` (a process without alerts or
    gateways passes None for them)."""

    def __init__(
        self,
        process: str,
        sources: RunnerSources,
        board: GatewayStatusBoard | None,
        alerts: AlertLines | None,
        *,
        period_ms: int = OPS_PERIOD_MS,
        online_window_ms: int = ONLINE_WINDOW_MS,
        board_ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.process = process
        self.sources = sources
        self.board = board
        self.alerts = alerts
        self.period_ms = period_ms
        self.online_window_ms = online_window_ms
        self.board_ready = board_ready  # False until the board first judged the gateways
        self._gateways = (
            {g.id: g.enterprise for g in board.directory.gateways.values()} if board else {}
        )
        self._next_ms = 0

    def due(self, now_ms: int) -> list[str]:
        """Lines to write now (the first call writes the snapshots)."""
        lines = self.alerts.drain() if self.alerts is not None else []
        if now_ms >= self._next_ms:
            self._next_ms = now_ms - now_ms % self.period_ms + self.period_ms
            lines += pipeline_lines(self.process, self.sources, now_ms)
            if self.board is not None and self.board_ready():
                lines += gateway_rate_lines(self.board, self._gateways, self.online_window_ms,
                                            now_ms)  # fmt: skip
        return lines


def wall_ms() -> int:
    """Epoch milliseconds of the wall clock."""
    return time.time_ns() // 1_000_000


class OpsWriter:
    """Writes `due(now_ms)` to a sink of its own every `every_s`, from an asyncio task.

    The HTTP write runs in a thread, so an InfluxDB that hangs never stalls the process's event
    loop; while InfluxDB is down the sink spools, and while the spool is full the lines stay in
    the sink's buffer and go out with a later write (nothing is dropped).
    """

    def __init__(
        self,
        sink: InfluxSink,
        due: Callable[[int], list[str]],
        *,
        every_s: float = 1.0,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.sink = sink
        self.due = due
        self.every_s = every_s
        self.clock_ms = clock_ms
        self.full = False  # the last write found the spool full

    async def run(self, stop: asyncio.Event) -> None:
        """Write every `every_s` until `stop` is set; then a last write and close the sink."""
        await asyncio.to_thread(self.sink.ensure_database)
        try:
            while not stop.is_set():
                await self.write_due()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.every_s)
        finally:
            await self.write_due()
            try:
                await asyncio.to_thread(self.sink.close)
            except BackpressureError as exc:  # the spool is full: these lines are lost
                log.error("operations lines not written at shutdown: %s", exc)

    async def write_due(self) -> None:
        """Take the due lines and write them (or spool them) now."""
        lines = self.due(self.clock_ms())
        try:
            await asyncio.to_thread(self._write, lines)
        except BackpressureError as exc:
            if not self.full:
                log.error("operations lines held in memory: %s", exc)
            self.full = True
            return
        except Exception:  # dashboards' rows must never stop the process; retried next time
            log.exception("operations lines not written")
            return
        self.full = False

    def _write(self, lines: list[str]) -> None:
        self.sink.add(lines)
        self.sink.flush()
