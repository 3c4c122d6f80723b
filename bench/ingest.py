"""Ingest throughput against the real Mosquitto (and Kafka), with ceilings from the same run.

    python bench/ingest.py [--single N] [--rounds R] [--batched N] [--bridge N]

Each figure drains a backlog pre-loaded into a persistent MQTT session (MQTT 5, QoS 1), so it
measures the subscriber, not the publisher:

- `bare_paho_messages_per_s`: a bare paho subscriber (QoS 1, auto ack, empty callback) — the
  ceiling for `single_point_readings_per_s` (target ≥ 0.8×);
- `single_point_readings_per_s`: `MqttLink` + decoder + manual ack after the batch is decoded,
  1-point messages, decoding on the consumer's thread as `open_ingest` does. The two alternate
  for `--rounds` rounds (which goes first alternates too) on a machine that other work may
  share; medians are reported, and `single_vs_bare_paho` is the median of the per-round ratios;
- `single_point_service_readings_per_s`: the whole embedded `IngestService` consumer (hand-off
  to a counter, gateway status board, dead-letter check, ack), 1-point messages, for reference;
- `batched_readings_per_s`: the same rounds with 100-point messages (target ≥ 300,000), next to
  `batched_bare_paho_readings_per_s`;
- `*_cpu_us_per_message`: process CPU (both threads) per message, median over the rounds: the
  steadier comparison when other work shares the machine;
- `bridge_readings_per_s`: `Bridge` MQTT → Kafka with acks after Kafka, 100-point messages,
  next to `kafka_producer_readings_per_s` (the same records sent by a bare aiokafka producer).

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

import orjson
import paho.mqtt.client as paho
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hazardwatch.plant.loader import load_plant  # noqa: E402
from hazardwatch.settings import Settings, load_settings  # noqa: E402
from ingest import protocol  # noqa: E402
from ingest.bridge import Bridge, BridgeTopics  # noqa: E402
from ingest.decoder import Decoder  # noqa: E402
from ingest.directory import GatewayDirectory  # noqa: E402
from ingest.mqtt import LinkOptions, MqttLink  # noqa: E402
from ingest.records import telemetry_records  # noqa: E402
from ingest.results import Decoded  # noqa: E402
from ingest.service import open_ingest  # noqa: E402

PLANT = load_plant(ROOT / "examples" / "tank-farm.yaml")
GATEWAY = "GW-TF-A"
ENTERPRISE = "QZ-PETRO"
TAGS = next(g.tags for g in PLANT.gateways if g.id == GATEWAY)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def payloads(count: int, points: int) -> list[bytes]:
    """`count` messages of `points` points each from GW-TF-A, seq 1…count, times now."""
    t = now_ms()
    return [
        protocol.encode_batch(
            GATEWAY,
            seq,
            t,
            [(TAGS[i % len(TAGS)], t - i, float(seq + i), 0) for i in range(points)],
        )
        for seq in range(1, count + 1)
    ]


def preload(
    settings: Settings, client_id: str, filters: tuple[str, ...], bodies: list[bytes]
) -> None:
    """Create `client_id`'s persistent session with `filters`, then queue `bodies` for it."""
    session: MqttLink[None] = MqttLink(
        settings.mqtt, LinkOptions(client_id=client_id, subscriptions=filters), lambda *a: None
    )
    session.start()
    session.stop()
    publisher: MqttLink[None] = MqttLink(
        settings.mqtt,
        LinkOptions(client_id=f"pub-{uuid.uuid4().hex[:8]}", clean_start=True),
        lambda *a: None,
    )
    publisher.start()
    topic = protocol.telemetry_topic(settings.mqtt.topic_prefix, ENTERPRISE, GATEWAY)
    for start in range(0, len(bodies), 5000):
        publisher.publish_all([(topic, b) for b in bodies[start : start + 5000]], timeout_s=120)
    publisher.stop()


class Drained(NamedTuple):
    """Throughput of one drain and the process CPU it took per message (both threads)."""

    per_s: float
    cpu_us_per_message: float


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def forget(settings: Settings, client_id: str) -> None:
    """Drop a bench session from the broker: clean start, expiring at disconnect."""
    options = LinkOptions(client_id=client_id, clean_start=True, session_expiry_s=0)
    link: MqttLink[None] = MqttLink(settings.mqtt, options, lambda *a: None)
    link.start()
    link.stop()


