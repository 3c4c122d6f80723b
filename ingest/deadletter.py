"""Dead-letter records: a refused message, its topic and every reason, as one JSON document.

The same record goes to the MQTT dead-letter topic (embedded runner) and to the Kafka
dead-letter topic (bridge). The original payload travels as text when it is valid UTF-8 and as
base64 otherwise, so an integrator can always recover the exact bytes the gateway sent.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from ingest.protocol import PROTOCOL_VERSION
from ingest.results import Decoded

MAX_LISTED_REJECTIONS = 200
"""A 5,000-point message of bad points lists its first 200 rejections; the total is kept."""


def deadletter_record(decoded: Decoded, payload: bytes, received_ms: int) -> bytes:
    """The dead-letter JSON of one message received at `received_ms` (epoch ms)."""
    try:
        text: str | None = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    record: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "topic": decoded.topic,
        "received_ms": received_ms,
        "kind": decoded.kind.value,
        "enterprise": decoded.enterprise,
        "gateway": decoded.gateway,
        "seq": decoded.seq,
        "accepted": decoded.accepted,
        "rejections_total": len(decoded.rejections),
        "reasons": sorted({r.reason.value for r in decoded.rejections}),
        "rejections": [r.to_json() for r in decoded.rejections[:MAX_LISTED_REJECTIONS]],
        "payload_encoding": "utf-8" if text is not None else "base64",
        "payload": text if text is not None else base64.b64encode(payload).decode("ascii"),
    }
    return orjson.dumps(record)


def original_payload(record: dict[str, Any]) -> bytes:
    """The exact bytes a dead-letter record carries (inverse of the payload encoding)."""
    if record["payload_encoding"] == "base64":
        return base64.b64decode(record["payload"])
    return str(record["payload"]).encode("utf-8")
