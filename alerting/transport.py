"""The one HTTP client adapter of alerting: sends a channel's `HttpRequest`, returns the answer.

It uses aiohttp's client, not httpx: with 32 requests in flight httpx's connection pool spent
more time assigning requests to connections than sending them (about 100 requests/s against a
local receiver that takes 3,000/s; encode/httpx#3215), and aiohttp is already a dependency for
the API. Connection errors and timeouts become a retryable `Verdict` upstream via
`TransportError`. Redirects are not followed: a webhook answering 3xx is misconfigured.
"""

from __future__ import annotations

import aiohttp

from alerting.channels.base import HttpRequest, HttpResponse
from hazardwatch.errors import HazardwatchError


class TransportError(HazardwatchError):
    """The request did not get an HTTP answer (refused, reset, timed out)."""


class Transport:
    """A pooled async HTTP client; close it with `aclose()`.

    The session is opened on the first send, inside the event loop that delivers, so the
    transport can be built before that loop exists (the embedded runner does).
    """

    def __init__(self, timeout_s: float = 10.0, max_connections: int = 64) -> None:
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                cookie_jar=aiohttp.DummyCookieJar(),  # receivers must not share state
            )
        return self._session

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send the request exactly as built (the body is what was signed)."""
        try:
            async with self._client().request(
                request.method, request.url, headers=request.headers, data=request.body,
                allow_redirects=False,
            ) as response:  # fmt: skip
                body = await response.read()
                headers = {k.lower(): v for k, v in response.headers.items()}
                return HttpResponse(response.status, headers, body)
        except TimeoutError as exc:
            raise TransportError(f"timeout after {self.timeout_s:g} s") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
