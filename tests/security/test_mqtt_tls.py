"""Ingest over Mosquitto's TLS listener: passwords, per-gateway ACL, and identity checks in ingest.

Two locks on the same door: the broker's ACL keeps a gateway's account inside its enterprise's
topics (TLS listener), and ingest's decoder refuses a gateway speaking for another enterprise even
when the broker lets the message through (the open 1883 listener).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from hazardwatch.settings import MqttSettings
from ingest import protocol
from ingest.mqtt import LinkOptions, MqttError, MqttLink
from ingest.results import Decoded
from ingest.service import IngestService, open_ingest
from tests.security.helpers import batch, gateway_link, wait_for
from tests.security.plant import INGEST_ACCOUNT, security_plant
from tests.services import Endpoints

pytestmark = pytest.mark.integration
Unique = Callable[[str], str]


class Collector:
    """Hand-off target of the ingest service: every decoded message that had readings."""

    def __init__(self) -> None:
        self.messages: list[Decoded] = []
        self.lock = threading.Lock()

    def __call__(self, batch: Sequence[Decoded]) -> None:
        with self.lock:
            self.messages.extend(batch)

    def readings(self) -> list[tuple[str, str, float]]:
        with self.lock:
            return [(r.gw or "", r.tag, r.v) for m in self.messages for r in m.readings()]


@pytest.fixture
def ingest(tmp_path: Path, unique_name: Unique) -> Iterator[Callable[[MqttSettings], Any]]:
    """Starts the embedded ingest service (the real paho adapter) with the given settings."""
    running: list[tuple[threading.Event, threading.Thread, IngestService]] = []

    def start(settings: MqttSettings) -> tuple[IngestService, Collector]:
        collector = Collector()
        service = open_ingest(settings, security_plant(tmp_path), collector,
                              client_id=unique_name("sec-ingest"))  # fmt: skip
        service.link.start(timeout_s=10)
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        running.append((stop, thread, service))
        return service, collector

    yield start
    for stop, thread, service in running:
        stop.set()
        thread.join(5)
        service.link.stop()


@pytest.mark.parametrize("version", [5, 4], ids=["mqtt5", "mqtt311"])
def test_readings_flow_over_tls_with_passwords(
    tls: Endpoints, ingest: Callable[[MqttSettings], Any], mqtt_prefix: str,
    unique_name: Unique, version: int,
) -> None:  # fmt: skip
    settings = tls.mqtt_tls(INGEST_ACCOUNT, topic_prefix=mqtt_prefix, protocol=version)
    assert settings.url.startswith("mqtts://") and settings.protocol == version
    _service, collector = ingest(settings)
    gateway = gateway_link(tls.mqtt_tls("GW-SEC-A1", protocol=version), unique_name("gw"))
    try:
        topic = protocol.telemetry_topic(mqtt_prefix, "SEC-A", "GW-SEC-A1")
        gateway.publish_all([(topic, batch("GW-SEC-A1", s, "A1-LT", 10.0 + s)) for s in (1, 2, 3)])
    finally:
        gateway.stop()
    wait_for(lambda: len(collector.readings()) == 3, what="three readings over TLS")
    assert collector.readings() == [("GW-SEC-A1", "A1-LT", v) for v in (11.0, 12.0, 13.0)]


@pytest.mark.parametrize("version", [5, 4], ids=["mqtt5", "mqtt311"])
def test_broker_refuses_wrong_passwords_at_once(
    tls: Endpoints, unique_name: Unique, version: int
) -> None:
    accounts = tls.mqtt_credentials()
    attempts = {
        "wrong password": ("GW-SEC-A1", accounts["GW-SEC-A1"][:-1] + "x"),
        "empty password": ("GW-SEC-A1", ""),
        "another account's password": (INGEST_ACCOUNT, accounts["GW-SEC-A1"]),
        "unknown account": ("GW-SEC-Z9", accounts["GW-SEC-A1"]),
    }
    for what, (user, password) in attempts.items():
        try:
            gateway_link(tls.mqtt_tls(user, password, protocol=version), unique_name("bad"))
        except MqttError as exc:  # the broker's CONNACK reason, not a timeout
            assert "refused the connection: Not authorized" in str(exc), what
        else:
            pytest.fail(f"{what}: the broker accepted the connection")
    anonymous = tls.mqtt_tls("GW-SEC-A1", protocol=version).model_copy(
        update={"username": None, "password": None}
    )
    with pytest.raises(MqttError, match="refused the connection: Not authorized"):
        gateway_link(anonymous, unique_name("anon"))


def test_tls_listener_speaks_only_tls_with_a_trusted_certificate(
    tls: Endpoints, unique_name: Unique
) -> None:
    good = tls.mqtt_tls("GW-SEC-A1")
    cases = {
        # plain MQTT to the TLS port: the handshake never completes
        "plain": good.model_copy(
            update={"url": f"mqtt://127.0.0.1:{tls.mqtt_tls_port}", "ca_file": None}
        ),
        # TLS trusting only the system CAs: our development CA is not among them
        "untrusted CA": good.model_copy(update={"ca_file": None}),
    }
    for name, settings in cases.items():
        link: MqttLink[None] = MqttLink(settings, LinkOptions(unique_name("tls"), clean_start=True),
                                        lambda *_: None)  # fmt: skip
        with pytest.raises(MqttError, match="no subscription") as refused:
            link.start(timeout_s=3)
        assert link.refusal is None, name  # never got as far as MQTT's CONNACK
        assert not link.connected, refused.value
    # and the right CA + hostname verification succeeds (the listener's certificate names
    # 127.0.0.1 and localhost)
    context = ssl.create_default_context(cafile=str(tls.mqtt_ca_file))
    raw = socket.create_connection(("127.0.0.1", tls.mqtt_tls_port or 0), timeout=5)
    with context.wrap_socket(raw, server_hostname="localhost") as wrapped:
        assert wrapped.version() in ("TLSv1.2", "TLSv1.3")


class RawGateway:
    """A bare paho client, to see the broker's PUBACK reason codes and disconnects."""

    def __init__(self, tls: Endpoints, account: str, client_id: str, version: int) -> None:
        protocol_version = (
            MQTTProtocolVersion.MQTTv5 if version == 5 else MQTTProtocolVersion.MQTTv311
        )
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol_version)  # fmt: skip
        self.client.username_pw_set(account, tls.mqtt_credentials()[account])
        self.client.tls_set(ca_certs=str(tls.mqtt_ca_file))
        self.pubacks: dict[int, ReasonCode] = {}
        self.disconnected = threading.Event()
        self.client.on_publish = lambda c, u, mid, reason, p: self.pubacks.__setitem__(mid, reason)
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        self.client.connect("127.0.0.1", tls.mqtt_tls_port or 0)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> int:
        return self.client.publish(topic, payload, qos=1).mid

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize("version", [5, 4], ids=["mqtt5", "mqtt311"])
def test_acl_keeps_each_gateway_inside_its_own_enterprise(
    tls: Endpoints, mqtt_prefix: str, unique_name: Unique, version: int
) -> None:
    seen: list[str] = []
    watcher: MqttLink[None] = MqttLink(
        tls.mqtt_tls(INGEST_ACCOUNT),
        LinkOptions(unique_name("watch"), subscriptions=(f"{mqtt_prefix}/#",), clean_start=True),
        lambda topic, payload, _: seen.append(topic),
    )
    watcher.start(timeout_s=10)
    forbidden = [
        protocol.telemetry_topic(mqtt_prefix, "SEC-B", "GW-SEC-A1"),  # another enterprise
        protocol.telemetry_topic(mqtt_prefix, "SEC-B", "GW-SEC-B1"),  # another's gateway
        protocol.telemetry_topic(mqtt_prefix, "SEC-A", "GW-SEC-A2"),  # a sibling gateway
        protocol.status_topic(mqtt_prefix, "SEC-B", "GW-SEC-B1"),  # a false offline status
        protocol.deadletter_topic(mqtt_prefix, "SEC-A", "GW-SEC-A1", "telemetry"),
        f"{mqtt_prefix}/SEC-A/GW-SEC-A1/telemetry/extra",
    ]
    try:
        for topic in forbidden:
            gateway = RawGateway(tls, "GW-SEC-A1", unique_name("gw"), version)
            mid = gateway.publish(topic, batch("GW-SEC-A1", 1, "A1-LT", 1.0))
            # MQTT 5: PUBACK "Not authorized"; 3.1.1 cannot say so. Either way Mosquitto then
            # drops the connection of a client publishing outside its ACL.
            wait_for(gateway.disconnected.is_set, 10, f"disconnect after publishing {topic}")
            if version == 5:
                assert str(gateway.pubacks[mid]) == "Not authorized", topic
            gateway.close()
        own = protocol.telemetry_topic(mqtt_prefix, "SEC-A", "GW-SEC-A1")
        gateway = RawGateway(tls, "GW-SEC-A1", unique_name("gw"), version)
        mid = gateway.publish(own, batch("GW-SEC-A1", 2, "A1-LT", 2.0))
        wait_for(lambda: own in seen, what="the gateway's own topic")
        assert not gateway.pubacks[mid].is_failure and not gateway.disconnected.is_set()
        gateway.close()
    finally:
        watcher.stop()
    assert seen == [own], "a message outside the gateway's ACL reached a subscriber"


