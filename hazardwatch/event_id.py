"""The deterministic id every event carries (engine events and gateway events alike)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson


def with_event_id(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with `id` first: 24 hex digits of a BLAKE2b hash of its content (sorted keys), so
    a redelivered event has the same id and alerting drops the second copy."""
    digest = hashlib.blake2b(orjson.dumps(body, option=orjson.OPT_SORT_KEYS), digest_size=12)
    return {"id": digest.hexdigest(), **body}
