"""The alerts HTTP API (aiohttp): list, acknowledge, feedback, clear, shelve; bearer tokens.

Every route except /healthz and the OpenAPI document needs a token; an alert outside the
caller's scope answers 404, exactly like an unknown one, so scopes do not leak alert ids. A
refused token answers 401 with a reason (`unauthorized` for a missing or unknown token,
`token_expired` for an expired one) and is counted in /healthz under `api.auth_refused`; the
token itself is never logged. A malformed request (bad request line, header or URL) is one
WARNING line naming the peer and the parser's reason — not aiohttp's ERROR with a traceback and
the raw bytes, which let a client fill the log and could echo a header's secret — and is counted
under `api.malformed_requests`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from alerting.alerts import Actor, Alert
from alerting.auth import TokenRefusedError, TokenStore
from alerting.lifecycle import LifecycleError
from alerting.openapi import ROUTES, openapi_document
from alerting.service import AlertService

log = logging.getLogger(__name__)


@dataclass
class ApiMetrics:
    """Counters of the API's edge, shown in /healthz under `api`."""

    auth_refused: Counter[str] = field(default_factory=Counter)  # by reason
    expired_users: set[str] = field(default_factory=set)  # logged once each, then only counted
    malformed_requests: int = 0

    def snapshot(self) -> dict[str, Any]:
        """The JSON form for /healthz."""
        return {
            "auth_refused": dict(self.auth_refused),
            "malformed_requests": self.malformed_requests,
        }


