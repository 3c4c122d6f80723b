"""Gateway status and data quality (DOMAIN.md §6): online/offline, online rates, offline events.

A gateway is **offline** from the moment its last will / `offline` status arrives, or from
`last message + 3 × its interval` when it falls silent; it is **online** again with its next
telemetry or `online` status. Offline gateways raise data-quality events (its own channel, not a
hazard colour):

- `gateway_offline` when it goes offline;
- `gateway_offline_30min` after 30 min offline — notify the county (DOMAIN.md §6);
- `gateway_offline_24h` after 24 h — a yellow data-quality notice;
- `gateway_online` when it comes back, with how long it was away.

A tag is **online** while its newest reading is younger than 3 × its expected interval. Online
rates (gateway and tag) are the fraction of a window not spent offline; a gateway or tag never
heard from counts as offline from the board's first tick.

Pure: the caller passes times (epoch ms) to `observe` and `tick`; nothing reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hazardwatch.event_id import with_event_id
from hazardwatch.types import RiskColour, Tier
from ingest.directory import GatewayDirectory
from ingest.results import Decoded, MessageKind
from ingest.times import rfc3339

SILENCE_FACTOR = 3
OFFLINE_NOTIFY_MS = 30 * 60_000
OFFLINE_NOTICE_MS = 24 * 3_600_000
DEFAULT_HISTORY_MS = 31 * 86_400_000  # enough for the monthly online rate regulators score


@dataclass(frozen=True, slots=True)
class DataQualityEvent:
    """A gateway status change or offline-duration milestone, at `ts_ms` (epoch ms)."""

    ts_ms: int
    enterprise: str
    gateway: str
    condition: str  # gateway_offline | gateway_offline_30min | gateway_offline_24h | …_online
    offline_since_ms: int
    tier: Tier | None = None  # who is notified, where DOMAIN.md §6 says so
    colour: RiskColour | None = None  # the 24 h data-quality notice is yellow

    def to_json(self) -> dict[str, Any]:
        """The `data_quality` event of events.jsonl."""
        out: dict[str, Any] = {
            "ts": rfc3339(self.ts_ms),
            "type": "data_quality",
            "enterprise": self.enterprise,
            "gateway": self.gateway,
            "condition": self.condition,
            "offline_since": rfc3339(self.offline_since_ms),
        }
        if self.tier is not None:
            out["tier"] = self.tier.label
        if self.colour is not None:
            out["colour"] = self.colour.label
        return out

    def to_event(self) -> dict[str, Any]:
        """This change as an engine `data_quality` event for alerting (docs/events.md): the
        fields of `to_json()` plus `source: null`, `state` (`active`, or `normal` when the
        gateway is back, which closes its alert) and the deterministic `id` every event carries
        (`with_event_id`, as for engine events), which alerting requires and deduplicates by."""
        state = "normal" if self.condition == "gateway_online" else "active"
        return with_event_id({**self.to_json(), "source": None, "state": state})


class _Availability:
    """Offline intervals of one gateway or tag; `since` is the open interval's start."""

    __slots__ = ("closed", "since")

    def __init__(self) -> None:
        self.closed: list[tuple[int, int]] = []
        self.since: int | None = None

    def go_offline(self, at_ms: int) -> bool:
        if self.since is not None:
            return False
        self.since = at_ms
        return True

    def go_online(self, at_ms: int) -> int | None:
        since = self.since
        if since is None:
            return None
        self.closed.append((since, max(since, at_ms)))
        self.since = None
        return since

    def online_rate(self, start_ms: int, end_ms: int) -> float:
        if end_ms <= start_ms:
            return 1.0
        offline = 0
        spans = [*self.closed, (self.since, end_ms)] if self.since is not None else self.closed
        for a, b in spans:
            offline += max(0, min(b, end_ms) - max(a, start_ms))
        return 1.0 - offline / (end_ms - start_ms)

    def prune(self, before_ms: int) -> None:
        if self.closed and self.closed[0][1] < before_ms:
            self.closed = [span for span in self.closed if span[1] >= before_ms]


