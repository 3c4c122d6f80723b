"""`hazardwatch worker` on real Kafka, Mosquitto and InfluxDB, workers and bridge as processes.

Claims under test (stream/runners/worker, docs/architecture.md "Distributed runner"):
- gateway messages → MQTT → `hazardwatch bridge` → Kafka → worker give exactly the events
  `hazardwatch evaluate` gives on the same readings (same ids, same order per hazard source),
  including enterprise colour and flood, whose sources sit in different partitions;
- two workers share the partitions; SIGKILL one mid-stream and the other carries on from the
  table: the active unacknowledged alarm stays so (no second raise, no return to normal), the
  colour stays, the whole event stream still equals `evaluate`'s, and an acknowledgement sent
  after the failover reaches the engine now owning the tag;
- workers joining and leaving while telemetry flows lose no reading, though faust's fetcher skips
  offsets over some rebalances (the worker reads them back);
- a table recovery that stalls (faust) ends the worker with 75 for its supervisor to restart it;
  the takeover test restarts a survivor that does so, once, as a supervisor would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from ingest.protocol import encode_batch, telemetry_topic
from stream.runners.worker.topics import ENGINE_TABLE, WorkerTopics
from stream.runners.worker.watchdog import EXIT_RECOVERY_STALLED
from tests.processes import drop_kafka_topics, free_port, wait_until
from tests.services import Endpoints

pytestmark = pytest.mark.integration

PARTITIONS = 4
ROOT = Path(__file__).resolve().parents[2]


def partition(key: str) -> int:
    """Kafka's default partitioner (what the bridge's producer uses)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS


def three_sources() -> list[str]:
    """Three hazard source ids that hash to three different partitions."""
    chosen: list[str] = []
    for i in range(100):
        name = f"TF{i}"
        if partition(name) not in {partition(s) for s in chosen}:
            chosen.append(name)
        if len(chosen) == 3:
            return chosen
    raise AssertionError("no three partitions")


SOURCES = three_sources()
TAGS = [f"{s}-LT" for s in SOURCES]


def plant_yaml() -> str:
    sources = ""
    for i, source in enumerate(SOURCES):
        sources += f"""
  - id: {source}
    enterprise: E1
    name: 储罐区{i}
    kind: tank_farm
    grade: {1 if i == 0 else 3}
    units:
      - id: {source}-U
        name: 储罐
        tags:
          - {{id: {source}-LT, name: 液位, quantity: level, unit: m, range: [0, 20],
             limits: {{H: 15, HH: 17}}, on_delay_s: 1, off_delay_s: 1, deadband: 0.1}}
"""
    return f"""
version: 1
enterprises:
  - {{id: E1, name: 测试石化, region: "410102", industry: hazardous_chemicals}}
gateways:
  - {{id: GW1, enterprise: E1, interval_s: 1, tags: [{", ".join(TAGS)}]}}
hazard_sources:{sources}
"""


def bridge_record(tag: str, seq: int, ts: int, value: float) -> bytes:
    """The bridge's telemetry record (ingest/records.py) of one GW1 reading of `tag`'s source."""
    return orjson.dumps({"v": 1, "gw": "GW1", "seq": seq, "sent": ts, "enterprise": "E1",
                         "source": tag.removesuffix("-LT"), "tags": [tag], "ts": [ts],
                         "vals": [value], "q": [0]})  # fmt: skip


