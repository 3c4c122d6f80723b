"""`hazardwatch bridge`: MQTT → Kafka with the MQTT ack only after Kafka acknowledged.

Delivery guarantee: **at least once, deduplicated downstream by (gateway, seq)**. A message is
acknowledged to Mosquitto only after every record made from it (telemetry and dead-letter) was
acknowledged by Kafka (idempotent producer, acks=all). If the bridge dies between Kafka's ack
and the MQTT ack, the broker redelivers the message to the restarted bridge, whose fresh
sequence state accepts it again: the same records are produced a second time, identical and to
the same partition. Consumers drop them by (gw, seq, source) (see ingest/records.py). Exactly
once would need the MQTT ack and the Kafka write in one transaction, which MQTT cannot join.

If Kafka fails, the batch is resent until it succeeds; unacknowledged MQTT messages then stay
with the broker (receive maximum), so the backlog waits in Mosquitto, not in our memory.

Gateway status (DOMAIN.md §6) is known only here, where every telemetry and status message of
a gateway passes: the bridge keeps the `GatewayStatusBoard` the embedded runner keeps, ticks it
once a second and publishes each gateway event as a `data_quality` event
(`DataQualityEvent.to_event`) to `{prefix}.alarms` and `{prefix}.alerts`, keyed by enterprise
like the workers' events, in the same Kafka send as the batch whose acknowledgement follows — so
`alerts serve` raises gateway data-quality alerts as the embedded runner's alerting does. The
board judges a gateway not heard since start only after its own silence period (3 × its
interval), so a restarted bridge does not report every gateway offline for a moment.
With `--share-group` each bridge sees only part of every gateway's messages, so there the
board is off (logged): run one unshared bridge for gateway status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from hazardwatch.plant.model import Plant
from hazardwatch.settings import Settings
from ingest import protocol
from ingest.decoder import Decoder
from ingest.directory import GatewayDirectory
from ingest.mqtt import Delivery, LinkOptions, MqttLink
from ingest.records import KafkaRecord, deadletter_kafka_record, telemetry_records
from ingest.results import Decoded
from ingest.status import DataQualityEvent, GatewayStatusBoard

log = logging.getLogger(__name__)


STATUS_TICK_MS = 1000
GATEWAY_CONDITIONS = ("gateway_offline", "gateway_online")
"""Status changes (written as `gateway_v1.online`); the other conditions are milestones."""


def wall_ms() -> int:
    """Epoch milliseconds of the wall clock."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class BridgeTopics:
    """Versioned Kafka topic names; defaults from `kafka.topic_prefix` (`hazardwatch.v1`).
    Without `alarms` and `alerts` gateway events are not published."""

    telemetry: str
    deadletter: str
    alarms: str | None = None
    alerts: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BridgeTopics:
        """`{prefix}.telemetry`, `.deadletter`, `.alarms` and `.alerts`."""
        prefix = settings.kafka.topic_prefix
        return cls(f"{prefix}.telemetry", f"{prefix}.deadletter", f"{prefix}.alarms",
                   f"{prefix}.alerts")  # fmt: skip


class GatewayWatch:
    """The gateway status board on the wall clock: observe deliveries, `due(now)` for events.

    The first tick comes at `start`, then one every `STATUS_TICK_MS`; `ticked` says whether the
    board has judged the gateways yet.
    """

    def __init__(self, directory: GatewayDirectory) -> None:
        self.board = GatewayStatusBoard(directory)
        self._next_ms: int | None = None
        self.ticked = False

    def start(self, now_ms: int) -> None:
        """The link is up: the board starts counting silences now."""
        self._next_ms = now_ms

    def observe(self, batch: list[Delivery[Decoded]]) -> None:
        """Take a batch's messages (refused ones are ignored by the board)."""
        self.board.observe_all((d.item, d.received_ms) for d in batch)

    def due(self, now_ms: int) -> list[DataQualityEvent]:
        """Events since the last tick, when a tick is due."""
        if self._next_ms is None or now_ms < self._next_ms:
            return []
        self._next_ms = now_ms + STATUS_TICK_MS
        self.ticked = True
        return self.board.tick(now_ms)


@dataclass
class BridgeCounters:
    """Bridge progress for metrics and the final log line."""

    messages_acked: int = 0
    records_sent: int = 0
    readings_sent: int = 0
    deadletters_sent: int = 0
    gateway_events_sent: int = 0
    kafka_retries: int = 0


