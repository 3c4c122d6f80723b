"""The alert life-cycle (DOMAIN.md §6), pure: events and user actions in, intents out.

raise → update (colour up or down) → acknowledge → feedback (cause and measures) → clearance
(消警: condition back to normal, feedback recorded, orange/red confirmed by the regulator tier
of `routing.clearance`). A missed acknowledgement deadline sends a reminder to the tiers already
notified; `escalate_after` later the next tier up is notified, and so on up to the province.

Every method takes the time (`now_ms`, epoch ms) from its caller. The book returns `Intent`s —
"tell these tiers this notice" with a deterministic idempotency key — and the service routes and
enqueues them. `LifecycleError` (code, message) reports a refused action.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alerting.alerts import Actor, Alert, Feedback, TagState
from alerting.commands import AckCommand
from alerting.events import EngineEvent
from alerting.flood import FloodGate
from alerting.messages import Notice, TagValue
from alerting.policy import RoutingPolicy
from alerting.routing import EnterpriseArea, next_tier, tiers_for
from hazardwatch.errors import HazardwatchError
from hazardwatch.types import RiskColour, Tier

QUIET_STATES = {"suppressed", "shelved", "out_of_service"}
NORMAL_STATES = {"normal", "rtn_unacknowledged"}


class LifecycleError(HazardwatchError):
    """A refused action: `code` is `not_found`, `cleared`, `not_normal`, `no_feedback`, …"""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Intent:
    """Notify `tiers` of the alert's enterprise with `notice`; `key` makes it idempotent."""

    key: str
    notice: Notice
    tiers: tuple[Tier, ...]
    labels: Mapping[str, str]