def influx_count(url: str, database: str, query: str) -> int:
    """The single count an InfluxQL `SELECT count(...)` returns (0 for no series)."""
    resp = httpx.get(f"{url}/query", params={"db": database, "q": query}, timeout=10)
    series = resp.json()["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


# A small flood window so that a short scenario begins and ends floods.
POLICY = "risk:\n  flood: {start_above: 3, end_below: 1, window_s: 5}\nrouting: {}\n"


class Service:
    """A hazardwatch sub-command as a child process, logging to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        handle = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen([sys.executable, "-m", "hazardwatch.cli", *self.args],
                                     env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                     cwd=ROOT)  # fmt: skip
        return self

    def alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.args[0]} exited {self.proc.returncode}\n{self.tail()}")
        return True

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self) -> str:
        return self.log.read_text("utf-8", errors="replace")[-4000:]


class Worker(Service):
    """`hazardwatch worker` with its own ops port."""

    def __init__(self, env: dict[str, str], log: Path, worker_id: str) -> None:
        self.port = free_port()
        super().__init__(["worker", "--worker-id", worker_id],
                         {**env, "HAZARDWATCH_HTTP__PORT": str(self.port)}, log)  # fmt: skip

    def health(self) -> dict[str, Any]:
        self.alive()
        try:
            data: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.port}/healthz",
                                             timeout=2).json()  # fmt: skip
            return data
        except httpx.HTTPError:
            return {}


class TopicReader:
    """Collects every record of a topic (from the start) on a background thread."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.values: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(bootstrap, topic),),
                                        daemon=True)  # fmt: skip
        self._thread.start()

    async def _run(self, bootstrap: str, topic: str) -> None:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                    auto_offset_reset="earliest", group_id=None)  # fmt: skip
        await consumer.start()
        try:
            while not self._stop.is_set():
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    self.values += [orjson.loads(r.value) for r in records]
        finally:
            await consumer.stop()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def distinct(self) -> list[dict[str, Any]]:
        """Records in topic order with later copies of an event id dropped."""
        seen: set[str] = set()
        out = []
        for value in list(self.values):
            if value["id"] not in seen:
                seen.add(value["id"])
                out.append(value)
        return out


