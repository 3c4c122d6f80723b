"""hazardwatch (`hazardwatch run`) against a Node-RED flow on the same workload; JSON on stdout.

    python -m bench.peer.compare [--batched 300000] [--single 20000] [--scan-hz 10]
                                 [--alarm-every-s 0.25] [--only hazardwatch|nodered]

Both systems get the same plant (bench/peer/workload.py), the same limits, the same gateway
messages (same seed, same sequence numbers), the same Mosquitto, InfluxDB 1.8 (each its own
database) and the same webhook receiver, one after the other on an otherwise idle broker:

1. warm-up: one scan per gateway, waited for in InfluxDB;
2. throughput, 100-point batches: `--batched` readings published with QoS 1 as fast as the
   publisher can (bench/bulk_publisher.py: pre-encoded packets, so that the gateway side takes
   little of the CPU the two systems need); readings/s = readings found in InfluxDB / (last
   found − first published);
3. throughput, 1-point messages: the same with `--single` readings;
4. alarm latency: every gateway sends a 100-point scan `--scan-hz` times a second (4,000
   readings/s with 4 gateways at 10 Hz) while, every `--alarm-every-s`, one more hazard source
   gets a tag beyond HH; latency = first webhook naming the source − publish of the scan.

CPU is the process's user + system time from /proc/<pid>/stat over each phase; peak RSS is
VmHWM. Targets: hazardwatch ≥ 2× Node-RED's readings/s (100-point batches) and a lower p99.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.bulk_publisher import BulkPublisher
from bench.peer.flow import flows
from bench.peer.nodered import NodeRed, install
from bench.peer.receiver import Receiver, free_port
from bench.peer.workload import TAGS_PER_SOURCE, Fleet, Plant, policy_yaml
from hazardwatch.plant.loader import load_plant

INFLUX = "http://127.0.0.1:8086"
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883
SECRET_ENV = "HW_BENCH_WEBHOOK_SECRET"
SECRET = "peer-bench-secret"
STALL_S = 30.0  # give up on a phase when InfluxDB's count stops growing this long
TARGETS = {"throughput_ratio": 2.0}


# -- measurement helpers -------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_bytes(pid: int) -> int:
    """VmHWM of process `pid`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


# One client for every query: the throughput phases poll every 50 ms, and a new client per
# call builds an SSL context each time — CPU taken from the system under test on 2 cores.
_influx_http = httpx.Client(base_url=INFLUX, timeout=30)


