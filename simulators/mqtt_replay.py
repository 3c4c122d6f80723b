"""Publish replay batches through ingest's paho adapter (QoS 1, acks awaited in windows)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from hazardwatch.settings import MqttSettings
from ingest.mqtt import LinkOptions, MqttLink
from simulators.replay import Batch, Pacer

WAIT_EVERY = 500
ACK_TIMEOUT_S = 30.0


def publish_batches(
    url: str, prefix: str, stream: Iterable[Batch], pacer: Pacer
) -> tuple[int, int]:
    """Publish every batch when due; returns (readings, batches) acknowledged by the broker."""
    settings = MqttSettings(url=url, topic_prefix=prefix)
    link: MqttLink[None] = MqttLink(
        settings,
        LinkOptions(client_id=f"hw-replay-{os.getpid()}", clean_start=True),
        lambda *_: None,
    )
    link.start()
    readings = sent = 0
    pending = []
    try:
        for batch in stream:
            pacer.wait_until(batch.at_ms)
            pending.append(link.publish(batch.topic, batch.payload, qos=1))
            readings += batch.points
            sent += 1
            if len(pending) >= WAIT_EVERY:
                for info in pending:
                    info.wait_for_publish(ACK_TIMEOUT_S)
                pending.clear()
        for info in pending:
            info.wait_for_publish(ACK_TIMEOUT_S)
    finally:
        link.stop()
    return readings, sent
