"""The processes under test, wired to a case's services: the embedded runner, the bridge, the
alert dispatcher (`alerts serve`), and what feeds or reads their Kafka topics."""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from alerting.auth import token_hash
from tests.faults.figures import FaultReport
from tests.faults.receiver import SECRET, SECRET_ENV, WebhookReceiver
from tests.faults.workload import SCENARIO, policy_yaml
from tests.processes import Child, base_env, free_port, influx_rows


def scenario_plant() -> tuple[Path, Any]:
    """The workload's plant file and model (fixed: the scenario names it)."""
    from hazardwatch.plant.loader import load_plant
    from simulators.scenario import load_scenario

    _, plant_path = load_scenario(SCENARIO)
    return plant_path, load_plant(plant_path)


class Case:
    """One fault run: its own directory, names, seeded randomness, receiver and report."""

    def __init__(self, name: str, fault: str, seed: int, answer_delay_s: float = 0.0) -> None:
        self.name = name
        self.uid = uuid.uuid4().hex[:8]
        self.workdir = Path(tempfile.mkdtemp(prefix=f"hw-fault-{name}-"))
        self.rng = random.Random(f"{seed}:{name}")
        self.report = FaultReport(name, fault, seed)
        self.receiver = WebhookReceiver(answer_delay_s)
        self.receiver.up()
        self.prefix = f"fault/{self.uid}"
        self.plant_path, self.plant = scenario_plant()
        self.policy = self.workdir / "policy.yaml"
        self.policy.write_text(policy_yaml(self.plant, self.receiver.url), "utf-8")
        self._cleanups: list[Callable[[], object]] = [self.receiver.close]
        self.started = time.monotonic()

    def at_exit(self, cleanup: Callable[[], object]) -> None:
        """Run `cleanup` when the case closes (last registered, first run)."""
        self._cleanups.append(cleanup)

    def fractions(self, n: int, low: float, high: float, min_gap: float) -> list[float]:
        """`n` seeded random points in [low, high], at least `min_gap` apart, sorted."""
        for _ in range(1000):
            points = sorted(self.rng.uniform(low, high) for _ in range(n))
            if all(b - a >= min_gap for a, b in itertools.pairwise(points)):
                return points
        raise AssertionError("no kill points fit; widen the range")

    def close(self, keep: bool) -> None:
        """Stop everything the case started; keep the directory (logs) when asked."""
        for cleanup in reversed(self._cleanups):
            try:
                cleanup()
            except Exception as exc:  # cleanup must not hide the case's result
                self.report.notes.append(f"cleanup {cleanup!r} failed: {exc}")
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {'name{labels}': value}; counters also without their `_total`."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
            family, brace, labels = name.partition("{")
            if family.endswith("_total"):
                out[family.removesuffix("_total") + brace + labels] = float(value)
    return out


class EmbeddedRig:
    """`hazardwatch run` for a case, against the given MQTT broker and InfluxDB."""

    def __init__(
        self, case: Case, mqtt_url: str, influx_url: str, database: str, **runner: str
    ) -> None:
        self.case, self.influx_url, self.database = case, influx_url, database
        self.port = free_port()
        settings = {
            "plant": str(case.plant_path),
            "policy": str(case.policy),
            "data_dir": str(case.workdir / "data"),
            "mqtt__url": mqtt_url,
            "mqtt__topic_prefix": case.prefix,
            "mqtt__client_id": f"runner-{case.uid}",
            "influx__url": influx_url,
            "influx__database": database,
            "http__port": str(self.port),
            "http__api_port": str(free_port()),
            "runner__flush_interval_ms": "100",
            **{f"runner__{k}": v for k, v in runner.items()},
        }
        env = {**base_env(**settings), SECRET_ENV: SECRET}
        self.child = Child(["run"], env, case.workdir / "runner.log", self._healthy)
        case.at_exit(self.child.terminate)

    def _healthy(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200

    def health(self) -> dict[str, Any]:
        """`/healthz` as JSON, whatever its status code."""
        data: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).json()
        return data

    def metrics(self) -> dict[str, float]:
        """`/metrics`, parsed."""
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return parse_metrics(text)

    def notifications(self, status: str) -> int:
        """Outbox notifications with `status` (pending, delivered, dead)."""
        return int(self.metrics().get(f'hazardwatch_notifications{{status="{status}"}}', 0))

    def stored_readings(self, start_ms: int, end_ms: int) -> dict[str, int]:
        """Readings per tag in InfluxDB between two times (inclusive)."""
        return stored_readings(self.influx_url, self.database, start_ms, end_ms)