def test_gateway_cannot_read_other_gateways(
    tls: Endpoints, mqtt_prefix: str, unique_name: Unique
) -> None:
    """Mosquitto grants the subscription but delivers only what the account may read: nothing."""
    snooped: list[str] = []
    watched: list[str] = []
    links: list[MqttLink[None]] = []
    for account, received in (("GW-SEC-A1", snooped), (INGEST_ACCOUNT, watched)):
        link: MqttLink[None] = MqttLink(
            tls.mqtt_tls(account),
            LinkOptions(unique_name("sub"), subscriptions=(f"{mqtt_prefix}/#",), clean_start=True),
            lambda topic, payload, _, into=received: into.append(topic),  # type: ignore[misc]
        )
        link.start(timeout_s=10)
        links.append(link)
    publisher = gateway_link(tls.mqtt_tls("GW-SEC-B1"), unique_name("gw"))
    try:
        topic = protocol.telemetry_topic(mqtt_prefix, "SEC-B", "GW-SEC-B1")
        publisher.publish_all([(topic, batch("GW-SEC-B1", 1, "B1-LT", 3.0))])
        wait_for(lambda: watched == [topic], what="delivery to the ingest account")
    finally:
        publisher.stop()
        for link in links:
            link.stop()
    assert snooped == []


