"""Gateway protocol v1: MQTT topics and payloads (docs/gateway-protocol.md is the contract).

Pure helpers that gateways, simulators and tests call to speak the protocol; the decoder is the
other half. Nothing here touches the network.

Topics (prefix from settings, `hw/v1`):

    {prefix}/{enterprise}/{gateway}/telemetry     QoS 1, one gateway batch per message
    {prefix}/{enterprise}/{gateway}/status        QoS 1, retained; also the gateway's LWT
    {prefix}/deadletter/{enterprise}/{gateway}/{kind}   rejected messages with reasons

Times are epoch milliseconds (UTC) or RFC 3339 strings with an offset; `encode_*` always write
epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

import orjson

PROTOCOL_VERSION: Final = 1
"""The `v` field of every payload. A breaking change gets v2 and a new topic prefix `hw/v2`."""

MAX_PAYLOAD_BYTES: Final = 256 * 1024
"""Default largest accepted payload; bigger messages are rejected as `oversize`."""

MAX_POINTS: Final = 5000
"""Default largest number of points in one telemetry message (`too_many_points`)."""

TELEMETRY: Final = "telemetry"
STATUS: Final = "status"
DEADLETTER: Final = "deadletter"

GatewayState = Literal["online", "offline"]
Point = tuple[str, int, float, int]
"""(tag id, ts epoch ms, value in the tag's unit, quality: 0 = good)."""


def telemetry_topic(prefix: str, enterprise: str, gateway: str) -> str:
    """Topic a gateway publishes its telemetry batches to."""
    return f"{prefix}/{enterprise}/{gateway}/{TELEMETRY}"


def status_topic(prefix: str, enterprise: str, gateway: str) -> str:
    """Topic of a gateway's retained online/offline status (and its last will)."""
    return f"{prefix}/{enterprise}/{gateway}/{STATUS}"


def telemetry_filter(prefix: str, share_group: str | None = None) -> str:
    """Subscription filter for every gateway's telemetry, optionally as `$share/<group>/…`."""
    return _shared(f"{prefix}/+/+/{TELEMETRY}", share_group)


def status_filter(prefix: str, share_group: str | None = None) -> str:
    """Subscription filter for every gateway's status, optionally as `$share/<group>/…`."""
    return _shared(f"{prefix}/+/+/{STATUS}", share_group)


def deadletter_topic(prefix: str, enterprise: str, gateway: str, kind: str) -> str:
    """Dead-letter topic of a rejected message; `_` stands for a part the topic did not name.

    Five levels below the prefix, so it never matches the `+/+/telemetry` subscriptions.
    """
    return f"{prefix}/{DEADLETTER}/{enterprise or '_'}/{gateway or '_'}/{kind or '_'}"


def _shared(topic_filter: str, share_group: str | None) -> str:
    return f"$share/{share_group}/{topic_filter}" if share_group else topic_filter


def encode_batch(gateway: str, seq: int, sent_ms: int, points: Sequence[Point]) -> bytes:
    """Telemetry payload v1, object form; `q` is written only when non-zero.

    `points` are (tag, ts_ms, value, quality); NaN/inf values are encoded as JSON null (the
    decoder then rejects that point as `not_finite`, as it would a gateway's `NaN`).
    """
    body: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "gw": gateway,
        "seq": seq,
        "sent": sent_ms,
        "points": [
            {"tag": tag, "v": value, "ts": ts_ms, "q": quality}
            if quality
            else {"tag": tag, "v": value, "ts": ts_ms}
            for tag, ts_ms, value, quality in points
        ],
    }
    return orjson.dumps(body)


def encode_compact(gateway: str, seq: int, sent_ms: int, points: Sequence[Point]) -> bytes:
    """Telemetry payload v1, compact array form for high-rate gateways.

    Parallel arrays `tags`, `ts`, `vals` and (only if any point is not good) `q`. When every
    point shares one sample time, `ts` is written as that single number.
    """
    tags = [p[0] for p in points]
    times = [p[1] for p in points]
    body: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "gw": gateway,
        "seq": seq,
        "sent": sent_ms,
        "tags": tags,
        "ts": times[0] if times and all(t == times[0] for t in times) else times,
        "vals": [p[2] for p in points],
    }
    if any(p[3] for p in points):
        body["q"] = [p[3] for p in points]
    return orjson.dumps(body)


def encode_status(gateway: str, state: GatewayState, ts_ms: int) -> bytes:
    """Status payload v1 (publish retained; the `offline` form is the gateway's last will)."""
    return orjson.dumps({"v": PROTOCOL_VERSION, "gw": gateway, "state": state, "ts": ts_ms})
