"""A lean gateway-side load generator: pre-encoded MQTT 5 QoS 1 PUBLISH packets on one socket.

The throughput phases of bench/pipeline.py and bench/peer publish tens of thousands of 100-point
messages as fast as the broker takes them. Through paho, the generator itself took half a core
of this 2-core machine (a `MQTTMessageInfo`, a condition variable and a callback per message),
CPU that the system under test then lacked — in a plant the gateways are other machines. This
client does only what the protocol needs: it encodes every PUBLISH before the clock starts,
writes them in large chunks, keeps at most the broker's Receive Maximum unacknowledged and
counts PUBACKs. Every message is still a real QoS 1 publish the broker acknowledges; a PUBACK
with a failure reason code, or a missing one, fails the run.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator, Sequence

MAX_WINDOW = 100  # the window the paho publishers kept (max_inflight_messages_set(100))
CHUNK_BYTES = 256 * 1024  # bytes written per send call


def varint(n: int) -> bytes:
    """MQTT variable byte integer (remaining length, property length)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """PUBLISH, QoS 1, MQTT 5, no properties."""
    body = utf8(topic) + packet_id.to_bytes(2, "big") + b"\x00" + payload
    return b"\x32" + varint(len(body)) + body


class BulkPublisher:
    """One MQTT 5 connection (clean start) that publishes lists of messages with QoS 1."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, name: str = "bulk") -> None:
        self.client_id = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        self._next_id = 0
        self.window = self._connect()

    def _connect(self) -> int:
        # CONNECT: protocol name, level 5, flags (clean start), keep-alive 60 s, no properties.
        variable = utf8("MQTT") + b"\x05\x02" + (60).to_bytes(2, "big") + b"\x00"
        body = variable + utf8(self.client_id)
        self.sock.sendall(b"\x10" + varint(len(body)) + body)
        kind, packet = self._read_packet()
        if kind != 2 or packet[1] != 0:
            raise ConnectionError(f"CONNACK refused: type {kind}, reason {packet[1:2].hex()}")
        receive_maximum = 65535
        for prop, value in self._properties(packet[2:]):
            if prop == 0x21:
                receive_maximum = value
        return min(receive_maximum, MAX_WINDOW)

    @staticmethod
    def _properties(raw: bytes) -> Iterator[tuple[int, int]]:
        """(id, value) of the two-byte-integer properties of a CONNACK; others are skipped."""
        length, pos = 0, 0
        for shift in range(4):
            byte = raw[pos]
            pos += 1
            length |= (byte & 0x7F) << (7 * shift)
            if not byte & 0x80:
                break
        end = pos + length
        sizes = {0x11: 4, 0x21: 2, 0x22: 2, 0x24: 1, 0x25: 1, 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1,
                 0x13: 2}  # fmt: skip
        while pos < end:
            prop = raw[pos]
            pos += 1
            if prop in sizes:
                size = sizes[prop]
                value = int.from_bytes(raw[pos : pos + size], "big")
                pos += size
                yield prop, value
            elif prop == 0x26:  # user property: two strings
                for _ in range(2):
                    pos += 2 + int.from_bytes(raw[pos : pos + 2], "big")
            else:  # one string or binary (assigned client id, reason string, ...)
                pos += 2 + int.from_bytes(raw[pos : pos + 2], "big")

    def _read_exact(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            self._buffer += chunk
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    def _read_packet(self) -> tuple[int, bytes]:
        header = self._read_exact(1)[0]
        length, shift = 0, 0
        while True:
            byte = self._read_exact(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return header >> 4, self._read_exact(length)

    def encode(self, messages: Sequence[tuple[str, bytes]]) -> list[bytes]:
        """PUBLISH packets with packet ids in sequence; call before the clock starts."""
        packets = []
        for topic, payload in messages:
            self._next_id = self._next_id % 65535 + 1
            packets.append(publish_packet(topic, payload, self._next_id))
        return packets

    def send(self, packets: Sequence[bytes], timeout_s: float = 120.0) -> None:
        """Publish pre-encoded packets, at most `window` unacknowledged; returns when the
        broker acknowledged every one."""
        deadline = time.monotonic() + timeout_s
        sent = acked = 0
        while acked < len(packets):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(packets) - acked} publishes not acknowledged")
            room = min(self.window - (sent - acked), len(packets) - sent)
            if room > 0:
                chunk, size = [], 0
                while room and size < CHUNK_BYTES:
                    chunk.append(packets[sent])
                    size += len(packets[sent])
                    sent += 1
                    room -= 1
                self.sock.sendall(b"".join(chunk))
                if room:  # the chunk filled before the window: keep writing
                    continue
            acked += self._take_acks()

    def _take_acks(self) -> int:
        """Wait for one packet, then take every complete one already received; PUBACKs."""
        acks = 0
        while True:
            kind, body = self._read_packet()
            if kind == 14:  # DISCONNECT from the broker, e.g. 0x95 packet too large
                reason = f"0x{body[0]:02x}" if body else "none"
                raise ConnectionError(f"the broker disconnected (reason {reason})")
            if kind == 4:  # only PUBACKs are expected on a publishing connection
                if len(body) > 2 and body[2] >= 0x80:
                    raise ConnectionError(f"PUBACK reason 0x{body[2]:02x} for packet "
                                          f"{int.from_bytes(body[:2], 'big')}")  # fmt: skip
                acks += 1
            if not self._complete_packet_buffered():
                return acks

    def _complete_packet_buffered(self) -> bool:
        buf, length, pos = self._buffer, 0, 1
        for shift in (0, 7, 14, 21):
            if pos >= len(buf):
                return False
            byte = buf[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
        return len(buf) >= pos + length

    def publish_all(self, messages: Sequence[tuple[str, bytes]], timeout_s: float = 120) -> None:
        """Encode and publish; for callers that do not time the encoding separately."""
        self.send(self.encode(messages), timeout_s)

    def close(self) -> None:
        """DISCONNECT (normal) and close the socket."""
        try:
            self.sock.sendall(b"\xe0\x00")
        finally:
            self.sock.close()