def stored_readings(influx_url: str, database: str, start_ms: int, end_ms: int) -> dict[str, int]:
    """Readings per tag in InfluxDB between two times (inclusive)."""
    rows = influx_rows(
        influx_url,
        database,
        f'SELECT count("v") FROM "reading_v1" WHERE time >= {start_ms}ms '
        f'AND time <= {end_ms}ms GROUP BY "tag"',
    )
    return {r["tag"]: int(r["count"]) for r in rows}


# Rebalances in seconds, not minutes (Kafka's minimum session timeout is 6 s), as the worker's own
# integration tests configure them.
WORKER_TIMERS = {
    "worker__session_timeout_s": "6",
    "worker__heartbeat_interval_s": "1",
    "worker__rebalance_timeout_s": "10",
    "worker__commit_interval_s": "0.5",
}


class WorkerRig:
    """`hazardwatch worker` processes sharing one consumer group on a case's Kafka topics."""

    def __init__(
        self,
        case: Case,
        bootstrap: str,
        topic_prefix: str,
        influx_url: str,
        database: str,
        worker_id: str,
    ) -> None:
        self.port = free_port()
        settings = {
            "plant": str(case.plant_path), "policy": str(case.policy),
            "data_dir": str(case.workdir / "workers"), "kafka__bootstrap_servers": bootstrap,
            "kafka__topic_prefix": topic_prefix, "kafka__partitions": "4",
            "influx__url": influx_url, "influx__database": database,
            "http__port": str(self.port), **WORKER_TIMERS,
        }  # fmt: skip
        args = ["worker", "--worker-id", worker_id]
        self.child = Child(args, base_env(**settings), case.workdir / f"{worker_id}.log",
                           self._healthy)  # fmt: skip
        case.at_exit(self.child.terminate)

    def _healthy(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200

    def health(self) -> dict[str, Any]:
        """`/healthz` as JSON, whatever its status code."""
        data: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).json()
        return data


class AlertsRig:
    """`hazardwatch alerts serve` reading engine events from `{prefix}.alerts` on Kafka."""

    def __init__(self, case: Case, bootstrap: str, topic_prefix: str) -> None:
        self.case = case
        self.port = free_port()
        tokens = case.workdir / "tokens.yaml"
        tokens.write_text(
            f'tokens:\n  - {{user: fault-suite, tier: province, area: "370000", '
            f'sha256: "{token_hash(case.uid)}"}}\n',
            "utf-8",
        )
        env = {
            **base_env(
                kafka__bootstrap_servers=bootstrap,
                kafka__topic_prefix=topic_prefix,
                http__port=str(self.port),
                data_dir=str(case.workdir / "alerts"),
            ),
            SECRET_ENV: SECRET,
        }
        args = [
            "alerts",
            "serve",
            "--plant",
            str(case.plant_path),
            "--policy",
            str(case.policy),
            "--tokens",
            str(tokens),
            "--db",
            str(case.workdir / "alerts" / "alerts.db"),
        ]
        self.child = Child(args, env, case.workdir / "alerts.log", self._healthy)
        case.at_exit(self.child.terminate)

    def _healthy(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200

    def outbox(self) -> dict[str, int]:
        """Outbox counts by status from `/healthz`."""
        data = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).json()
        return {k: int(v) for k, v in data["outbox"].items()}