def test_ingest_refuses_a_gateway_speaking_for_another_enterprise(
    endpoints: Endpoints, ingest: Callable[[MqttSettings], Any], mqtt_prefix: str,
    unique_name: Unique,
) -> None:  # fmt: skip
    """On the open listener the broker forwards everything; ingest still refuses every spoof."""
    settings = endpoints.settings().mqtt.model_copy(update={"topic_prefix": mqtt_prefix})
    dead: list[dict[str, Any]] = []
    watcher: MqttLink[None] = MqttLink(
        settings,
        LinkOptions(unique_name("dl"), subscriptions=(f"{mqtt_prefix}/deadletter/#",),
                    clean_start=True),
        lambda topic, payload, _: dead.append(orjson.loads(payload)),
    )  # fmt: skip
    watcher.start(timeout_s=10)
    service, collector = ingest(settings)
    rogue = gateway_link(settings, unique_name("rogue"))
    topic = protocol.telemetry_topic
    spoofs = {
        # A's gateway publishes under B's topic tree, with B's tag
        "enterprise_mismatch": (topic(mqtt_prefix, "SEC-B", "GW-SEC-A1"),
                                batch("GW-SEC-A1", 1, "B1-LT", 19.0)),
        # B's gateway id in A's tree
        "enterprise_mismatch ": (topic(mqtt_prefix, "SEC-A", "GW-SEC-B1"),
                                 batch("GW-SEC-B1", 1, "B1-LT", 19.0)),
        # A's gateway on its own topic, carrying B's tag
        "cross_enterprise_tag": (topic(mqtt_prefix, "SEC-A", "GW-SEC-A1"),
                                 batch("GW-SEC-A1", 2, "B1-LT", 19.0)),
        # the topic says A1, the payload claims B1
        "gateway_mismatch": (topic(mqtt_prefix, "SEC-A", "GW-SEC-A1"),
                             batch("GW-SEC-B1", 3, "B1-LT", 19.0)),
    }  # fmt: skip
    try:
        rogue.publish_all(list(spoofs.values()))
        good = (topic(mqtt_prefix, "SEC-A", "GW-SEC-A1"), batch("GW-SEC-A1", 4, "A1-LT", 5.0))
        rogue.publish_all([good])
        wait_for(lambda: collector.readings() and len(dead) == len(spoofs), what="verdicts")
    finally:
        rogue.stop()
        watcher.stop()
    assert collector.readings() == [("GW-SEC-A1", "A1-LT", 5.0)]  # no B1-LT reading got in
    assert sorted(",".join(record["reasons"]) for record in dead) == sorted(
        reason.strip() for reason in spoofs
    )
    assert all(record["accepted"] == 0 for record in dead)
    counters = service.decoder.counters.snapshot()
    assert counters["rejected_enterprise_mismatch"] == 2
    assert counters["rejected_cross_enterprise_tag"] == 1
    assert counters["rejected_gateway_mismatch"] == 1