class AlertBook:
    """All alerts, keyed by id, with the index of active alerts by group key."""

    def __init__(
        self,
        policy: RoutingPolicy,
        names: Mapping[str, str] | None = None,
        tag_units: Mapping[str, str] | None = None,
    ) -> None:
        self.policy = policy
        self.names = dict(names or {})
        self.tag_units = dict(tag_units or {})
        self.alerts: dict[str, Alert] = {}
        self.flood = FloodGate(policy.flood.start_above, policy.flood.end_below,
                               policy.flood.window_s)  # fmt: skip
        self.counters: dict[str, int] = {}
        self.touched: set[str] = set()  # ids of alerts possibly changed since the caller saved
        self._by_key: dict[str, str] = {}  # group key → id of its active alert
        self._seen: OrderedDict[str, None] = OrderedDict()

    # -- bookkeeping -------------------------------------------------------------------------
    def count(self, name: str) -> None:
        """Increase a named counter (suppressed, duplicate, …) exposed by the API and metrics."""
        self.counters[name] = self.counters.get(name, 0) + 1

    def load(self, alerts: Iterable[Alert]) -> None:
        """Restore persisted alerts (after a restart)."""
        for alert in alerts:
            self.alerts[alert.id] = alert
            if alert.active:
                self._by_key[alert.key] = alert.id

    def active(self) -> list[Alert]:
        """Alerts not yet cleared, oldest first."""
        found = (self.alerts[i] for i in self._by_key.values())
        return sorted(found, key=lambda a: (a.raised_ms, a.id))

    def by_key(self, key: str) -> Alert | None:
        """The active alert of a group key (marked touched: the caller may change it)."""
        alert_id = self._by_key.get(key)
        if alert_id is None:
            return None
        self.touched.add(alert_id)
        return self.alerts[alert_id]

    def get(self, alert_id: str) -> Alert:
        """The alert with this id (marked touched); LifecycleError(not_found)."""
        try:
            alert = self.alerts[alert_id]
        except KeyError:
            raise LifecycleError("not_found", f"no alert {alert_id!r}") from None
        self.touched.add(alert_id)
        return alert

    def _notice(self, alert: Alert, kind: str, ts_ms: int, detail: str = "") -> Notice:
        tags = tuple(
            TagValue(t.tag, t.condition, t.value, t.unit, self.names.get(t.tag, ""))
            for t in alert.tags.values()
            if t.active
        )
        return Notice(
            kind=kind,
            alert_id=alert.id,
            enterprise=alert.enterprise,
            enterprise_name=self.names.get(alert.enterprise, alert.enterprise),
            ts_ms=ts_ms,
            source=alert.source,
            source_name=self.names.get(alert.source, alert.source) if alert.source else None,
            colour=alert.colour,
            tags=tags,
            ack_due_ms=None if alert.acknowledged else alert.ack_due_ms,
            feedback_due_ms=None if alert.feedback else alert.feedback_due_ms,
            detail=detail,
        )

    def _intent(
        self, alert: Alert, kind: str, key: str, ts_ms: int, tiers: Iterable[Tier], detail: str = ""
    ) -> Intent:
        tiers = tuple(sorted(set(tiers)))
        alert.notified.update(tiers)
        first = next(iter(alert.tags.values()), None)
        labels = {"type": alert.kind, "kind": kind, "colour": alert.colour.label}
        if alert.source:
            labels["source"] = alert.source
        if first is not None:
            labels.update(tag=first.tag, condition=first.condition, severity=f"S{first.severity}")
        return Intent(key, self._notice(alert, kind, ts_ms, detail), tiers, labels)

    def _set_deadlines(self, alert: Alert, now_ms: int) -> None:
        deadlines = self.policy.deadlines_for(alert.colour)
        alert.acked_by = alert.acked_ms = None
        alert.reminded_ms = None
        if deadlines is None:
            alert.ack_due_ms = None
            return
        alert.ack_due_ms = now_ms + int(deadlines.ack_s * 1000)
        due = now_ms + int(deadlines.feedback_s * 1000)
        if alert.feedback is None:
            alert.feedback_due_ms = min(due, alert.feedback_due_ms or due)

    # -- engine events ------------------------------------------------------------------------
    def apply(self, event: EngineEvent, area: EnterpriseArea, group: str) -> list[Intent]:
        """Apply one engine event; `group` is its routing group key. Duplicates are ignored."""
        if event.id in self._seen:
            self.count("duplicate")
            return []
        self._seen[event.id] = None
        if len(self._seen) > 100_000:
            self._seen.popitem(last=False)
        if event.type == "risk":
            if event.level == "enterprise":  # the sources' own events drive the alerts
                self.count("enterprise_level_risk")
                return []
            return self._risk(event, group)
        if event.type == "alarm":
            return self._alarm(event, group)
        if event.type == "flood":
            return self._flood_event(event)
        return self._data_quality(event, area, group)

    def _raise(self, event: EngineEvent, kind: str, group: str, colour: RiskColour) -> Alert:
        alert = Alert(
            id=f"A-{event.id}",
            key=group,
            kind=kind,
            enterprise=event.enterprise,
            source=event.source,
            colour=colour,
            max_colour=colour,
            raised_ms=event.ts_ms,
            updated_ms=event.ts_ms,
            gateway=event.gateway,
        )
        self._set_deadlines(alert, event.ts_ms)
        alert.record(event.ts_ms, "raise", colour=colour.label, event=event.id)
        self.alerts[alert.id] = alert
        self._by_key[group] = alert.id
        self.touched.add(alert.id)
        return alert

    def _risk(self, event: EngineEvent, group: str) -> list[Intent]:
        colour = event.colour or RiskColour.BLUE
        alert = self.by_key(group)
        key = f"{event.id}"
        if alert is None or (alert.kind == "alarm" and colour > RiskColour.BLUE):
            if colour == RiskColour.BLUE:
                return []
            previous = alert
            alert = self._raise(event, "risk", group, colour)
            if previous is not None:  # a blue alarm notice grows into a colour warning
                alert.adopt_tags(previous.tags)
                self._close(previous, event.ts_ms, "system", "superseded")
            return [self._intent(alert, "raise", key, event.ts_ms, tiers_for(self.policy, colour))]
        if colour == alert.colour and not alert.normal:
            return []
        alert.updated_ms = event.ts_ms
        if colour == RiskColour.BLUE:
            alert.normal = True
            alert.record(event.ts_ms, "normal", event=event.id)
            return [self._intent(alert, "normal", key, event.ts_ms, alert.notified)]
        old, alert.colour, alert.normal = alert.colour, colour, False
        alert.max_colour = max(alert.max_colour, colour)
        alert.record(event.ts_ms, "update", colour=colour.label, previous=old.label)
        if colour > old:
            self._set_deadlines(alert, event.ts_ms)  # a higher colour needs a new acknowledgement
        tiers = set(alert.notified) | set(tiers_for(self.policy, colour))
        detail = f"由{old.chinese}色{'升' if colour > old else '降'}为{colour.chinese}色"
        return [self._intent(alert, "update", key, event.ts_ms, tiers, detail)]

    def _alarm(self, event: EngineEvent, group: str) -> list[Intent]:
        state = event.state or ""
        alert = self.by_key(group)
        tag = str(event.tag)
        if state in QUIET_STATES:
            self.count("suppressed")
            if alert is not None and tag in alert.tags:
                alert.set_tag(tag, state=state)
            return []
        active = state not in NORMAL_STATES and state != "acknowledged"
        if alert is not None:
            entry = alert.set_tag(tag, state=state)
            if state in NORMAL_STATES:
                alert.set_tag(tag, active=False)
            elif active:
                alert.set_tag(
                    tag,
                    active=True,
                    condition=event.condition or entry.condition,
                    severity=int(event.severity or entry.severity),
                    value=event.value,
                    unit=event.value_unit or self.tag_units.get(tag, entry.unit),
                )
            if alert.kind == "alarm" and not alert.active_count:
                self._close(alert, event.ts_ms, "system", "alarms returned to normal")
            return []
        if not active:
            return []
        verdict = self.flood.admit(event.enterprise, event.ts_ms)
        alert = self._raise(event, "alarm", group, RiskColour.BLUE)
        unit = event.value_unit or self.tag_units.get(tag, "")
        alert.set_tag(tag, TagState(tag, event.condition or "", int(event.severity or 0), state,
                                    event.value, unit))  # fmt: skip
        intents = []
        if verdict.ended:
            intents.append(self._flood_end(event.enterprise, event.id, event.ts_ms, verdict.held))
        if verdict.started:
            self.count("flood_started")
            intents.append(self._flood_start(alert, event.id, event.ts_ms))
        if verdict.send:
            intents.append(self._intent(alert, "alarm", event.id, event.ts_ms, [Tier.ENTERPRISE]))
        else:
            self.count("flood_grouped")
        return intents

    def _flood_start(self, alert: Alert, key: str, ts_ms: int) -> Intent:
        detail = (
            f"{self.policy.flood.window_s / 60:g}分钟内新报警超过{self.policy.flood.start_above}"
            "条，后续报警合并为一条事件通知"
        )
        return self._intent(alert, "flood", f"{key}:flood", ts_ms, [Tier.ENTERPRISE], detail)

    def _flood_end(self, enterprise: str, key: str, ts_ms: int, held: int) -> Intent:
        notice = Notice(
            kind="flood_end",
            alert_id=f"F-{enterprise}-{ts_ms}",
            enterprise=enterprise,
            enterprise_name=self.names.get(enterprise, enterprise),
            ts_ms=ts_ms,
            detail=f"泛滥期间合并报警{held}条",
        )
        labels = {"type": "flood", "kind": "flood_end"}
        return Intent(f"{key}:flood_end", notice, (Tier.ENTERPRISE,), labels)

    def _flood_event(self, event: EngineEvent) -> list[Intent]:
        starting = (event.state or "begin") in ("begin", "start", "active")
        was = self.flood.flooding(event.enterprise)
        self.flood.force(event.enterprise, starting)
        if starting == was:
            return []
        if not starting:
            return [self._flood_end(event.enterprise, event.id, event.ts_ms, event.count or 0)]
        alert = Alert(id=f"F-{event.id}", key=f"flood/{event.enterprise}", kind="flood",
                      enterprise=event.enterprise, source=None, colour=RiskColour.BLUE,
                      raised_ms=event.ts_ms, cleared_ms=event.ts_ms)  # fmt: skip
        self.alerts[alert.id] = alert
        self.touched.add(alert.id)
        return [self._flood_start(alert, event.id, event.ts_ms)]

    def _data_quality(self, event: EngineEvent, area: EnterpriseArea, group: str) -> list[Intent]:
        """Silent at onset; `tick` notifies after `notify_after_s` and goes yellow later."""
        alert = self.by_key(group)
        tag = event.tag or event.gateway or "gateway"
        if (event.state or "") in NORMAL_STATES or event.condition == "online":
            if alert is None or tag not in alert.tags:
                return []
            alert.set_tag(tag, active=False)
            if alert.active_count:
                return []
            alert.normal = True
            alert.record(event.ts_ms, "normal", event=event.id)
            intents = []
            if alert.notified:
                intents.append(self._intent(alert, "normal", event.id, event.ts_ms,
                                            alert.notified))  # fmt: skip
            if alert.colour == RiskColour.BLUE:  # a data-quality notice closes itself
                self._close(alert, event.ts_ms, "system", "data back")
            return intents
        onset = event.ts_ms - int((event.offline_s or 0.0) * 1000)
        if alert is None:
            alert = self._raise(event, "data_quality", group, RiskColour.BLUE)
            alert.raised_ms = onset
        alert.normal = False
        alert.set_tag(tag, TagState(tag, event.condition or "offline"), active=True)
        return self._data_quality_timer(alert, event.ts_ms, event.id)

    def _data_quality_timer(self, alert: Alert, now_ms: int, key: str) -> list[Intent]:
        dq = self.policy.data_quality
        offline_s = (now_ms - alert.raised_ms) / 1000
        if alert.normal:
            return []
        detail = f"{alert.active_count}个监测点无数据{offline_s / 3600:.1f}小时"
        if alert.colour == RiskColour.BLUE and offline_s >= dq.yellow_after_s:
            alert.colour = alert.max_colour = RiskColour.YELLOW
            self._set_deadlines(alert, now_ms)
            alert.record(now_ms, "update", colour="yellow")
            tiers = set(tiers_for(self.policy, RiskColour.YELLOW)) | alert.notified
            return [self._intent(alert, "data_quality", f"{alert.id}:dq_yellow", now_ms, tiers,
                                 detail)]  # fmt: skip
        if not alert.notified and offline_s >= dq.notify_after_s:
            return [self._intent(alert, "data_quality", f"{alert.id}:dq_notice", now_ms,
                                 dq.notify_tiers, detail)]  # fmt: skip
        return []

    def _close(self, alert: Alert, now_ms: int, user: str, reason: str) -> None:
        alert.cleared_ms, alert.cleared_by = now_ms, user
        if self._by_key.get(alert.key) == alert.id:
            del self._by_key[alert.key]
        self.touched.add(alert.id)
        alert.record(now_ms, "cleared", user, reason=reason)

    # -- user actions -------------------------------------------------------------------------
    def _open(self, alert_id: str) -> Alert:
        alert = self.get(alert_id)
        if not alert.active:
            raise LifecycleError("cleared", f"alert {alert_id} is already cleared")
        return alert

    def acknowledge(self, alert_id: str, actor: Actor, now_ms: int) -> AckCommand:
        """Acknowledge (确认); stops reminders and escalation; returns the engine command."""
        alert = self._open(alert_id)
        if not alert.acknowledged:
            alert.acked_by, alert.acked_ms = actor.user, now_ms
            alert.record(now_ms, "acknowledge", actor.user, tier=actor.tier.label)
        return AckCommand(alert.id, alert.enterprise, alert.source, tuple(alert.active_tags()),
                          actor.user, now_ms)  # fmt: skip

    def record_feedback(
        self, alert_id: str, cause: str, measures: str, actor: Actor, now_ms: int
    ) -> Alert:
        """Record the written feedback (cause and measures); both must be non-empty."""
        alert = self._open(alert_id)
        if not cause.strip() or not measures.strip():
            raise LifecycleError("bad_feedback", "cause and measures are both required")
        alert.feedback = Feedback(cause.strip(), measures.strip(), actor.user, now_ms)
        alert.record(now_ms, "feedback", actor.user)
        return alert

    def clear(self, alert_id: str, actor: Actor, now_ms: int) -> list[Intent]:
        """消警: needs normal condition, feedback, and for orange/red the confirming regulator."""
        alert = self._open(alert_id)
        if not alert.normal:
            raise LifecycleError("not_normal", "the value is not back inside its limit yet")
        needs_feedback = self.policy.deadlines_for(alert.max_colour) is not None
        if needs_feedback and alert.feedback is None:
            raise LifecycleError("no_feedback", "record cause and measures before clearance")
        confirm = self.policy.clearance.confirm_tier.get(alert.max_colour)
        if confirm is not None and actor.tier < confirm:
            raise LifecycleError(
                "needs_regulator",
                f"a {alert.max_colour.label} alert is cleared by the {confirm.label} regulator",
            )
        self._close(alert, now_ms, actor.user, "clearance")
        return [self._intent(alert, "cleared", f"{alert.id}:cleared", now_ms, alert.notified)]

    def shelve(self, alert_id: str, actor: Actor, until_ms: int, reason: str, now_ms: int) -> Alert:
        """Shelve/silence until `until_ms`: no reminders or escalation meanwhile."""
        alert = self._open(alert_id)
        if until_ms <= now_ms:
            raise LifecycleError("bad_expiry", "the shelve expiry must be in the future")
        alert.shelved_until_ms, alert.shelved_by = until_ms, actor.user
        alert.record(now_ms, "shelve", actor.user, until_ms=until_ms, reason=reason)
        return alert

    # -- timers ------------------------------------------------------------------------------
    def tick(self, now_ms: int) -> list[Intent]:
        """Reminders, escalations, overdue feedback, shelve expiry, flood ends due at `now_ms`."""
        intents: list[Intent] = []
        for enterprise in self.flood.enterprises():
            held = self.flood.check_end(enterprise, now_ms)
            if held is not None:
                intents.append(self._flood_end(enterprise, f"{enterprise}:{now_ms}", now_ms, held))
        for alert in self.active():
            self.touched.add(alert.id)
            if alert.shelved_until_ms is not None and now_ms >= alert.shelved_until_ms:
                alert.record(now_ms, "unshelve")
                alert.shelved_until_ms = None
            if alert.shelved(now_ms):
                continue
            if alert.kind == "data_quality":
                intents.extend(self._data_quality_timer(alert, now_ms, alert.id))
            intents.extend(self._ack_timer(alert, now_ms))
            overdue = alert.feedback_due_ms is not None and now_ms >= alert.feedback_due_ms
            if overdue and alert.feedback is None and not alert.feedback_reminded:
                alert.feedback_reminded = True
                key = f"{alert.id}:feedback_overdue"
                intents.append(self._intent(alert, "feedback_overdue", key, now_ms, alert.notified))
        return intents

    def _ack_timer(self, alert: Alert, now_ms: int) -> list[Intent]:
        if alert.acknowledged or alert.ack_due_ms is None or now_ms < alert.ack_due_ms:
            return []
        step = f"{alert.colour.label}:{alert.ack_due_ms}"
        if alert.reminded_ms is None:
            alert.reminded_ms = now_ms
            alert.record(now_ms, "reminder")
            key = f"{alert.id}:reminder:{step}"
            return [self._intent(alert, "reminder", key, now_ms, alert.notified)]
        deadlines = self.policy.deadlines_for(alert.colour)
        assert deadlines is not None
        if now_ms < alert.reminded_ms + int(deadlines.escalate_after * 1000):
            return []
        above = next_tier(max(alert.notified, default=Tier.ENTERPRISE))
        if above is None:
            return []
        alert.escalations += 1
        alert.reminded_ms = now_ms  # the next tier gets the same grace before the one above
        alert.record(now_ms, "escalate", tier=above.label)
        key = f"{alert.id}:escalation:{step}:{above.label}"
        detail = f"超过确认时限未确认，升级推送至{_TIER_CN[above]}"
        return [self._intent(alert, "escalation", key, now_ms, [above], detail)]

    def delivery_failure(
        self, alert_id: str, recipient: str, tier: Tier, reason: str, now_ms: int
    ) -> Intent | None:
        """A notification went to the dead-letter: tell the next tier (province: same tier)."""
        alert = self.alerts.get(alert_id)
        if alert is None:
            return None
        self.touched.add(alert_id)
        target = next_tier(tier) or tier
        alert.record(now_ms, "delivery_failure", recipient=recipient, reason=reason)
        detail = f"向{recipient}的推送失败（{reason}）"
        key = f"{alert_id}:delivery_failure:{recipient}:{now_ms}"
        intent = self._intent(alert, "delivery_failure", key, now_ms, [target], detail)
        return Intent(intent.key, intent.notice, intent.tiers,
                      {**intent.labels, "type": "delivery_failure"})  # fmt: skip


_TIER_CN = {Tier.ENTERPRISE: "企业", Tier.COUNTY: "县级", Tier.CITY: "市级", Tier.PROVINCE: "省级"}
