"""Delivery through real local HTTP receivers: webhook, SMS provider emulators, command platform.

The emulators check the providers' request formats and signatures with their own code, written
from the providers' documentation and not imported from alerting; a test proves they reproduce
the signatures the providers publish, so a signing bug in alerting fails here. Every receiver
honours the idempotency key as a careful real one would: a repeated key is counted and dropped.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from aiohttp import web

from alerting.channels.base import Verdict
from alerting.channels.sms import aliyun_request, aliyun_verdict, tencent_request, tencent_verdict
from alerting.channels.webhook import WebhookRejectedError, verify_webhook
from alerting.dispatcher import Dispatcher
from alerting.messages import Notice
from alerting.outbox import Outbox
from alerting.policy import AliyunProvider, RoutingPolicy, TencentProvider, routing_from_mapping
from alerting.routing import EnterpriseArea
from alerting.samples import sample_routing
from alerting.sender import Sender
from alerting.service import AlertService
from alerting.transport import Transport
from hazardwatch.types import RiskColour, Tier
from tests.processes import free_port

pytestmark = pytest.mark.integration

SECRETS = {"HW_WEBHOOK_SECRET": "wh-secret", "HW_ALIYUN_SECRET": "ali-secret",
           "HW_TENCENT_KEY": "tc-key", "HW_GATEWAY_TOKEN": "gw-token",
           "HW_PLATFORM_TOKEN": "pf-token"}  # fmt: skip
QZ = EnterpriseArea("QZ-PETRO", "湄洲湾储运", "350521", "tank_farm")
# The providers' per-variable limits, from their documentation (characters, each counting one):
# Alibaba Cloud notification templates 35 (isv.PARAM_LENGTH_LIMIT), Tencent Cloud 12 for
# individually verified accounts (InvalidParameterValue.TemplateParameterLengthLimit).
ALIYUN_VARIABLE_MAX = 35
TENCENT_VARIABLE_MAX = 12
GENERIC_HTTP = ("webhook", "command_platform")  # channels judged by HTTP status (and the gateway)


# -- the providers' signature algorithms, written from their documentation ----------------------
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def pop_encode(text: str) -> str:
    """Alibaba Cloud POP percent-encoding, byte by byte: only A-Z a-z 0-9 - _ . ~ stay."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


def aliyun_expected_signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    """RPC signature v1.0: HMAC-SHA1 keyed `secret&` over `METHOD&%2F&enc(sorted query)`."""
    query = "&".join(f"{pop_encode(k)}={pop_encode(params[k])}" for k in sorted(params))
    to_sign = f"{method}&{pop_encode('/')}&{pop_encode(query)}"
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


_TC3 = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})"
)


def tc3_problem(
    headers: Mapping[str, str], body: bytes, secret_id: str, secret_key: str, now_s: float,
    service: str = "sms",
) -> str | None:  # fmt: skip
    """None when the request's TC3-HMAC-SHA256 `Authorization` is valid, else Tencent's code."""
    lower = {k.lower(): v for k, v in headers.items()}
    found = _TC3.fullmatch(lower.get("authorization", ""))
    if found is None:
        return "AuthFailure.InvalidAuthorization"
    if found["id"] != secret_id:
        return "AuthFailure.SecretIdNotFound"
    stamp = int(lower.get("x-tc-timestamp", "0"))
    if abs(now_s - stamp) > 300:
        return "AuthFailure.SignatureExpire"
    names = found["signed"].split(";")
    date = time.strftime("%Y-%m-%d", time.gmtime(stamp))  # the UTC date, never local
    if (found["date"], found["service"]) != (date, service) or names != sorted(names):
        return "AuthFailure.SignatureFailure"
    if not {"content-type", "host"} <= set(names) or not set(names) <= set(lower):
        return "AuthFailure.SignatureFailure"
    canonical_headers = "".join(f"{n}:{lower[n].strip().lower()}\n" for n in names)
    canonical = (f"POST\n/\n\n{canonical_headers}\n{found['signed']}\n"
                 + hashlib.sha256(body).hexdigest())  # fmt: skip
    scope = f"{date}/{service}/tc3_request"
    to_sign = (
        f"TC3-HMAC-SHA256\n{stamp}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
    )
    key = f"TC3{secret_key}".encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(sig, found["sig"]) else "AuthFailure.SignatureFailure"


