"""`hazardwatch bridge` against real Mosquitto and Kafka, including SIGKILL mid-stream.

Claim under test (ingest/bridge.py): at least once, with duplicates removable by
(gateway, seq, source) — every published reading reaches Kafka, and any copy is identical.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from hazardwatch.plant.loader import load_plant
from ingest import protocol
from ingest.mqtt import LinkOptions, MqttLink
from tests.services import Endpoints

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PLANT = ROOT / "examples" / "tank-farm.yaml"
HAZARDWATCH = Path(sys.executable).parent / "hazardwatch"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class BridgeProcess:
    """`hazardwatch bridge` as a subprocess with settings from the environment."""

    def __init__(
        self, endpoints: Endpoints, prefix: str, client_id: str, topics: tuple[str, str],
        private: dict[str, str],
    ) -> None:  # fmt: skip
        self.env = {
            **os.environ,
            "HAZARDWATCH_MQTT__URL": f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}",
            "HAZARDWATCH_MQTT__TOPIC_PREFIX": prefix,
            "HAZARDWATCH_KAFKA__BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
            "HAZARDWATCH_INFLUX__URL": endpoints.influx_url,
            **private,  # its spool, InfluxDB database and gateway-event topics: this test's own
        }
        self.args = [
            str(HAZARDWATCH), "bridge", "--plant", str(PLANT), "--client-id", client_id,
            "--telemetry-topic", topics[0], "--deadletter-topic", topics[1],
        ]  # fmt: skip
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start and wait for its "bridge … →" log line (subscribed, producer up)."""
        self.process = subprocess.Popen(
            self.args, env=self.env, stderr=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self.process.stderr is not None
        deadline = time.monotonic() + 60
        for line in self.process.stderr:
            if " → " in line:
                break
            assert time.monotonic() < deadline, "bridge did not start"
        else:
            pytest.fail(f"bridge exited with {self.process.wait()}")
        # keep draining its log so it never blocks on a full pipe
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(30)


@pytest.fixture
def bridge_factory(
    endpoints: Endpoints,
    mqtt_prefix: str,
    unique_name: Callable[[str], str],
    influx_database: str,
    tmp_path: Path,
) -> Iterator[Callable[[tuple[str, str]], BridgeProcess]]:
    made: list[BridgeProcess] = []
    client_id = unique_name("bridge")
    private = {
        "HAZARDWATCH_DATA_DIR": str(tmp_path / "data"),
        "HAZARDWATCH_INFLUX__DATABASE": influx_database,
        "HAZARDWATCH_KAFKA__TOPIC_PREFIX": unique_name("bridgetest"),
    }

    def make(topics: tuple[str, str]) -> BridgeProcess:
        bridge = BridgeProcess(endpoints, mqtt_prefix, client_id, topics, private)
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        if bridge.process is not None and bridge.process.poll() is None:
            bridge.process.kill()
            bridge.process.wait()


def gateway_messages(count: int) -> list[tuple[str, bytes, list[tuple[str, int, str, float]]]]:
    """`count` messages alternating GW-TF-A / GW-TF-B, 6 points each: (topic, payload, readings)."""
    plant = load_plant(PLANT)
    gateways = {g.id: g for g in plant.gateways}
    out = []
    t0 = now_ms()
    for k in range(count):
        gw = gateways["GW-TF-A" if k % 2 == 0 else "GW-TF-B"]
        seq = k // 2 + 1
        points = [(tag, t0 + k, float(k * 10 + i), 0) for i, tag in enumerate(gw.tags[:6])]
        readings = [(gw.id, seq, tag, v) for tag, _, v, _ in points]
        topic = protocol.telemetry_topic("{prefix}", gw.enterprise, gw.id)
        out.append((topic, protocol.encode_batch(gw.id, seq, t0, points), readings))
    return out


async def consume(endpoints: Endpoints, topic: str, want: int, timeout_s: float) -> list[Any]:
    """Every record of `topic` from the start until `want` distinct readings or timeout."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=endpoints.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    seen: set[tuple[str, int, str]] = set()
    try:
        deadline = time.monotonic() + timeout_s
        while len(seen) < want and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                for record in batch:
                    records.append(record)
                    value = orjson.loads(record.value)
                    seen.update((value["gw"], value["seq"], tag) for tag in value["tags"])
    finally:
        await consumer.stop()
    return records


async def consume_raw(endpoints: Endpoints, topic: str, want: int, timeout_s: float) -> list[Any]:
    """The first `want` records of `topic` (or fewer at timeout)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=endpoints.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < want and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def test_bridge_sigkilled_mid_stream_loses_nothing(
    endpoints: Endpoints,
    mqtt_prefix: str,
    kafka_topic: Callable[..., str],
    bridge_factory: Callable[[tuple[str, str]], BridgeProcess],
    unique_name: Callable[[str], str],
) -> None:
    topics = (kafka_topic("tele", partitions=4), kafka_topic("dead"))
    first = bridge_factory(topics)
    first.start()
    settings = endpoints.settings().mqtt
    publisher: MqttLink[None] = MqttLink(
        settings, LinkOptions(client_id=unique_name("gw"), clean_start=True), lambda *a: None
    )
    publisher.start()
    messages = gateway_messages(1200)
    published: list[tuple[str, int, str, float]] = []

    def publish_stream() -> None:
        for k, (topic, payload, readings) in enumerate(messages):
            publisher.publish(topic.replace("{prefix}", mqtt_prefix), payload)
            published.extend(readings)
            if k % 100 == 99:
                time.sleep(0.1)  # ~1,000 messages/s, so the kill lands mid-stream

    stream = threading.Thread(target=publish_stream)
    stream.start()
    time.sleep(0.5)
    kill_ms = now_ms()
    first.kill()  # SIGKILL: no clean disconnect, in-flight MQTT messages unacknowledged
    killed_after = len(published)
    time.sleep(0.5)
    second = bridge_factory(topics)
    second.start()
    restart_ms = now_ms()
    stream.join()
    # one message with a good and an unknown point: the good one goes on, the message is
    # dead-lettered with its reason
    t = now_ms()
    mixed = [("T101-LT", t, 7.5, 0), ("NO-SUCH-TAG", t, 1.0, 0)]
    bad_payload = protocol.encode_batch("GW-TF-A", 10_000, t, mixed)
    publisher.publish_all(
        [(protocol.telemetry_topic(mqtt_prefix, "QZ-PETRO", "GW-TF-A"), bad_payload)]
    )
    published.append(("GW-TF-A", 10_000, "T101-LT", 7.5))
    publisher.stop()

    assert 0 < killed_after < len(messages) * 6, "the kill must land mid-stream"
    records = asyncio.run(consume(endpoints, topics[0], len(published), timeout_s=60))
    dead = asyncio.run(consume_raw(endpoints, topics[1], 1, timeout_s=30))
    assert second.terminate() == 0
    assert [orjson.loads(r.value)["reasons"] for r in dead] == [["unknown_tag"]]
    assert dead[0].key == b"GW-TF-A"

    # dedup by (gw, seq, source): identical copies collapse, nothing is missing
    by_key: dict[tuple[str, int, str], bytes] = {}
    partitions: dict[str, set[int]] = {}
    for record in records:
        value = orjson.loads(record.value)
        key = (value["gw"], value["seq"], value["source"])
        assert by_key.setdefault(key, record.value) == record.value, "a copy differs"
        assert record.key == value["source"].encode()
        assert dict(record.headers)["seq"] == str(value["seq"]).encode()
        partitions.setdefault(value["source"], set()).add(record.partition)
    delivered = sorted(
        (v["gw"], v["seq"], tag, val)
        for v in map(orjson.loads, by_key.values())
        for tag, val in zip(v["tags"], v["vals"], strict=True)
    )
    assert delivered == sorted(published)
    assert all(len(p) == 1 for p in partitions.values()), "a source spans partitions"
    # both bridge processes carried part of the stream
    assert any(r.timestamp < kill_ms for r in records)
    assert any(r.timestamp >= restart_ms for r in records)
    duplicates = len(records) - len(by_key)
    print(f"records {len(records)}, distinct {len(by_key)}, duplicates {duplicates}")
