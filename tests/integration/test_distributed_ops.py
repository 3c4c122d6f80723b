"""Operations data of the distributed runners on real Mosquitto, Kafka and InfluxDB.

`hazardwatch bridge`, `hazardwatch worker` and `hazardwatch alerts serve` run as processes, a
local webhook receiver plays the county's data-quality desk. Claims under test
(docs/architecture.md "Distributed runner", docs/influx-schema.md "Written by"):
- a gateway that goes away (its MQTT last will) ends as a `gateway_v1` online=0 point written by
  the bridge and a `gateway_offline` data-quality alert delivered to the county's webhook;
- messages the bridge refuses appear as `pipeline_v1` points of `process=bridge` per reason,
  and the bridge writes each gateway's online rate;
- the worker writes a colour roll call (`risk_v1` without an event id) for every hazard source
  of its partitions and for the enterprise, and its own `pipeline_v1` counters;
- `alerts serve` writes `alert_v1` for the alert it raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from alerting.auth import token_hash
from alerting.channels.webhook import verify_webhook
from ingest.protocol import encode_batch, encode_status, status_topic, telemetry_topic
from tests.integration.test_worker import (
    PARTITIONS,
    SOURCES,
    TAGS,
    Service,
    TopicReader,
    Worker,
    plant_yaml,
)
from tests.processes import drop_kafka_topics, free_port, influx_rows, wait_until
from tests.services import Endpoints

pytestmark = pytest.mark.integration

SECRET = "wh-secret"
COUNTY = "410102"  # the county of E1 in plant_yaml()


def policy_yaml(webhook: str) -> str:
    """Data-quality notices go to the county desk one second after a gateway went offline."""
    return f"""
routing:
  data_quality: {{notify_after_s: 1}}
  delivery: {{max_attempts: 6, backoff_initial_s: 0.2, backoff_max_s: 2, timeout_s: 2}}
  recipients:
    - id: county-dq-desk
      tier: county
      area: "{COUNTY}"
      channels:
        - {{type: webhook, url: "{webhook}/county", secret_env: HW_WEBHOOK_SECRET}}