class Gateway:
    """GW1 publishing QoS 1 batches over MQTT and recording what it sent (readings.jsonl)."""

    def __init__(self, endpoints: Endpoints, prefix: str, recording: Path) -> None:
        self.topic = telemetry_topic(prefix, "E1", "GW1")
        self.seq = 0
        self.last_ts = 0
        self.recording = recording.open("wb")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect(endpoints.mqtt_host, endpoints.mqtt_port)
        self.client.loop_start()

    def send(self, levels: list[float]) -> int:
        ts = max(time.time_ns() // 1_000_000, self.last_ts + 1)
        self.seq += 1
        points = [(tag, ts, level, 0) for tag, level in zip(TAGS, levels, strict=True)]
        self.client.publish(self.topic, encode_batch("GW1", self.seq, ts, points),
                            qos=1).wait_for_publish(10)  # fmt: skip
        for tag, level in zip(TAGS, levels, strict=True):
            self.recording.write(orjson.dumps({"ts": ts, "tag": tag, "v": level}) + b"\n")
        self.recording.flush()
        self.last_ts = ts
        return ts

    def close(self) -> None:
        self.recording.close()
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Site:
    """Everything one test runs against: settings environment, files, the alerts topic."""

    endpoints: Endpoints
    env: dict[str, str]
    tmp: Path
    prefix: str
    mqtt_prefix: str

    def worker(self, worker_id: str) -> Worker:
        return Worker(self.env, self.tmp / f"{worker_id}.log", worker_id)

    def bridge(self) -> Service:
        return Service(["bridge", "--client-id", f"{self.prefix}-bridge"], self.env,
                       self.tmp / "bridge.log")  # fmt: skip

    def evaluate(self, readings: Path) -> list[dict[str, Any]]:
        out = self.tmp / "evaluated.jsonl"
        subprocess.run(
            [sys.executable, "-m", "hazardwatch.cli", "evaluate", "--plant",
             self.env["HAZARDWATCH_PLANT"], "--policy", self.env["HAZARDWATCH_POLICY"],
             "--input", str(readings), "--output", str(out)],
            check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        return [orjson.loads(line) for line in out.read_bytes().splitlines()]

    def acknowledge(self, tag: str, source: str) -> None:
        async def send() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.endpoints.kafka_bootstrap)
            await producer.start()
            command = {"type": "acknowledge", "alert": "A-test", "enterprise": "E1",
                       "source": source, "tags": [tag], "user": "zhang.san",
                       "ts": time.time_ns() // 1_000_000}  # fmt: skip
            await producer.send_and_wait(f"{self.prefix}.commands", orjson.dumps(command),
                                         key=b"E1")  # fmt: skip
            await producer.stop()

        asyncio.run(send())

    def influx_count(self, query: str) -> int:
        return influx_count(self.endpoints.influx_url, self.env["HAZARDWATCH_INFLUX__DATABASE"],
                            query)  # fmt: skip

    def wait_for_readings(self, n_readings: int, timeout: float, worker: Service) -> None:
        """Wait until `reading_v1` holds `n_readings` points; on timeout say how many it held
        (fewer: lost or late) with the worker's log."""
        stored = [0]

        def every_reading_stored() -> bool:
            stored[0] = self.influx_count('SELECT count("v") FROM "reading_v1"')
            return stored[0] == n_readings

        try:
            wait_until(every_reading_stored, timeout, "every reading in InfluxDB")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {stored[0]} of {n_readings} readings stored\n"
                                 f"{worker.tail()}") from None  # fmt: skip


@pytest.fixture
def site(
    endpoints: Endpoints,
    influx_database: str,
    mqtt_prefix: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[Site]:
    prefix = unique_name("hwtest")
    (tmp_path / "plant.yaml").write_text(plant_yaml(), "utf-8")
    (tmp_path / "policy.yaml").write_text(POLICY, "utf-8")
    env = {
        **os.environ,
        "HAZARDWATCH_PLANT": str(tmp_path / "plant.yaml"),
        "HAZARDWATCH_POLICY": str(tmp_path / "policy.yaml"),
        "HAZARDWATCH_DATA_DIR": str(tmp_path / "data"),
        "HAZARDWATCH_MQTT__URL": f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}",
        "HAZARDWATCH_MQTT__TOPIC_PREFIX": mqtt_prefix,
        "HAZARDWATCH_KAFKA__BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
        "HAZARDWATCH_KAFKA__TOPIC_PREFIX": prefix,
        "HAZARDWATCH_KAFKA__PARTITIONS": str(PARTITIONS),
        "HAZARDWATCH_INFLUX__URL": endpoints.influx_url,
        "HAZARDWATCH_INFLUX__DATABASE": influx_database,
        # Rebalances in seconds, not minutes (Kafka's minimum session timeout is 6 s).
        "HAZARDWATCH_WORKER__SESSION_TIMEOUT_S": "6",
        "HAZARDWATCH_WORKER__HEARTBEAT_INTERVAL_S": "1",
        "HAZARDWATCH_WORKER__REBALANCE_TIMEOUT_S": "10",
        "HAZARDWATCH_WORKER__COMMIT_INTERVAL_S": "0.5",
        # This machine's two cores are shared by many processes: allow readings seconds in flight
        # before the wall clock moves an engine past them.
        "HAZARDWATCH_WORKER__ENTERPRISE_GRACE_MS": "2000",
        "HAZARDWATCH_WORKER__CLOCK_LAG_MS": "5000",
        # A stalled table recovery (faust) ends the worker after 20 s, not the default 120 s.
        "HAZARDWATCH_WORKER__RECOVERY_STALL_S": "20",
    }
    made = Site(endpoints, env, tmp_path, prefix, mqtt_prefix)
    yield made

    drop_kafka_topics(endpoints.kafka_bootstrap, prefix)


def wait_for_events(
    alerts: TopicReader, expected: list[dict[str, Any]], timeout: float, worker: Service
) -> None:
    """Wait until every expected event id is on the alerts topic; name the missing ones."""
    wanted = {e["id"] for e in expected}
    try:
        wait_until(lambda: wanted <= {e["id"] for e in alerts.values}, timeout, "events")
    except AssertionError:
        have = {e["id"] for e in alerts.values}
        missing = [e for e in expected if e["id"] not in have]
        raise AssertionError(f"not on the alerts topic: {missing}\n{worker.tail()}") from None


def up_to(events: list[dict[str, Any]], last_ts_ms: int) -> list[dict[str, Any]]:
    """Events at or before the last reading: later ones (stale, after the recording ends) are
    timers `evaluate` never reaches because its input stops."""
    from datetime import datetime

    return [e for e in events if datetime.fromisoformat(e["ts"]).timestamp() * 1000 <= last_ts_ms]


def by_source(events: list[dict[str, Any]]) -> dict[str | None, list[str]]:
    out: dict[str | None, list[str]] = {}
    for event in events:
        out.setdefault(event["source"], []).append(event["id"])
    return out


def assert_same_events(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    mine, theirs = {e["id"] for e in got}, {e["id"] for e in expected}
    assert mine == theirs, (
        f"worker and evaluate differ:\nonly worker {[e for e in got if e['id'] not in theirs]}"
        f"\nonly evaluate {[e for e in expected if e['id'] not in mine]}"
    )
    # one hazard source (and the enterprise level) keeps the engine's order
    assert by_source(got) == by_source(expected)


@pytest.mark.parametrize("seed", range(12))
def test_partition_engines_and_enterprise_merge_equal_one_engine(seed: int, tmp_path: Path) -> None:
    """Without services: the worker's split (one engine per partition, enterprise colour and
    flood merged from source changes) against one engine over the whole plant, with partitions
    read in a random order and random batch sizes."""
    import random

    from hazardwatch.plant.loader import load_plant
    from stream.engine import ReadingBatch, RiskEngine
    from stream.events import event_to_dict
    from stream.policy import EnginePolicy
    from stream.runners.worker.enterprise import EnterpriseMerge
    from stream.runners.worker.partition import PartitionEngine
    from stream.runners.worker.partitioning import sources_by_partition
    from stream.tagtable import TagTable

    (tmp_path / "plant.yaml").write_text(plant_yaml(), "utf-8")
    plant = load_plant(tmp_path / "plant.yaml")
    policy = EnginePolicy(flood_start_above=2, flood_end_below=1, flood_window_ms=5000)
    rng = random.Random(seed)
    t0, readings = 1_700_000_000_000, []
    levels = [10.0, 15.5, 17.5]
    for k in range(150):  # one gateway message per second, each tank wandering between bands
        ts = t0 + k * 1000
        readings.append([(tag, ts, rng.choice(levels) if rng.random() < 0.3 else 10.0)
                         for tag in TAGS])  # fmt: skip

    whole = RiskEngine(TagTable.from_plant(plant), policy)
    index = {tag: i for i, tag in enumerate(whole.table.tag_ids)}
    expected = []
    for message in readings:
        expected += whole.process(ReadingBatch.of([index[t] for t, _, _ in message],
                                                  [ts for _, ts, _ in message],
                                                  [v for _, _, v in message]))  # fmt: skip

    sources = sources_by_partition(plant, PARTITIONS)
    engines = {p: PartitionEngine(p, plant, ids, policy) for p, ids in sources.items()}
    merge = EnterpriseMerge("E1", tuple(SOURCES), policy)
    records: dict[int, list[tuple[int, bytes | None]]] = {p: [] for p in engines}
    for seq, message in enumerate(readings, 1):
        for tag, ts, value in message:
            source = tag.removesuffix("-LT")
            value_json = bridge_record(tag, seq, ts, value)
            part = records[partition(source)]
            part.append((len(part), value_json))
            if rng.random() < 0.05:  # the bridge resent a record after a crash
                part.append((len(part), value_json))
    got = []
    order = list(engines)
    rng.shuffle(order)
    for p in order:
        pending = records[p]
        while pending:
            size = rng.randint(1, 12)
            step = engines[p].handle(pending[:size])
            pending = pending[size:]
            got += step.events
            for change in step.changes:
                merge.add(change)
    got += merge.release(readings[-1][0][1])
    assert sum(e.counters.duplicates for e in engines.values()) > 0
    assert_same_events([event_to_dict(e) for e in got], [event_to_dict(e) for e in expected])
    assert {e.type for e in expected} >= {"alarm", "risk", "flood"}


def test_worker_events_equal_evaluate_through_bridge(site: Site) -> None:
    alerts = TopicReader(site.endpoints.kafka_bootstrap, f"{site.prefix}.alerts")
    worker = site.worker("w1").start()
    bridge = site.bridge()
    try:
        wait_until(lambda: worker.health().get("ok"), 60, f"worker ready\n{worker.tail()}")
        bridge.start()
        wait_until(lambda: bridge.alive() and "→" in bridge.tail(), 30, "bridge subscribed")
        gateway = Gateway(site.endpoints, site.mqtt_prefix, site.tmp / "readings.jsonl")
        # Each tank cycles normal → H → HH → normal with its own period: S1 and S2 alarms,
        # colour changes at sources of grade 1 and 3, the enterprise colour, a flood.
        cycle = [10.0, 15.5, 17.5, 10.0]
        for k in range(56):
            gateway.send([cycle[(k // (6 + 3 * i)) % 4] for i in range(len(TAGS))])
            time.sleep(0.25)
        gateway.close()
        expected = site.evaluate(site.tmp / "readings.jsonl")
        assert {e["type"] for e in expected} >= {"alarm", "risk", "flood"}
        assert any(e["type"] == "risk" and e["level"] == "enterprise" for e in expected)
        wait_for_events(alerts, expected, 30, worker)
        # enterprise changes are released one grace period after their time; let later ones in
        wait_until(lambda: time.time_ns() // 1_000_000 > gateway.last_ts + 4000, 6, "grace")
        got = up_to(alerts.distinct(), gateway.last_ts)
        assert_same_events(got, expected)

        n_readings = len(TAGS) * 56
        wait_until(lambda: site.influx_count('SELECT count("v") FROM "reading_v1"') == n_readings,
                   20, "every reading in InfluxDB")  # fmt: skip
        alarms = sum(1 for e in expected if e["type"] == "alarm")
        rows = site.influx_count(
            f'SELECT count("event_id") FROM "alarm_v1" WHERE time <= {gateway.last_ts}ms'
        )
        assert rows == alarms
        metrics = httpx.get(f"http://127.0.0.1:{worker.port}/metrics", timeout=5).text
        accepted = f'hazardwatch_engine_readings_total{{verdict="accepted"}} {n_readings}.0'
        assert accepted in metrics, metrics
        assert "hazardwatch_consumer_lag" in metrics
        assert worker.signal(signal.SIGTERM) == 0
    finally:
        alerts.close()
        bridge.stop()
        worker.stop()


def test_sigkilled_worker_hands_its_partitions_over_with_alarm_state(site: Site) -> None:
    alerts = TopicReader(site.endpoints.kafka_bootstrap, f"{site.prefix}.alerts")
    first, second = site.worker("wa").start(), site.worker("wb").start()
    bridge = site.bridge()
    workers = [first, second]
    owned = {partition(s) for s in SOURCES}
    stop = threading.Event()  # ends the gateway's publishing thread, also when the test fails
    try:

        def shared() -> bool:
            engines = [set(w.health().get("engines") or []) for w in workers]
            return (all(w.health().get("ok") and not w.health().get("rebalancing")
                        for w in workers)
                    and engines[0] | engines[1] == owned and not engines[0] & engines[1]
                    and all(engines))  # fmt: skip

        wait_until(shared, 90, f"two workers sharing the partitions\n{first.tail()}")
        bridge.start()
        wait_until(lambda: bridge.alive() and "→" in bridge.tail(), 30, "bridge subscribed")
        # the tank whose worker dies: SOURCES[0] (grade 1, so HH makes it orange)
        tank, tag = SOURCES[0], TAGS[0]
        victim = next(w for w in workers if partition(tank) in w.health()["engines"])
        survivor = second if victim is first else first
        gateway = Gateway(site.endpoints, site.mqtt_prefix, site.tmp / "readings.jsonl")
        high = threading.Event()

        def stream() -> None:
            while not stop.is_set():
                gateway.send([17.5 if high.is_set() else 10.0, 10.0, 11.0])
                time.sleep(0.2)

        publisher = threading.Thread(target=stream)
        publisher.start()
        time.sleep(1.0)
        high.set()

        def raised() -> bool:
            events = alerts.distinct()
            return any(e.get("tag") == tag and e["condition"] == "HH"
                       and e["state"] == "unacknowledged" for e in events if e["type"] == "alarm"
                       ) and any(e["type"] == "risk" and e["source"] == tank
                                 and e["colour"] == "orange" for e in events)  # fmt: skip

        wait_until(raised, 30, f"HH alarm and orange\n{victim.tail()}")
        victim.signal(signal.SIGKILL)  # mid-stream: the gateway keeps publishing
        killed_at = len(alerts.values)

        restarts: list[str] = []

        def took_over() -> bool:
            assert survivor.proc is not None
            if survivor.proc.poll() == EXIT_RECOVERY_STALLED and not restarts:
                # faust's recovery stalled (watchdog.py): start it again, as a supervisor would
                restarts.append(survivor.tail())
                survivor.start()
                return False
            health = survivor.health()
            return (set(health.get("engines") or []) == owned and not health.get("rebalancing")
                    and partition(tank) in health.get("engines_restored", []))  # fmt: skip

        wait_until(took_over, 90, f"the survivor owning every partition\n{survivor.tail()}")
        if restarts:
            print(f"the survivor's recovery stalled; restarted once. Its log:\n{restarts[0]}")
        # readings published after the takeover are evaluated by the survivor
        sent_after = gateway.seq + 10
        wait_until(lambda: gateway.seq >= sent_after, 10, "more readings")
        stop.set()
        publisher.join()
        gateway.close()
        last = gateway.last_ts
        n_readings = len(TAGS) * gateway.seq
        site.wait_for_readings(n_readings, 30, survivor)

        expected = site.evaluate(site.tmp / "readings.jsonl")
        wait_for_events(alerts, expected, 30, survivor)
        wait_until(lambda: time.time_ns() // 1_000_000 > last + 4000, 6, "grace")
        events = alerts.distinct()
        assert_same_events(up_to(events, last), expected)

        before_kill = {e["id"] for e in alerts.values[:killed_at]}
        tank_events = [e for e in up_to(events, last) if e["source"] == tank]
        hh = [e["state"] for e in tank_events if e.get("condition") == "HH"]
        assert hh == ["unacknowledged"], "the alarm was raised again or cleared"
        colours = [e["colour"] for e in tank_events if e["type"] == "risk"]
        assert colours[-1] == "orange"
        changed = [e for e in tank_events if e["id"] not in before_kill]
        assert changed == [], f"the tank's state changed across the failover: {changed}"

        # the survivor's restored engine takes the acknowledgement for the tank
        site.acknowledge(tag, tank)
        wait_until(lambda: any(e["type"] == "alarm" and e.get("tag") == tag
                               and e["state"] == "acknowledged" for e in alerts.values),
                   20, f"acknowledged alarm\n{survivor.tail()}")  # fmt: skip
        print(f"alerts records {len(alerts.values)}, distinct {len(events)}")
    finally:
        stop.set()
        alerts.close()
        bridge.stop()
        for worker in workers:
            worker.stop()


def test_a_stalled_table_recovery_exits_the_worker_for_a_restart(site: Site) -> None:
    """A committed transaction ends the engine changelog with a commit marker: an offset no record
    fills, so faust's recovery waits for it forever. The watchdog ends the worker with 75 (a
    supervisor restarts it) rather than leave its partitions evaluated by nobody."""
    first = site.worker("wa").start()
    wait_until(lambda: first.health().get("ok"), 60, f"worker up\n{first.tail()}")
    assert first.signal(signal.SIGTERM) == 0
    changelog = WorkerTopics(site.prefix).changelog(ENGINE_TABLE)

    async def commit_a_transaction() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=site.endpoints.kafka_bootstrap,
                                    transactional_id=f"{site.prefix}-stall")  # fmt: skip
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send(changelog, b"not an engine row", key=b"x", partition=0)
        finally:
            await producer.stop()

    asyncio.run(commit_a_transaction())
    site.env["HAZARDWATCH_WORKER__RECOVERY_STALL_S"] = "5"
    stalled = site.worker("wa").start()
    assert stalled.proc is not None
    code = stalled.proc.wait(timeout=120)
    assert code == EXIT_RECOVERY_STALLED, stalled.tail()
    assert "table recovery made no progress for 5 s (1 changelog records left" in stalled.tail()


class TelemetryFeed:
    """The bridge's records of GW1 for every source, straight to Kafka, every ~2 ms (no MQTT:
    the rate and timing of faust's fetches are what matter here)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.sent = 0  # complete rounds: one record per source
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(bootstrap, topic),))
        self._thread.start()

    async def _run(self, bootstrap: str, topic: str) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            while not self._stop.is_set():
                seq, ts = self.sent + 1, time.time_ns() // 1_000_000
                pending = []
                for source, tag in zip(SOURCES, TAGS, strict=True):
                    value = bridge_record(tag, seq, ts, 10.0)
                    pending.append(await producer.send(topic, value, key=source.encode()))
                await asyncio.gather(*pending)
                self.sent = seq
                await asyncio.sleep(0.002)
        finally:
            await producer.stop()

    def stop(self) -> int:
        """Stop; the number of readings sent."""
        self._stop.set()
        self._thread.join(30)
        return self.sent * len(TAGS)


@pytest.mark.timeout(600)
def test_rebalance_churn_loses_no_reading(site: Site) -> None:
    """Workers join and leave (SIGTERM, SIGKILL) while telemetry flows: the first worker keeps some
    partitions over each rebalance, where faust's fetcher has been seen to skip 1 to 140 records
    at a time. The worker reads the skipped offsets back, so every reading is stored."""
    first = site.worker("wa").start()
    wait_until(lambda: first.health().get("ok"), 90, f"first worker\n{first.tail()}")
    feed = TelemetryFeed(site.endpoints.kafka_bootstrap, f"{site.prefix}.telemetry")
    others: list[Worker] = []
    try:
        for i in range(6):
            other = site.worker(f"wb{i}")
            others.append(other)
            other.start()
            wait_until(lambda w=other: w.health().get("ok"), 90, f"worker wb{i}")
            time.sleep(1.5)
            other.signal(signal.SIGKILL if i % 2 else signal.SIGTERM)

            def owns_all() -> bool:
                health = first.health()
                return len(health.get("partitions") or []) == PARTITIONS and not health.get(
                    "rebalancing"
                )

            wait_until(owns_all, 60, f"the first worker owning every partition\n{first.tail()}")
    finally:
        n_readings = feed.stop()
        for other in others:
            other.stop()
    try:
        site.wait_for_readings(n_readings, 60, first)
    finally:
        first.stop()
    skips = first.log.read_text("utf-8").count("faust skipped")
    print(f"{n_readings} readings, 6 rebalances each way, {skips} skips read back")