class ServerLog:
    """Stands in for aiohttp's `aiohttp.server` logger in the API's request handlers.

    aiohttp reports a request its parser refuses through `logger.exception` (ERROR and a
    traceback; `logger.debug` for a bad method on a connection's first request), with the raw
    request bytes in the message. Those become one line on `alerting.api` without traceback or
    bytes — WARNING, or DEBUG where aiohttp chose DEBUG — and a count; anything else passes
    through unchanged.
    """

    def __init__(self, metrics: ApiMetrics) -> None:
        self._metrics = metrics
        self._log = logging.getLogger("aiohttp.server")

    def exception(self, msg: str, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        """ERROR with traceback, unless it is a malformed request."""
        if not self._malformed(logging.WARNING, args, exc_info):
            self._log.exception(msg, *args, exc_info=exc_info, **kwargs)

    def debug(self, msg: str, *args: Any, exc_info: Any = None, **kwargs: Any) -> None:
        """DEBUG, with a malformed request reduced to one line."""
        if not self._malformed(logging.DEBUG, args, exc_info):
            self._log.debug(msg, *args, exc_info=exc_info, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    def _malformed(self, level: int, args: tuple[Any, ...], exc: Any) -> bool:
        if not isinstance(exc, HttpProcessingError) or not 400 <= exc.code < 500:
            return False
        self._metrics.malformed_requests += 1
        peer = args[0] if args else "?"
        log.log(level, "malformed HTTP request from %s refused with %d: %s (%s)", peer, exc.code,
                type(exc).__name__, parser_reason(exc))  # fmt: skip
        return True


_QUOTED = re.compile(r"""b?['"]""")


def parser_reason(exc: HttpProcessingError) -> str:
    """The parser's reason without the request bytes it quotes (they may hold a token)."""
    text = exc.message.split("\n\n", 1)[0]  # the C parser appends the bytes after a blank line
    text = _QUOTED.split(text, maxsplit=1)[0]  # the Python parser quotes them inline
    text = " ".join(text.split()).rstrip(" :.")
    return text[:120] or "no reason given"


SERVICE = web.AppKey("service", AlertService)
TOKENS = web.AppKey("tokens", TokenStore)
METRICS = web.AppKey("metrics", ApiMetrics)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": code, "message": message}, status)


def _actor(request: web.Request) -> Actor:
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    return request.app[TOKENS].authenticate(token, request.app[SERVICE].clock_ms())


def _refused(request: web.Request, exc: TokenRefusedError) -> web.Response:
    metrics = request.app[METRICS]
    metrics.auth_refused[exc.reason] += 1
    if exc.reason == "expired":
        # Once per user at WARNING (someone must renew it); a client retrying with it would
        # otherwise fill the log. Never the token: the user and the expiry say enough.
        user = exc.user or "?"
        level = logging.DEBUG if user in metrics.expired_users else logging.WARNING
        metrics.expired_users.add(user)
        log.log(level, "API token of user %s refused: %s", user, exc)
        response = _error(401, "token_expired", f"{exc}; ask for a new token")
        description = "The access token expired"
        response.headers["WWW-Authenticate"] = (
            f'Bearer error="invalid_token", error_description="{description}"'
        )
        return response
    response = _error(401, "unauthorized", "missing or unknown bearer token")
    response.headers["WWW-Authenticate"] = (
        "Bearer" if exc.reason == "missing" else 'Bearer error="invalid_token"'
    )
    return response


def _scoped(
    handler: Callable[[web.Request, Actor, Alert | None], Awaitable[web.Response]],
) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            actor = _actor(request)
        except TokenRefusedError as exc:
            return _refused(request, exc)
        service = request.app[SERVICE]
        alert = None
        if "id" in request.match_info:
            alert = service.book.alerts.get(request.match_info["id"])
            if alert is None or not service.visible(actor, alert):
                return _error(404, "not_found", "no such alert in your scope")
        try:
            return await handler(request, actor, alert)
        except LifecycleError as exc:
            return _error(404 if exc.code == "not_found" else 409, exc.code, str(exc))

    return wrapped


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"bad JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def _view(service: AlertService, alert: Alert, full: bool = False) -> dict[str, Any]:
    data = alert.to_dict() if full else alert.summary()
    if full:  # the audit trail: every notification of the alert and each of its attempts
        deliveries = service.outbox.notifications(alert.id)
        for delivery in deliveries:
            delivery["audit"] = service.outbox.audit(delivery["id"])
        data["deliveries"] = deliveries
    return data


async def health(request: web.Request) -> web.Response:
    """Liveness plus outbox counts and rejected events."""
    service = request.app[SERVICE]
    counts = {"outbox": service.outbox.counts(), "rejected": dict(service.rejected)}
    api = request.app[METRICS].snapshot()
    return _json({"ok": True, **counts, "counters": service.book.counters, "api": api})


async def openapi(_request: web.Request) -> web.Response:
    """The OpenAPI document."""
    return _json(openapi_document())


async def list_alerts(request: web.Request, actor: Actor, _a: Alert | None) -> web.Response:
    """Active alerts in scope."""
    service = request.app[SERVICE]
    return _json({"alerts": [_view(service, a) for a in service.alerts_for(actor)]})


async def get_alert(request: web.Request, _actor: Actor, alert: Alert | None) -> web.Response:
    """One alert with its history, its deliveries and their attempts."""
    assert alert is not None
    return _json(_view(request.app[SERVICE], alert, full=True))


async def acknowledge(request: web.Request, actor: Actor, alert: Alert | None) -> web.Response:
    """Acknowledge; returns the engine command."""
    assert alert is not None
    command = request.app[SERVICE].acknowledge(alert.id, actor)
    return _json({"command": command.to_dict()})


async def feedback(request: web.Request, actor: Actor, alert: Alert | None) -> web.Response:
    """Record cause and measures."""
    assert alert is not None
    data = await _body(request)
    cause, measures = data.get("cause"), data.get("measures")
    if not isinstance(cause, str) or not isinstance(measures, str):
        return _error(400, "bad_feedback", "cause and measures must be strings")
    try:
        updated = request.app[SERVICE].feedback(alert.id, cause, measures, actor)
    except LifecycleError as exc:
        if exc.code == "bad_feedback":
            return _error(400, exc.code, str(exc))
        raise
    return _json(updated.summary())


async def clear(request: web.Request, actor: Actor, alert: Alert | None) -> web.Response:
    """消警."""
    assert alert is not None
    return _json(request.app[SERVICE].clear(alert.id, actor).summary())


async def shelve(request: web.Request, actor: Actor, alert: Alert | None) -> web.Response:
    """Shelve/silence for `duration_s` seconds (at most 7 days)."""
    assert alert is not None
    data = await _body(request)
    duration = data.get("duration_s")
    if isinstance(duration, bool) or not isinstance(duration, int | float):
        return _error(400, "bad_duration", "duration_s must be a number")
    if not 0 < duration <= 604_800:
        return _error(400, "bad_duration", "duration_s must be in (0, 604800]")
    service = request.app[SERVICE]
    until = service.clock_ms() + int(duration * 1000)
    updated = service.shelve(alert.id, actor, until, str(data.get("reason", "")))
    return _json(updated.summary())


_HANDLERS: dict[str, Handler] = {
    "health": health,
    "openapi": openapi,
    "list_alerts": _scoped(list_alerts),
    "get_alert": _scoped(get_alert),
    "acknowledge": _scoped(acknowledge),
    "feedback": _scoped(feedback),
    "clear": _scoped(clear),
    "shelve": _scoped(shelve),
}


def make_app(service: AlertService, tokens: TokenStore) -> web.Application:
    """The aiohttp application serving ROUTES (see alerting/openapi.py)."""
    metrics = ApiMetrics()
    app = web.Application(handler_args={"logger": ServerLog(metrics)})
    app[SERVICE] = service
    app[TOKENS] = tokens
    app[METRICS] = metrics
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _HANDLERS[route.name])
    return app