"""


class Receiver:
    """The county's webhook endpoint: verifies signatures and keeps every delivered payload."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.refused = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    verify_webhook(SECRET, dict(self.headers), body, time.time())
                except Exception:
                    owner.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                owner.payloads.append(orjson.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Gateway:
    """GW1 over MQTT 5 with its retained `offline` status as last will, like a real gateway."""

    def __init__(self, endpoints: Endpoints, prefix: str) -> None:
        self.status = status_topic(prefix, "E1", "GW1")
        self.telemetry = telemetry_topic(prefix, "E1", "GW1")
        self.seq = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.will_set(self.status, encode_status("GW1", "offline", now_ms()), 1, True)
        self.client.connect(endpoints.mqtt_host, endpoints.mqtt_port)
        self.client.loop_start()
        self.publish(self.status, encode_status("GW1", "online", now_ms()), retain=True)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def send(self, levels: list[float]) -> None:
        self.seq += 1
        ts = now_ms()
        points = [(tag, ts, level, 0) for tag, level in zip(TAGS, levels, strict=True)]
        self.publish(self.telemetry, encode_batch("GW1", self.seq, ts, points))

    def vanish(self) -> int:
        """Disconnect so that the broker publishes the last will (MQTT 5 reason code 4)."""
        gone = now_ms()
        self.client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=4))
        self.client.loop_stop()
        return gone


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Site:
    """Settings environment and files shared by the three processes."""

    def __init__(self, endpoints: Endpoints, database: str, mqtt_prefix: str, prefix: str,
                 tmp: Path, receiver: Receiver) -> None:  # fmt: skip
        self.endpoints, self.database, self.prefix, self.tmp = endpoints, database, prefix, tmp
        self.mqtt_prefix, self.receiver = mqtt_prefix, receiver
        (tmp / "plant.yaml").write_text(plant_yaml(), "utf-8")
        (tmp / "policy.yaml").write_text(policy_yaml(receiver.base), "utf-8")
        (tmp / "tokens.yaml").write_text(
            f'tokens:\n  - {{user: li, tier: county, area: "{COUNTY}", '
            f'sha256: "{token_hash("t-li")}"}}\n', "utf-8")  # fmt: skip
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HAZARDWATCH_")},
            "HW_WEBHOOK_SECRET": SECRET,
            "HAZARDWATCH_PLANT": str(tmp / "plant.yaml"),
            "HAZARDWATCH_POLICY": str(tmp / "policy.yaml"),
            "HAZARDWATCH_DATA_DIR": str(tmp / "data"),
            "HAZARDWATCH_MQTT__URL": f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}",
            "HAZARDWATCH_MQTT__TOPIC_PREFIX": mqtt_prefix,
            "HAZARDWATCH_KAFKA__BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
            "HAZARDWATCH_KAFKA__TOPIC_PREFIX": prefix,
            "HAZARDWATCH_KAFKA__PARTITIONS": str(PARTITIONS),
            "HAZARDWATCH_INFLUX__URL": endpoints.influx_url,
            "HAZARDWATCH_INFLUX__DATABASE": database,
            "HAZARDWATCH_WORKER__COMMIT_INTERVAL_S": "0.5",
            "HAZARDWATCH_WORKER__CLOCK_LAG_MS": "2000",
            "HAZARDWATCH_WORKER__ENTERPRISE_GRACE_MS": "1000",
        }

    def rows(self, query: str) -> list[dict[str, Any]]:
        return influx_rows(self.endpoints.influx_url, self.database, query)

    def alerts_consumed(self) -> bool:
        """`alerts serve` committed every record of the alerts topic (so it handled them)."""
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition

        from alerting.kafka import GROUP

        topic = f"{self.prefix}.alerts"

        async def check() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.endpoints.kafka_bootstrap)
            consumer = AIOKafkaConsumer(bootstrap_servers=self.endpoints.kafka_bootstrap)
            await admin.start()
            await consumer.start()
            try:
                [described] = await admin.describe_topics([topic])
                tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
                ends = await consumer.end_offsets(tps)
                done = await admin.list_consumer_group_offsets(GROUP.format(topic=topic))
                return bool(tps) and all(done.get(tp) is not None and done[tp].offset >= end
                                         for tp, end in ends.items())  # fmt: skip
            finally:
                await consumer.stop()
                await admin.close()

        return asyncio.run(check())

    def bridge(self) -> Service:
        return Service(["bridge", "--client-id", f"{self.prefix}-bridge"], self.env,
                       self.tmp / "bridge.log")  # fmt: skip

    def alerts(self) -> tuple[Service, int]:
        port = free_port()
        env = {**self.env, "HAZARDWATCH_HTTP__PORT": str(port)}
        args = ["alerts", "serve", "--tokens", str(self.tmp / "tokens.yaml")]
        return Service(args, env, self.tmp / "alerts.log"), port