def bare_paho(settings: Settings, count: int, points: int) -> Drained:
    """Messages/s a bare paho subscriber drains from a pre-loaded session."""
    client_id = f"bench-bare-{uuid.uuid4().hex[:8]}"
    filters = (protocol.telemetry_filter(settings.mqtt.topic_prefix),)
    preload(settings, client_id, filters, payloads(count, points))
    done = threading.Event()
    received = 0

    def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received >= count:
            done.set()

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 60
    url = urlparse(settings.mqtt.url)
    cpu, start = cpu_s(), time.perf_counter()
    client.connect(url.hostname or "127.0.0.1", url.port or 1883, clean_start=False,
                   properties=props)  # fmt: skip
    client.loop_start()
    done.wait(300)
    elapsed, cpu = time.perf_counter() - start, cpu_s() - cpu
    client.disconnect()
    client.loop_stop()
    forget(settings, client_id)
    return Drained(received * points / elapsed, cpu / received * 1e6)


def ingest_link(settings: Settings, count: int, points: int) -> Drained:
    """Readings/s decoded by MqttLink + Decoder with manual acks from a pre-loaded session."""
    client_id = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    prefix = settings.mqtt.topic_prefix
    filters = (protocol.telemetry_filter(prefix),)
    preload(settings, client_id, filters, payloads(count, points))
    decoder = Decoder(GatewayDirectory.from_plant(PLANT), prefix)
    options = LinkOptions(client_id=client_id, subscriptions=filters, hook_in_consumer=True)
    link: MqttLink[Decoded] = MqttLink(settings.mqtt, options, decoder.decode)
    cpu, start = cpu_s(), time.perf_counter()
    link.start()
    readings = messages = 0
    while messages < count:
        batch = link.next_batch(5000, 5.0)
        if not batch:
            break
        readings += sum(d.item.accepted for d in batch)
        messages += len(batch)
        link.ack(batch)
    elapsed, cpu = time.perf_counter() - start, cpu_s() - cpu
    link.stop()
    forget(settings, client_id)
    rejected = decoder.counters.messages_with_rejections
    if rejected or messages < count:
        raise SystemExit(f"bench invalid: {rejected} refused, {messages}/{count} received")
    return Drained(readings / elapsed, cpu / messages * 1e6)


def ingest_service(settings: Settings, count: int) -> float:
    """Readings/s through the embedded `IngestService` consumer, 1-point messages."""
    client_id = f"bench-service-{uuid.uuid4().hex[:8]}"
    prefix = settings.mqtt.topic_prefix
    filters = (protocol.telemetry_filter(prefix), protocol.status_filter(prefix))
    preload(settings, client_id, filters, payloads(count, 1))
    handed = 0

    def handoff(batch: Sequence[Decoded]) -> None:
        nonlocal handed
        handed += sum(d.accepted for d in batch)

    service = open_ingest(settings.mqtt, PLANT, handoff, client_id=client_id)
    start = time.perf_counter()
    service.link.start()
    while handed < count:
        batch = service.link.next_batch(2000, 5.0)
        if not batch:
            break
        service.process(batch)
    elapsed = time.perf_counter() - start
    service.link.stop()
    forget(settings, client_id)
    if handed < count:
        raise SystemExit(f"bench invalid: {handed}/{count} readings handed on")
    return handed / elapsed


def alternating(
    settings: Settings, count: int, points: int, rounds: int
) -> list[tuple[Drained, Drained]]:
    """(bare paho, MqttLink + decoder) per round; which one goes first alternates."""
    pairs = []
    for r in range(rounds):
        if r % 2 == 0:
            bare = bare_paho(settings, count, points)
            link = ingest_link(settings, count, points)
        else:
            link = ingest_link(settings, count, points)
            bare = bare_paho(settings, count, points)
        pairs.append((bare, link))
    return pairs


