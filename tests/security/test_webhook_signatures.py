"""Webhook signatures: what `verify_webhook` accepts, and every tampering or replay it refuses.

A receiver following docs/security.md — `verify_webhook`, then de-duplication on the signed body's
`key` — accepts each notification once: a captured request replayed later is stale, replayed at
once is a duplicate, and changing the unsigned `Idempotency-Key` header does not get it in again.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.channels.webhook import (
    IDEMPOTENCY_HEADER,
    REPLAY_WINDOW_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRejectedError,
    signature,
    verify_webhook,
    webhook_request,
)

SECRET = "whsec-3f9a1c77e0b24d58"
NOW = 1_767_225_600
PAYLOAD = {"key": "A-1/huian-safety/0", "alert": "A-1", "colour": "orange", "text": "液位高高"}


def signed(payload: dict[str, Any] = PAYLOAD, now_s: int = NOW) -> tuple[dict[str, str], bytes]:
    request = webhook_request("http://127.0.0.1:9/hook", SECRET, payload, payload["key"], now_s)
    return dict(request.headers), request.body


def reason(headers: dict[str, str], body: bytes, now_s: float = NOW, secret: str = SECRET) -> str:
    try:
        verify_webhook(secret, headers, body, now_s)
    except WebhookRejectedError as exc:
        return exc.reason
    return "accepted"


def test_a_signed_request_is_accepted_with_any_header_case() -> None:
    headers, body = signed()
    assert reason(headers, body) == "accepted"
    assert reason({k.lower(): v for k, v in headers.items()}, body) == "accepted"
    assert reason({k.upper(): v for k, v in headers.items()}, body, NOW + REPLAY_WINDOW_S) == (
        "accepted"
    )


def test_tampering_is_refused() -> None:
    headers, body = signed()
    ts = int(headers[TIMESTAMP_HEADER])
    other_body = orjson.dumps({**PAYLOAD, "colour": "blue"}, option=orjson.OPT_SORT_KEYS)
    cases = {
        "body changed": (headers, other_body, "bad_signature"),
        "same JSON, other key order": (headers, orjson.dumps(dict(reversed(PAYLOAD.items()))),
                                       "bad_signature"),
        "timestamp moved": ({**headers, TIMESTAMP_HEADER: str(ts + 1)}, body, "bad_signature"),
        "signature of another body": ({**headers, SIGNATURE_HEADER: signature(SECRET, ts,
                                                                              other_body)},
                                      body, "bad_signature"),
        "wrong secret": ({**headers, SIGNATURE_HEADER: signature("guess", ts, body)}, body,
                         "bad_signature"),
        "bare hex, no v1=": ({**headers, SIGNATURE_HEADER: headers[SIGNATURE_HEADER][3:]}, body,
                             "bad_signature"),
        "upper-case hex": ({**headers, SIGNATURE_HEADER: headers[SIGNATURE_HEADER].upper()}, body,
                           "bad_signature"),
        "truncated signature": ({**headers, SIGNATURE_HEADER: headers[SIGNATURE_HEADER][:-2]},
                                body, "bad_signature"),
        "no signature": ({TIMESTAMP_HEADER: str(ts)}, body, "missing_header"),
        "no timestamp": ({SIGNATURE_HEADER: headers[SIGNATURE_HEADER]}, body, "missing_header"),
        "timestamp not a number": ({**headers, TIMESTAMP_HEADER: "soon"}, body, "bad_timestamp"),
    }  # fmt: skip
    for what, (h, b, expected) in cases.items():
        assert reason(h, b) == expected, what


def test_a_captured_request_replayed_later_is_stale() -> None:
    headers, body = signed()
    assert reason(headers, body, NOW + REPLAY_WINDOW_S + 1) == "stale_timestamp"
    assert reason(headers, body, NOW - REPLAY_WINDOW_S - 1) == "stale_timestamp"  # from the future
    # re-signing needs the secret: a fresh timestamp with the old signature is refused
    fresh = {**headers, TIMESTAMP_HEADER: str(NOW + 3600)}
    assert reason(fresh, body, NOW + 3600) == "bad_signature"


class CarefulReceiver:
    """The receiver docs/security.md describes: verify, then accept each signed `key` once."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.accepted = 0

    def receive(self, headers: dict[str, str], body: bytes, now_s: float) -> int:
        try:
            verify_webhook(SECRET, headers, body, now_s)
        except WebhookRejectedError:
            return 401
        key = orjson.loads(body)["key"]  # signed, unlike the Idempotency-Key header
        if key in self.seen:
            return 200  # already processed: acknowledged, not acted on again
        self.seen.add(key)
        self.accepted += 1
        return 204


def test_replays_within_the_window_are_deduplicated_by_the_signed_key() -> None:
    receiver = CarefulReceiver()
    headers, body = signed()
    assert receiver.receive(headers, body, NOW) == 204
    assert receiver.receive(headers, body, NOW + 5) == 200  # replayed at once
    forged_key = {**headers, IDEMPOTENCY_HEADER: "something-new"}
    assert receiver.receive(forged_key, body, NOW + 6) == 200  # header is not what counts
    # the dispatcher's own retry re-signs with a new timestamp and the same key
    retry_headers, retry_body = signed(now_s=NOW + 30)
    assert retry_headers[IDEMPOTENCY_HEADER] == headers[IDEMPOTENCY_HEADER]
    assert receiver.receive(retry_headers, retry_body, NOW + 30) == 200
    assert receiver.receive(headers, body, NOW + REPLAY_WINDOW_S + 60) == 401  # and later: stale
    assert receiver.accepted == 1


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
    char=st.characters(min_codepoint=32, max_codepoint=126),
    part=st.sampled_from(["body", "signature", "timestamp"]),
)
def test_any_single_change_is_refused(position: int, flip: int, char: str, part: str) -> None:
    headers, body = signed()
    if part == "body":
        data = bytearray(body)
        data[position % len(data)] ^= flip
        assert reason(headers, bytes(data)) != "accepted"
        return
    header = SIGNATURE_HEADER if part == "signature" else TIMESTAMP_HEADER
    text = list(headers[header])
    at = position % len(text)
    text[at] = char if char != text[at] else "~"
    assert reason({**headers, header: "".join(text)}, body) != "accepted"


def test_a_non_ascii_signature_is_refused_not_a_crash() -> None:
    """A receiver answers 401, not 500, to a forged header in any script."""
    headers, body = signed()
    assert reason({**headers, SIGNATURE_HEADER: "v1=é" + "0" * 63}, body) == "bad_signature"


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from([TIMESTAMP_HEADER, SIGNATURE_HEADER, "x-other"]),
        st.text(max_size=80),
    ),
    body=st.binary(max_size=200),
    now_s=st.floats(allow_nan=False, allow_infinity=False),
)
def test_arbitrary_requests_get_a_named_refusal(
    headers: dict[str, str], body: bytes, now_s: float
) -> None:
    """Never an exception other than WebhookRejectedError, whatever the request."""
    assert reason(headers, body, now_s) in {"missing_header", "bad_timestamp", "bad_signature",
                                            "stale_timestamp"}  # fmt: skip


def test_a_timestamp_in_other_digits_is_refused() -> None:
    """`int()` reads Arabic-Indic digits; the signed timestamp header must be ASCII."""
    headers, body = signed()
    stamp = headers[TIMESTAMP_HEADER]
    other = "".join(chr(0x0660 + int(d)) for d in stamp)
    assert reason({**headers, TIMESTAMP_HEADER: other}, body) == "bad_timestamp"
