"""What every channel shares: the HTTP request/response records and the delivery verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
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


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds from a `Retry-After: <seconds>` header; None if absent or a date."""
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify_status(response: HttpResponse) -> Verdict:
    """Generic HTTP verdict: 2xx delivered; 408, 425, 429 and 5xx retry; other 4xx permanent."""
    status = response.status
    snippet = response.body[:200].decode("utf-8", "replace")
    if 200 <= status < 300:
        return Verdict("delivered", f"HTTP {status}")
    if status in (408, 425, 429) or status >= 500:
        return Verdict("retry", f"HTTP {status} {snippet}", retry_after(response.headers))
    return Verdict("permanent", f"HTTP {status} {snippet}")
