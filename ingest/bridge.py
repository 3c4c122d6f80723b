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
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

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

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BridgeTopics:
    """Versioned Kafka topic names; defaults from `kafka.topic_prefix` (`hazardwatch.v1`)."""

    telemetry: str
    deadletter: str

    @classmethod
    def from_settings(cls, settings: Settings) -> BridgeTopics:
        """`{prefix}.telemetry` and `{prefix}.deadletter`."""
        prefix = settings.kafka.topic_prefix
        return cls(f"{prefix}.telemetry", f"{prefix}.deadletter")


@dataclass
class BridgeCounters:
    """Bridge progress for metrics and the final log line."""

    messages_acked: int = 0
    records_sent: int = 0
    readings_sent: int = 0
    deadletters_sent: int = 0
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
            log.info("bridge %s → %s", self.link.options.subscriptions, self.topics)
            while not stop.is_set():
                batch = await asyncio.to_thread(self.link.next_batch, self.max_batch, 0.2)
                if not batch:
                    continue
                records = self.records(batch)
                if records:
                    await self._send(producer, records)
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
