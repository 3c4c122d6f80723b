"""The alerting service: engine events and user actions in, durable notifications out.

`AlertService` owns the life-cycle book and the outbox; it is what the embedded runner calls
(`handle(event)` per engine event, `tick()` every few seconds) and what the HTTP API drives
(acknowledge, feedback, clear, shelve). Every state change is saved before it returns, and every
notification is enqueued with its idempotency key in the same SQLite transaction, so a crash at
any point loses nothing and a replayed event sends nothing twice. Saving writes only what changed
(`Outbox.save_alert`), so an event costs the same on an alert with 20,000 stale tags as on one
with a single tag.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from alerting.alerts import Actor, Alert
from alerting.commands import AckCommand, CommandSink
from alerting.events import EventRejectedError, parse_event
from alerting.lifecycle import AlertBook, Intent
from alerting.outbox import Outbox, Pending
from alerting.planner import event_group, targets_for
from alerting.policy import RoutingPolicy
from alerting.routing import EnterpriseArea
from hazardwatch.plant.model import Plant

log = logging.getLogger(__name__)


def areas_from_plant(plant: Plant) -> dict[str, EnterpriseArea]:
    """Enterprise id → area (county code, name, industry) from the plant model."""
    return {
        e.id: EnterpriseArea(e.id, e.name, e.region, e.industry.value) for e in plant.enterprises
    }


def names_from_plant(plant: Plant) -> dict[str, str]:
    """Display names of enterprises, hazard sources and tags (for texts)."""
    names = {e.id: e.name for e in plant.enterprises}
    names.update({s.id: s.name for s in plant.hazard_sources})
    names.update({t.id: t.name for t in plant.tags() if t.name})
    return names


def tag_units_from_plant(plant: Plant) -> dict[str, str]:
    """Engineering unit of every tag (m, °C, %LEL …), for values in texts."""
    return {t.id: t.unit for t in plant.tags()}


def can_see(actor: Actor, area: EnterpriseArea) -> bool:
    """A user sees an alert when the enterprise lies in the user's area at the user's tier."""
    return area.code_at(actor.tier) == actor.area


class AlertService:
    """Thread-safe facade over the book and the outbox; `clock_ms` gives epoch ms."""

    def __init__(
        self,
        policy: RoutingPolicy,
        outbox: Outbox,
        areas: Mapping[str, EnterpriseArea],
        clock_ms: Callable[[], int],
        names: Mapping[str, str] | None = None,
        commands: CommandSink | None = None,
        tag_units: Mapping[str, str] | None = None,
    ) -> None:
        self.policy = policy
        self.outbox = outbox
        self.areas = dict(areas)
        self.clock_ms = clock_ms
        self.commands = commands
        self.book = AlertBook(policy, names, tag_units)
        self.book.load(outbox.load_alerts())
        self.rejected: Counter[str] = Counter()
        self.on_enqueue: Callable[[], None] | None = None  # wakes the dispatcher
        self.on_saved: Callable[[Alert], None] | None = None  # alert_v1 lines (stream.sinks)
        self._lock = threading.RLock()
        # Notifications of a commit that failed: the book has moved on and a redelivered event
        # is a duplicate to it, so they are retried with the next commit (or tick) instead.
        self._backlog: list[tuple[Any, ...]] = []

    # -- events --------------------------------------------------------------------------------
    def handle(self, data: Mapping[str, Any] | bytes | str) -> int:
        """Apply one engine event; returns notifications enqueued. Rejections are counted.

        A failure of ours on one event is counted as `internal_error`; an outbox (sqlite3) error
        propagates, so the caller does not acknowledge the event and it comes again; the
        notifications of the failed commit are kept and enqueued by the next successful one.
        """
        try:
            event = parse_event(data)
            area = self.area(event.enterprise)
        except EventRejectedError as exc:
            self.rejected[exc.reason] += 1
            return 0
        with self._lock:
            try:
                intents = self.book.apply(event, area, event_group(self.policy, event, area))
                return self._commit(intents, event.ts_ms)
            except sqlite3.Error:
                raise  # the outbox is unusable: the caller must not acknowledge the event
            except Exception:  # a bug on one event must not stop the stream: count it
                self.rejected["internal_error"] += 1
                log.exception("event %s could not be applied", event.id)
                return 0

    def area(self, enterprise: str) -> EnterpriseArea:
        """The enterprise's area; EventRejectedError(unknown_enterprise) if not in the plant."""
        try:
            return self.areas[enterprise]
        except KeyError:
            raise EventRejectedError("unknown_enterprise", enterprise) from None

    def _commit(self, intents: list[Intent], event_ms: int, exclude: tuple[str, ...] = ()) -> int:
        """Enqueue the intents' notifications and save touched alerts in one transaction."""
        now = self.clock_ms()
        rows = []
        for intent in intents:
            area = self.areas[intent.notice.enterprise]
            for target in targets_for(self.policy, intent, area, exclude):
                notice = replace(intent.notice, tier=target.tier)
                key = f"{intent.key}/{target.recipient}/{target.channel}"
                rows.append((key, notice.alert_id, target.recipient, target.tier, target.channel,
                             target.channel_type, notice.to_dict(), now, event_ms))  # fmt: skip
        backlog, self._backlog = self._backlog, []
        added = retried = 0
        try:
            with self.outbox.transaction():
                for row in backlog:
                    retried += self.outbox.enqueue(*row)
                for row in rows:
                    added += self.outbox.enqueue(*row)
                saved = self._save_touched()
        except BaseException:
            self._backlog = backlog + rows
            raise
        self._announce(saved)
        if (added or retried) and self.on_enqueue is not None:
            self.on_enqueue()
        return added

    def _save_touched(self) -> list[Alert]:
        # Alerts also change without intents (tags attached, acknowledgements, feedback): every
        # touched alert is offered to the outbox, which writes only what changed in it.
        touched, self.book.touched = self.book.touched, set()
        try:
            return [a for a in map(self.book.alerts.__getitem__, touched)
                    if self.outbox.save_alert(a)]  # fmt: skip
        except BaseException:
            self.book.touched |= touched  # the transaction rolls back: save them next time
            raise

    def _save(self) -> None:
        """Save touched alerts (a user action that enqueues nothing) in one transaction."""
        with self.outbox.transaction():
            saved = self._save_touched()
        self._announce(saved)

    def _announce(self, saved: list[Alert]) -> None:
        # After the commit: alert_v1 lines describe only steps that are durable.
        if self.on_saved is not None:
            for alert in saved:
                self.on_saved(alert)

    def tick(self) -> int:
        """Run the timers (reminders, escalation, overdue feedback, flood end); enqueued count."""
        with self._lock:
            now = self.clock_ms()
            return self._commit(self.book.tick(now), now)

    def dead_letter(self, item: Pending, reason: str, now_ms: int) -> None:
        """Dispatcher hook: a notification is dead; tell the next tier (not for failures)."""
        if item.notice.get("kind") == "delivery_failure":
            return
        with self._lock:
            intent = self.book.delivery_failure(item.alert, item.recipient, item.tier, reason,
                                                now_ms)  # fmt: skip
            if intent is not None and not self._commit([intent], now_ms,
                                                       exclude=(item.recipient,)):  # fmt: skip
                # Nobody above (or beside, at the province) to tell: count it for /healthz.
                self.book.count("delivery_failure_unrouted")
                log.warning("dead letter %s: no recipient left for the delivery-failure notice",
                            item.key)  # fmt: skip

    # -- user actions ---------------------------------------------------------------------------
    def visible(self, actor: Actor, alert: Alert) -> bool:
        """True when `actor` may see and act on `alert`."""
        area = self.areas.get(alert.enterprise)
        return area is not None and can_see(actor, area)

    def alerts_for(self, actor: Actor) -> list[Alert]:
        """Active alerts in the actor's scope, oldest first."""
        with self._lock:
            return [a for a in self.book.active() if self.visible(actor, a)]

    def acknowledge(self, alert_id: str, actor: Actor) -> AckCommand:
        """Acknowledge; the command goes to the engine's command input."""
        with self._lock:
            command = self.book.acknowledge(alert_id, actor, self.clock_ms())
            self._save()
        if self.commands is not None:
            self.commands(command)
        return command

    def feedback(self, alert_id: str, cause: str, measures: str, actor: Actor) -> Alert:
        """Record cause and measures."""
        with self._lock:
            alert = self.book.record_feedback(alert_id, cause, measures, actor, self.clock_ms())
            self._save()
            return alert

    def clear(self, alert_id: str, actor: Actor) -> Alert:
        """消警; notifies every tier that was told of the alert."""
        with self._lock:
            now = self.clock_ms()
            self._commit(self.book.clear(alert_id, actor, now), now)
            return self.book.get(alert_id)

    def shelve(self, alert_id: str, actor: Actor, until_ms: int, reason: str) -> Alert:
        """Shelve/silence until `until_ms` (epoch ms)."""
        with self._lock:
            alert = self.book.shelve(alert_id, actor, until_ms, reason, self.clock_ms())
            self._save()
            return alert
