"""The local services are real: MQTT persistent sessions, Kafka produce/consume, InfluxDB v2 write
read back with Flux and InfluxQL."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import httpx
import paho.mqtt.client as mqtt
import pytest
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.services import Endpoints

pytestmark = pytest.mark.integration


class Collector:
    """A paho MQTT 5 client with a persistent session that records payloads it receives."""

    def __init__(self, endpoints: Endpoints, client_id: str) -> None:
        self.received: list[bytes] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda *args: self._connected.set()
        self.endpoints = endpoints

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(msg.payload)

    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600  # keep the session while we are away
        self._connected.clear()
        self.client.connect(
            self.endpoints.mqtt_host, self.endpoints.mqtt_port, clean_start=False, properties=props
        )
        self.client.loop_start()
        assert self._connected.wait(10), "subscriber did not connect"

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        with self._lock:
            return list(self.received)


def publish_all(endpoints: Endpoints, topic: str, payloads: list[bytes]) -> None:
    """Publish with QoS 1 and wait until the broker acknowledged every message."""
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(100)
    pub.connect(endpoints.mqtt_host, endpoints.mqtt_port)
    pub.loop_start()
    try:
        infos = [pub.publish(topic, p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(timeout=30)
            assert info.is_published()
    finally:
        pub.disconnect()
        pub.loop_stop()


def test_mqtt_qos1_persistent_session_survives_subscriber_reconnect(
    endpoints: Endpoints, mqtt_prefix: str
) -> None:
    topic = f"{mqtt_prefix}/gw1/telemetry"
    sub = Collector(endpoints, client_id=f"smoke-{uuid.uuid4().hex[:8]}")
    sub.connect()
    sub.client.subscribe(topic, qos=1)
    publish_all(endpoints, topic, [b"before"])
    assert sub.wait_for(1) == [b"before"]
    sub.disconnect()

    # While the subscriber is away, the broker must queue more than the stock limit (1000)
    # of QoS 1 messages for its persistent session: our config sets no limit.
    payloads = [f"away-{i}".encode() for i in range(1500)]
    publish_all(endpoints, topic, payloads)

    sub.connect()  # same client id, clean_start=False: the session and its queue are resumed
    got = sub.wait_for(1 + len(payloads))
    sub.disconnect()
    assert got[0] == b"before"
    assert sorted(got[1:]) == sorted(payloads), f"received {len(got) - 1} of {len(payloads)}"


def test_kafka_produce_consume_with_aiokafka(endpoints: Endpoints, kafka_topic) -> None:  # type: ignore[no-untyped-def]
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = kafka_topic("smoke", partitions=2)
    sent = {f"source-{i}".encode(): f"reading-{i}".encode() for i in range(20)}

    async def roundtrip() -> dict[bytes, bytes]:
        producer = AIOKafkaProducer(
            bootstrap_servers=endpoints.kafka_bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            for key, value in sent.items():
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=endpoints.kafka_bootstrap,
            group_id=f"smoke-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        got: dict[bytes, bytes] = {}
        try:
            async with asyncio.timeout(30):
                while len(got) < len(sent):
                    batch = await consumer.getmany(timeout_ms=1000)
                    for records in batch.values():
                        for record in records:
                            assert record.key is not None and record.value is not None
                            got[record.key] = record.value
        finally:
            await consumer.stop()
        return got

    assert asyncio.run(roundtrip()) == sent


def test_influx_v2_write_read_back_with_flux_and_influxql(
    endpoints: Endpoints, influx_database: str
) -> None:
    bucket = f"{influx_database}/autogen"
    ts_ms = 1_763_800_000_000
    with InfluxDBClient(url=endpoints.influx_url, token="", org="-") as client:
        point = (
            Point("reading")
            .tag("tag", "TK-101.level")
            .field("v", 12.5)
            .time(ts_ms, WritePrecision.MS)
        )
        client.write_api(write_options=SYNCHRONOUS).write(bucket=bucket, record=point)
        tables = client.query_api().query(
            f'from(bucket: "{bucket}") |> range(start: 2025-01-01T00:00:00Z) '
            '|> filter(fn: (r) => r._measurement == "reading")'
        )
        flux_rows = [
            (r.values["tag"], r.get_field(), r.get_value()) for t in tables for r in t.records
        ]
    assert flux_rows == [("TK-101.level", "v", 12.5)]

    resp = httpx.get(
        f"{endpoints.influx_url}/query",
        params={"db": influx_database, "q": 'SELECT "v", "tag" FROM "reading"', "epoch": "ms"},
    )
    resp.raise_for_status()
    series = resp.json()["results"][0]["series"][0]
    assert series["values"] == [[ts_ms, 12.5, "TK-101.level"]]
