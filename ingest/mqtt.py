"""The one paho-mqtt adapter: connection, subscriptions, bounded queue, manual acknowledgement.

`MqttLink` wraps a paho 2.x client:

- MQTT 5 (or 3.1.1 from settings), persistent session: clean start off plus a session expiry
  (3.1.1: clean session off), QoS 1, reconnect with exponential backoff (1 s … 30 s);
- TLS when the URL is `mqtts://` or a CA file is set (the broker's certificate and host name are
  verified against the CA file, or the system CAs without one); username/password from settings.
  A broker refusing the credentials at start is an `MqttError` naming its reason at once, not a
  timeout; later refusals are logged (without the password) and retried with the backoff;
- `manual_ack=True`: a message is acknowledged to the broker only when `ack()` is called, after
  the caller handed its readings on; the PUBACKs of a batch leave in one socket write. Acks
  carry the connection generation: an ack for a message received before a reconnect is not
  sent (its packet id means nothing on the new connection; the broker redelivers the message
  and the sequence dedup drops what was already delivered);
- shared subscriptions (`$share/<group>/…`) so several ingest processes split the load;
- a bounded queue between the network thread and the consumer. Flow control is explicit at two
  levels: the MQTT 5 receive maximum caps unacknowledged messages the broker sends, and when the
  queue is full the network thread waits (counted in `backpressure_waits`), so the broker's
  queue, not our memory, holds the backlog.

The hook (the decoder) runs on paho's network thread, or with `hook_in_consumer` inside
`next_batch` on the consumer's thread; either way it must not raise (the decoder never does).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import urlparse

import paho.mqtt.client as paho
from paho.mqtt.client import PUBACK
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hazardwatch.errors import HazardwatchError
from hazardwatch.settings import MqttSettings

T = TypeVar("T")
log = logging.getLogger(__name__)

_PUBACK_HEAD = (PUBACK << 24) | (2 << 16)  # fixed header of a PUBACK; the low 16 bits: id

SESSION_EXPIRY_S = 7 * 86_400
"""MQTT 5 session expiry: a week of ingest downtime is still caught up from the broker."""


class MqttError(HazardwatchError):
    """The broker could not be reached or refused an operation."""


class Delivery(NamedTuple, Generic[T]):
    """A received message: what the hook made of it, plus what `ack` needs.

    A named tuple, not a dataclass: one is built per message on the hot path.
    """

    topic: str
    payload: bytes
    item: T
    mid: int
    qos: int
    generation: int
    received_ms: int


_Raw = tuple[str, bytes, Any, int, int, int, int]
"""A `Delivery` as a plain tuple while queued: the network thread builds it in 60 ns."""


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """Per-process connection options beyond settings."""

    client_id: str
    subscriptions: tuple[str, ...] = ()
    queue_size: int = 20_000
    receive_maximum: int = 1000  # MQTT 5: unacknowledged messages the broker may send us
    session_expiry_s: int = SESSION_EXPIRY_S
    clean_start: bool = False
    will: tuple[str, bytes] | None = None  # (topic, payload), retained QoS 1 last will
    keepalive_s: int = 30
    # Run the hook in `next_batch` on the consumer's thread instead of on paho's network thread.
    # Faster for decoding (bench/ingest.py), but the hook then sees only consumed messages.
    hook_in_consumer: bool = False


def send_at_once(client: paho.Client, userdata: object, sock: Any) -> None:
    """paho's `on_socket_open`: TCP_NODELAY on every connection it opens (also after a
    reconnect). paho leaves Nagle's algorithm on; with a broker that sends at once
    (`set_tcp_nodelay`), a client that both publishes and subscribes then waits ~40 ms on
    its own kernel's delayed ACK, and our batched PUBACKs would wait as well."""
    with contextlib.suppress(OSError, AttributeError):  # a websocket wrapper has no options
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class MqttLink(Generic[T]):
    """A paho client with manual acks feeding a bounded queue of `Delivery` items."""

    def __init__(
        self,
        settings: MqttSettings,
        options: LinkOptions,
        hook: Callable[[str, bytes, int], T],
    ) -> None:
        self.settings = settings
        self.options = options
        self._hook = hook
        # The bounded queue: a deque (appends and pops are atomic) plus two signals, so neither
        # side pays a lock per message. `_ready` wakes a waiting consumer; `_room` wakes the
        # network thread when it waits on a full queue.
        self._inbox: deque[_Raw] = deque()
        self._ready = threading.Event()
        self._room = threading.Condition()
        self._generation = 0
        self._connected = threading.Event()
        self._answered = threading.Event()  # CONNACK received, accepted or refused
        self.refusal: str | None = None  # reason of the last refused CONNACK
        self.connect_failures = 0  # network or TLS errors before any CONNACK
        self.subscribe_refusal: str | None = None  # e.g. the ACL denies a subscription
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self.backpressure_waits = 0
        self.acks_skipped_after_reconnect = 0
        self.connects = 0
        self._v5 = settings.protocol == 5
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        protocol = MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.options.client_id,
            clean_session=None if self._v5 else self.options.clean_start,
            protocol=protocol,
            manual_ack=True,
        )
        url = urlparse(self.settings.url)
        if self.settings.username is not None:
            password = self.settings.password
            client.username_pw_set(
                self.settings.username, password.get_secret_value() if password else None
            )
        if url.scheme == "mqtts" or self.settings.ca_file is not None:
            ca = str(self.settings.ca_file) if self.settings.ca_file else None
            client.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
        if self.options.will is not None:
            topic, payload = self.options.will
            client.will_set(topic, payload, qos=1, retain=True)
        client.reconnect_delay_set(1, 30)
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_connect_fail = self._on_connect_fail
        client.on_socket_open = send_at_once
        return client

    # lifecycle -------------------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> None:
        """Connect (retrying with backoff in the background); wait for CONNACK and SUBACK."""
        url = urlparse(self.settings.url)
        port = url.port or (8883 if url.scheme == "mqtts" else 1883)
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.options.session_expiry_s
            properties.ReceiveMaximum = self.options.receive_maximum
        self._client.connect_async(
            url.hostname or "127.0.0.1",
            port,
            keepalive=self.options.keepalive_s,
            clean_start=self.options.clean_start if self._v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()
        ready = self._answered.wait(timeout_s) and self._connected.is_set()
        if not ready and self.refusal is not None:
            self.stop()
            raise MqttError(f"{self.settings.url} refused the connection: {self.refusal}")
        if ready and self.options.subscriptions:
            ready = self._subscribed.wait(timeout_s)
            if ready and self.subscribe_refusal is not None:
                self.stop()
                raise MqttError(f"{self.settings.url} refused a subscription: "
                                f"{self.subscribe_refusal}")  # fmt: skip
        if not ready:
            self.stop()
            failed = self.connect_failures
            tried = f" after {failed} failed connection attempts" if failed else ""
            raise MqttError(f"no subscription at {self.settings.url} in {timeout_s:.0f} s{tried}")

    def stop(self) -> None:
        """Disconnect cleanly (no last will) and stop the network thread."""
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        """True while a connection is up."""
        return self._connected.is_set()

    # callbacks (network thread) ---------------------------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            # bad credentials, ACL, server busy …: paho retries with backoff
            self.refusal = str(reason)
            log.warning("%s refused the connection of %s: %s", self.settings.url,
                        self.options.client_id, reason)  # fmt: skip
            self._answered.set()
            return
        self.refusal = None
        self._generation += 1
        self.connects += 1
        if self.options.subscriptions:
            client.subscribe([(topic, 1) for topic in self.options.subscriptions])
        self._connected.set()
        self._answered.set()

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        self.connect_failures += 1

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(reason) for reason in reasons if reason.is_failure]
        self.subscribe_refusal = refused[0] if refused else None
        if refused:
            log.warning("%s refused a subscription of %s: %s", self.settings.url,
                        self.options.client_id, refused[0])  # fmt: skip
        self._subscribed.set()  # answered: start() reports a refusal

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        received_ms = time.time_ns() // 1_000_000
        topic, payload = message.topic, bytes(message.payload)  # bytes: no copy
        item = None if self.options.hook_in_consumer else self._hook(topic, payload, received_ms)
        inbox = self._inbox
        inbox.append(
            (topic, payload, item, message.mid, message.qos, self._generation, received_ms)
        )
        if not self._ready.is_set():
            self._ready.set()
        if len(inbox) >= self.options.queue_size:
            # Backpressure: stop reading the socket; the broker holds the backlog.
            self.backpressure_waits += 1
            with self._room:
                while len(inbox) >= self.options.queue_size and not self._stopping.is_set():
                    self._room.wait(0.5)

    # consumer side ----------------------------------------------------------------------------

    def next_batch(
        self, max_messages: int, timeout_s: float, linger_s: float = 0.001
    ) -> list[Delivery[T]]:
        """Up to `max_messages` deliveries; waits at most `timeout_s` for the first one.

        Once one is there it sleeps `linger_s` (unless a full batch is already waiting) and takes
        what arrived meanwhile: fewer, larger batches mean fewer wake-ups of either thread.
        """
        inbox = self._inbox
        if not inbox:
            self._ready.clear()
            if not inbox and not self._ready.wait(timeout_s):
                return []
        if linger_s > 0 and len(inbox) < max_messages:
            time.sleep(linger_s)
        pop = inbox.popleft
        raw = [pop() for _ in range(min(max_messages, len(inbox)))]
        with self._room:
            self._room.notify()
        make = Delivery._make
        if not self.options.hook_in_consumer:
            return [make(r) for r in raw]  # the network thread filled in `item`
        hook = self._hook
        return [make((t, p, hook(t, p, at), m, q, g, at)) for t, p, _, m, q, g, at in raw]

    def ack(self, deliveries: Sequence[Delivery[T]]) -> int:
        """Acknowledge deliveries to the broker, in order; returns how many acks were sent.

        All PUBACKs of a batch go to paho as one packet: one wake-up of the network thread and
        one socket write per batch, instead of one of each per message.
        """
        mids: list[int] = []
        for delivery in deliveries:
            if delivery.qos == 0:
                continue
            if delivery.generation != self._generation:
                self.acks_skipped_after_reconnect += 1
                continue
            mids.append(delivery.mid)
        if mids:
            self._send_pubacks(mids)
        return len(mids)

    def _send_pubacks(self, mids: list[int]) -> None:
        queue_packet = getattr(self._client, "_packet_queue", None)
        if queue_packet is None:  # a paho without the internal queue: one ack at a time
            for mid in mids:
                self._client.ack(mid, 1)
            return
        # PUBACK: type 4, remaining length 2, packet id — MQTT 3.1.1 §3.4 and, with reason code
        # 0 left out, MQTT 5 §3.4.2.1. paho's own ack() queues exactly these four bytes.
        packets = struct.pack(f"!{len(mids)}I", *[_PUBACK_HEAD | mid for mid in mids])
        queue_packet(PUBACK, packets, 0, 0)

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> paho.MQTTMessageInfo:
        """Queue a publish; wait on the returned info's `wait_for_publish` for the broker ack."""
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def publish_all(self, messages: Sequence[tuple[str, bytes]], timeout_s: float = 30.0) -> None:
        """Publish QoS 1 messages and wait until the broker acknowledged every one."""
        infos = [self.publish(topic, payload) for topic, payload in messages]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise MqttError(f"publish not acknowledged within {timeout_s:.0f} s")

    def pending(self) -> int:
        """Deliveries waiting in the queue."""
        return len(self._inbox)