def summary(
    pairs: list[tuple[Drained, Drained]], link: tuple[str, str], bare: tuple[str, str], ratio: str
) -> dict[str, Any]:
    """Medians over the rounds, the median per-round ratio, CPU per message, every round.

    `link` and `bare` are (name, rate key), e.g. ("bare_paho", "bare_paho_messages_per_s").
    """
    (link_name, link_key), (bare_name, bare_key) = link, bare
    return {
        link_key: round(statistics.median(s.per_s for _, s in pairs)),
        bare_key: round(statistics.median(b.per_s for b, _ in pairs)),
        ratio: round(statistics.median(s.per_s / b.per_s for b, s in pairs), 3),
        # CPU per message is steadier than wall time when other work shares the machine.
        f"{link_name}_cpu_us_per_message": round(
            statistics.median(s.cpu_us_per_message for _, s in pairs), 1
        ),
        f"{bare_name}_cpu_us_per_message": round(
            statistics.median(b.cpu_us_per_message for b, _ in pairs), 1
        ),
        f"{link_name}_rounds": [
            {bare_key: round(b.per_s), link_key: round(s.per_s)} for b, s in pairs
        ],
    }


async def _topic(settings: Settings, partitions: int = 4) -> str:
    name = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def _drop(settings: Settings, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


def bridge(settings: Settings, count: int, points: int) -> tuple[float, float]:
    """(bridge readings/s into Kafka, bare aiokafka producer readings/s for the same records)."""
    client_id = f"bench-bridge-{uuid.uuid4().hex[:8]}"
    prefix = settings.mqtt.topic_prefix
    bodies = payloads(count, points)
    preload(
        settings,
        client_id,
        (protocol.telemetry_filter(prefix), protocol.status_filter(prefix)),
        bodies,
    )
    telemetry, dead, ceiling_topic = (asyncio.run(_topic(settings)) for _ in range(3))
    worker = Bridge(
        settings, PLANT, BridgeTopics(telemetry, dead), client_id=client_id, max_batch=2000
    )
    expected = count * points

    async def run_bridge() -> float:
        stop = asyncio.Event()
        start = time.perf_counter()
        task = asyncio.create_task(worker.run(stop))
        while worker.counters.readings_sent < expected and not task.done():
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        stop.set()
        await task
        return worker.counters.readings_sent / elapsed

    bridge_rate = asyncio.run(run_bridge())
    forget(settings, client_id)
    decoder = Decoder(GatewayDirectory.from_plant(PLANT), prefix)
    topic = protocol.telemetry_topic(prefix, ENTERPRISE, GATEWAY)
    records = [
        r
        for b in bodies
        for r in telemetry_records(decoder.decode(topic, b, now_ms()), decoder.directory)
    ]

    async def run_producer() -> float:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        await producer.start()
        start = time.perf_counter()
        futures = [
            await producer.send(ceiling_topic, r.value, key=r.key, headers=r.headers)
            for r in records
        ]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - start
        await producer.stop()
        return sum(r.readings for r in records) / elapsed

    ceiling = asyncio.run(run_producer())
    asyncio.run(_drop(settings, [telemetry, dead, ceiling_topic]))
    return bridge_rate, ceiling


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=20_000, help="1-point messages a round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--batched", type=int, default=3_000, help="100-point messages")
    parser.add_argument("--bridge", type=int, default=2_000, help="100-point messages via Kafka")
    args = parser.parse_args(argv)
    base = load_settings()
    settings = base.model_copy(
        update={
            "mqtt": base.mqtt.model_copy(update={"topic_prefix": f"bench/{uuid.uuid4().hex[:8]}"})
        }
    )
    single = alternating(settings, args.single, 1, args.rounds)
    service = ingest_service(settings, args.single)
    batched = alternating(settings, args.batched, 100, args.rounds)
    bridge_rate, producer_rate = bridge(settings, args.bridge, 100)
    result = {
        **summary(
            single,
            ("single_point", "single_point_readings_per_s"),
            ("bare_paho", "bare_paho_messages_per_s"),
            "single_vs_bare_paho",
        ),
        "single_target_ratio": 0.8,
        "single_point_service_readings_per_s": round(service),
        **summary(
            batched,
            ("batched", "batched_readings_per_s"),
            ("batched_bare_paho", "batched_bare_paho_readings_per_s"),
            "batched_vs_bare_paho",
        ),
        "batched_target_readings_per_s": 300_000,
        "bridge_readings_per_s": round(bridge_rate),
        "kafka_producer_readings_per_s": round(producer_rate),
        "messages": {
            "single": args.single,
            "rounds": args.rounds,
            "batched": args.batched,
            "bridge": args.bridge,
        },
    }
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
