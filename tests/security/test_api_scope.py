"""The alerts API over a real local HTTP server: scope on every route, and only valid tokens.

County A (惠安) must not see or change county B's (晋江) alerts, on any route, and a refused request
changes nothing: not the alert, not the outbox, not the engine's command queue. Refusals for
out-of-scope alerts are indistinguishable from unknown ids, so scopes do not leak alert ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerting.api import make_app
from alerting.auth import TokenEntry, TokenStore, token_hash
from alerting.commands import CommandQueue
from alerting.openapi import ROUTES
from alerting.outbox import Outbox
from alerting.policy import load_routing
from alerting.service import AlertService, areas_from_plant
from hazardwatch.types import Tier
from tests.security.plant import HUIAN, JINJIANG, QUANZHOU, security_plant, write_policy

pytestmark = pytest.mark.integration
T0 = 1_767_225_600_000
Client = TestClient[Any, Any]

# token → (user, tier, area)
USERS: dict[str, tuple[str, Tier, str]] = {
    "tok-huian-6c1f9e": ("li", Tier.COUNTY, HUIAN),
    "tok-jinjiang-0b7d2a": ("lin", Tier.COUNTY, JINJIANG),
    "tok-sec-a-4e8b13": ("wang", Tier.ENTERPRISE, "SEC-A"),
    "tok-sec-b-91c5f0": ("zhou", Tier.ENTERPRISE, "SEC-B"),
    "tok-quanzhou-7a2e44": ("chen", Tier.CITY, QUANZHOU),
    "tok-xiamen-d3f8a1": ("xu", Tier.CITY, "350200"),  # another city of the same province
    "tok-zhejiang-5b0c9e": ("qian", Tier.PROVINCE, "330000"),  # another province
}
OWNER = {"A-a1": "tok-huian-6c1f9e", "A-b1": "tok-jinjiang-0b7d2a"}
OUTSIDERS = {  # alert → tokens that must not reach it
    "A-a1": ["tok-jinjiang-0b7d2a", "tok-sec-b-91c5f0", "tok-xiamen-d3f8a1", "tok-zhejiang-5b0c9e"],
    "A-b1": ["tok-huian-6c1f9e", "tok-sec-a-4e8b13", "tok-xiamen-d3f8a1", "tok-zhejiang-5b0c9e"],
}
BODIES: dict[str, Any] = {
    "feedback": {"cause": "阀门内漏", "measures": "更换阀门"},
    "shelve": {"duration_s": 600, "reason": "检修"},
}
MUTATING = [r for r in ROUTES if r.method == "POST"]
SCOPED = [r for r in ROUTES if r.auth]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Client, AlertService]]:
    plant = security_plant(tmp_path)
    policy = load_routing(write_policy(tmp_path, "http://127.0.0.1:9"))
    service = AlertService(policy, Outbox(tmp_path / "outbox.db"), areas_from_plant(plant),
                           lambda: T0 + 60_000, commands=CommandQueue())  # fmt: skip
    for enterprise, event_id in (("SEC-A", "a1"), ("SEC-B", "b1")):
        source = f"{enterprise}-TF1"
        service.handle({"id": event_id, "ts": T0, "type": "risk", "enterprise": enterprise,
                        "source": source, "colour": "orange", "previous": "blue"})  # fmt: skip
    assert set(service.book.alerts) == {"A-a1", "A-b1"}
    tokens = TokenStore(tuple(TokenEntry(user=u, tier=t, area=a, sha256=token_hash(token))
                              for token, (u, t, a) in USERS.items()))  # fmt: skip
    async with TestClient(TestServer(make_app(service, tokens))) as client:
        yield client, service


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def snapshot(service: AlertService) -> tuple[Any, ...]:
    """Everything a request could change: alerts, queued notifications, engine commands."""
    alerts = {i: a.to_dict() for i, a in service.book.alerts.items()}
    assert isinstance(service.commands, CommandQueue)
    return alerts, service.outbox.notifications(), len(service.commands)


def path_of(route: Any, alert_id: str) -> str:
    return str(route.path).replace("{id}", alert_id)


@pytest.mark.parametrize("route", SCOPED, ids=lambda r: r.name)
async def test_out_of_scope_users_are_refused_and_change_nothing(
    api: tuple[Client, AlertService], route: Any
) -> None:
    http, service = api
    body = BODIES.get(route.name, {})
    for alert_id, outsiders in OUTSIDERS.items():
        for token in outsiders:
            before = snapshot(service)
            response = await http.request(route.method, path_of(route, alert_id),
                                          headers=bearer(token), json=body)  # fmt: skip
            if "{id}" in route.path:
                assert response.status == 404, (route.name, alert_id, token)
                unknown = await http.request(route.method, path_of(route, "A-nope"),
                                             headers=bearer(token), json=body)  # fmt: skip
                # same status and body as an id that does not exist: no leak of alert ids
                assert (unknown.status, await unknown.read()) == (404, await response.read())
            else:  # the list: only alerts in the caller's own scope
                listed = {a["id"] for a in (await response.json())["alerts"]}
                assert alert_id not in listed, (token, listed)
            assert snapshot(service) == before, (route.name, alert_id, token)


@pytest.mark.parametrize("route", MUTATING, ids=lambda r: r.name)
async def test_the_owner_can_do_what_outsiders_cannot(
    api: tuple[Client, AlertService], route: Any
) -> None:
    """Control for the test above: the same requests are well-formed and work in scope."""
    http, service = api
    service.handle({"id": "a2", "ts": T0 + 1, "type": "risk", "enterprise": "SEC-A",
                    "source": "SEC-A-TF1", "colour": "blue", "previous": "orange"})  # fmt: skip
    if route.name == "clear":  # clearance needs feedback first and the city (orange)
        await http.post("/api/v1/alerts/A-a1/feedback", headers=bearer("tok-sec-a-4e8b13"),
                        json=BODIES["feedback"])  # fmt: skip
    before = snapshot(service)
    token = "tok-quanzhou-7a2e44" if route.name == "clear" else OWNER["A-a1"]
    response = await http.request(route.method, path_of(route, "A-a1"), headers=bearer(token),
                                  json=BODIES.get(route.name, {}))  # fmt: skip
    assert response.status == 200, await response.text()
    assert snapshot(service) != before


def bad_credentials() -> dict[str, dict[str, str]]:
    good = "tok-huian-6c1f9e"
    return {
        "no header": {},
        "empty bearer": {"Authorization": "Bearer "},
        "unknown token": bearer("tok-huian-000000"),
        "one character changed": bearer(good[:-1] + "f"),
        "truncated": bearer(good[:-1]),
        "extended": bearer(good + "0"),
        "the stored hash itself": bearer(token_hash(good)),  # a leaked tokens file is not a key
        "hash of the hash": bearer(hashlib.sha256(token_hash(good).encode()).hexdigest()),
        "basic scheme": {"Authorization": f"Basic {good}"},
        "two tokens": {"Authorization": f"Bearer tok-unknown, Bearer {good}"},
        "token in query, not header": {"X-Token": good},
        "non-ascii": {"Authorization": "Bearer tök-huian"},
    }


@pytest.mark.parametrize("route", SCOPED, ids=lambda r: r.name)
async def test_bad_tokens_are_refused_and_change_nothing(
    api: tuple[Client, AlertService], route: Any
) -> None:
    http, service = api
    path = path_of(route, "A-a1") + ("?token=tok-huian-6c1f9e" if route.method == "GET" else "")
    for what, headers in bad_credentials().items():
        before = snapshot(service)
        response = await http.request(route.method, path, headers=headers,
                                      json=BODIES.get(route.name, {}))  # fmt: skip
        assert response.status == 401, (route.name, what)
        assert (await response.json())["error"] == "unauthorized"
        assert snapshot(service) == before, (route.name, what)