def test_emulators_reproduce_the_providers_published_signatures() -> None:
    # Alibaba Cloud's worked example (RPC signature docs) and its SendSms example.
    describe = {"AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML",
                "SignatureMethod": "HMAC-SHA1",
                "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
                "SignatureVersion": "1.0", "Timestamp": "2016-02-23T12:46:24Z",
                "Version": "2014-05-26"}  # fmt: skip
    assert (
        aliyun_expected_signature("testsecret", "GET", describe) == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    )
    send = {"AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
            "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou",
            "SignName": "阿里云短信测试专用", "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466", "SignatureVersion": "1.0",
            "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}',
            "Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25"}  # fmt: skip
    assert aliyun_expected_signature("testSecret", "GET", send) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    # Tencent Cloud's TC3-HMAC-SHA256 walk-through (CVM DescribeInstances, 2019-02-25).
    body = (b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], '
            b'"Name": "instance-name"}]}')  # fmt: skip
    assert hashlib.sha256(body).hexdigest().startswith("35e9c5b0e3ae6753")
    headers = {
        "Authorization": "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/"
        "2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
        "Content-Type": "application/json; charset=utf-8",
        "Host": "cvm.tencentcloudapi.com",
        "X-TC-Timestamp": "1551113065",
    }
    args = ("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE")
    assert tc3_problem(headers, body, *args, now_s=1551113065, service="cvm") is None
    tampered = body.replace(b"1", b"2")
    assert (
        tc3_problem(headers, tampered, *args, 1551113065, "cvm") == "AuthFailure.SignatureFailure"
    )
    late = 1551113065 + 301  # outside Tencent's five-minute window
    assert tc3_problem(headers, body, *args, late, "cvm") == "AuthFailure.SignatureExpire"