class GatewayStatusBoard:
    """Online/offline state, milestones and online rates of every gateway and tag of a plant."""

    def __init__(self, directory: GatewayDirectory, history_ms: int = DEFAULT_HISTORY_MS) -> None:
        self.directory = directory
        self.history_ms = history_ms
        gateways = list(directory.gateways.values())
        self._gateway_ids = [g.id for g in gateways]
        self._enterprise = {g.id: g.enterprise for g in gateways}
        self._silence_ms = {g.id: int(SILENCE_FACTOR * g.interval_s * 1000) for g in gateways}
        self._last_seen: dict[str, int | None] = dict.fromkeys(self._gateway_ids)
        self._lwt_offline: dict[str, int | None] = dict.fromkeys(self._gateway_ids)
        self._gateway = {g: _Availability() for g in self._gateway_ids}
        self._milestones: dict[str, set[str]] = {g: set() for g in self._gateway_ids}
        n = len(directory.tag_ids)
        self._tag_last = np.full(n, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self._tag_limit = (np.array(directory.tag_intervals_s) * SILENCE_FACTOR * 1000).astype(
            np.int64
        )
        self._tag_stale = np.zeros(n, dtype=bool)
        self._tag = [_Availability() for _ in range(n)]
        self._started_ms: int | None = None

    def observe(self, decoded: Decoded, received_ms: int) -> None:
        """Take one decoded message received at `received_ms` (refused ones are ignored)."""
        self.observe_all(((decoded, received_ms),))

    def observe_all(self, messages: Iterable[tuple[Decoded, int]]) -> None:
        """Take decoded messages with the times they were received, in arrival order.

        The tag times of the whole batch go to numpy in one call: per message, numpy's call
        overhead cost more than decoding a 1-point message (a quarter of the ingest thread)."""
        tags: list[int] = []
        times: list[int] = []
        for decoded, received_ms in messages:
            gateway = decoded.gateway
            if gateway not in self._last_seen:
                continue
            if decoded.kind is MessageKind.STATUS and decoded.status is not None:
                if decoded.status.state == "offline":
                    self._lwt_offline[gateway] = received_ms
                else:
                    self._lwt_offline[gateway] = None
                    self._last_seen[gateway] = received_ms
            elif decoded.accepted:
                self._lwt_offline[gateway] = None
                self._last_seen[gateway] = received_ms
                tags += decoded.tag_index
                times += decoded.ts_ms
        if tags:
            np.maximum.at(self._tag_last, np.array(tags, dtype=np.int64),
                          np.array(times, dtype=np.int64))  # fmt: skip

    def tick(self, now_ms: int) -> list[DataQualityEvent]:
        """Advance to `now_ms`: state changes and milestones since the last tick, in order."""
        if self._started_ms is None:
            self._started_ms = now_ms
        events: list[DataQualityEvent] = []
        for gateway in self._gateway_ids:
            events += self._tick_gateway(gateway, now_ms)
        self._tick_tags(now_ms)
        return sorted(events, key=lambda e: e.ts_ms)

    def _offline_since(self, gateway: str, now_ms: int) -> int | None:
        lwt = self._lwt_offline[gateway]
        if lwt is not None:
            return lwt
        last = self._last_seen[gateway]
        if last is None:
            # Not heard since start: judged like a silence from the start, so a restart does
            # not report every gateway offline until its first message (since start: we do
            # not know what happened before).
            started = self._started_ms
            assert started is not None
            return started if now_ms >= started + self._silence_ms[gateway] else None
        silent_from = last + self._silence_ms[gateway]
        return silent_from if now_ms >= silent_from else None

    def _tick_gateway(self, gateway: str, now_ms: int) -> list[DataQualityEvent]:
        availability = self._gateway[gateway]
        enterprise = self._enterprise[gateway]
        since = self._offline_since(gateway, now_ms)
        events: list[DataQualityEvent] = []
        if since is None:
            back_from = availability.go_online(self._last_seen[gateway] or now_ms)
            if back_from is not None:
                self._milestones[gateway].clear()
                at = self._last_seen[gateway] or now_ms
                events.append(
                    DataQualityEvent(at, enterprise, gateway, "gateway_online", back_from)
                )
            availability.prune(now_ms - self.history_ms)
            return events
        if availability.go_offline(since):
            events.append(DataQualityEvent(since, enterprise, gateway, "gateway_offline", since))
        since = availability.since or since
        done = self._milestones[gateway]
        for name, after_ms, tier, colour in (
            ("gateway_offline_30min", OFFLINE_NOTIFY_MS, Tier.COUNTY, None),
            ("gateway_offline_24h", OFFLINE_NOTICE_MS, Tier.COUNTY, RiskColour.YELLOW),
        ):
            if name not in done and now_ms - since >= after_ms:
                done.add(name)
                at = since + after_ms
                events.append(DataQualityEvent(at, enterprise, gateway, name, since, tier, colour))
        return events

    def _tick_tags(self, now_ms: int) -> None:
        stale = (now_ms - self._tag_last) > self._tag_limit
        changed = np.flatnonzero(stale != self._tag_stale)
        for i in changed.tolist():
            tag = self._tag[i]
            if stale[i]:
                never = self._tag_last[i] < 0
                assert self._started_ms is not None
                since = self._started_ms if never else int(self._tag_last[i] + self._tag_limit[i])
                tag.go_offline(since)
            else:
                tag.go_online(int(self._tag_last[i]))
        self._tag_stale = stale

    def is_online(self, gateway: str) -> bool:
        """State of a gateway as of the last tick."""
        return self._gateway[gateway].since is None

    def gateway_online_rate(self, gateway: str, window_ms: int, now_ms: int) -> float:
        """Fraction (0–1) of the window ending at `now_ms` the gateway was online."""
        return self._gateway[gateway].online_rate(now_ms - window_ms, now_ms)

    def tag_online_rate(self, tag: str, window_ms: int, now_ms: int) -> float:
        """Fraction (0–1) of the window ending at `now_ms` the tag had a fresh value."""
        return self._tag[self.directory.tag_ids.index(tag)].online_rate(now_ms - window_ms, now_ms)

    def enterprise_online_rate(self, enterprise: str, window_ms: int, now_ms: int) -> float:
        """Mean tag online rate of an enterprise's tags (the monthly figure regulators score)."""
        rates = [
            self._tag[i].online_rate(now_ms - window_ms, now_ms)
            for i, tag in enumerate(self.directory.tag_ids)
            if self.directory.owners[tag].enterprise == enterprise
        ]
        return sum(rates) / len(rates) if rates else 1.0
