"""No secret in logs: the embedded runner and `alerts serve` at DEBUG, with every secret in use.

Each run uses fresh random secrets (the MQTT password is the TLS listener's real one), drives
every code path that reads them — MQTT over TLS, InfluxDB writes, signed webhooks, Aliyun and
Tencent SMS signing, the SMS gateway and command platform tokens, the alerts API with good and bad
tokens — and then scans everything the process printed for the secret values. Control checks make
sure the secrets really were used and the logs really are verbose, so a silent run cannot pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from alerting.channels.webhook import WebhookRejectedError, verify_webhook
from ingest import protocol
from tests.processes import free_port
from tests.security.helpers import batch, gateway_link, wait_for
from tests.security.plant import (
    HUIAN,
    INGEST_ACCOUNT,
    SECRET_ENVS,
    tokens_yaml,
    write_plant,
    write_policy,
)
from tests.services import Endpoints

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
DEBUG_MAIN = (
    "import logging, sys; logging.basicConfig(level=logging.DEBUG, "
    "format='%(asctime)s %(levelname)s %(name)s %(message)s'); "
    "from hazardwatch.cli import main; sys.exit(main())"
)


class Receivers:
    """Webhook, SMS providers and command platform on one local port; answers like them."""

    KINDS = ("webhook", "aliyun", "tencent", "gateway", "platform")

    def __init__(self, webhook_secret: str) -> None:
        self.seen: dict[str, list[dict[str, str]]] = {kind: [] for kind in self.KINDS}
        self.bad_signatures = 0
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers.items())
                kind, status, answer = receivers.answer(self.path, headers, body)
                if kind:
                    receivers.seen[kind].append(headers)
                data = orjson.dumps(answer) if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.webhook_secret = webhook_secret
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[str, int, Any]:
        if path.startswith("/hooks/"):
            try:
                verify_webhook(self.webhook_secret, headers, body, time.time())
            except WebhookRejectedError:
                self.bad_signatures += 1
                return "", 401, None
            return "webhook", 204, None
        if path.startswith("/sms/aliyun/"):
            return "aliyun", 200, {"Code": "OK", "Message": "OK", "BizId": "1", "RequestId": "r"}
        if path.startswith("/sms/tencent/"):
            phone = orjson.loads(body)["PhoneNumberSet"][0]
            status = {"Code": "Ok", "SerialNo": "s", "PhoneNumber": phone}
            return "tencent", 200, {"Response": {"SendStatusSet": [status], "RequestId": "r"}}
        if path.startswith("/sms/gateway/"):
            return "gateway", 200, {"accepted": 1}
        if path.startswith("/platform/"):
            return "platform", 202, None
        return "", 404, None

    def complete(self) -> bool:
        return all(self.seen.values())


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    found = Receivers(secrets.token_urlsafe(24))
    yield found
    found.server.shutdown()


def fresh_secrets(webhook_secret: str) -> dict[str, str]:
    """Random values for every secret environment variable of the policy."""
    values = {name: secrets.token_urlsafe(24) for name in SECRET_ENVS}
    values["HW_SEC_WEBHOOK_SECRET"] = webhook_secret
    return values


def window(value: str) -> int:
    """Characters of a secret that count as a leak when they appear together.

    Error messages truncate long values in the middle (pydantic shows
    `'mqtts://hazardwatch-inge...e0b24d58@127.0.0.1:8883'`), which still gives 8 characters of a
    password away. 8 random URL-safe characters turn up in a log by chance with odds of about
    1 in 10^14 per position; hex needs 12 for the same odds.
    """
    return 12 if all(c in string.hexdigits for c in value) else 8


def assert_no_secret(text: str, secret_values: dict[str, str], where: str) -> None:
    leaked = [
        name
        for name, value in secret_values.items()
        if any(value[i : i + window(value)] in text for i in range(len(value) - window(value) + 1))
    ]
    assert not leaked, f"{where} shows (part of) the secrets {leaked}"


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hazardwatch.cli", "run", "--check"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_embedded_runner_at_debug_never_logs_a_secret(
    tls: Endpoints, receivers: Receivers, influx_database: str, mqtt_prefix: str,
    tmp_path: Path, unique_name: Any,
) -> None:  # fmt: skip
    channel_secrets = fresh_secrets(receivers.webhook_secret)
    api_token, outsider_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    mqtt = tls.mqtt_tls(INGEST_ACCOUNT)
    assert mqtt.password is not None
    hidden = {
        **channel_secrets,
        "mqtt password": mqtt.password.get_secret_value(),
        "influx password": secrets.token_urlsafe(24),
        "password put in the URL": secrets.token_urlsafe(24),
        "api token": api_token,
        "unknown api token": outsider_token,
    }
    (tmp_path / "tokens.yaml").write_text(
        tokens_yaml({api_token: ("li", "county", HUIAN)}), encoding="utf-8"
    )
    api_port = free_port()
    env = {
        **os.environ,
        **channel_secrets,
        "HAZARDWATCH_PLANT": str(write_plant(tmp_path)),
        "HAZARDWATCH_POLICY": str(write_policy(tmp_path, receivers.base)),
        "HAZARDWATCH_DATA_DIR": str(tmp_path / "data"),
        "HAZARDWATCH_MQTT__URL": mqtt.url,
        "HAZARDWATCH_MQTT__CA_FILE": str(mqtt.ca_file),
        "HAZARDWATCH_MQTT__USERNAME": INGEST_ACCOUNT,
        "HAZARDWATCH_MQTT__PASSWORD": hidden["mqtt password"],
        "HAZARDWATCH_MQTT__TOPIC_PREFIX": mqtt_prefix,
        "HAZARDWATCH_MQTT__CLIENT_ID": unique_name("sec-runner"),
        "HAZARDWATCH_INFLUX__URL": tls.influx_url,
        "HAZARDWATCH_INFLUX__DATABASE": influx_database,
        # user:password, as InfluxDB 1.8 with authentication takes it (without, it is ignored)
        "HAZARDWATCH_INFLUX__TOKEN": f"hw-writer:{hidden['influx password']}",
        "HAZARDWATCH_HTTP__PORT": str(free_port()),
        "HAZARDWATCH_HTTP__API_PORT": str(api_port),
        "HAZARDWATCH_RUNNER__FLUSH_INTERVAL_MS": "100",
    }
    log_path = tmp_path / "runner.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hazardwatch.cli", "run", "--log-level", "DEBUG",
             "--tokens", str(tmp_path / "tokens.yaml")],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        health = f"http://127.0.0.1:{env['HAZARDWATCH_HTTP__PORT']}/healthz"
        wait_for(lambda: process.poll() is not None or _answers(health), 30, "runner health")
        assert process.poll() is None, log_path.read_text("utf-8", "replace")[-3000:]
        gateway = gateway_link(tls.mqtt_tls("GW-SEC-A1"), unique_name("gw"))
        topic = protocol.telemetry_topic(mqtt_prefix, "SEC-A", "GW-SEC-A1")
        for seq, level in enumerate((10.0, 17.5, 17.6, 17.7, 17.8, 17.9), start=1):
            gateway.publish_all([(topic, batch("GW-SEC-A1", seq, "A1-LT", level))])
            time.sleep(0.4)  # HH held beyond its 1 s on-delay
        gateway.stop()
        wait_for(
            receivers.complete,
            30,
            f"every channel: { {k: len(v) for k, v in receivers.seen.items()} }",
        )
        api = f"http://127.0.0.1:{api_port}/api/v1/alerts"
        listed = httpx.get(api, headers={"Authorization": f"Bearer {api_token}"}, timeout=5)
        assert listed.status_code == 200 and listed.json()["alerts"], listed.text
        alert_id = listed.json()["alerts"][0]["id"]
        ack = httpx.post(f"{api}/{alert_id}/ack", headers={"Authorization": f"Bearer {api_token}"},
                         timeout=5)  # fmt: skip
        assert ack.status_code == 200, ack.text
        refused = httpx.get(api, headers={"Authorization": f"Bearer {outsider_token}"}, timeout=5)
        assert refused.status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    text = log_path.read_text("utf-8", "replace")
    # controls: the secrets were really used, and the log is the verbose one
    assert receivers.bad_signatures == 0
    platform_auth = receivers.seen["platform"][0]["Authorization"]
    assert platform_auth == f"Bearer {channel_secrets['HW_SEC_PLATFORM_TOKEN']}"
    assert " DEBUG " in text and "/api/v1/alerts" in text, text[-2000:]
    assert_no_secret(text, hidden, "the embedded runner's DEBUG log")

    # `run --check` prints the effective settings with every secret masked …
    checked = run_check(env)
    assert checked.returncode == 0, checked.stderr
    shown = json.loads(checked.stdout)
    assert shown["mqtt"]["password"] == "**********" and shown["influx"]["token"] == "**********"
    assert shown["mqtt"]["username"] == INGEST_ACCOUNT
    assert_no_secret(checked.stdout + checked.stderr, hidden, "run --check")
    # … and a settings error does not echo them either
    in_url = f"mqtts://{INGEST_ACCOUNT}:{hidden['password put in the URL']}@127.0.0.1:8883"
    for broken in (
        {"HAZARDWATCH_MQTT__PROTOCOL": "6"},
        {"HAZARDWATCH_RUNNER__FLUSH_INTERVAL_MS": "0"},
        {"HAZARDWATCH_MQTT__URL": in_url},
    ):
        failed = run_check({**env, **broken})
        assert failed.returncode == 1 and "validation error" in failed.stderr, failed
        assert_no_secret(failed.stdout + failed.stderr, hidden, f"run --check with {list(broken)}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def test_alerts_serve_at_debug_never_logs_a_secret(
    endpoints: Endpoints, receivers: Receivers, tmp_path: Path
) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient

    channel_secrets = fresh_secrets(receivers.webhook_secret)
    api_token = secrets.token_urlsafe(24)
    hidden = {**channel_secrets, "api token": api_token}
    (tmp_path / "tokens.yaml").write_text(
        tokens_yaml({api_token: ("li", "county", HUIAN)}), encoding="utf-8"
    )
    prefix = f"hwsec_{secrets.token_hex(4)}.v1"
    port = free_port()
    env = {**os.environ, **channel_secrets, "HAZARDWATCH_KAFKA__TOPIC_PREFIX": prefix,
           "HAZARDWATCH_KAFKA__BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
           "HAZARDWATCH_HTTP__PORT": str(port), "HAZARDWATCH_DATA_DIR": str(tmp_path)}  # fmt: skip
    event = {"id": "sec-ev-1", "ts": int(time.time() * 1000), "type": "risk",
             "enterprise": "SEC-A", "source": "SEC-A-TF1", "level": "source",
             "colour": "orange", "previous": "blue", "severity": "S2",
             "escalated": False}  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)
    await producer.start()
    await producer.send_and_wait(f"{prefix}.alerts", orjson.dumps(event))  # creates the topic
    await producer.stop()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", DEBUG_MAIN, "alerts", "serve",
            "--plant", str(write_plant(tmp_path)),
            "--policy", str(write_policy(tmp_path, receivers.base)),
            "--tokens", str(tmp_path / "tokens.yaml"),
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not receivers.complete():
            assert process.returncode is None, log_path.read_text("utf-8", "replace")[-3000:]
            assert time.monotonic() < deadline, {k: len(v) for k, v in receivers.seen.items()}
            await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            good = {"Authorization": f"Bearer {api_token}"}
            listed = await http.get("/api/v1/alerts", headers=good)
            assert listed.status_code == 200 and listed.json()["alerts"], listed.text
            bad = {"Authorization": f"Bearer {api_token[:-1]}"}
            assert (await http.get("/api/v1/alerts", headers=bad)).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
        admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics(
                [t for t in await admin.list_topics() if t.startswith(prefix)]
            )
        finally:
            await admin.close()
    text = log_path.read_text("utf-8", "replace")
    assert receivers.bad_signatures == 0
    assert " DEBUG " in text and "/api/v1/alerts" in text, text[-2000:]
    assert_no_secret(text, hidden, "alerts serve's DEBUG log")
