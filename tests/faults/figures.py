"""What a fault run measured: alerts expected vs delivered, readings published vs stored, recovery.

Alerts are compared twice. By idempotency key: the exact notifications the reference predicts.
By what a user sees (recipient, kind, enterprise, hazard source, colour and, for alarm notices,
the tags and conditions): this tells a *lost* warning (expected, never accepted) from a
*duplicate* one (accepted more often than expected, i.e. the same warning under another key,
which no receiver can drop) and from an *unexpected* one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.faults.receiver import WebhookLog
from tests.faults.workload import ExpectedNotice

Identity = tuple[Any, ...]


def identity(recipient: str, notice: Mapping[str, Any]) -> Identity:
    """What a user would call "the same warning"."""
    kind = notice.get("kind")
    tags: tuple[tuple[str, str], ...] = ()
    if kind == "alarm":
        tags = tuple(sorted((t.get("tag", ""), t.get("condition", "")) for t in notice["tags"]))
    return (
        recipient,
        kind,
        notice.get("enterprise"),
        notice.get("source"),
        notice.get("colour"),
        tags,
    )


@dataclass
class AlertFigures:
    """Webhook notifications: expected, accepted by the receiver, and the differences."""

    expected: int
    delivered: int
    lost: list[str]
    duplicates: list[str]
    unexpected: list[str]
    keys_matched: int
    unpredicted: list[str]  # accepted keys the reference did not predict: key, kind, plant time
    redeliveries: int  # same key received again and dropped by the receiver
    requests: int
    bad_signatures: int


def compare_alerts(expected: Iterable[ExpectedNotice], log: WebhookLog) -> AlertFigures:
    """Compare the receiver's log with the reference notifications."""
    expected = list(expected)
    accepted = list(log.accepted.values())
    want = Counter(identity(e.recipient, e.notice) for e in expected)
    got = Counter(
        identity(a.notice.get("recipient", a.path.strip("/")), a.notice) for a in accepted
    )
    lost = want - got
    extra = got - want
    return AlertFigures(
        expected=len(expected),
        delivered=len(accepted),
        lost=[repr(i) for i in lost.elements()],
        duplicates=[repr(i) for i in extra.elements() if i in want],
        unexpected=[repr(i) for i in extra.elements() if i not in want],
        keys_matched=len({e.key for e in expected} & set(log.accepted)),
        unpredicted=[
            f"{a.key} {a.notice.get('kind')} ts={a.notice.get('ts_ms')}"
            for a in accepted
            if a.key not in {e.key for e in expected}
        ],
        redeliveries=log.redeliveries,
        requests=log.requests,
        bad_signatures=len(log.rejected),
    )


def alerts_complete(expected: Iterable[ExpectedNotice], log: WebhookLog) -> bool:
    """True when every expected warning was accepted at least as often as expected."""
    want = Counter(identity(e.recipient, e.notice) for e in expected)
    got = Counter(
        identity(a.notice.get("recipient", a.path.strip("/")), a.notice)
        for a in list(log.accepted.values())
    )
    return not (want - got)


@dataclass
class ReadingFigures:
    """Readings acknowledged by the broker (QoS 1) vs found where the path stores them."""

    store: str  # "influxdb" or "kafka"
    published: int
    found: int
    series: int
    short_series: dict[str, tuple[int, int]]  # tag → (published, found) where they differ
    copies: int = 0  # Kafka only: records produced more than once (removed by (gw, seq, source))


def compare_readings(
    store: str, published: Counter[str], found: Mapping[str, int], copies: int = 0
) -> ReadingFigures:
    """Per-series comparison; `found` counts distinct readings per tag."""
    short = {t: (n, found.get(t, 0)) for t, n in published.items() if found.get(t, 0) != n}
    short.update({t: (0, n) for t, n in found.items() if t not in published})
    return ReadingFigures(
        store, sum(published.values()), sum(found.values()), len(published), short, copies
    )


@dataclass
class FaultReport:
    """One fault run; the test asserts on it and the suite prints it."""

    case: str
    fault: str
    seed: int
    alerts: AlertFigures | None = None
    readings: ReadingFigures | None = None
    recovery: dict[str, bool] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    error: str | None = None  # the case itself broke (traceback); figures may be partial

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    def summary(self) -> str:
        """One line for the terminal."""
        parts = [f"{self.case}:"]
        if self.alerts is not None:
            a = self.alerts
            parts.append(
                f"alerts {a.delivered}/{a.expected} lost {len(a.lost)} "
                f"dup {len(a.duplicates)} redelivered {a.redeliveries}"
            )
        if self.readings is not None:
            r = self.readings
            parts.append(
                f"readings {r.found}/{r.published} in {r.store} "
                f"({len(r.short_series)} series short)"
            )
        failed = [k for k, ok in self.recovery.items() if not ok]
        parts.append("recovered" if not failed else f"NOT recovered: {failed}")
        parts.append(f"{self.elapsed_s:.0f} s")
        return " | ".join(parts)