class BridgeRig:
    """`hazardwatch bridge` from a case's MQTT prefix to its own Kafka topics."""

    def __init__(self, case: Case, mqtt_url: str, bootstrap: str, topic_prefix: str) -> None:
        self.metrics_port = free_port()
        self.topic = f"{topic_prefix}.telemetry"
        env = base_env(
            mqtt__url=mqtt_url,
            mqtt__topic_prefix=case.prefix,
            kafka__bootstrap_servers=bootstrap,
            kafka__topic_prefix=topic_prefix,
        )
        args = [
            "bridge",
            "--plant",
            str(case.plant_path),
            "--client-id",
            f"bridge-{case.uid}",
            "--metrics-port",
            str(self.metrics_port),
        ]
        self.child = Child(args, env, case.workdir / "bridge.log", self._ready)
        case.at_exit(self.child.terminate)

    def _ready(self) -> bool:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        return httpx.get(url, timeout=2).status_code == 200


def telemetry_in_kafka(bootstrap: str, topic: str) -> tuple[dict[str, int], int]:
    """Readings per tag in a telemetry topic after dedup by (gw, seq, source); and the copies."""

    async def read() -> tuple[dict[str, int], int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            [described] = await admin.describe_topics([topic])
        finally:
            await admin.close()
        tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        if not tps:
            return {}, 0
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            seen: set[tuple[str, int, str]] = set()
            tags: Counter[str] = Counter()
            copies = 0
            while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for records in batches.values():
                    for record in records:
                        value = orjson.loads(record.value or b"{}")
                        key = (value["gw"], value["seq"], value["source"])
                        if key in seen:
                            copies += 1
                            continue
                        seen.add(key)
                        tags.update(value["tags"])
            return dict(tags), copies
        finally:
            await consumer.stop()

    return asyncio.run(read())


class EventFeeder:
    """Publishes engine events to `{prefix}.alerts` as the workers would, paced by event time.

    Stands in for `hazardwatch worker` (the real format: one engine event JSON per record, keyed
    by enterprise). A send that Kafka does not acknowledge is repeated until it is.
    """

    def __init__(
        self, bootstrap: str, topic: str, events: list[dict[str, Any]], start_ms: int, speed: float
    ) -> None:
        self.bootstrap, self.topic, self.events = bootstrap, topic, events
        self.start_ms, self.speed = start_ms, speed
        self.sent = 0
        self.retries = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, started: float) -> None:
        """Begin; event at plant time t goes out at `started` + (t − start) / speed."""
        self._started = started
        self._thread.start()

    def join(self, timeout: float = 300.0) -> None:
        """Wait until every event was acknowledged by Kafka."""
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        assert not self._thread.is_alive(), f"event feeder stuck after {self.sent} events"

    def _run(self) -> None:
        try:
            asyncio.run(self._feed())
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    async def _feed(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=10_000,
        )
        await _retry(producer.start, self)
        try:
            for event in self.events:
                ts_ms = datetime.fromisoformat(event["ts"]).timestamp() * 1000
                due = self._started + (ts_ms - self.start_ms) / 1000.0 / self.speed
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                value = orjson.dumps(event)
                key = event["enterprise"].encode()
                await _retry(partial(producer.send_and_wait, self.topic, value, key=key), self)
                self.sent += 1
        finally:
            await producer.stop()


async def _retry(action: Callable[[], Any], feeder: EventFeeder) -> None:
    while True:
        try:
            await action()
            return
        except KafkaError:
            feeder.retries += 1
            await asyncio.sleep(1.0)


def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic whose name starts with `prefix` (test clean-up)."""

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            names = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if names:
                await admin.delete_topics(names)
        finally:
            await admin.close()

    asyncio.run(run())


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    """Create a topic so that consumers see it from their first metadata fetch."""
    from aiokafka.admin import NewTopic

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            await admin.close()

    asyncio.run(run())