class Bridge:
    """One bridge process: an MQTT link feeding an idempotent Kafka producer."""

    def __init__(
        self,
        settings: Settings,
        plant: Plant,
        topics: BridgeTopics | None = None,
        *,
        client_id: str | None = None,
        share_group: str | None = None,
        max_batch: int = 2000,
        on_gateway_events: Callable[[list[DataQualityEvent]], None] | None = None,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.settings = settings
        self.topics = topics or BridgeTopics.from_settings(settings)
        self.directory = GatewayDirectory.from_plant(plant)
        self.decoder = Decoder(self.directory, settings.mqtt.topic_prefix)
        prefix = self.decoder.prefix
        options = LinkOptions(
            client_id=client_id or f"{settings.mqtt.client_id}-bridge",
            subscriptions=(
                protocol.telemetry_filter(prefix, share_group),
                protocol.status_filter(prefix, share_group),
            ),
            hook_in_consumer=True,  # decode on the bridge's thread, not paho's (bench/ingest.py)
        )
        self.link: MqttLink[Decoded] = MqttLink(settings.mqtt, options, self.decoder.decode)
        self.max_batch = max_batch
        self.counters = BridgeCounters()
        self.clock_ms = clock_ms
        self.on_gateway_events = on_gateway_events  # the command writes gateway_v1 points
        self.gateways: GatewayWatch | None = None
        if share_group is None:
            self.gateways = GatewayWatch(self.directory)
        else:
            log.warning("shared subscription %r: this bridge sees part of each gateway's "
                        "messages, so it reports no gateway status", share_group)  # fmt: skip

    def _producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka.bootstrap_servers,
            client_id=self.link.options.client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
            request_timeout_ms=30_000,
        )

    def records(self, batch: list[Delivery[Decoded]]) -> list[tuple[str, KafkaRecord]]:
        """(topic, record) pairs for a batch: telemetry per source, dead-letter per refusal."""
        out: list[tuple[str, KafkaRecord]] = []
        for delivery in batch:
            decoded = delivery.item
            out += [(self.topics.telemetry, r) for r in telemetry_records(decoded, self.directory)]
            if decoded.dead_letter:
                record = deadletter_kafka_record(decoded, delivery.payload, delivery.received_ms)
                out.append((self.topics.deadletter, record))
        return out

    def gateway_records(self, events: list[DataQualityEvent]) -> list[tuple[str, KafkaRecord]]:
        """Each gateway event to the alarms and alerts topics, keyed by enterprise so that one
        enterprise's events stay in order."""
        topics = [t for t in (self.topics.alarms, self.topics.alerts) if t is not None]
        out: list[tuple[str, KafkaRecord]] = []
        for event in events:
            record = KafkaRecord(event.enterprise.encode(), orjson.dumps(event.to_event()),
                                 [], 0)  # fmt: skip
            out += [(topic, record) for topic in topics]
        return out

    async def _send(
        self, producer: AIOKafkaProducer, records: list[tuple[str, KafkaRecord]]
    ) -> None:
        pause = 0.5
        while True:
            try:
                futures = [
                    await producer.send(topic, r.value, key=r.key, headers=r.headers)
                    for topic, r in records
                ]
                await asyncio.gather(*futures)
                return
            except KafkaError as exc:
                self.counters.kafka_retries += 1
                log.warning("Kafka did not take %d records (%s); resending", len(records), exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)

    async def run(self, stop: asyncio.Event) -> None:
        """Bridge until `stop` is set, then drain nothing further and disconnect."""
        producer = self._producer()
        await producer.start()
        try:
            await asyncio.to_thread(self.link.start)
            if self.gateways is not None:
                self.gateways.start(self.clock_ms())
            log.info("bridge %s → %s", self.link.options.subscriptions, self.topics)
            while not stop.is_set():
                batch = await asyncio.to_thread(self.link.next_batch, self.max_batch, 0.2)
                records = self.records(batch)
                events: list[DataQualityEvent] = []
                if self.gateways is not None:
                    self.gateways.observe(batch)
                    events = self.gateways.due(self.clock_ms())
                if records or events:
                    # gateway events travel with the batch: acknowledged only once Kafka has them
                    await self._send(producer, records + self.gateway_records(events))
                if events:
                    self.counters.gateway_events_sent += len(events)
                    if self.on_gateway_events is not None:
                        self.on_gateway_events(events)
                if not batch:
                    continue
                self.link.ack(batch)
                self.counters.messages_acked += len(batch)
                self.counters.records_sent += len(records)
                self.counters.readings_sent += sum(r.readings for _, r in records)
                self.counters.deadletters_sent += sum(
                    1 for topic, _ in records if topic == self.topics.deadletter
                )
        finally:
            self.link.stop()
            await producer.stop()
