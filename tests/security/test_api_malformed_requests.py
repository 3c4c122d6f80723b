"""Malformed HTTP requests to the alerts API: one log line each, no traceback, no request bytes.

aiohttp by itself logs a request its parser refuses at ERROR with a traceback and the raw bytes
(a header's token included), so any client could fill the log. Raw sockets against the real
aiohttp server on a local port send what no HTTP client library would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerting.api import make_app
from alerting.auth import TokenEntry, TokenStore, token_hash
from alerting.outbox import Outbox
from alerting.policy import load_routing
from alerting.service import AlertService, areas_from_plant
from hazardwatch.types import Tier
from tests.security.plant import HUIAN, security_plant, write_policy

pytestmark = pytest.mark.integration
T0 = 1_767_225_600_000
TOKEN = "tok-huian-6c1f9e"
SECRET = "s3cret-in-a-header"
Client = TestClient[Any, Any]

MALFORMED = {  # what the client sends → the reason the log line must give
    "unknown HTTP version": (b"GET /api/v1/alerts HTTP/9.9\r\nHost: x\r\n\r\n", "version"),
    "control character in the path": (b"GET /api/v1/al\x01erts HTTP/1.1\r\nHost: x\r\n\r\n",
                                       "url"),
    "token in a header with a NUL": (
        b"GET /api/v1/alerts?token=" + SECRET.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\x00" + SECRET.encode() + b"\r\n\r\n",
        "header",
    ),
    "header line without a colon": (b"GET / HTTP/1.1\r\nHost: x\r\nX-" + SECRET.encode() +
                                    b"\r\n\r\n", "header"),
    "request line over 8 KiB": (b"GET /" + SECRET.encode() * 600 + b" HTTP/1.1\r\n\r\n",
                                "bytes"),
}  # fmt: skip


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Client, AlertService]]:
    plant = security_plant(tmp_path)
    policy = load_routing(write_policy(tmp_path, "http://127.0.0.1:9"))
    service = AlertService(policy, Outbox(tmp_path / "outbox.db"), areas_from_plant(plant),
                           lambda: T0)  # fmt: skip
    tokens = TokenStore((TokenEntry(user="li", tier=Tier.COUNTY, area=HUIAN,
                                    sha256=token_hash(TOKEN)),))  # fmt: skip
    async with TestClient(TestServer(make_app(service, tokens))) as client:
        yield client, service


async def send_raw(client: Client, raw: bytes) -> bytes:
    """Write `raw` on a fresh TCP connection and read the answer until the server closes."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    return answer


def assert_no_secret_and_no_traceback(records: list[logging.LogRecord]) -> None:
    for record in records:
        text = record.getMessage()
        assert record.exc_info is None and record.exc_text is None, text  # no traceback
        assert record.levelno < logging.ERROR, text
        assert SECRET not in text and TOKEN not in text, text


@pytest.mark.parametrize("case", MALFORMED, ids=str)
async def test_a_malformed_request_is_one_warning_line_without_traceback_or_bytes(
    api: tuple[Client, AlertService], caplog: pytest.LogCaptureFixture, case: str
) -> None:
    http, _service = api
    raw, reason = MALFORMED[case]
    caplog.set_level(logging.DEBUG)
    answer = await send_raw(http, raw)
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    lines = [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]
    [line] = lines
    assert line.levelno == logging.WARNING and line.name == "alerting.api"
    assert line.getMessage().startswith("malformed HTTP request from 127.0.0.1 refused with 400")
    assert reason in line.getMessage().lower()
    assert not [r for r in caplog.records if r.name == "aiohttp.server"]  # nothing of its own
    assert_no_secret_and_no_traceback(caplog.records)
    health = await (await http.get("/healthz")).json()
    assert health["api"]["malformed_requests"] == 1


async def test_each_of_many_malformed_requests_is_counted_and_logged_once(
    api: tuple[Client, AlertService], caplog: pytest.LogCaptureFixture
) -> None:
    http, _service = api
    caplog.set_level(logging.DEBUG)
    for raw, _reason in MALFORMED.values():
        await send_raw(http, raw)
    # Not HTTP at all on a fresh connection (a scanner, TLS on the HTTP port): aiohttp's own
    # choice of DEBUG is kept, as one line.
    await send_raw(http, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")
    lines = [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.WARNING] * len(MALFORMED) + [logging.DEBUG]
    assert_no_secret_and_no_traceback(caplog.records)
    health = await (await http.get("/healthz")).json()
    assert health["api"]["malformed_requests"] == len(MALFORMED) + 1
    ok = await http.get("/api/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200  # the server still answers well-formed requests


async def test_a_failure_inside_a_handler_keeps_its_error_and_traceback(
    api: tuple[Client, AlertService],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Control: only the parser's refusals are reduced; a bug of ours still logs its traceback."""
    http, service = api

    def broken(_actor: Any) -> list[Any]:
        raise RuntimeError("bug in the list route")

    monkeypatch.setattr(service, "alerts_for", broken)
    response = await http.get("/api/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 500
    [error] = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert error.levelno == logging.ERROR and error.exc_info is not None
    health = await (await http.get("/healthz")).json()
    assert health["api"]["malformed_requests"] == 0
