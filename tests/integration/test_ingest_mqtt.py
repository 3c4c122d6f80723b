"""Embedded ingest against the real Mosquitto: hand-off, dead-letter, acks, shared subscriptions."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
import pytest

from hazardwatch.settings import MqttSettings
from ingest import protocol
from ingest.deadletter import original_payload
from ingest.mqtt import LinkOptions, MqttLink
from ingest.results import Decoded
from ingest.service import IngestService, open_ingest
from tests.services import Endpoints
from tests.unit.ingest_plants import two_enterprise_plant

pytestmark = pytest.mark.integration


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def mqtt_settings(endpoints: Endpoints, mqtt_prefix: str) -> MqttSettings:
    return endpoints.settings().mqtt.model_copy(update={"topic_prefix": mqtt_prefix})


class Collector:
    """Hand-off target recording what reached it; can be told to fail."""

    def __init__(self) -> None:
        self.messages: list[Decoded] = []
        self.fail = False
        self.lock = threading.Lock()

    def __call__(self, batch: Sequence[Decoded]) -> None:
        if self.fail:
            raise RuntimeError("sink down")
        with self.lock:
            self.messages.extend(batch)

    def readings(self) -> list[tuple[str, str, float]]:
        with self.lock:
            return [(r.gw or "", r.tag, r.v) for m in self.messages for r in m.readings()]


@pytest.fixture
def running(
    mqtt_settings: MqttSettings, unique_name: Callable[[str], str]
) -> Iterator[Callable[..., tuple[IngestService, Collector]]]:
    stops: list[tuple[threading.Event, threading.Thread, IngestService]] = []

    def start(
        client_id: str | None = None, share_group: str | None = None
    ) -> tuple[IngestService, Collector]:
        collector = Collector()
        service = open_ingest(
            mqtt_settings,
            two_enterprise_plant(),
            collector,
            client_id=client_id or unique_name("ingest"),
            share_group=share_group,
        )
        service.link.start()
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        stops.append((stop, thread, service))
        time.sleep(0.3)  # subscription in place
        return service, collector

    yield start
    for stop, thread, service in stops:
        stop.set()
        thread.join(5)
        service.link.stop()


@pytest.fixture
def publisher(
    mqtt_settings: MqttSettings, unique_name: Callable[[str], str]
) -> Iterator[MqttLink[None]]:
    link: MqttLink[None] = MqttLink(
        mqtt_settings,
        LinkOptions(client_id=unique_name("gw"), clean_start=True),
        lambda t, p, r: None,
    )
    link.start()
    yield link
    link.stop()


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_readings_handed_off_and_refusals_dead_lettered(
    running: Callable[..., tuple[IngestService, Collector]],
    publisher: MqttLink[None],
    mqtt_settings: MqttSettings,
    unique_name: Callable[[str], str],
) -> None:
    prefix = mqtt_settings.topic_prefix
    dead: list[tuple[str, dict[str, Any]]] = []
    watcher: MqttLink[None] = MqttLink(
        mqtt_settings,
        LinkOptions(
            client_id=unique_name("dl"),
            subscriptions=(f"{prefix}/deadletter/#",),
            clean_start=True,
        ),
        lambda topic, payload, _: dead.append((topic, orjson.loads(payload))),
    )
    watcher.start()
    service, collector = running()
    t = now_ms()
    good = protocol.encode_batch("G1", 1, t, [("T1", t, 1.5, 0), ("U1", t, 9.0, 0)])
    spoof = protocol.encode_batch("H1", 1, t, [("U1", t, 2.0, 0)])
    binary = b"\xff\x00garbage"
    publisher.publish_all(
        [
            (protocol.telemetry_topic(prefix, "E1", "G1"), good),
            (protocol.telemetry_topic(prefix, "E1", "H1"), spoof),  # E2's gateway in E1's tree
            (protocol.telemetry_topic(prefix, "E1", "G1"), binary),
            (protocol.telemetry_topic(prefix, "E1", "G1"), good),  # redelivery: dropped quietly
        ]
    )
    wait_for(lambda: len(dead) == 3)
    watcher.stop()
    assert collector.readings() == [("G1", "T1", 1.5)]
    by_reason = {",".join(record["reasons"]): (t, record) for t, record in dead}
    assert set(by_reason) == {"cross_enterprise_tag", "enterprise_mismatch", "invalid_utf8"}
    topic, record = by_reason["cross_enterprise_tag"]
    assert topic == protocol.deadletter_topic(prefix, "E1", "G1", "telemetry")
    assert record["accepted"] == 1 and original_payload(record) == good
    assert original_payload(by_reason["invalid_utf8"][1]) == binary
    counters = service.decoder.counters.snapshot()
    assert counters["rejected_duplicate_sequence"] == 1
    assert counters["rejected_enterprise_mismatch"] == 1


def test_message_is_acked_only_after_handoff_succeeds(
    running: Callable[..., tuple[IngestService, Collector]],
    publisher: MqttLink[None],
    mqtt_settings: MqttSettings,
    unique_name: Callable[[str], str],
) -> None:
    prefix = mqtt_settings.topic_prefix
    client_id = unique_name("ingest")
    service, collector = running(client_id)
    collector.fail = True  # the engine/sink is down: nothing may be acknowledged
    t = now_ms()
    payloads = [protocol.encode_batch("G1", s, t, [("T1", t, float(s), 0)]) for s in (1, 2, 3)]
    publisher.publish_all([(protocol.telemetry_topic(prefix, "E1", "G1"), p) for p in payloads])
    wait_for(lambda: service.counters.handoff_failures >= 1)
    # crash-like stop: the session keeps the unacknowledged messages
    service.link._client.disconnect()
    service.link._client.loop_stop()
    _, second = running(client_id)
    wait_for(lambda: len(second.readings()) == 3)
    assert sorted(v for _, _, v in second.readings()) == [1.0, 2.0, 3.0]


def test_shared_subscription_splits_load_without_loss(
    running: Callable[..., tuple[IngestService, Collector]],
    publisher: MqttLink[None],
    mqtt_settings: MqttSettings,
    unique_name: Callable[[str], str],
) -> None:
    prefix = mqtt_settings.topic_prefix
    group = unique_name("grp")
    _, first = running(share_group=group)
    _, second = running(share_group=group)
    t = now_ms()
    messages = [
        (
            protocol.telemetry_topic(prefix, "E1", "G1"),
            protocol.encode_batch("G1", s, t, [("T1", t, float(s), 0)]),
        )
        for s in range(1, 201)
    ]
    publisher.publish_all(messages)
    wait_for(lambda: len(first.readings()) + len(second.readings()) == 200)
    assert first.readings() and second.readings()  # both processes took a share
    values = sorted(v for c in (first, second) for _, _, v in c.readings())
    assert values == [float(s) for s in range(1, 201)]


def _drain(link: MqttLink[bytes], until: Callable[[list[bytes]], bool]) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + 10
    while not until(got):
        assert time.monotonic() < deadline, f"timed out with {len(got)} messages"
        batch = link.next_batch(1000, 0.2)
        got += [d.item for d in batch]
        link.ack(batch)
    return got


@pytest.mark.parametrize("protocol_version", [5, 4])
def test_batch_acks_reach_the_broker_so_nothing_is_redelivered(
    protocol_version: int,
    publisher: MqttLink[None],
    mqtt_settings: MqttSettings,
    unique_name: Callable[[str], str],
) -> None:
    # The PUBACKs of a batch leave as one write; the broker must take every one of them, or the
    # persistent session would hand the messages again to the next connection.
    settings = mqtt_settings.model_copy(update={"protocol": protocol_version})
    topic = f"{settings.topic_prefix}/acks"
    options = LinkOptions(unique_name("acks"), subscriptions=(topic,), hook_in_consumer=True)

    def connect() -> MqttLink[bytes]:
        link: MqttLink[bytes] = MqttLink(settings, options, lambda t, payload, r: payload)
        link.start()
        return link

    first = connect()
    sent = [str(i).encode() for i in range(300)]
    publisher.publish_all([(topic, p) for p in sent])
    assert _drain(first, lambda got: len(got) >= 300) == sent
    first.stop()
    publisher.publish_all([(topic, b"after")])
    second = connect()
    assert _drain(second, lambda got: b"after" in got) == [b"after"]
    second.stop()


def test_full_queue_holds_the_backlog_at_the_broker_without_loss(
    publisher: MqttLink[None], mqtt_settings: MqttSettings, unique_name: Callable[[str], str]
) -> None:
    topic = f"{mqtt_settings.topic_prefix}/slow"
    options = LinkOptions(unique_name("slow"), subscriptions=(topic,), queue_size=5)
    link: MqttLink[bytes] = MqttLink(mqtt_settings, options, lambda t, payload, r: payload)
    link.start()
    sent = [str(i).encode() for i in range(200)]
    publisher.publish_all([(topic, p) for p in sent])
    # Nobody consumes: the network thread stops at a full queue instead of buffering 200.
    wait_for(lambda: link.backpressure_waits >= 1)
    assert link.pending() == 5
    assert _drain(link, lambda got: len(got) >= 200) == sent
    link.stop()


def test_link_sockets_send_at_once(publisher: MqttLink[None]) -> None:
    """Nagle off (TCP_NODELAY) on our connections: with a broker that sends at once, a client
    that publishes and subscribes would otherwise wait ~40 ms on its kernel's delayed ACK."""
    sock = publisher._client.socket()
    assert sock is not None
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
