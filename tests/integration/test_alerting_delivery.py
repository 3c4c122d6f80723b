"""Delivery through real local HTTP receivers: webhook, SMS provider emulators, command platform.

The emulators check the providers' request formats and signatures with their own code (written
from the providers' documentation, not imported from alerting), so a signing bug fails here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
import pytest
from aiohttp import web

from alerting.channels.webhook import WebhookRejectedError, verify_webhook
from alerting.dispatcher import Dispatcher
from alerting.outbox import Outbox
from alerting.policy import RoutingPolicy, routing_from_mapping
from alerting.routing import EnterpriseArea
from alerting.samples import sample_routing
from alerting.sender import Sender
from alerting.service import AlertService
from alerting.transport import Transport

pytestmark = pytest.mark.integration

SECRETS = {"HW_WEBHOOK_SECRET": "wh-secret", "HW_ALIYUN_SECRET": "ali-secret",
           "HW_TENCENT_KEY": "tc-key", "HW_GATEWAY_TOKEN": "gw-token",
           "HW_PLATFORM_TOKEN": "pf-token"}  # fmt: skip
QZ = EnterpriseArea("QZ-PETRO", "湄洲湾储运", "350521", "tank_farm")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Receiver:
    """All receivers on one port; honours idempotency keys like a careful real receiver."""

    port: int
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    received: int = 0  # requests that reached a handler, counted before any delay
    active: int = 0  # requests being handled now
    rejected: list[str] = field(default_factory=list)
    fail_with: list[int] = field(default_factory=list)  # statuses to answer first, in order
    delay_s: float = 0.0
    runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _gate(self) -> web.Response | None:
        self.received += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_with:
            status = self.fail_with.pop(0)
            return web.Response(status=status, headers={"Retry-After": "0"} if status == 429
                                else None)  # fmt: skip
        return None

    def _accept(self, key: str, kind: str, data: dict[str, Any]) -> None:
        if key in self.accepted:
            self.duplicates += 1
        else:
            self.accepted[key] = {**data, "via": kind}

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify_webhook(SECRETS["HW_WEBHOOK_SECRET"], dict(request.headers), body, time.time())
        except WebhookRejectedError as exc:
            self.rejected.append(exc.reason)
            return web.Response(status=401)
        failed = await self._gate()
        if failed is not None:
            return failed
        self._accept(request.headers["Idempotency-Key"], "webhook", orjson.loads(body))
        return web.Response(status=204)

    async def aliyun(self, request: web.Request) -> web.Response:
        params = dict(parse_qsl((await request.read()).decode(), keep_blank_values=True))
        given = params.pop("Signature", "")

        def enc(s: str) -> str:
            return quote(s, safe="~").replace("+", "%20")

        canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
        to_sign = "POST&%2F&" + enc(canonical)
        mac = hmac.new(b"ali-secret&", to_sign.encode(), hashlib.sha1).digest()
        if base64.b64encode(mac).decode() != given:
            return web.json_response({"Code": "SignatureDoesNotMatch"}, status=400)
        for name, want in (
            ("Action", "SendSms"),
            ("Version", "2017-05-25"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
        ):
            assert params[name] == want  # fmt: skip
        assert abs(time.mktime(time.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ"))
                   - time.timezone - time.time()) < 900  # fmt: skip
        failed = await self._gate()
        if failed is not None:
            return web.json_response({"Code": "isp.SYSTEM_ERROR"}, status=failed.status)
        template = orjson.loads(params["TemplateParam"])
        assert set(template) == {"enterprise", "source", "colour", "value", "time", "action"}
        self._accept(params["OutId"], "aliyun", {"phone": params["PhoneNumbers"], **template})
        return web.json_response({"Code": "OK", "Message": "OK", "BizId": "1", "RequestId": "r"})

    async def tencent(self, request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        stamp = int(h["X-TC-Timestamp"])
        date = time.strftime("%Y-%m-%d", time.gmtime(stamp))
        canonical = (f"POST\n/\n\ncontent-type:{h['Content-Type']}\nhost:{h['Host']}\n"
                     f"x-tc-action:{h['X-TC-Action'].lower()}\n\ncontent-type;host;x-tc-action\n"
                     + hashlib.sha256(body).hexdigest())  # fmt: skip
        scope = f"{date}/sms/tc3_request"
        to_sign = (f"TC3-HMAC-SHA256\n{stamp}\n{scope}\n"
                   + hashlib.sha256(canonical.encode()).hexdigest())  # fmt: skip
        key = b"TC3tc-key"
        for part in (date, "sms", "tc3_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        want = (f"TC3-HMAC-SHA256 Credential=AKID-test/{scope}, "
                f"SignedHeaders=content-type;host;x-tc-action, Signature={sig}")  # fmt: skip
        if h.get("Authorization") != want or h.get("X-TC-Version") != "2021-01-11":
            error = {"Code": "AuthFailure.SignatureFailure", "Message": "bad signature"}
            return web.json_response({"Response": {"Error": error, "RequestId": "r"}})
        failed = await self._gate()
        if failed is not None:
            error = {"Code": "InternalError.Timeout", "Message": "busy"}
            return web.json_response({"Response": {"Error": error, "RequestId": "r"}})
        data = orjson.loads(body)
        assert len(data["TemplateParamSet"]) == 6 and data["SmsSdkAppId"] == "1400000001"
        self._accept(data["SessionContext"], "tencent", data)
        status = {"Code": "Ok", "SerialNo": "s", "PhoneNumber": data["PhoneNumberSet"][0]}
        return web.json_response({"Response": {"SendStatusSet": [status], "RequestId": "r"}})

    async def gateway(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer gw-token":
            return web.Response(status=401)
        failed = await self._gate()
        if failed is not None:
            return failed
        data = await request.json()
        self._accept(data["ref"], "gateway", data)
        return web.json_response({"accepted": len(data["segments"])})

    async def platform(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer pf-token":
            return web.Response(status=401)
        failed = await self._gate()
        if failed is not None:
            return failed
        data = await request.json()
        self._accept(data["id"], f"platform/{request.match_info['tier']}", data)
        return web.Response(status=202)

    @web.middleware
    async def _track(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.active += 1
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            self.active -= 1

    async def start(self) -> None:
        app = web.Application(middlewares=[self._track])
        app.router.add_post("/hooks/{name}", self.webhook)
        app.router.add_post("/sms/aliyun/", self.aliyun)
        app.router.add_post("/sms/tencent/", self.tencent)
        app.router.add_post("/sms/gateway/send", self.gateway)
        app.router.add_post("/platform/api/v1/warnings/{tier}", self.platform)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver(free_port())
    yield found
    await found.stop()


def make_policy(receiver: Receiver, **delivery: float) -> RoutingPolicy:
    data = sample_routing(webhook=f"{receiver.base}/hooks", sms=f"{receiver.base}/sms",
                          platform=f"{receiver.base}/platform/api/v1")  # fmt: skip
    data["delivery"].update(delivery)
    return routing_from_mapping(data)


@dataclass
class Pipeline:
    service: AlertService
    dispatcher: Dispatcher
    transport: Transport

    async def drain(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.service.outbox.counts().get("pending", 0):
            assert time.monotonic() < deadline, self.service.outbox.counts()
            await self.dispatcher.run_once()
            await asyncio.sleep(0.05)


def make_pipeline(policy: RoutingPolicy, db: Path) -> Pipeline:
    service = AlertService(policy, Outbox(db), {"QZ-PETRO": QZ}, lambda: int(time.time() * 1000),
                           {"QZ-TF1": "一号储罐区", "QZ-PETRO": "湄洲湾储运"})  # fmt: skip
    transport = Transport(timeout_s=policy.delivery.timeout_s)
    sender = Sender(policy, transport, SECRETS, lambda: int(time.time()))
    dispatcher = Dispatcher(service.outbox, policy, sender.send,
                            lambda: int(time.time() * 1000), random.random,
                            on_dead=service.dead_letter)  # fmt: skip
    return Pipeline(service, dispatcher, transport)


def red(eid: str = "r1") -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {"id": eid, "ts": now, "type": "risk", "enterprise": "QZ-PETRO", "source": "QZ-TF1",
            "level": "source", "colour": "red", "previous": "orange"}  # fmt: skip


async def test_every_channel_delivers_once_with_valid_signatures(
    receiver: Receiver, tmp_path: Path
) -> None:
    await receiver.start()
    pipe = make_pipeline(make_policy(receiver), tmp_path / "o.db")
    expected = pipe.service.handle(red())
    await pipe.drain()
    await pipe.transport.aclose()
    assert len(receiver.accepted) == expected == 9  # 2 + 3 + 2 + 2 channels, four tiers
    kinds = sorted(a["via"] for a in receiver.accepted.values())
    assert (
        kinds
        == ["aliyun", "gateway", "platform/county", "platform/province", "tencent"]
        + ["webhook"] * 4
    )
    aliyun = next(a for a in receiver.accepted.values() if a["via"] == "aliyun")
    assert aliyun["phone"] == "13800000002" and aliyun["colour"] == "红色"
    assert receiver.rejected == [] and receiver.duplicates == 0


async def test_receiver_down_then_back_gets_everything_once(
    receiver: Receiver, tmp_path: Path
) -> None:
    pipe = make_pipeline(make_policy(receiver), tmp_path / "o.db")
    expected = pipe.service.handle(red())
    for _ in range(3):  # receiver not listening: connection refused, retried with backoff
        await pipe.dispatcher.run_once()
        await asyncio.sleep(0.3)
    assert pipe.service.outbox.counts().get("delivered", 0) == 0
    await receiver.start()
    await pipe.drain()
    await pipe.transport.aclose()
    assert len(receiver.accepted) == expected and receiver.duplicates == 0
    audit = pipe.service.outbox.audit(1)
    assert audit[0]["outcome"] == "retry" and audit[-1]["outcome"] == "delivered"


async def test_500_429_and_timeouts_are_retried(receiver: Receiver, tmp_path: Path) -> None:
    receiver.fail_with = [500, 429, 503, 500]
    await receiver.start()
    pipe = make_pipeline(make_policy(receiver, timeout_s=0.3), tmp_path / "o.db")
    expected = pipe.service.handle(red())
    receiver.delay_s = 0.5  # slower than the client's timeout: every first attempt times out
    await pipe.dispatcher.run_once()
    receiver.delay_s = 0.0
    await pipe.drain()
    await pipe.transport.aclose()
    assert set(receiver.accepted) == {n["key"] for n in pipe.service.outbox.notifications()}
    assert len(receiver.accepted) == expected
    # a timed-out request may still have reached the receiver: it drops the duplicate by key
    assert pipe.service.outbox.counts() == {"delivered": expected}


async def test_restart_resumes_pending_deliveries(receiver: Receiver, tmp_path: Path) -> None:
    policy = make_policy(receiver)
    first = make_pipeline(policy, tmp_path / "o.db")
    expected = first.service.handle(red())
    await first.transport.aclose()
    first.service.outbox.close()  # the process dies before delivering anything
    await receiver.start()
    second = make_pipeline(policy, tmp_path / "o.db")
    assert second.service.handle(red()) == 0  # the engine replays the event: no new rows
    await second.drain()
    await second.transport.aclose()
    assert len(receiver.accepted) == expected and receiver.duplicates == 0


async def test_dead_letter_raises_delivery_failure_to_next_tier(
    receiver: Receiver, tmp_path: Path
) -> None:
    await receiver.start()
    data = sample_routing(webhook=f"{receiver.base}/hooks", sms=f"{receiver.base}/sms",
                          platform=f"{receiver.base}/platform/api/v1")  # fmt: skip
    data["recipients"][1]["channels"][0]["url"] = f"{receiver.base}/nowhere"  # 404: permanent
    policy = routing_from_mapping(data)
    pipe = make_pipeline(policy, tmp_path / "o.db")
    pipe.service.handle({**red(), "colour": "yellow"})
    await pipe.drain()
    await pipe.transport.aclose()
    rows = pipe.service.outbox.notifications()
    [dead] = [r for r in rows if r["status"] == "dead"]
    assert dead["recipient"] == "huian-safety" and "HTTP 404" in dead["last_error"]
    failures = [a for a in receiver.accepted.values() if a.get("kind") == "delivery_failure"]
    assert {(f["recipient"], f["tier"]) for f in failures} == {("quanzhou-safety", "city")}
    assert all(f["detail"].startswith("向huian-safety的推送失败") for f in failures)
