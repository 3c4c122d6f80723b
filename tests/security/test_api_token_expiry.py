"""API tokens with an `expires` instant, over the real aiohttp API on a local port.

A token is honoured strictly before its RFC 3339 expiry and refused from that instant with a 401
that says why; the refusal is counted in /healthz and logged once per user, never with the token.
Tokens without `expires` live as before.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerting.api import make_app
from alerting.auth import TokenStore, token_hash
from alerting.commands import CommandQueue
from alerting.openapi import ROUTES
from alerting.outbox import Outbox
from alerting.policy import load_routing
from alerting.service import AlertService, areas_from_plant
from hazardwatch.plant.loader import ConfigFileError
from tests.security.plant import HUIAN, QUANZHOU, security_plant, write_policy

pytestmark = pytest.mark.integration
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
EXPIRES_MS = T0 + 3_600_000  # the temporary token's end: 2026-01-01T09:00+08:00 = 01:00Z
TEMP = "tok-temp-audit-58d1c2"
FOREVER = "tok-huian-6c1f9e"
Client = TestClient[Any, Any]
SCOPED = [r for r in ROUTES if r.auth]
BODIES: dict[str, Any] = {
    "feedback": {"cause": "阀门内漏", "measures": "更换阀门"},
    "shelve": {"duration_s": 600, "reason": "检修"},
}


def write_tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(
        "tokens:\n"
        f'  - {{user: li, tier: county, area: "{HUIAN}", sha256: "{token_hash(FOREVER)}"}}\n'
        f'  - {{user: temp.audit, tier: city, area: "{QUANZHOU}", '
        f'sha256: "{token_hash(TEMP)}", expires: 2026-01-01T09:00:00+08:00}}\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Client, AlertService, list[int]]]:
    plant = security_plant(tmp_path)
    policy = load_routing(write_policy(tmp_path, "http://127.0.0.1:9"))
    clock = [T0]
    service = AlertService(policy, Outbox(tmp_path / "outbox.db"), areas_from_plant(plant),
                           lambda: clock[0], commands=CommandQueue())  # fmt: skip
    service.handle({"id": "a1", "ts": T0, "type": "risk", "enterprise": "SEC-A",
                    "source": "SEC-A-TF1", "colour": "orange", "previous": "blue"})  # fmt: skip
    tokens = TokenStore.load(write_tokens(tmp_path))
    async with TestClient(TestServer(make_app(service, tokens))) as client:
        yield client, service, clock


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_works_until_its_expiry_then_every_route_refuses_it(
    api: tuple[Client, AlertService, list[int]], caplog: pytest.LogCaptureFixture
) -> None:
    http, service, clock = api
    caplog.set_level(logging.DEBUG)
    clock[0] = EXPIRES_MS - 1
    response = await http.get("/api/v1/alerts", headers=bearer(TEMP))
    assert response.status == 200
    assert [a["id"] for a in (await response.json())["alerts"]] == ["A-a1"]

    clock[0] = EXPIRES_MS  # the expiry instant itself is too late
    for route in SCOPED:
        before = service.book.alerts["A-a1"].to_dict(), service.outbox.notifications()
        path = route.path.replace("{id}", "A-a1")
        response = await http.request(route.method, path, headers=bearer(TEMP),
                                      json=BODIES.get(route.name, {}))  # fmt: skip
        assert response.status == 401, route.name
        body = await response.json()
        assert body["error"] == "token_expired"
        assert "2026-01-01T01:00:00Z" in body["message"]
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert (service.book.alerts["A-a1"].to_dict(), service.outbox.notifications()) == before

    health = await (await http.get("/healthz")).json()
    assert health["api"]["auth_refused"] == {"expired": len(SCOPED)}
    refusals = [r for r in caplog.records if r.name == "alerting.api"]
    assert [r.levelno for r in refusals].count(logging.WARNING) == 1  # once per user
    assert "temp.audit" in refusals[0].getMessage()
    for record in caplog.records:  # neither the token nor its stored hash in any log line
        text = record.getMessage() + str(record.exc_text or "")
        assert TEMP not in text and token_hash(TEMP) not in text


async def test_a_token_without_expiry_still_works_and_unknown_ones_stay_unauthorized(
    api: tuple[Client, AlertService, list[int]],
) -> None:
    http, _service, clock = api
    clock[0] = T0 + 10 * 365 * 86_400_000  # ten years on
    assert (await http.get("/api/v1/alerts", headers=bearer(FOREVER))).status == 200
    for headers, reason in ((bearer("tok-guessed"), "unknown"), ({}, "missing")):
        response = await http.get("/api/v1/alerts", headers=headers)
        assert response.status == 401
        assert (await response.json())["error"] == "unauthorized"
        health = await (await http.get("/healthz")).json()
        assert health["api"]["auth_refused"].get(reason) == 1


@pytest.mark.parametrize(
    ("expires", "problem"),
    [
        ("2026-01-01T09:00:00", "timezone"),  # no offset: which 09:00?
        ('"tomorrow"', "datetime"),
        ('"2026-02-30T00:00:00Z"', "datetime"),
    ],
)
def test_an_expiry_without_an_offset_or_not_a_timestamp_is_a_config_error(
    tmp_path: Path, expires: str, problem: str
) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(
        "tokens:\n"
        f'  - {{user: li, tier: county, area: "{HUIAN}", sha256: "{token_hash(FOREVER)}"}}\n'
        f'  - {{user: x, tier: county, area: "{HUIAN}", sha256: "{token_hash(TEMP)}",\n'
        f"     expires: {expires}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigFileError) as error:
        TokenStore.load(path)
    text = str(error.value)
    assert f"{path}:" in text and "expires" in text and problem in text.lower()
