"""The command platform push (指挥平台): one JSON endpoint per tier.

`POST {url}/warnings/{tier}` (tier = enterprise, county, city, province) with
`Authorization: Bearer <token>`, `Idempotency-Key` and this body (docs/alerting.md):

    {"id": "<notification key>", "alert": "A-…", "kind": "raise", "colour": "orange",
     "enterprise": {"id": …, "name": …}, "source": {"id": …, "name": …},
     "tags": [{"tag", "condition", "value", "unit"}], "time": "<RFC 3339>",
     "ack_due": "<RFC 3339>|null", "feedback_due": …, "text": "<Chinese text>"}

The platform answers 2xx (accepted, or a duplicate id) or an error status.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from alerting.channels.base import HttpRequest
from alerting.messages import Notice, sms_text


def _rfc3339(ts_ms: int | None) -> str | None:
    if ts_ms is None:
        return None
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def platform_request(url: str, token: str, notice: Notice, key: str) -> HttpRequest:
    """The POST to the tier's endpoint of the command platform."""
    tier = notice.tier.label if notice.tier is not None else "enterprise"
    body = {
        "id": key,
        "alert": notice.alert_id,
        "kind": notice.kind,
        "colour": notice.colour.label if notice.colour else None,
        "enterprise": {"id": notice.enterprise, "name": notice.enterprise_name},
        "source": {"id": notice.source, "name": notice.source_name} if notice.source else None,
        "tags": [
            {"tag": t.tag, "condition": t.condition, "value": t.value, "unit": t.unit}
            for t in notice.tags
        ],
        "time": _rfc3339(notice.ts_ms),
        "ack_due": _rfc3339(notice.ack_due_ms),
        "feedback_due": _rfc3339(notice.feedback_due_ms),
        "text": sms_text(notice),
    }
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": key,
    }
    return HttpRequest("POST", f"{url.rstrip('/')}/warnings/{tier}", headers, orjson.dumps(body))
