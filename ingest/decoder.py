"""The pure gateway-payload decoder: bytes + topic → accepted readings and counted rejections.

`Decoder.decode(topic, payload, now_ms)` never raises: every input gets a `Decoded` verdict.
Message-level problems (size, UTF-8, JSON, header types, identity, sequence) refuse the whole
message; point-level problems (unknown or foreign tag, NaN/inf, bad or skewed time, bad quality)
refuse only that point, so one bad point does not sink the good points of its message.

The clock is injected (`now_ms`), the sequence state lives in `SequenceTracker`, and nothing here
touches the network: the paho adapter and the `decode` command share this one implementation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from ingest import protocol
from ingest.directory import GatewayDirectory, GatewayEntry
from ingest.points import (
    MISSING,
    PointChecker,
    RefusedError,
    compact_form,
    kind_name,
    object_form,
)
from ingest.reasons import Reason, Rejection, RejectionCounters, shown
from ingest.results import Decoded, GatewayStatus, MessageKind
from ingest.sequence import SequenceTracker, SeqVerdict
from ingest.times import time_ms

_TOPIC_CACHE = 4096  # split topics kept; a flood of new topic names only empties the cache
_MAX_SEQ = 2**63 - 1  # Kafka headers and InfluxDB fields carry seq as a signed 64-bit integer
_SEQ_REASONS = {
    SeqVerdict.DUPLICATE: Reason.DUPLICATE_SEQUENCE,
    SeqVerdict.REPLAY: Reason.REPLAYED_SEQUENCE,
}


@dataclass(frozen=True, slots=True)
class DecoderLimits:
    """Size limits and the accepted clock skew of point times, in milliseconds."""

    max_payload_bytes: int = protocol.MAX_PAYLOAD_BYTES
    max_points: int = protocol.MAX_POINTS
    max_future_ms: int = 5 * 60_000  # gateway clocks run ahead; beyond 5 min it is wrong
    max_past_ms: int = 7 * 86_400_000  # gateways upload buffered data after outages of days


class Decoder:
    """Decodes gateway messages for one plant; owns the per-gateway sequence state."""

    def __init__(
        self, directory: GatewayDirectory, prefix: str, limits: DecoderLimits | None = None
    ) -> None:
        self.directory = directory
        self.prefix = prefix.rstrip("/")
        self.limits = limits or DecoderLimits()
        self.counters = RejectionCounters()
        self.sequences = SequenceTracker()
        self._topic_head = self.prefix + "/"
        self._topics: dict[str, tuple[str, str, MessageKind]] = {}

    def decode(self, topic: str, payload: bytes, now_ms: int) -> Decoded:
        """The verdict on one message received at `now_ms` (epoch ms); never raises."""
        enterprise = gateway = ""
        kind = MessageKind.UNKNOWN
        try:
            enterprise, gateway, kind = self._split_topic(topic)
            if len(payload) > self.limits.max_payload_bytes:
                raise RefusedError(
                    Reason.OVERSIZE,
                    "payload",
                    f"{len(payload)} bytes > limit {self.limits.max_payload_bytes}",
                )
            body = _parse_json(payload)
            entry = self._identify(body, enterprise, gateway)
            if kind is MessageKind.STATUS:
                result = self._status(topic, body, entry)
            else:
                result = self._telemetry(topic, body, entry, now_ms)
        except RefusedError as refused:
            result = self._refused(topic, kind, enterprise, gateway, refused.rejection)
        except Exception as exc:  # last line of defence: nothing raises out of the callback
            detail = f"{type(exc).__name__}: {exc}"
            result = self._refused(
                topic, kind, enterprise, gateway, Rejection(Reason.DECODER_ERROR, "payload", detail)
            )
        self.counters.count(result.accepted, result.rejections)
        return result

    def _refused(
        self, topic: str, kind: MessageKind, enterprise: str, gateway: str, rejection: Rejection
    ) -> Decoded:
        return Decoded(topic, kind, enterprise, gateway, None, None, (), (), (), (), (rejection,))

    def _split_topic(self, topic: str) -> tuple[str, str, MessageKind]:
        # Gateways publish to the same few topics all day: split each one once.
        split = self._topics.get(topic)
        if split is None:
            split = self._split_new_topic(topic)
            if len(self._topics) >= _TOPIC_CACHE:
                self._topics.clear()
            self._topics[topic] = split
        return split

    def _split_new_topic(self, topic: str) -> tuple[str, str, MessageKind]:
        parts = topic[len(self._topic_head) :].split("/")
        if not topic.startswith(self._topic_head) or len(parts) != 3 or not all(parts):
            raise RefusedError(
                Reason.BAD_TOPIC,
                "topic",
                f"{shown(topic)} is not {self.prefix}/<enterprise>/<gateway>/telemetry|status",
            )
        enterprise, gateway, kind = parts
        if kind == protocol.TELEMETRY:
            return enterprise, gateway, MessageKind.TELEMETRY
        if kind == protocol.STATUS:
            return enterprise, gateway, MessageKind.STATUS
        raise RefusedError(
            Reason.BAD_TOPIC, "topic", f"last level {shown(kind)} is not telemetry|status"
        )

    def _identify(self, body: Any, enterprise: str, gateway: str) -> GatewayEntry:
        if type(body) is not dict:
            raise RefusedError(
                Reason.WRONG_TYPE, "payload", f"expected a JSON object, got {kind_name(body)}"
            )
        version = body.get("v", MISSING)
        if version is MISSING:
            raise RefusedError(Reason.MISSING_FIELD, "v", "protocol version `v` is required")
        if type(version) is not int or version != protocol.PROTOCOL_VERSION:
            raise RefusedError(
                Reason.UNSUPPORTED_VERSION,
                "v",
                f"{shown(version)}; this decoder speaks v{protocol.PROTOCOL_VERSION}",
            )
        gw = _field(body, "gw", str)
        if gw != gateway:
            raise RefusedError(
                Reason.GATEWAY_MISMATCH, "gw", f"payload says {shown(gw)}, topic says {gateway!r}"
            )
        entry = self.directory.gateways.get(gateway)
        if entry is None:
            raise RefusedError(
                Reason.UNKNOWN_GATEWAY, "gw", f"{gateway!r} is not registered in the plant"
            )
        if entry.enterprise != enterprise:
            raise RefusedError(
                Reason.ENTERPRISE_MISMATCH,
                "topic",
                f"gateway {gateway!r} belongs to enterprise {entry.enterprise!r}, "
                f"topic names {enterprise!r}",
            )
        return entry

    def _status(self, topic: str, body: dict[str, Any], entry: GatewayEntry) -> Decoded:
        state = _field(body, "state", str)
        if state not in ("online", "offline"):
            raise RefusedError(Reason.WRONG_TYPE, "state", f"{shown(state)} is not online|offline")
        ts_ms = _time_field(body, "ts")
        if state == "online":
            self.sequences.new_session(entry.id, ts_ms)
        status = GatewayStatus(entry.id, entry.enterprise, state, ts_ms)
        kind = MessageKind.STATUS
        return Decoded(
            topic, kind, entry.enterprise, entry.id, None, None, (), (), (), (), (), status
        )

    def _telemetry(
        self, topic: str, body: dict[str, Any], entry: GatewayEntry, now_ms: int
    ) -> Decoded:
        seq = _field(body, "seq", int)
        if isinstance(seq, bool) or not 0 <= seq <= _MAX_SEQ:
            raise RefusedError(Reason.WRONG_TYPE, "seq", f"{shown(seq)} is not an integer 0…2⁶³−1")
        sent_ms = _time_field(body, "sent")
        if "points" in body:
            columns = object_form(body["points"], self.limits.max_points)
        elif "tags" in body:
            columns = compact_form(body, self.limits.max_points)
        else:
            raise RefusedError(
                Reason.MISSING_FIELD, "points", "need `points` or `tags`/`ts`/`vals`"
            )
        verdict = self.sequences.check(entry.id, seq, sent_ms)
        if verdict in _SEQ_REASONS:
            highest = self.sequences.highest(entry.id)
            raise RefusedError(
                _SEQ_REASONS[verdict], "seq", f"{seq} already seen (highest {highest})"
            )
        out = PointChecker(
            self.directory,
            entry,
            now_ms - self.limits.max_past_ms,
            now_ms + self.limits.max_future_ms,
        )
        out.check_all(*columns)
        self.sequences.commit(entry.id, seq, sent_ms, verdict)
        return Decoded(
            topic,
            MessageKind.TELEMETRY,
            entry.enterprise,
            entry.id,
            seq,
            sent_ms,
            tuple(out.tag_index),
            tuple(out.ts_ms),
            tuple(out.values),
            tuple(out.quality),
            tuple(out.rejections),
            None,
            self.directory.tag_ids,
        )


def _parse_json(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as bad:
            detail = f"byte {bad.start}: {bad.reason}"
            raise RefusedError(Reason.INVALID_UTF8, "payload", detail) from None
        # orjson refuses NaN/Infinity and numbers beyond double range; the standard library
        # reads them as floats, so such points are refused one by one as not_finite instead of
        # sinking every good point of the batch.
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise RefusedError(Reason.INVALID_JSON, "payload", str(exc)) from None


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name, MISSING)
    if value is MISSING:
        raise RefusedError(Reason.MISSING_FIELD, name, f"`{name}` is required")
    if type(value) is not kind:
        raise RefusedError(Reason.WRONG_TYPE, name, f"{shown(value)}: expected {kind.__name__}")
    return value


def _time_field(body: dict[str, Any], name: str) -> int:
    value = body.get(name, MISSING)
    if value is MISSING:
        raise RefusedError(Reason.MISSING_FIELD, name, f"`{name}` is required")
    ms = time_ms(value)
    if ms is None:
        raise RefusedError(Reason.BAD_TIME, name, f"{shown(value)}: not epoch ms or RFC 3339")
    return ms
