"""`hazardwatch run` end to end: MQTT → engine → InfluxDB + signed webhook alert; SIGKILL and
restart keep alarm state and send no duplicate alert; SIGTERM drains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from alerting.auth import token_hash
from alerting.channels.webhook import verify_webhook
from ingest.protocol import (
    GatewayState,
    encode_batch,
    encode_status,
    status_topic,
    telemetry_topic,
)
from tests.processes import free_port, wait_until
from tests.services import Endpoints, InfluxTarget

pytestmark = pytest.mark.integration
SECRET = "runner-test-secret"

PLANT = """
version: 1
enterprises:
  - {id: E1, name: 测试石化, region: "410102", industry: hazardous_chemicals}
gateways:
  - {id: GW1, enterprise: E1, interval_s: 1, tags: [TK1-LT, TK1-TT]}
hazard_sources:
  - id: TF1
    enterprise: E1
    name: 一号罐区
    kind: tank_farm
    grade: 1
    units:
      - id: TK1
        name: 1# 储罐
        tags:
          - {id: TK1-LT, name: 液位, quantity: level, unit: m, range: [0, 20],
             limits: {H: 15, HH: 17}, on_delay_s: 1, off_delay_s: 1, deadband: 0.1}
          - {id: TK1-TT, name: 温度, quantity: temperature, unit: °C, range: [-20, 80],
             limits: {H: 40}, on_delay_s: 1, off_delay_s: 1}
"""


def policy_yaml(webhook_url: str) -> str:
    return f"""
risk: {{}}
routing:
  recipients:
    - id: e1-control-room
      name: 中控室
      tier: enterprise
      area: E1
      channels:
        - {{type: webhook, url: "{webhook_url}", secret_env: HW_TEST_WEBHOOK_SECRET}}
"""


class WebhookReceiver:
    """A local webhook endpoint that verifies signatures and honours idempotency keys."""

    def __init__(self) -> None:
        self.accepted: dict[str, dict[str, Any]] = {}
        self.duplicates = 0
        self.bad = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    verify_webhook(SECRET, dict(self.headers.items()), body, time.time())
                except Exception:
                    receiver.bad += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                key = self.headers["Idempotency-Key"]
                if key in receiver.accepted:
                    receiver.duplicates += 1
                else:
                    receiver.accepted[key] = json.loads(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


class Runner:
    """`hazardwatch run` as a child process."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.env, self.log, self.args = env, log, args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hazardwatch.cli", "run", *self.args], env=self.env,
            stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
        port = self.env["HAZARDWATCH_HTTP__PORT"]
        wait_until(lambda: self._healthy(port), 30, f"runner health\n{self.tail()}")

    def _healthy(self, port: str) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"runner exited {self.proc.returncode}\n{self.tail()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def health(self) -> dict[str, Any]:
        port = self.env["HAZARDWATCH_HTTP__PORT"]
        data: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
        return data

    def metrics(self) -> dict[str, float]:
        """Unlabelled samples of `/metrics`."""
        port = self.env["HAZARDWATCH_HTTP__PORT"]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        samples = (line.rsplit(" ", 1) for line in text.splitlines() if line[:1] not in "#{")
        return {name: float(value) for name, value in samples if "{" not in name}

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def tail(self) -> str:
        return self.log.read_text("utf-8", errors="replace")[-3000:]