@pytest.fixture
def site(
    endpoints: Endpoints,
    influx_database: str,
    mqtt_prefix: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[Site]:
    receiver = Receiver()
    prefix = unique_name("hwtest")
    made = Site(endpoints, influx_database, mqtt_prefix, prefix, tmp_path, receiver)
    yield made
    receiver.close()
    # the last will is retained: leave no status behind on the shared broker
    cleaner = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    with contextlib.suppress(Exception):
        cleaner.connect(endpoints.mqtt_host, endpoints.mqtt_port)
        cleaner.loop_start()
        cleaner.publish(status_topic(mqtt_prefix, "E1", "GW1"), b"", 1, True).wait_for_publish(5)
        cleaner.disconnect()
        cleaner.loop_stop()

    drop_kafka_topics(endpoints.kafka_bootstrap, prefix)


def test_gateway_status_rejections_roll_call_and_alerts_in_distributed_mode(site: Site) -> None:
    receiver = site.receiver
    worker = Worker(site.env, site.tmp / "worker.log", "w1").start()
    bridge = site.bridge().start()
    alerts, api_port = site.alerts()
    alerts.start()
    processes = [worker, bridge, alerts]
    events = TopicReader(site.endpoints.kafka_bootstrap, f"{site.prefix}.alerts")
    try:
        wait_until(lambda: bridge.alive() and "→" in bridge.tail(), 30, "bridge subscribed")
        gateway = Gateway(site.endpoints, site.mqtt_prefix)
        gateway.publish(gateway.telemetry, b"not json")  # refused: invalid_json
        for _ in range(8):
            gateway.send([10.0, 11.0, 12.0])
            time.sleep(0.25)
        wait_until(lambda: worker.health().get("ok"), 60, f"worker ready\n{worker.tail()}")
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=2)
                   .status_code < 500 and alerts.alive(), 30, "alerts serve up")  # fmt: skip
        gone = gateway.vanish()

        # 1. the last will: gateway_v1 online=0 from the bridge, and the county's webhook
        def offline_point() -> list[dict[str, Any]]:
            rows = site.rows('SELECT "online" FROM "gateway_v1" WHERE "gateway" = \'GW1\'')
            return [r for r in rows if r["online"] == 0 and r["time"] >= gone - 1000]

        wait_until(offline_point, 20, f"gateway_v1 online=0\n{bridge.tail()}")

        def notice() -> list[dict[str, Any]]:
            return [p for p in receiver.payloads if p.get("kind") == "data_quality"]

        [delivered] = wait_until(notice, 30, f"data-quality webhook\n{alerts.tail()}")
        assert delivered["enterprise"] == "E1" and delivered["tier"] == "county"
        assert receiver.refused == 0

        # 3. alerts serve writes the alert's life-cycle step for the tier it told
        def step() -> list[dict[str, Any]]:
            return site.rows('SELECT "state", "kind", "alert_id" FROM "alert_v1" '
                             'GROUP BY "tier", "source", "colour"')  # fmt: skip

        [raised] = wait_until(step, 10, f"alert_v1\n{alerts.tail()}")
        assert (raised["state"], raised["kind"], raised["tier"]) == ("raised", "data_quality",
                                                                      "county")  # fmt: skip
        assert raised["alert_id"] == delivered["alert_id"] and raised["source"] == "-"

        # 2. the bridge's refusals by reason, and the gateway's online rate (every 10 s)
        def refused() -> list[dict[str, Any]]:
            return site.rows('SELECT "rejected" FROM "pipeline_v1" WHERE "process" = \'bridge\' '
                             'AND "reason" = \'invalid_json\'')  # fmt: skip

        assert wait_until(refused, 15, f"pipeline_v1 reason\n{bridge.tail()}")[-1]["rejected"] == 1
        rate_query = (f'SELECT "online_rate", "online" FROM "gateway_v1" WHERE "online_rate" >= 0 '
                      f"AND time > {gone}ms")  # fmt: skip
        [rate, *_] = wait_until(lambda: site.rows(rate_query), 15, "online rate")
        assert 0 < rate["online_rate"] < 1 and rate["online"] == 0

        # 4. the worker's roll call: every hazard source and the enterprise, no event id
        def roll_call() -> list[dict[str, Any]]:
            rows = site.rows('SELECT "colour", "previous", "event_id" FROM "risk_v1" '
                             'GROUP BY "level", "source", "enterprise"')  # fmt: skip
            return [r for r in rows if r["event_id"] is None]

        def everyone() -> bool:
            called = {(r["level"], r["source"]) for r in roll_call()}
            return called >= {("enterprise", "-"), *(("source", s) for s in SOURCES)}

        wait_until(everyone, 20, f"roll call of every source\n{worker.tail()}")
        calls = roll_call()
        assert len(calls) == len(SOURCES) + 1, calls  # once each, not every tick
        assert all(r["colour"] == r["previous"] == 1 and r["enterprise"] == "E1" for r in calls)

        # 3. the worker's own counters
        def counted() -> list[dict[str, Any]]:
            return site.rows('SELECT "readings_in", "evaluated" FROM "pipeline_v1" '
                             'WHERE "process" = \'worker:w1\'')  # fmt: skip

        wait_until(lambda: any(r["readings_in"] == 8 * len(TAGS) for r in counted()), 15,
                   f"pipeline_v1 of the worker\n{worker.tail()}")  # fmt: skip

        # 1. a bridge SIGKILLed and restarted judges the gateway again from its retained last
        # will: one more offline point, and alerts serve keeps the one alert and sends nothing
        bridge.signal(signal.SIGKILL)
        restarted = now_ms()
        bridge = site.bridge().start()
        processes.append(bridge)
        wait_until(lambda: [r for r in offline_point() if r["time"] > restarted], 20,
                   f"offline again after the restart\n{bridge.tail()}")  # fmt: skip
        wait_until(site.alerts_consumed, 20, "alerts serve read every event")
        offline = [e for e in events.values if e.get("condition") == "gateway_offline"]
        assert len({e["id"] for e in offline}) == 2, offline  # before and after the restart
        assert all(e["state"] == "active" and e["gateway"] == "GW1" for e in offline)
        assert len(notice()) == 1
        active = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/alerts", timeout=5,
                           headers={"Authorization": "Bearer t-li"}).json()["alerts"]  # fmt: skip
        assert [a["id"] for a in active] == [delivered["alert_id"]]
    finally:
        events.close()
        for process in processes:
            process.stop()
