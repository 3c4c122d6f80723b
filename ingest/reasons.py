"""Why a message or a point was refused: machine-readable reasons, rejections and their counters.

Reason values are persisted (dead-letter records, Kafka dead-letter topic, metric labels): they
are part of the protocol and are never renamed, only added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """A rejection reason; message-level reasons refuse every point of the message."""

    # message level
    OVERSIZE = "oversize"
    BAD_TOPIC = "bad_topic"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    UNSUPPORTED_VERSION = "unsupported_version"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    TOO_MANY_POINTS = "too_many_points"
    ARRAY_LENGTH_MISMATCH = "array_length_mismatch"
    GATEWAY_MISMATCH = "gateway_mismatch"
    UNKNOWN_GATEWAY = "unknown_gateway"
    ENTERPRISE_MISMATCH = "enterprise_mismatch"
    DUPLICATE_SEQUENCE = "duplicate_sequence"
    REPLAYED_SEQUENCE = "replayed_sequence"
    # point level (WRONG_TYPE and MISSING_FIELD also occur per point)
    UNKNOWN_TAG = "unknown_tag"
    TAG_NOT_ON_GATEWAY = "tag_not_on_gateway"
    CROSS_ENTERPRISE_TAG = "cross_enterprise_tag"
    NOT_FINITE = "not_finite"
    BAD_TIME = "bad_time"
    TIME_IN_FUTURE = "time_in_future"
    TIME_TOO_OLD = "time_too_old"
    BAD_QUALITY = "bad_quality"
    # a bug in the decoder itself, caught so the MQTT callback never raises; tests assert 0
    DECODER_ERROR = "decoder_error"


IDEMPOTENT_DROPS = frozenset({Reason.DUPLICATE_SEQUENCE})
"""Reasons that mean "already delivered": counted, but not worth a dead-letter record."""

_MAX_VALUE_CHARS = 120


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refusal: the reason, the offending part (`seq`, `points[3].v`, `topic`) and detail."""

    reason: Reason
    part: str
    detail: str

    def to_json(self) -> dict[str, str]:
        """JSON-able form used by dead-letter records and `hazardwatch decode`."""
        return {"reason": self.reason.value, "part": self.part, "detail": self.detail}


def shown(value: object) -> str:
    """The offending value as short text for a rejection's detail (truncated to 120 chars)."""
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


class RejectionCounters:
    """Plain counters per reason plus message and reading totals (exported by ingest.metrics).

    Not thread-safe on purpose: one decoder thread owns it; readers take `snapshot()`.
    """

    __slots__ = ("_by_reason", "messages", "messages_with_rejections", "readings_accepted")

    def __init__(self) -> None:
        self._by_reason: dict[Reason, int] = dict.fromkeys(Reason, 0)
        self.messages = 0
        self.readings_accepted = 0
        self.messages_with_rejections = 0

    def count(self, accepted: int, rejections: Iterable[Rejection]) -> None:
        """Record one decoded message: its accepted readings and its rejections."""
        self.messages += 1
        self.readings_accepted += accepted
        any_rejection = False
        for rejection in rejections:
            self._by_reason[rejection.reason] += 1
            any_rejection = True
        if any_rejection:
            self.messages_with_rejections += 1

    def __getitem__(self, reason: Reason) -> int:
        """Rejections counted for `reason` so far."""
        return self._by_reason[reason]

    def snapshot(self) -> Mapping[str, int]:
        """Every counter by name: `messages`, `readings_accepted`, … and one per reason."""
        out = {
            "messages": self.messages,
            "readings_accepted": self.readings_accepted,
            "messages_with_rejections": self.messages_with_rejections,
        }
        out.update({f"rejected_{reason.value}": n for reason, n in self._by_reason.items()})
        return out