@pytest.fixture
def runner_env(
    endpoints: Endpoints, influx_target: InfluxTarget, mqtt_prefix: str, tmp_path: Path
) -> Iterator[tuple[dict[str, str], WebhookReceiver]]:
    """The runner's environment, writing to InfluxDB 1.8 and, as a second case, 2.x."""
    receiver = WebhookReceiver()
    (tmp_path / "plant.yaml").write_text(PLANT, "utf-8")
    (tmp_path / "policy.yaml").write_text(policy_yaml(receiver.url), "utf-8")
    env = {
        **os.environ,
        "HW_TEST_WEBHOOK_SECRET": SECRET,
        "HAZARDWATCH_PLANT": str(tmp_path / "plant.yaml"),
        "HAZARDWATCH_POLICY": str(tmp_path / "policy.yaml"),
        "HAZARDWATCH_DATA_DIR": str(tmp_path / "data"),
        "HAZARDWATCH_MQTT__URL": f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}",
        "HAZARDWATCH_MQTT__TOPIC_PREFIX": mqtt_prefix,
        "HAZARDWATCH_MQTT__CLIENT_ID": f"runner-{mqtt_prefix.rsplit('/', 1)[-1]}",
        **influx_target.env(),
        "HAZARDWATCH_HTTP__PORT": str(free_port()),
        "HAZARDWATCH_HTTP__API_PORT": str(free_port()),
        "HAZARDWATCH_RUNNER__FLUSH_INTERVAL_MS": "100",
    }
    yield env, receiver
    receiver.server.shutdown()
    # End the runner's persistent session: the broker would keep it (and save it) for a week.
    session = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, env["HAZARDWATCH_MQTT__CLIENT_ID"],
                          protocol=mqtt.MQTTv5)  # fmt: skip
    session.connect(endpoints.mqtt_host, endpoints.mqtt_port, clean_start=True)
    session.disconnect()


class Gateway:
    """Publishes telemetry batches with QoS 1 like a real gateway."""

    def __init__(self, endpoints: Endpoints, prefix: str) -> None:
        self.topic = telemetry_topic(prefix, "E1", "GW1")
        self.seq = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect(endpoints.mqtt_host, endpoints.mqtt_port)
        self.client.loop_start()

    def send(self, level: float, temperature: float = 20.0, ts_ms: int | None = None) -> int:
        ts = ts_ms if ts_ms is not None else int(time.time() * 1000)
        self.seq += 1
        payload = encode_batch("GW1", self.seq, ts, [("TK1-LT", ts, level, 0),
                                                     ("TK1-TT", ts, temperature, 0)])  # fmt: skip
        self.client.publish(self.topic, payload, qos=1).wait_for_publish(10)
        return ts

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_alarm_reaches_influx_and_webhook_and_survives_sigkill(
    endpoints: Endpoints,
    runner_env: tuple[dict[str, str], WebhookReceiver],
    influx_target: InfluxTarget,
    tmp_path: Path,
) -> None:
    env, receiver = runner_env
    runner = Runner(env, tmp_path / "runner.log")
    runner.start()
    gateway = Gateway(endpoints, env["HAZARDWATCH_MQTT__TOPIC_PREFIX"])
    sent: list[int] = []
    for level in (10.0, 12.0, 17.5, 17.6, 17.7, 17.8):  # HH (17 m) held beyond the 1 s on-delay
        sent.append(gateway.send(level))
        time.sleep(0.4)

    query = influx_target.query
    wait_until(
        lambda: len(query('SELECT "v" FROM "reading_v1"')) == 2 * len(sent),
        what="all readings in InfluxDB",
    )
    alarms = wait_until(
        lambda: query('SELECT * FROM "alarm_v1" WHERE "condition" = \'HH\''),
        what="HH alarm row",
    )
    assert alarms[0]["tag"] == "TK1-LT" and alarms[0]["state"] == "unacknowledged"

    def risk_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        rows = query('SELECT * FROM "risk_v1" WHERE "level" = \'source\'')
        changes = [r for r in rows if r["colour"] != r["previous"]]
        calls = [r for r in rows if r["colour"] == r["previous"] and r["event_id"] is None]
        return (changes, calls) if changes and calls else None

    # A roll call (previous == colour, no event id) at start, then the change.
    risk, _ = wait_until(risk_rows, what="risk change and roll call rows")
    assert risk[-1]["colour_name"] == "orange"  # S2 at a grade-1 source
    wait_until(lambda: receiver.accepted, what="webhook alert")
    first_alerts = dict(receiver.accepted)
    # Group commit: every message acknowledged once written; the alarm's state was committed.
    metrics = wait_until(
        lambda: (m := runner.metrics()).get("hazardwatch_unacknowledged_messages") == 0 and m,
        what="every message acknowledged",
    )
    assert metrics["hazardwatch_state_saves_total"] >= 1
    assert metrics["hazardwatch_commit_groups_total"] >= 1
    assert receiver.bad == 0
    assert any(a.get("colour") == "orange" for a in first_alerts.values()), first_alerts

    # SIGKILL mid-run, then restart: the alarm and colour are restored, not raised again.
    runner.signal(signal.SIGKILL)
    runner.start()
    assert runner.health()["engine_restored"] is True
    for level in (17.9, 18.0):
        sent.append(gateway.send(level))
        time.sleep(0.4)
    wait_until(
        lambda: len(query('SELECT "v" FROM "reading_v1"')) == 2 * len(sent),
        what="readings after restart",
    )
    time.sleep(2.0)  # give a wrongly re-raised alarm time to show up
    hh_rows = query('SELECT * FROM "alarm_v1" WHERE "condition" = \'HH\'')
    assert len(hh_rows) == len(alarms), "the restarted engine raised the HH alarm again"
    assert receiver.accepted.keys() == first_alerts.keys(), "a duplicate alert was sent"

    # SIGTERM drains and exits cleanly.
    assert runner.signal(signal.SIGTERM) == 0
    gateway.close()


