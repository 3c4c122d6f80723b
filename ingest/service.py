"""Embedded ingest: decoded messages → hand-off, dead-letter, gateway status, then MQTT ack.

`IngestService` is the consumer side of `MqttLink`: it takes batches of deliveries (decoded in
`next_batch` on the service's thread, which leaves paho's network thread only the socket), hands
the accepted ones to the caller (the embedded runner feeds the engine), publishes a dead-letter
record per refused message to `{prefix}/deadletter/{enterprise}/{gateway}/{kind}` and waits for
the broker's acknowledgement of those, feeds the gateway status board, and only then
acknowledges the batch. If the hand-off raises, nothing is acknowledged and the same batch is
offered again after a pause: a message is never acknowledged before its readings are safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hazardwatch.plant.model import Plant
from hazardwatch.settings import MqttSettings
from ingest import protocol
from ingest.deadletter import deadletter_record
from ingest.decoder import Decoder, DecoderLimits
from ingest.directory import GatewayDirectory
from ingest.mqtt import Delivery, LinkOptions, MqttLink
from ingest.results import Decoded
from ingest.status import DataQualityEvent, GatewayStatusBoard

log = logging.getLogger(__name__)

Handoff = Callable[[Sequence[Decoded]], None]
EventSink = Callable[[Sequence[DataQualityEvent]], None]
STATUS_TICK_S = 1.0


@dataclass
class ServiceCounters:
    """What the service did, for metrics: batches, hand-off failures, dead-letter records."""

    batches: int = 0
    handoff_failures: int = 0
    deadletters: int = 0


class IngestService:
    """Consumes an `MqttLink[Decoded]`: hand-off, dead-letter, status, ack."""

    def __init__(
        self,
        link: MqttLink[Decoded],
        decoder: Decoder,
        handoff: Handoff,
        status: GatewayStatusBoard | None = None,
        on_events: EventSink | None = None,
        retry_pause_s: float = 1.0,
    ) -> None:
        self.link = link
        self.decoder = decoder
        self.handoff = handoff
        self.status = status
        self.on_events = on_events
        self.retry_pause_s = retry_pause_s
        self.counters = ServiceCounters()
        self._next_tick = 0.0

    def process(self, batch: Sequence[Delivery[Decoded]]) -> None:
        """Hand off, dead-letter and ack one batch; raises (acking nothing) if hand-off fails."""
        accepted = [d.item for d in batch if d.item.accepted]
        if accepted:
            self.handoff(accepted)
        dead = [
            (
                protocol.deadletter_topic(
                    self.decoder.prefix, d.item.enterprise, d.item.gateway, d.item.kind.value
                ),
                deadletter_record(d.item, d.payload, d.received_ms),
            )
            for d in batch
            if d.item.dead_letter
        ]
        if dead:
            self.link.publish_all(dead)
            self.counters.deadletters += len(dead)
        if self.status is not None:
            self.status.observe_all((d.item, d.received_ms) for d in batch)
        self.link.ack(batch)
        self.counters.batches += 1

    def run(self, stop: threading.Event, max_messages: int = 2000, timeout_s: float = 0.2) -> None:
        """Process batches until `stop` is set; a failed batch is retried, never skipped."""
        while not stop.is_set():
            self.tick_status()
            batch = self.link.next_batch(max_messages, timeout_s)
            while batch and not stop.is_set():
                try:
                    self.process(batch)
                    batch = []
                except Exception:
                    self.counters.handoff_failures += 1
                    log.exception("ingest batch of %d messages not handed on; retrying", len(batch))
                    time.sleep(self.retry_pause_s)

    def tick_status(self) -> None:
        """At most once a second: advance the status board and pass on its events."""
        now = time.monotonic()
        if self.status is None or now < self._next_tick:
            return
        self._next_tick = now + STATUS_TICK_S
        events = self.status.tick(time.time_ns() // 1_000_000)
        if events and self.on_events is not None:
            self.on_events(events)


def open_ingest(
    settings: MqttSettings,
    plant: Plant,
    handoff: Handoff,
    *,
    client_id: str | None = None,
    share_group: str | None = None,
    limits: DecoderLimits | None = None,
    on_events: EventSink | None = None,
) -> IngestService:
    """Build decoder, link and service for `plant`; call `service.link.start()` then `run`."""
    directory = GatewayDirectory.from_plant(plant)
    decoder = Decoder(directory, settings.topic_prefix, limits)
    options = LinkOptions(
        client_id=client_id or settings.client_id,
        subscriptions=(
            protocol.telemetry_filter(decoder.prefix, share_group),
            protocol.status_filter(decoder.prefix, share_group),
        ),
        hook_in_consumer=True,
    )
    link: MqttLink[Decoded] = MqttLink(settings, options, decoder.decode)
    return IngestService(link, decoder, handoff, GatewayStatusBoard(directory), on_events)
