"""Gateways publishing a workload over MQTT with QoS 1, as store-and-forward gateways do.

One paho client per gateway with a persistent session, its retained `online` status and an
`offline` last will, paced at the workload's speed. A message counts as published only when the
broker acknowledged it (PUBACK); while the broker is down paho keeps the messages and sends them
again after reconnecting, so a broker restart delays readings but does not drop them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlparse

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.protocol import encode_batch, encode_status, status_topic, telemetry_topic
from simulators.gateway import Publication
from tests.faults.workload import Workload

ACK_TIMEOUT_S = 180.0


@dataclass
class _Sent:
    tags: Counter[str]
    acked_at: float | None = None


@dataclass
class PublishResult:
    """What the broker acknowledged."""

    readings: Counter[str] = field(default_factory=Counter)  # tag → readings acknowledged
    messages: int = 0
    unacknowledged: int = 0
    wall_s: float = 0.0


class GatewayPublisher:
    """Publishes `workload` on a background thread; `progress()` tells how far it got."""

    def __init__(self, workload: Workload, mqtt_url: str, client_prefix: str) -> None:
        self.workload = workload
        url = urlparse(mqtt_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 1883
        self.client_prefix = client_prefix
        self._lock = threading.Lock()
        self._sent: dict[tuple[str, int], _Sent] = {}  # (gateway, mid) → what it carried
        self._early: set[tuple[str, int]] = set()
        self._clients: dict[str, mqtt.Client] = {}
        self._thread = threading.Thread(
            target=self._run, name=f"gateways-{client_prefix}", daemon=True
        )
        self.started = 0.0
        self.published = 0
        self.error: BaseException | None = None

    # -- connections --------------------------------------------------------------------------
    def _client(self, gateway: str) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{self.client_prefix}-{gateway}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        status = self._status_topic(gateway)
        client.will_set(status, encode_status(gateway, "offline", self.workload.start_ms), 1, True)
        client.reconnect_delay_set(1, 4)
        client.max_queued_messages_set(0)
        client.on_publish = lambda _c, _u, mid, _rc, _p: self._acked(gateway, mid)
        client.on_connect = lambda c, _u, _f, rc, _p: (
            None
            if rc.is_failure
            else c.publish(
                status, encode_status(gateway, "online", int(time.time() * 1000)), 1, True
            )
        )
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        client.connect_async(
            self.host, self.port, keepalive=10, clean_start=False, properties=props
        )
        client.loop_start()
        return client

    def _status_topic(self, gateway: str) -> str:
        return status_topic(self.workload.prefix, self.workload.enterprise_of[gateway], gateway)

    def _acked(self, gateway: str, mid: int) -> None:
        with self._lock:
            sent = self._sent.get((gateway, mid))
            if sent is None:
                self._early.add((gateway, mid))
            elif sent.acked_at is None:
                sent.acked_at = time.monotonic()

    def _publish(self, gateway: str, topic: str, payload: bytes) -> None:
        info = self._clients[gateway].publish(topic, payload, qos=1)
        tags = Counter(p["tag"] for p in orjson.loads(payload)["points"])
        with self._lock:
            sent = _Sent(tags)
            if (gateway, info.mid) in self._early:
                self._early.discard((gateway, info.mid))
                sent.acked_at = time.monotonic()
            self._sent[(gateway, info.mid)] = sent
        self.published += 1

    # -- the run -------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect the gateways and start publishing in real time × speed."""
        for gateway in self.workload.last_points:
            self._clients[gateway] = self._client(gateway)
        self.started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        try:
            for pub in self.workload.publications:
                self._pace(pub)
                self._publish(pub.gateway, pub.topic, pub.payload)
        except BaseException as exc:  # reported by join(); the test fails with it
            self.error = exc

    def _pace(self, pub: Publication) -> None:
        ahead = self.started + self.workload.wall_offset_s(pub) - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)

    def progress(self) -> float:
        """Fraction of the workload's wall duration elapsed since the start (0–1+)."""
        if not self.started:
            return 0.0
        return (time.monotonic() - self.started) / self.workload.wall_duration_s

    def wait_progress(self, fraction: float) -> None:
        """Block until `fraction` of the publishing time has elapsed."""
        due = self.started + fraction * self.workload.wall_duration_s
        time.sleep(max(0.0, due - time.monotonic()))

    def done(self) -> bool:
        """True when every publication was handed to paho."""
        return not self._thread.is_alive() and self.started > 0

    def join(self, ack_timeout_s: float = ACK_TIMEOUT_S) -> PublishResult:
        """Wait for the last publication and its PUBACK; returns what the broker acknowledged."""
        self._thread.join()
        if self.error is not None:
            raise self.error
        deadline = time.monotonic() + ack_timeout_s
        while time.monotonic() < deadline and self._unacked():
            time.sleep(0.2)
        return self.result()

    def _unacked(self) -> int:
        with self._lock:
            return sum(1 for s in self._sent.values() if s.acked_at is None)

    def result(self) -> PublishResult:
        """Acknowledged readings so far."""
        out = PublishResult(wall_s=time.monotonic() - self.started)
        with self._lock:
            for sent in self._sent.values():
                if sent.acked_at is None:
                    out.unacknowledged += 1
                else:
                    out.messages += 1
                    out.readings.update(sent.tags)
        return out

    def probe(self) -> int:
        """One more batch per gateway (next seq, 1 ms after its last sample, same values).

        Shows that new readings flow after a fault; returns the earliest probe time (epoch ms).
        Same values one millisecond later change no alarm state.
        """
        first = 2**62
        for gateway, (seq, ts, values) in self.workload.last_points.items():
            payload = encode_batch(
                gateway, seq + 1, ts + 1, [(tag, ts + 1, v, 0) for tag, v in sorted(values.items())]
            )
            topic = telemetry_topic(
                self.workload.prefix, self.workload.enterprise_of[gateway], gateway
            )
            self._publish(gateway, topic, payload)
            first = min(first, ts + 1)
        return first

    def close(self) -> None:
        """Disconnect every gateway cleanly (no last will)."""
        for client in self._clients.values():
            client.disconnect()
            client.loop_stop()