def influx(q: str, db: str | None = None, method: str = "GET") -> dict[str, Any]:
    params = {"q": q, **({"db": db} if db else {})}
    response = _influx_http.request(method, "/query", params=params)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def count_readings(db: str, measurement: str) -> int:
    series = influx(f'SELECT count("v") FROM "{measurement}"', db)["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def last_reading_ms(db: str, measurement: str) -> int:
    """Time of the newest reading, epoch ms."""
    params = {"q": f'SELECT last("v") FROM "{measurement}"', "db": db, "epoch": "ms"}
    data = _influx_http.get("/query", params=params).json()
    return int(data["results"][0]["series"][0]["values"][0][0])


def quantile(values: list[float], q: float) -> float:
    """Inclusive quantile (`q` in 0…1) of a non-empty list."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


class InfluxProbe:
    """Writes one point every 100 ms to a scratch database and times each write: shows whether
    InfluxDB itself stalled (it is shared) while a latency phase ran."""

    def __init__(self) -> None:
        self.database = f"peer_probe_{uuid.uuid4().hex[:8]}"
        self.latencies: list[float] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=INFLUX, timeout=60) as client:
            client.post("/query", params={"q": f'CREATE DATABASE "{self.database}"'})
            while not self.stop_event.wait(0.1):
                started = time.perf_counter()
                client.post("/write", params={"db": self.database, "precision": "ms"},
                            content=f"probe v=1 {int(time.time() * 1000)}")  # fmt: skip
                self.latencies.append((time.perf_counter() - started) * 1000)
            client.post("/query", params={"q": f'DROP DATABASE "{self.database}"'})

    def __enter__(self) -> InfluxProbe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(30)

    def summary(self) -> dict[str, float | None]:
        values = sorted(self.latencies)
        return {
            "influx_probe_write_p99_ms": round(quantile(values, 0.99), 1) if values else None,
            "influx_probe_write_max_ms": round(values[-1], 1) if values else None,
        }


class MqttProbe:
    """A QoS 1 round trip through Mosquitto every 100 ms: shows whether the shared broker
    itself stalled (e.g. while saving its persistence file) during a latency phase."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.stop_event = threading.Event()
        self.arrived = threading.Event()
        self.topic = f"bench/peer-probe-{uuid.uuid4().hex[:8]}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = lambda *a: self.arrived.set()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop_event.wait(0.1):
            self.arrived.clear()
            started = time.perf_counter()
            self.client.publish(self.topic, b"probe", qos=1)
            self.arrived.wait(30)
            self.latencies.append((time.perf_counter() - started) * 1000)

    def __enter__(self) -> MqttProbe:
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(MQTT_HOST, MQTT_PORT)
        self.client.loop_start()
        self.client.subscribe(self.topic, qos=1)
        subscribed.wait(10)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(35)
        self.client.disconnect()
        self.client.loop_stop()

    def summary(self) -> dict[str, float | None]:
        values = sorted(self.latencies)
        return {
            "mqtt_probe_round_trip_p99_ms": round(quantile(values, 0.99), 1) if values else None,
            "mqtt_probe_round_trip_max_ms": round(values[-1], 1) if values else None,
        }


class Publisher:
    """A gateway-side MQTT client publishing with QoS 1 (v5, like the simulators)."""

    def __init__(self) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"peer-pub-{uuid.uuid4().hex[:8]}",
                                  protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(100)  # Mosquitto's receive maximum here
        self.client.connect(MQTT_HOST, MQTT_PORT)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- the two systems ---------------------------------------------------------------------------
class System(Protocol):
    name: str
    database: str
    measurement: str

    @property
    def pid(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def tail(self) -> str: ...


@dataclass
class Hazardwatch:
    """`hazardwatch run` (the embedded runner) as a child process."""

    work: Path
    prefix: str
    receiver_url: str
    name: str = "hazardwatch"
    measurement: str = "reading_v1"
    database: str = field(default_factory=lambda: f"peer_hw_{uuid.uuid4().hex[:8]}")
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.client_id = f"peer-hw-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        (self.work / "policy.yaml").write_text(policy_yaml(self.receiver_url, SECRET_ENV))
        self.env = {
            **os.environ, SECRET_ENV: SECRET,
            "HAZARDWATCH_PLANT": str(self.work / "plant.yaml"),
            "HAZARDWATCH_POLICY": str(self.work / "policy.yaml"),
            "HAZARDWATCH_DATA_DIR": str(self.work / "hw-data"),
            "HAZARDWATCH_MQTT__URL": f"mqtt://{MQTT_HOST}:{MQTT_PORT}",
            "HAZARDWATCH_MQTT__TOPIC_PREFIX": self.prefix,
            "HAZARDWATCH_MQTT__CLIENT_ID": self.client_id,
            "HAZARDWATCH_INFLUX__URL": INFLUX,
            "HAZARDWATCH_INFLUX__DATABASE": self.database,
            "HAZARDWATCH_HTTP__PORT": str(self.port),
            "HAZARDWATCH_HTTP__API_PORT": str(free_port()),
        }  # fmt: skip
        self.log = self.work / "hazardwatch.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with self.log.open("ab") as log:
            command = [sys.executable, "-m", "hazardwatch.cli", "run"]
            self.proc = subprocess.Popen(command, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hazardwatch run exited {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"hazardwatch run did not become healthy:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        forget_session(self.client_id)

    def tail(self) -> str:
        return self.log.read_text("utf-8", errors="replace")[-4000:]


def forget_session(client_id: str) -> None:
    """Drop the runner's persistent MQTT session so the broker keeps nothing of the bench."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    client.connect(MQTT_HOST, MQTT_PORT, clean_start=True, properties=props)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


@dataclass
class NodeRedSystem:
    """The Node-RED flow of bench/peer/flow.py."""

    work: Path
    prefix: str
    receiver_url: str
    name: str = "nodered"
    measurement: str = "reading"
    database: str = field(default_factory=lambda: f"peer_nr_{uuid.uuid4().hex[:8]}")
    node_red: NodeRed | None = None

    @property
    def pid(self) -> int:
        assert self.node_red is not None
        return self.node_red.pid

    def start(self) -> None:
        influx(f'CREATE DATABASE "{self.database}"', method="POST")
        plant = load_plant(self.work / "plant.yaml")
        flow = flows(plant, topic_filter=f"{self.prefix}/+/+/telemetry",
                     client_id=f"peer-nr-{uuid.uuid4().hex[:8]}", database=self.database,
                     webhook_url=self.receiver_url)  # fmt: skip
        self.node_red = NodeRed(self.work / "nodered", flow, free_port(), {SECRET_ENV: SECRET})
        self.node_red.start()

    def stop(self) -> None:
        if self.node_red is not None:
            self.node_red.stop()

    def tail(self) -> str:
        return self.node_red.tail() if self.node_red is not None else ""


# -- phases ------------------------------------------------------------------------------------
@dataclass
class Run:
    """One system under test with its fleet, publisher and receiver."""

    system: System
    fleet: Fleet
    publisher: Publisher
    receiver: Receiver
    baseline: int = 0  # readings in InfluxDB before the current phase

    def wait_for(self, total: int, started: float) -> tuple[int, float]:
        """Poll InfluxDB until `total` readings are found; (found, seconds since `started`)."""
        found, last_growth, last_found = 0, time.monotonic(), -1
        while True:
            found = count_readings(self.system.database, self.system.measurement)
            now = time.monotonic()
            if found >= total:
                return found, time.perf_counter() - started
            if found != last_found:
                last_found, last_growth = found, now
            elif now - last_growth > STALL_S:
                return found, time.perf_counter() - started
            time.sleep(0.05)

    def throughput(self, points: int, readings: int) -> dict[str, Any]:
        """Publish `readings` as `points`-point messages; measure until all are in InfluxDB."""
        messages = self.fleet.backlog(points, readings, int(time.time() * 1000))
        sent = len(messages) * points
        bulk = BulkPublisher(MQTT_HOST, MQTT_PORT, "peer-bulk")
        packets = bulk.encode(messages)
        cpu0 = cpu_seconds(self.system.pid)
        started = time.perf_counter()
        try:
            bulk.send(packets)
        finally:
            bulk.close()
        publish_s = time.perf_counter() - started
        found, elapsed = self.wait_for(self.baseline + sent, started)
        cpu = cpu_seconds(self.system.pid) - cpu0
        found -= self.baseline
        self.baseline += found
        return {
            "points_per_message": points, "messages": len(messages), "published": sent,
            "found_in_influx": found, "lost": sent - found, "elapsed_s": round(elapsed, 3),
            "readings_per_s": round(found / elapsed), "cpu_s": round(cpu, 2),
            "cpu_ms_per_1k_readings": round(cpu * 1e6 / max(found, 1), 3),
            "publisher_readings_per_s": round(sent / publish_s),
            # the gateway side shares the CPUs: near its rate, the figure measures the publisher
            "bounded_by_publisher": found / elapsed >= 0.9 * sent / publish_s,
        }  # fmt: skip

    def warm_up(self) -> None:
        """Scans until readings show up in InfluxDB, then until the count settles: the system
        is subscribed and writing (scans sent before it subscribed are simply not counted)."""
        deadline = time.monotonic() + 60
        found = 0
        while found == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.system.name}: no reading reached InfluxDB in 60 s")
            for _gw, topic, body in self.fleet.scans(set(), int(time.time() * 1000)):
                self.publisher.publish(topic, body).wait_for_publish(10)
            time.sleep(0.5)
            found = count_readings(self.system.database, self.system.measurement)
        while True:
            time.sleep(1.0)
            settled = count_readings(self.system.database, self.system.measurement)
            if settled == found:
                break
            found = settled
        self.baseline = found
        latest = last_reading_ms(self.system.database, self.system.measurement)
        if abs(latest - time.time() * 1000) > 600_000:  # e.g. ms written as ns: 1970
            raise RuntimeError(f"{self.system.name}: readings stored at {latest} ms, not now")

    def latency(self, scan_hz: float, alarm_every_s: float, sources: int) -> dict[str, Any]:
        """Paced scans with one more source in alarm every `alarm_every_s`; webhook latency."""
        plant = self.fleet.plant
        order = plant.sources()[:sources]
        first_tag = {s: plant.tag_id(i * TAGS_PER_SOURCE) for i, s in enumerate(plant.sources())}
        gateway_of = {first_tag[s]: plant.gateway_ids()[i * TAGS_PER_SOURCE // 100]
                      for i, s in enumerate(plant.sources())}  # fmt: skip
        self.receiver.reset()
        alarmed: set[str] = set()
        published: dict[str, float] = {}  # source → epoch ms of the scan carrying its alarm
        pending: dict[str, str] = {}  # gateway → source whose first alarm it carries next
        period = 1.0 / scan_hz
        ticks_per_alarm = max(1, round(alarm_every_s * scan_hz))
        cpu0 = cpu_seconds(self.system.pid)
        start = time.perf_counter()
        tick = readings = 0
        infos = []
        while len(published) < len(order) or tick % ticks_per_alarm:
            if tick % ticks_per_alarm == 0 and len(alarmed) < len(order):
                source = order[len(alarmed)]
                alarmed.add(first_tag[source])
                pending[gateway_of[first_tag[source]]] = source
            now_ms = int(time.time() * 1000)
            for gateway, topic, body in self.fleet.scans(alarmed, now_ms):
                if gateway in pending:
                    published[pending.pop(gateway)] = time.time() * 1000
                infos.append(self.publisher.publish(topic, body))
                readings += 100
            tick += 1
            time.sleep(max(0.0, start + tick * period - time.perf_counter()))
        for info in infos:
            info.wait_for_publish(60)
        duration = time.perf_counter() - start
        deadline = time.monotonic() + 30
        stats = self.receiver.stats()
        while len(set(published) & set(stats["first_ms"])) < len(published):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
            stats = self.receiver.stats()
        cpu = cpu_seconds(self.system.pid) - cpu0
        latencies = sorted(stats["first_ms"][s] - t for s, t in published.items()
                           if s in stats["first_ms"])  # fmt: skip
        self.baseline = count_readings(self.system.database, self.system.measurement)
        return {
            "background_readings_per_s": round(readings / duration),
            "alarms": len(published), "alarms_notified": len(latencies),
            "notifications": stats["notifications"], "bad_signatures": stats["bad_signature"],
            "p50_ms": round(quantile(latencies, 0.5), 1) if latencies else None,
            "p99_ms": round(quantile(latencies, 0.99), 1) if latencies else None,
            "max_ms": round(latencies[-1], 1) if latencies else None,
            "cpu_s": round(cpu, 2), "duration_s": round(duration, 2),
            "latencies_ms_in_alarm_order": [
                round(stats["first_ms"][s] - published[s], 1) if s in stats["first_ms"] else None
                for s in order if s in published
            ],
        }  # fmt: skip


def measure(system_factory: Callable[[Path, str, str], System], work: Path, plant: Plant,
            receiver: Receiver, args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """All phases for one system; its database and MQTT session are removed afterwards."""
    prefix = f"bench/peer-{uuid.uuid4().hex[:8]}"
    system = system_factory(work, prefix, receiver.url)
    publisher = Publisher()
    try:
        system.start()
        run = Run(system, Fleet(plant, prefix), publisher, receiver)
        run.warm_up()
        result: dict[str, Any] = {
            "batched": run.throughput(100, args.batched),
            "single_point": run.throughput(1, args.single),
        }
        alarm_sources = args.alarm_sources or len(plant.sources())
        with InfluxProbe() as influx_probe, MqttProbe() as mqtt_probe:
            result["latency"] = run.latency(args.scan_hz, args.alarm_every_s, alarm_sources)
        result["latency"].update(influx_probe.summary() | mqtt_probe.summary())
        if result["latency"]["alarms_notified"] < result["latency"]["alarms"]:
            result["log_tail"] = system.tail()  # evidence for the missing notifications
        result["peak_rss_bytes"] = peak_rss_bytes(system.pid)
        return result
    finally:
        publisher.close()
        system.stop()
        influx(f'DROP DATABASE "{system.database}"', method="POST")


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One result of the same shape from several rounds: numbers → median, flags → any
    (a bounded round is not hidden), lists → concatenated, text → kept once; plus the headline
    figures of each round in `per_round`, to show the spread."""
    merged: dict[str, Any] = _merge(rounds)
    if len(rounds) > 1:
        merged["per_round"] = [{
            "readings_per_s": r["batched"]["readings_per_s"],
            "single_point_readings_per_s": r["single_point"]["readings_per_s"],
            "p99_ms": r["latency"]["p99_ms"],
        } for r in rounds]  # fmt: skip
    return merged


def _merge(rounds: list[Any]) -> Any:
    present = [v for v in rounds if v is not None]
    if not present:
        return None
    first = present[0]
    if isinstance(first, dict):
        keys = dict.fromkeys(k for r in present for k in r)
        return {key: _merge([r.get(key) for r in present]) for key in keys}
    if isinstance(first, bool):
        return any(present)
    numbers: list[float] = [v for v in present if isinstance(v, int | float)]
    if len(numbers) == len(present):  # a round without the figure (None) is left out
        median = statistics.median(numbers)
        return round(median, 3) if isinstance(median, float) else median
    if isinstance(first, list):
        return [x for v in present for x in v]
    return first


def summary(detail: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The flat keys bench/run_all reads, from the per-system details."""
    out: dict[str, Any] = {}
    for name, d in detail.items():
        out[f"{name}_readings_per_s"] = d["batched"]["readings_per_s"]
        out[f"{name}_single_point_readings_per_s"] = d["single_point"]["readings_per_s"]
        out[f"{name}_single_point_bounded_by_publisher"] = d["single_point"]["bounded_by_publisher"]
        out[f"{name}_p50_ms"] = d["latency"]["p50_ms"]
        out[f"{name}_p99_ms"] = d["latency"]["p99_ms"]
        out[f"{name}_cpu_s"] = d["batched"]["cpu_s"]
        out[f"{name}_cpu_ms_per_1k_readings"] = d["batched"]["cpu_ms_per_1k_readings"]
        out[f"{name}_single_point_cpu_ms_per_1k_readings"] = d["single_point"][
            "cpu_ms_per_1k_readings"
        ]
        out[f"{name}_latency_phase_cpu_s"] = d["latency"]["cpu_s"]
        out[f"{name}_broker_round_trip_max_ms"] = d["latency"]["mqtt_probe_round_trip_max_ms"]
        out[f"{name}_peak_rss_bytes"] = d["peak_rss_bytes"]
        out[f"{name}_lost_readings"] = d["batched"]["lost"] + d["single_point"]["lost"]
    if "hazardwatch" in detail and "nodered" in detail:
        hw, nr = out["hazardwatch_readings_per_s"], out["nodered_readings_per_s"]
        out["throughput_ratio"] = round(hw / nr, 2) if nr else None
        out["single_point_throughput_ratio"] = round(
            out["hazardwatch_single_point_readings_per_s"]
            / max(out["nodered_single_point_readings_per_s"], 1),
            2,
        )
        hp, npct = out["hazardwatch_p99_ms"], out["nodered_p99_ms"]
        out["met"] = {
            "throughput_2x": out["throughput_ratio"] is not None
            and out["throughput_ratio"] >= TARGETS["throughput_ratio"],
            "lower_p99": hp is not None and (npct is None or hp < npct),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print one JSON object."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batched", type=int, default=300_000, help="readings in 100-pt msgs")
    parser.add_argument("--single", type=int, default=20_000, help="readings in 1-pt msgs")
    parser.add_argument("--scan-hz", type=float, default=10.0)
    parser.add_argument("--alarm-every-s", type=float, default=0.25)
    parser.add_argument("--alarm-sources", type=int, default=0, help="0 = every source (80)")
    parser.add_argument("--gateways", type=int, default=4)
    parser.add_argument("--only", choices=["hazardwatch", "nodered"])
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat, alternating the order; figures are medians")  # fmt: skip
    args = parser.parse_args(argv)
    versions: dict[str, str] = {"node": "", "python": platform.python_version()}
    systems: dict[str, Callable[[Path, str, str], System]] = {
        "hazardwatch": Hazardwatch,
        "nodered": lambda w, p, u: NodeRedSystem(w, p, u),
    }
    if args.only:
        systems = {args.only: systems[args.only]}
    if "nodered" in systems:
        versions.update(install())
        node = shutil.which("node")
        versions["node"] = subprocess.run([node or "node", "--version"], capture_output=True,
                                          text=True).stdout.strip()  # fmt: skip
    plant = Plant(gateways=args.gateways)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    with tempfile.TemporaryDirectory(prefix="hw-peer-") as tmp, Receiver(SECRET) as receiver:
        for r in range(args.rounds):
            # Alternate who goes first, so neither always meets the busier moment.
            for name in list(systems)[:: 1 if r % 2 == 0 else -1]:
                work = Path(tmp) / f"{name}-{r}"
                work.mkdir()
                (work / "plant.yaml").write_text(plant.yaml(), "utf-8")
                runs[name].append(measure(systems[name], work, plant, receiver, args))
    detail = {name: merge_rounds(results) for name, results in runs.items()}
    report = {
        **summary(detail),
        "targets": {"throughput_ratio": TARGETS["throughput_ratio"], "p99": "hazardwatch lower"},
        "workload": {
            "plant": f"{args.gateways} gateways × 100 temperature tags, 5 tags per hazard "
            "source, limits L 5 / H 60 / HH 80 °C, deadband 1, no on/off delay",
            "batched_readings": args.batched,
            "single_point_readings": args.single,
            "latency_scan_hz": args.scan_hz,
            "alarm_every_s": args.alarm_every_s,
            "qos": 1,
            "influxdb": "1.8, one database per system, ms precision",
            "rounds": args.rounds,
        },
        "versions": versions,
        "detail": detail,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
