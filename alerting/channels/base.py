"""What every channel shares: the HTTP request/response records and the delivery verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Literal

Outcome = Literal["delivered", "retry", "permanent"]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request a channel wants sent; `body` is the exact bytes that were signed."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What came back; header names lower-case."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Verdict:
    """A channel's judgement of one attempt: delivered, retry (maybe after N s) or permanent."""

    outcome: Outcome
    detail: str
    retry_after_s: float | None = None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds a `Retry-After` header asks for (RFC 9110: delay-seconds or an HTTP-date).

    A date is read against the response's own `Date` header, so the sender's clock does not
    matter; None when absent, unreadable, or a date without a `Date` header.
    """
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    until, sent = _http_date(value), _http_date(headers.get("date"))
    if until is None or sent is None:
        return None
    return max(0.0, (until - sent).total_seconds())


def classify_status(response: HttpResponse) -> Verdict:
    """Generic HTTP verdict: 2xx delivered; 408, 425, 429 and 5xx retry; other 4xx permanent."""
    status = response.status
    snippet = response.body[:200].decode("utf-8", "replace")
    if 200 <= status < 300:
        return Verdict("delivered", f"HTTP {status}")
    if status in (408, 425, 429) or status >= 500:
        return Verdict("retry", f"HTTP {status} {snippet}", retry_after(response.headers))
    return Verdict("permanent", f"HTTP {status} {snippet}")
