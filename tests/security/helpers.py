"""Small helpers shared by the security tests: waiting, gateway connections, payloads."""

from __future__ import annotations

import time
from collections.abc import Callable

from hazardwatch.settings import MqttSettings
from ingest import protocol
from ingest.mqtt import LinkOptions, MqttLink


def now_ms() -> int:
    """Wall clock, epoch milliseconds."""
    return time.time_ns() // 1_000_000


def wait_for(condition: Callable[[], object], timeout_s: float = 15.0, what: str = "") -> None:
    """Poll `condition` until it is truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def gateway_link(settings: MqttSettings, client_id: str) -> MqttLink[None]:
    """A gateway's connection through the real adapter (clean session, nothing subscribed)."""
    link: MqttLink[None] = MqttLink(settings, LinkOptions(client_id, clean_start=True),
                                    lambda *_: None)  # fmt: skip
    link.start(timeout_s=10)
    return link


def batch(gateway: str, seq: int, tag: str, value: float) -> bytes:
    """A one-point gateway batch stamped now."""
    t = now_ms()
    return protocol.encode_batch(gateway, seq, t, [(tag, t, value, 0)])