@dataclass
class Receiver:
    """All receivers on one port; honours idempotency keys like a careful real receiver."""

    port: int
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)  # why requests were refused
    fail_with: list[int] = field(default_factory=list)  # statuses to answer first, in order
    throttle_headers: Callable[[], dict[str, str]] = lambda: {"Retry-After": "0"}  # with 429
    delay_s: float = 0.0
    received: int = 0  # requests that reached a handler, counted before any delay
    active: int = 0  # requests being handled now
    nonces: set[str] = field(default_factory=set)
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
            headers = self.throttle_headers() if status == 429 else None
            return web.Response(status=status, headers=headers)
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

    async def down(self, _request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    def _aliyun_problem(self, params: dict[str, str], given: str) -> str | None:
        fixed = {"Action": "SendSms", "Version": "2017-05-25", "SignatureMethod": "HMAC-SHA1",
                 "SignatureVersion": "1.0", "Format": "JSON", "AccessKeyId": "LTAI-test",
                 "SignName": "安全监测", "TemplateCode": "SMS_1"}  # fmt: skip
        if any(params.get(k) != v for k, v in fixed.items()):
            return "InvalidParameter"
        if not hmac.compare_digest(aliyun_expected_signature("ali-secret", "POST", params), given):
            return "SignatureDoesNotMatch"
        stamp = time.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ")
        if abs(time.mktime(stamp) - time.timezone - time.time()) > 900:
            return "InvalidTimeStamp.Expired"
        if params["SignatureNonce"] in self.nonces:
            return "SignatureNonceUsed"
        self.nonces.add(params["SignatureNonce"])
        template = orjson.loads(params.get("TemplateParam", "{}"))
        if set(template) != {"enterprise", "source", "colour", "value", "time", "action"}:
            return "isv.TEMPLATE_PARAMS_ILLEGAL"
        if any(len(str(v)) > ALIYUN_VARIABLE_MAX for v in template.values()):
            return "isv.PARAM_LENGTH_LIMIT"
        if not re.fullmatch(r"1\d{10}", params.get("PhoneNumbers", "")):
            return "isv.MOBILE_NUMBER_ILLEGAL"
        return None

    async def aliyun(self, request: web.Request) -> web.Response:
        params = dict(parse_qsl((await request.read()).decode(), keep_blank_values=True))
        problem = self._aliyun_problem(params, params.pop("Signature", ""))
        if problem is not None:
            self.rejected.append(problem)
            return web.json_response({"Code": problem, "RequestId": "r"}, status=400)
        failed = await self._gate()
        if failed is not None:
            return web.json_response({"Code": "isp.SYSTEM_ERROR"}, status=failed.status)
        template = orjson.loads(params["TemplateParam"])
        self._accept(params["OutId"], "aliyun", {"phone": params["PhoneNumbers"], **template})
        return web.json_response({"Code": "OK", "Message": "OK", "BizId": "1", "RequestId": "r"})

    async def tencent(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = tc3_problem(request.headers, body, "AKID-test", "tc-key", time.time())
        data = orjson.loads(body)
        if problem is None and (request.headers.get("X-TC-Version") != "2021-01-11"
                                or request.headers.get("X-TC-Action") != "SendSms"
                                or data.get("SmsSdkAppId") != "1400000001"
                                or len(data.get("TemplateParamSet", ())) != 6):  # fmt: skip
            problem = "InvalidParameter"
        if problem is None and any(len(v) > TENCENT_VARIABLE_MAX for v in data["TemplateParamSet"]):
            problem = "InvalidParameterValue.TemplateParameterLengthLimit"
        if problem is not None:
            self.rejected.append(problem)
            error = {"Code": problem, "Message": problem}
            return web.json_response({"Response": {"Error": error, "RequestId": "r"}})
        failed = await self._gate()
        if failed is not None:
            error = {"Code": "InternalError.Timeout", "Message": "busy"}
            return web.json_response({"Response": {"Error": error, "RequestId": "r"}})
        self._accept(data["SessionContext"], "tencent", data)
        status = {"Code": "Ok", "SerialNo": "s", "PhoneNumber": data["PhoneNumberSet"][0]}
        return web.json_response({"Response": {"SendStatusSet": [status], "RequestId": "r"}})

    async def gateway(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer gw-token":
            self.rejected.append("gateway_token")
            return web.Response(status=401)
        data = await request.json()  # read before any delay, as a server does
        failed = await self._gate()
        if failed is not None:
            return failed
        self._accept(data["ref"], "gateway", data)
        return web.json_response({"accepted": len(data["segments"])})

    async def platform(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer pf-token":
            self.rejected.append("platform_token")
            return web.Response(status=401)
        data = await request.json()
        failed = await self._gate()
        if failed is not None:
            return failed
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
        app.router.add_post("/down/{name}", self.down)
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


def sample_policy_data(receiver: Receiver, **delivery: float) -> dict[str, Any]:
    data = sample_routing(webhook=f"{receiver.base}/hooks", sms=f"{receiver.base}/sms",
                          platform=f"{receiver.base}/platform/api/v1")  # fmt: skip
    data["delivery"].update(delivery)
    return data


def make_policy(receiver: Receiver, **delivery: float) -> RoutingPolicy:
    return routing_from_mapping(sample_policy_data(receiver, **delivery))


def wall_ms() -> int:
    return int(time.time() * 1000)


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

    def attempts(self) -> dict[str, list[dict[str, Any]]]:
        """Audit trail per notification key."""
        return {n["key"]: self.service.outbox.audit(n["id"])
                for n in self.service.outbox.notifications()}  # fmt: skip

    async def close(self) -> None:
        await self.transport.aclose()
        self.service.outbox.close()


def make_pipeline(
    policy: RoutingPolicy, db: Path, clock: Callable[[], int] = wall_ms,
    secrets: Mapping[str, str] = SECRETS, names: Mapping[str, str] | None = None,
) -> Pipeline:  # fmt: skip
    """Service and dispatcher on one clock; the sender signs with the wall clock."""
    names = names or {"QZ-TF1": "一号储罐区", "QZ-PETRO": "湄洲湾储运"}
    service = AlertService(policy, Outbox(db), {"QZ-PETRO": QZ}, clock, names)
    transport = Transport(timeout_s=policy.delivery.timeout_s)
    sender = Sender(policy, transport, secrets, lambda: int(time.time()))
    dispatcher = Dispatcher(service.outbox, policy, sender.send, clock, random.random,
                            on_dead=service.dead_letter)  # fmt: skip
    service.on_enqueue = dispatcher.notify
    return Pipeline(service, dispatcher, transport)


def red(eid: str = "r1", source: str = "QZ-TF1", colour: str = "red") -> dict[str, Any]:
    return {"id": eid, "ts": wall_ms(), "type": "risk", "enterprise": "QZ-PETRO",
            "source": source, "level": "source", "colour": colour,
            "previous": "orange"}  # fmt: skip


async def wait_until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def assert_each_accepted_once(receiver: Receiver, pipe: Pipeline) -> None:
    """Every notification in the outbox delivered, and accepted exactly once by its receiver."""
    keys = {n["key"] for n in pipe.service.outbox.notifications()}
    assert pipe.service.outbox.counts() == {"delivered": len(keys)}
    assert set(receiver.accepted) == keys
    assert receiver.rejected == []


# -- every channel, once ---------------------------------------------------------------------------
async def test_every_channel_delivers_once_with_valid_signatures(
    receiver: Receiver, tmp_path: Path
) -> None:
    await receiver.start()
    pipe = make_pipeline(make_policy(receiver), tmp_path / "o.db")
    expected = pipe.service.handle(red())
    await pipe.drain()
    await pipe.close()
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


async def test_emulators_refuse_wrong_credentials_and_nothing_is_retried_forever(
    receiver: Receiver, tmp_path: Path
) -> None:
    await receiver.start()
    wrong = {name: "wrong" for name in SECRETS}
    pipe = make_pipeline(make_policy(receiver), tmp_path / "o.db", secrets=wrong)
    pipe.service.handle(red())
    await pipe.drain()
    assert receiver.accepted == {}
    assert set(receiver.rejected) == {"bad_signature", "SignatureDoesNotMatch",
                                      "AuthFailure.SignatureFailure", "gateway_token",
                                      "platform_token"}  # fmt: skip
    # a refused signature is permanent: one attempt each, then the dead-letter
    assert all(len(audit) == 1 for audit in pipe.attempts().values())
    assert set(pipe.service.outbox.counts()) == {"dead"}
    await pipe.close()


async def test_sms_variables_over_the_providers_limits_are_cut_and_still_delivered(
    receiver: Receiver, tmp_path: Path
) -> None:
    await receiver.start()
    names = {"QZ-PETRO": "福建省湄洲湾石化储运股份有限公司泉港分公司", "QZ-TF1": "一号储罐区",
             "T101-LS": "101#罐伺服液位计（雷达）"}  # fmt: skip
    pipe = make_pipeline(make_policy(receiver), tmp_path / "o.db", names=names)
    now = wall_ms()
    pipe.service.handle({"id": "a1", "ts": now, "type": "alarm", "enterprise": "QZ-PETRO",
                         "source": "QZ-TF1", "tag": "T101-LS", "condition": "HH",
                         "state": "unacknowledged", "severity": "S3", "value": 17.62,
                         "value_unit": "m"})  # fmt: skip
    pipe.service.handle(red())  # the alarm notice grows into a red warning: SMS to the regulators
    await pipe.drain()
    assert_each_accepted_once(receiver, pipe)  # nothing refused by either provider
    [aliyun] = [a for a in receiver.accepted.values() if a["via"] == "aliyun"]
    [tencent] = [a["TemplateParamSet"] for a in receiver.accepted.values() if a["via"] == "tencent"]
    assert aliyun["enterprise"] == names["QZ-PETRO"]  # 21 characters fit Aliyun's 35
    assert aliyun["value"] == "101#罐伺服液位计（雷达） HH 17.62 m"
    assert len(aliyun["action"]) <= 35 and aliyun["action"].endswith("…")
    enterprise, source, colour, value, _time, action = tencent
    assert enterprise == "福建省湄洲湾石化储运股…" and source == "一号储罐区" and colour == "红色"
    assert value == "HH 17.62 m"  # the reading, not the name, survives 12 characters
    assert action.endswith("…") and all(len(v) <= 12 for v in tencent)
    await pipe.close()


async def test_the_emulators_refuse_an_uncut_variable_as_the_providers_do(
    receiver: Receiver,
) -> None:
    """Control for the test above: without the cut, both providers refuse the message."""
    await receiver.start()
    policy = make_policy(receiver)
    now = wall_ms()
    notice = Notice(kind="raise", alert_id="A-1", enterprise="QZ-PETRO",
                    enterprise_name="福建省湄洲湾石化储运股份有限公司泉港分公司", ts_ms=now,
                    source="QZ-TF1", source_name="一号储罐区", colour=RiskColour.RED,
                    ack_due_ms=now + 900_000, feedback_due_ms=now + 3_600_000)  # fmt: skip
    aliyun, tencent = policy.sms_providers["aliyun"], policy.sms_providers["tencent"]
    assert isinstance(aliyun, AliyunProvider) and isinstance(tencent, TencentProvider)
    uncut = [
        aliyun_request(aliyun, "ali-secret", "+8613800000002", notice, "k1", int(time.time()),
                       "nonce-1", param_max=1000),
        tencent_request(tencent, "tc-key", "+8613800000003", notice, "k2", int(time.time()),
                        param_max=1000),
    ]  # fmt: skip
    transport = Transport(timeout_s=5)
    try:
        answers = [await transport.send(request) for request in uncut]
    finally:
        await transport.aclose()
    assert aliyun_verdict(answers[0]) == Verdict("permanent", "isv.PARAM_LENGTH_LIMIT")
    assert tencent_verdict(answers[1]).outcome == "permanent"
    assert receiver.rejected == ["isv.PARAM_LENGTH_LIMIT",
                                 "InvalidParameterValue.TemplateParameterLengthLimit"]  # fmt: skip
    assert receiver.accepted == {}


# -- receiver down, slow, 500, 429, timing out -----------------------------------------------------
async def test_receiver_down_then_back_gets_everything_once(
    receiver: Receiver, tmp_path: Path
) -> None:
    pipe = make_pipeline(make_policy(receiver), tmp_path / "o.db")
    pipe.service.handle(red())
    for _ in range(3):  # receiver not listening: connection refused, retried with backoff
        await pipe.dispatcher.run_once()
        await asyncio.sleep(0.3)
    assert pipe.service.outbox.counts().get("delivered", 0) == 0
    await receiver.start()
    await pipe.drain()
    assert_each_accepted_once(receiver, pipe)
    for audit in pipe.attempts().values():
        assert audit[0]["outcome"] == "retry" and "ClientConnectorError" in audit[0]["detail"]
        assert audit[-1]["outcome"] == "delivered"
    assert receiver.duplicates == 0
    await pipe.close()


async def test_slow_receiver_within_timeout_is_waited_for(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.delay_s = 0.5
    await receiver.start()
    pipe = make_pipeline(make_policy(receiver, timeout_s=2), tmp_path / "o.db")
    pipe.service.handle(red())
    await pipe.drain()
    assert_each_accepted_once(receiver, pipe)
    for audit in pipe.attempts().values():  # one attempt each: slow is not failed
        [attempt] = audit
        assert attempt["outcome"] == "delivered" and attempt["latency_ms"] >= 500
    await pipe.close()


async def test_500s_are_retried_until_delivered(receiver: Receiver, tmp_path: Path) -> None:
    receiver.fail_with = [500] * 9  # the first attempt of every notification fails
    await receiver.start()
    pipe = make_pipeline(make_policy(receiver), tmp_path / "o.db")
    pipe.service.handle(red())
    await pipe.drain()
    assert_each_accepted_once(receiver, pipe)
    for audit in pipe.attempts().values():
        assert [a["outcome"] for a in audit] == ["retry", "delivered"]
    assert receiver.duplicates == 0
    await pipe.close()


@pytest.mark.parametrize(
    ("form", "asked_s"),
    [("seconds", 1.0), ("http-date", 2.0), ("beyond the backoff cap", 3600.0)],
)
async def test_429_retry_after_is_honoured(
    receiver: Receiver, tmp_path: Path, form: str, asked_s: float
) -> None:
    def throttle() -> dict[str, str]:
        if form == "http-date":  # read against the response's own Date header
            now = time.time()
            return {"Date": formatdate(now, usegmt=True),
                    "Retry-After": formatdate(now + asked_s, usegmt=True)}  # fmt: skip
        return {"Retry-After": f"{asked_s:g}"}

    receiver.fail_with, receiver.throttle_headers = [429] * 9, throttle
    await receiver.start()
    policy = make_policy(receiver, backoff_initial_s=0.05, backoff_max_s=2)
    pipe = make_pipeline(policy, tmp_path / "o.db")
    pipe.service.handle(red())
    await pipe.drain()
    assert_each_accepted_once(receiver, pipe)
    waited = min(asked_s, 2.0)  # honoured up to backoff_max_s, so a warning is not held for hours
    rows = {n["key"]: n for n in pipe.service.outbox.notifications()}
    throttled = 0
    for key, audit in pipe.attempts().items():
        first, last = audit[0], audit[-1]
        if rows[key]["channel_type"] in GENERIC_HTTP and first["detail"].startswith("HTTP 429"):
            throttled += 1
            assert last["ts_ms"] - first["ts_ms"] >= waited * 1000
    assert throttled == 6  # four webhooks and two command-platform pushes
    assert receiver.duplicates == 0
    await pipe.close()


async def test_timeouts_are_retried_and_the_late_arrivals_deduplicated(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.delay_s = 1.0  # slower than the client's timeout: every first attempt times out
    await receiver.start()
    pipe = make_pipeline(make_policy(receiver, timeout_s=0.3), tmp_path / "o.db")
    expected = pipe.service.handle(red())
    await pipe.dispatcher.run_once()
    await wait_until(lambda: receiver.active == 0)  # the timed-out requests arrive anyway
    arrived_late = len(receiver.accepted)
    assert arrived_late == expected
    receiver.delay_s = 0.0
    await pipe.drain()
    assert_each_accepted_once(receiver, pipe)
    for audit in pipe.attempts().values():
        assert audit[0]["outcome"] == "retry" and "timeout" in audit[0]["detail"]
    # the same key travelled with the retry, so the receiver dropped every second copy
    assert receiver.duplicates == arrived_late
    await pipe.close()


# -- restarts --------------------------------------------------------------------------------------
async def test_restart_resumes_pending_deliveries(receiver: Receiver, tmp_path: Path) -> None:
    policy = make_policy(receiver)
    first = make_pipeline(policy, tmp_path / "o.db")
    expected = first.service.handle(red())
    await first.close()  # the process dies before delivering anything
    await receiver.start()
    second = make_pipeline(policy, tmp_path / "o.db")
    assert second.service.handle(red()) == 0  # the engine replays the event: no new rows
    await second.drain()
    assert len(receiver.accepted) == expected and receiver.duplicates == 0
    await second.close()


async def test_rate_limit_survives_a_restart(receiver: Receiver, tmp_path: Path) -> None:
    await receiver.start()
    data = sample_policy_data(receiver)
    data["recipients"][0]["rate_limit"] = {"count": 2, "per_s": 3600}  # the control room
    policy = routing_from_mapping(data)
    first = make_pipeline(policy, tmp_path / "o.db")
    first.service.handle(red("r1", "QZ-TF1"))  # webhook + SMS: the control room's two per hour
    await first.drain()
    await first.close()

    second = make_pipeline(policy, tmp_path / "o.db")  # a restart must not refill the bucket
    second.service.handle(red("r2", "QZ-TF2"))
    await second.dispatcher.run_once()
    rows = second.service.outbox.notifications()
    held = [n for n in rows if n["recipient"] == "qz-control-room" and n["status"] == "pending"]
    assert len(held) == 2 and all(n["attempts"] == 0 for n in held)
    for row in held:
        [deferral] = second.service.outbox.audit(row["id"])
        assert deferral["outcome"] == "rate_limited"
    control = [a for a in receiver.accepted.values() if a.get("recipient") == "qz-control-room"]
    assert len(control) == 1  # r1's webhook (its SMS went through the gateway, no recipient)
    others = [n for n in rows if n["recipient"] != "qz-control-room"]
    assert all(n["status"] == "delivered" for n in others)  # other recipients are not held
    await second.close()


# -- waking the dispatcher -------------------------------------------------------------------------
async def test_work_enqueued_on_another_thread_wakes_the_dispatcher(
    receiver: Receiver, tmp_path: Path
) -> None:
    # As in the embedded runner: the dispatcher has its own thread and event loop, the engine
    # hands events over from another thread. With a one-minute safety poll, only the
    # cross-thread wake-up can deliver within the wait below.
    await receiver.start()
    pipe = make_pipeline(make_policy(receiver), tmp_path / "o.db")
    ready = threading.Event()
    control: dict[str, Any] = {}

    async def dispatch() -> None:
        control["loop"], control["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await pipe.dispatcher.run(control["stop"], idle_s=60)
        await pipe.transport.aclose()

    thread = threading.Thread(target=asyncio.run, args=(dispatch(),))
    thread.start()
    assert ready.wait(5)
    await asyncio.sleep(0.2)  # the dispatcher is idle, asleep in its loop
    try:
        pipe.service.handle(red())
        await wait_until(lambda: len(receiver.accepted) == 9)
    finally:
        control["loop"].call_soon_threadsafe(control["stop"].set)
        await asyncio.to_thread(thread.join, 10)
    assert_each_accepted_once(receiver, pipe)
    pipe.service.outbox.close()


# -- escalation and dead letters -------------------------------------------------------------------
async def test_escalation_reaches_the_province_when_nobody_acknowledges(
    receiver: Receiver, tmp_path: Path
) -> None:
    await receiver.start()
    clock = [wall_ms()]
    pipe = make_pipeline(make_policy(receiver), tmp_path / "o.db", lambda: clock[0])
    pipe.service.handle({**red(colour="orange"), "ts": clock[0]})
    await pipe.drain()
    assert {a["tier"] for a in receiver.accepted.values() if "tier" in a} == {
        "enterprise", "county", "city"}  # fmt: skip
    clock[0] += 30 * 60_000  # orange: acknowledge within 30 min — nobody did
    pipe.service.tick()
    clock[0] += 15 * 60_000  # half the acknowledge time after the reminder
    pipe.service.tick()
    await pipe.drain()
    by_kind: dict[str, set[str]] = {}
    for notice in receiver.accepted.values():
        tier = notice.get("tier") or notice.get("via", "").removeprefix("platform/")
        by_kind.setdefault(notice.get("kind", "sms"), set()).add(tier)
    assert by_kind["reminder"] == {"enterprise", "county", "city"}
    assert by_kind["escalation"] == {"province"}
    province = {a["via"] for a in receiver.accepted.values()
                if a.get("kind") == "escalation"}  # fmt: skip
    assert province == {"webhook", "platform/province"}  # every channel of the province
    assert receiver.duplicates == 0
    await pipe.close()


@pytest.mark.parametrize(
    ("path", "attempts", "error"), [("nowhere", 1, "HTTP 404"), ("down", 4, "4 attempts: HTTP 503")]
)
async def test_dead_letter_raises_delivery_failure_to_next_tier(
    receiver: Receiver, tmp_path: Path, path: str, attempts: int, error: str
) -> None:  # fmt: skip
    await receiver.start()
    data = sample_policy_data(receiver, max_attempts=4, backoff_initial_s=0.05,
                              backoff_max_s=0.1)  # fmt: skip
    # Huian county's webhook: 404 is permanent at once; 503 is retried until the budget is spent
    data["recipients"][1]["channels"][0]["url"] = f"{receiver.base}/{path}/county"
    pipe = make_pipeline(routing_from_mapping(data), tmp_path / "o.db")
    pipe.service.handle(red(colour="yellow"))
    await pipe.drain()
    rows = pipe.service.outbox.notifications()
    [dead] = [r for r in rows if r["status"] == "dead"]
    assert dead["recipient"] == "huian-safety" and dead["last_error"].startswith(error)
    audit = pipe.service.outbox.audit(dead["id"])
    assert [a["outcome"] for a in audit] == ["retry"] * (attempts - 1) + ["dead"]
    failures = [a for a in receiver.accepted.values() if a.get("kind") == "delivery_failure"]
    assert {(f["recipient"], f["tier"]) for f in failures} == {("quanzhou-safety", "city")}
    assert all(f["detail"].startswith("向huian-safety的推送失败") for f in failures)
    sms = [a for a in receiver.accepted.values() if a["via"] == "tencent"]
    assert [a["SessionContext"].split(":")[1].split("/")[0] for a in sms] == ["delivery_failure"]
    await pipe.close()


async def test_dead_letter_at_the_province_with_nobody_left_is_counted(
    receiver: Receiver, tmp_path: Path
) -> None:
    await receiver.start()
    data = sample_policy_data(receiver, max_attempts=1)
    data["recipients"][5]["channels"][0]["url"] = f"{receiver.base}/down/province"
    pipe = make_pipeline(routing_from_mapping(data), tmp_path / "o.db")
    pipe.service.handle(red())
    await pipe.drain()
    [dead] = [r for r in pipe.service.outbox.notifications() if r["status"] == "dead"]
    assert dead["tier"] == Tier.PROVINCE
    assert pipe.service.book.counters["delivery_failure_unrouted"] == 1
    await pipe.close()
