"""Webhook channel: JSON body, HMAC-SHA256 signature over `timestamp.body`, replay window.

Headers sent:

- `X-Hazardwatch-Timestamp`: Unix seconds when signed;
- `X-Hazardwatch-Signature`: `v1=` + hex HMAC-SHA256(secret, f"{timestamp}.".encode() + body);
- `Idempotency-Key`: the notification's key — the same on every retry.

Receivers call `verify_webhook` (also used by the security tests): it rejects a bad signature
and any timestamp more than `window_s` (default 300 s) away from the receiver's clock, so a
captured request cannot be replayed later; within the window the idempotency key dedupes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

from alerting.channels.base import HttpRequest
from hazardwatch.errors import HazardwatchError

TIMESTAMP_HEADER = "X-Hazardwatch-Timestamp"
SIGNATURE_HEADER = "X-Hazardwatch-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_WINDOW_S = 300


class WebhookRejectedError(HazardwatchError):
    """A webhook request failed verification; `reason` is `missing_header`, `bad_signature`,
    `stale_timestamp` or `bad_timestamp`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 of `"{timestamp}." + body` keyed by the shared secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def webhook_request(
    url: str, secret: str, payload: Mapping[str, Any], key: str, now_s: int
) -> HttpRequest:
    """The signed POST of `payload` as JSON; `now_s` Unix seconds."""
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        TIMESTAMP_HEADER: str(now_s),
        SIGNATURE_HEADER: signature(secret, now_s, body),
        IDEMPOTENCY_HEADER: key,
    }
    return HttpRequest("POST", url, headers, body)


def verify_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, now_s: float,
    window_s: float = REPLAY_WINDOW_S,
) -> None:  # fmt: skip
    """Check signature and freshness of a received webhook; raises WebhookRejectedError.

    `headers` may use any case of the header names; `now_s` is the receiver's Unix time.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    stamp = lower.get(TIMESTAMP_HEADER.lower())
    given = lower.get(SIGNATURE_HEADER.lower())
    if stamp is None or given is None:
        raise WebhookRejectedError("missing_header")
    # ASCII digits only: int() would also accept other scripts' digits and surrounding spaces.
    if not (stamp.isascii() and stamp.lstrip("-").isdigit()):
        raise WebhookRejectedError("bad_timestamp")
    timestamp = int(stamp)
    # Bytes, not str: compare_digest raises TypeError on non-ASCII text, which would turn a
    # forged header into a receiver error instead of a refusal.
    expected = signature(secret, timestamp, body).encode()
    if not hmac.compare_digest(expected, given.encode("utf-8", "surrogateescape")):
        raise WebhookRejectedError("bad_signature")
    if abs(now_s - timestamp) > window_s:
        raise WebhookRejectedError("stale_timestamp")