def test_gateway_last_will_opens_a_data_quality_alert_and_coming_back_closes_it(
    endpoints: Endpoints,
    runner_env: tuple[dict[str, str], WebhookReceiver],
    influx_target: InfluxTarget,
    tmp_path: Path,
) -> None:
    env, _ = runner_env
    token = "runner-test-token"
    tokens = {"tokens": [{"user": "e1.control", "tier": "enterprise", "area": "E1",
                          "sha256": token_hash(token)}]}  # fmt: skip
    (tmp_path / "tokens.json").write_text(json.dumps(tokens), "utf-8")
    runner = Runner(env, tmp_path / "runner.log", "--tokens", str(tmp_path / "tokens.json"))
    runner.start()
    gateway = Gateway(endpoints, env["HAZARDWATCH_MQTT__TOPIC_PREFIX"])
    status = status_topic(env["HAZARDWATCH_MQTT__TOPIC_PREFIX"], "E1", "GW1")
    api = f"http://127.0.0.1:{env['HAZARDWATCH_HTTP__API_PORT']}/api/v1/alerts"

    def publish_status(state: GatewayState, ts_ms: int) -> None:
        message = gateway.client.publish(status, encode_status("GW1", state, ts_ms), qos=1)
        message.wait_for_publish(5)

    def gateway_alerts() -> list[dict[str, Any]]:
        alerts = httpx.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        return [a for a in alerts.json()["alerts"] if a["kind"] == "data_quality"]

    try:
        gateway.send(10.0)
        now = int(time.time() * 1000)
        publish_status("offline", now)  # the gateway's last will
        gone = wait_until(
            lambda: influx_target.query('SELECT * FROM "gateway_v1" WHERE "online" = 0'),
            what="gateway_v1 offline point",
        )  # fmt: skip
        assert gone[0]["gateway"] == "GW1"
        (alert,) = wait_until(gateway_alerts, what=f"data-quality alert\n{runner.tail()}")
        assert alert["gateway"] == "GW1" and not alert["normal"]
        publish_status("online", now + 1000)
        gateway.send(10.0)
        wait_until(lambda: all(a["normal"] for a in gateway_alerts()),
                   what="the gateway's alert back to normal")  # fmt: skip
    finally:
        gateway.close()
        assert runner.signal(signal.SIGTERM) == 0
