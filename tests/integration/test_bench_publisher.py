"""The benchmarks' lean load generator against the real Mosquitto: every QoS 1 message is
delivered once, in order, and a broker refusal fails the run instead of hanging it."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.bulk_publisher import BulkPublisher
from tests.services import Endpoints

pytestmark = pytest.mark.integration


class Subscriber:
    """A paho QoS 1 subscriber recording (topic, payload) in arrival order."""

    def __init__(self, endpoints: Endpoints, topic_filter: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"bulk-sub-{uuid.uuid4().hex[:6]}",
                                  protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        self.client.on_message = lambda c, u, m: self.received.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect(endpoints.mqtt_host, endpoints.mqtt_port)
        self.client.subscribe(topic_filter, qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(10), "subscription not acknowledged"

    def wait_for(self, count: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_every_message_arrives_once_in_order(endpoints: Endpoints, mqtt_prefix: str) -> None:
    subscriber = Subscriber(endpoints, f"{mqtt_prefix}/#")
    messages = [(f"{mqtt_prefix}/g{i % 3}", f"reading {i}".encode() * 50) for i in range(5000)]
    publisher = BulkPublisher(endpoints.mqtt_host, endpoints.mqtt_port, "test")
    try:
        # Mosquitto's receive maximum (max_inflight_messages 100) bounds the window.
        assert publisher.window == 100
        publisher.publish_all(messages)
    finally:
        publisher.close()
    subscriber.wait_for(len(messages))
    subscriber.close()
    assert sorted(subscriber.received) == sorted(messages)  # all, none twice
    for gateway in range(3):
        topic = f"{mqtt_prefix}/g{gateway}"
        sent = [p for t, p in messages if t == topic]
        assert [p for t, p in subscriber.received if t == topic] == sent  # per-topic order


def test_a_refused_publish_fails_loudly(endpoints: Endpoints, mqtt_prefix: str) -> None:
    publisher = BulkPublisher(endpoints.mqtt_host, endpoints.mqtt_port, "test")
    too_large = b"x" * (2 * 1024 * 1024)  # over the broker's max_packet_size of 1 MiB
    try:
        with pytest.raises(ConnectionError):
            publisher.publish_all([(f"{mqtt_prefix}/big", too_large)], timeout_s=30)
    finally:
        publisher.sock.close()
