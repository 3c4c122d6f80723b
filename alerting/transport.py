"""The one httpx adapter: sends a channel's `HttpRequest`, returns an `HttpResponse`.

Connection errors and timeouts become a retryable `Verdict` upstream via `TransportError`.
"""

from __future__ import annotations

import httpx

from alerting.channels.base import HttpRequest, HttpResponse
from hazardwatch.errors import HazardwatchError


class TransportError(HazardwatchError):
    """The request did not get an HTTP answer (refused, reset, timed out)."""


class Transport:
    """A pooled async HTTP client; close it with `aclose()`."""

    def __init__(self, timeout_s: float = 10.0, max_connections: int = 64) -> None:
        limits = httpx.Limits(max_connections=max_connections)
        self._client = httpx.AsyncClient(timeout=timeout_s, limits=limits)

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send the request exactly as built (the body is what was signed)."""
        try:
            response = await self._client.request(
                request.method, request.url, headers=request.headers, content=request.body
            )
        except httpx.TimeoutException as exc:
            raise TransportError(f"timeout: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        headers = {k.lower(): v for k, v in response.headers.items()}
        return HttpResponse(response.status_code, headers, response.content)

    async def aclose(self) -> None:
        """Close the pool."""
        await self._client.aclose()
