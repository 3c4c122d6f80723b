"""The alerts HTTP API over a real local server: scopes per tier and region on every route."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerting.api import make_app
from alerting.auth import TokenEntry, TokenStore, token_hash
from alerting.commands import CommandQueue
from alerting.openapi import ROUTES, openapi_document
from alerting.outbox import Outbox
from alerting.policy import routing_from_mapping
from alerting.routing import EnterpriseArea
from alerting.samples import sample_routing
from alerting.service import AlertService
from hazardwatch.types import Tier

pytestmark = pytest.mark.integration
T0 = 1_767_225_600_000
AREAS = {
    "QZ-PETRO": EnterpriseArea("QZ-PETRO", "湄洲湾储运", "350521", "tank_farm"),
    "JJ-CHEM": EnterpriseArea("JJ-CHEM", "晋江化工", "350582", "hazardous_chemicals"),
}
USERS = {
    "control": ("wang", Tier.ENTERPRISE, "QZ-PETRO"),
    "huian": ("li", Tier.COUNTY, "350521"),
    "jinjiang": ("lin", Tier.COUNTY, "350582"),
    "city": ("chen", Tier.CITY, "350500"),
    "province": ("zhao", Tier.PROVINCE, "350000"),
}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], AlertService]]:
    clock = [T0]
    service = AlertService(routing_from_mapping(sample_routing()), Outbox(tmp_path / "o.db"),
                           AREAS, lambda: clock[0], commands=CommandQueue())  # fmt: skip
    for enterprise, eid in (("QZ-PETRO", "q1"), ("JJ-CHEM", "j1")):
        service.handle({"id": eid, "ts": T0, "type": "risk", "enterprise": enterprise,
                        "source": "S", "colour": "orange", "previous": "blue"})  # fmt: skip
    tokens = TokenStore(tuple(TokenEntry(user=u, tier=t, area=a, sha256=token_hash(name))
                              for name, (u, t, a) in USERS.items()))  # fmt: skip
    async with TestClient(TestServer(make_app(service, tokens))) as test_client:
        yield test_client, service


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


BODIES: dict[str, Any] = {
    "feedback": {"cause": "阀门内漏", "measures": "更换阀门"},
    "shelve": {"duration_s": 600, "reason": "检修"},
}


@pytest.mark.parametrize("route", [r for r in ROUTES if r.auth], ids=lambda r: r.name)
async def test_every_route_needs_a_token_and_respects_scope(
    client: tuple[TestClient[Any, Any], AlertService], route: Any
) -> None:
    http, _service = client
    path = route.path.replace("{id}", "A-q1")
    body = BODIES.get(route.name, {})
    for headers in ({}, auth("stolen"), {"Authorization": "Basic huian"}):
        response = await http.request(route.method, path, headers=headers, json=body)
        assert response.status == 401
    response = await http.request(route.method, path, headers=auth("jinjiang"), json=body)
    if "{id}" in route.path:
        assert response.status == 404  # Jinjiang's county cannot see or touch Huian's alert
    else:
        ids = [a["id"] for a in (await response.json())["alerts"]]
        assert ids == ["A-j1"]
    response = await http.request(route.method, path, headers=auth("huian"), json=body)
    assert response.status in (200, 409), await response.text()


async def test_scopes_widen_with_tier(client: tuple[TestClient[Any, Any], AlertService]) -> None:
    http, _ = client
    seen = {}
    for name in USERS:
        response = await http.get("/api/v1/alerts", headers=auth(name))
        seen[name] = sorted(a["id"] for a in (await response.json())["alerts"])
    assert seen == {"control": ["A-q1"], "huian": ["A-q1"], "jinjiang": ["A-j1"],
                    "city": ["A-j1", "A-q1"], "province": ["A-j1", "A-q1"]}  # fmt: skip


async def test_closed_loop_over_http(client: tuple[TestClient[Any, Any], AlertService]) -> None:
    http, service = client
    [listed] = (await (await http.get("/api/v1/alerts", headers=auth("control"))).json())["alerts"]
    assert listed["ack_due_ms"] == T0 + 30 * 60_000 and listed["colour"] == "orange"
    response = await http.post("/api/v1/alerts/A-q1/ack", headers=auth("control"))
    assert (await response.json())["command"]["user"] == "wang"
    assert service.commands is not None and len(service.commands.drain()) == 1  # type: ignore[attr-defined]
    service.handle({"id": "q2", "ts": T0 + 1, "type": "risk", "enterprise": "QZ-PETRO",
                    "source": "S", "colour": "blue", "previous": "orange"})  # fmt: skip
    response = await http.post("/api/v1/alerts/A-q1/clear", headers=auth("city"))
    assert response.status == 409 and (await response.json())["error"] == "no_feedback"
    response = await http.post("/api/v1/alerts/A-q1/feedback", headers=auth("control"),
                               json={"cause": "", "measures": "x"})  # fmt: skip
    assert response.status == 400
    await http.post(
        "/api/v1/alerts/A-q1/feedback", headers=auth("control"), json=BODIES["feedback"]
    )
    response = await http.post("/api/v1/alerts/A-q1/clear", headers=auth("huian"))
    assert (await response.json())["error"] == "needs_regulator"
    response = await http.post("/api/v1/alerts/A-q1/clear", headers=auth("city"))
    assert response.status == 200 and (await response.json())["cleared_by"] == "chen"
    listed = await (await http.get("/api/v1/alerts", headers=auth("control"))).json()
    assert listed["alerts"] == []


async def test_shelve_validates_expiry(client: tuple[TestClient[Any, Any], AlertService]) -> None:
    http, _ = client
    for bad in ({"duration_s": 0}, {"duration_s": "1h"}, {"duration_s": 10**9}):
        response = await http.post("/api/v1/alerts/A-q1/shelve", headers=auth("huian"), json=bad)
        assert response.status == 400


async def test_openapi_document_is_served_and_committed(
    client: tuple[TestClient[Any, Any], AlertService],
) -> None:
    http, _ = client
    served = await (await http.get("/api/v1/openapi.json")).json()
    committed = json.loads((Path(__file__).parents[2] / "alerting/openapi.json").read_text())
    assert served == committed == json.loads(json.dumps(openapi_document()))
    assert {r.path for r in ROUTES} == set(served["paths"])
