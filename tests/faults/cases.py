"""The faults: each case starts the real processes, plays the workload, injects its fault at
seeded random points, lets the system recover on its own and returns a FaultReport.

Cases never assert: they measure, so that a failing case still reports every figure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.faults.figures import alerts_complete, compare_alerts, compare_readings
from tests.faults.private_services import (
    PrivateInflux,
    PrivateKafka,
    PrivateMosquitto,
    private_dir,
)
from tests.faults.publisher import GatewayPublisher, PublishResult
from tests.faults.rigs import (
    AlertsRig,
    BridgeRig,
    Case,
    EmbeddedRig,
    EventFeeder,
    WorkerRig,
    create_topic,
    delete_topics,
    stored_readings,
    telemetry_in_kafka,
)
from tests.faults.workload import Reference, Workload, build_workload, reference
from tests.processes import wait_until
from tests.services import Endpoints

RECEIVER_DOWN_S = 120.0
INFLUX_DOWN_S = 60.0
SPOOL_OUTAGE_S = 30.0
SPOOL_FULL_FILL = 0.9
REALTIME_S = 150.0  # the yellow raise, orange update and blue alarm notices, in real time


def settle(check: Callable[[], Any], timeout: float) -> bool:
    """Like wait_until, but returns False on timeout and treats HTTP errors as "not yet"."""

    def safe() -> Any:
        try:
            return check()
        except (httpx.HTTPError, OSError):
            return False

    try:
        wait_until(safe, timeout, every=0.5)
        return True
    except AssertionError:
        return False


def background(fn: Callable[[], Any]) -> Future[Any]:
    """Run `fn` on its own thread; the future holds its result."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future


def _shared_db(case: Case, endpoints: Endpoints) -> str:
    name = f"hwfault_{case.uid}"
    case.at_exit(
        lambda: httpx.post(
            f"{endpoints.influx_url}/query", params={"q": f'DROP DATABASE "{name}"'}, timeout=10
        )
    )
    return name


def _start_workload(
    case: Case, mqtt_url: str, **shape: float
) -> tuple[Workload, GatewayPublisher, Future[Any]]:
    workload = build_workload(case.prefix, **shape)
    publisher = GatewayPublisher(workload, mqtt_url, f"gw-{case.uid}")
    case.at_exit(publisher.close)
    ref = background(lambda: reference(workload, case.policy, case.workdir / "reference"))
    publisher.start()
    return workload, publisher, ref


def _verify_embedded(
    case: Case,
    rig: EmbeddedRig,
    workload: Workload,
    publisher: GatewayPublisher,
    ref: Reference,
    alerts_timeout: float = 120.0,
) -> None:
    published = publisher.join()
    _publish_figures(case, workload, published)
    start, end = workload.start_ms, workload.end_ms
    settle(lambda: rig.stored_readings(start, end) == dict(published.readings), 120)
    case.report.readings = compare_readings(
        "influxdb", published.readings, rig.stored_readings(start, end)
    )
    settle(
        lambda: (
            alerts_complete(ref.notices, case.receiver.log) and rig.notifications("pending") == 0
        ),
        alerts_timeout,
    )
    case.report.alerts = compare_alerts(ref.notices, case.receiver.log)
    metrics = rig.metrics()
    case.report.figures.update(
        engine_late=metrics.get('hazardwatch_engine_readings{verdict="late"}', 0),
        engine_duplicate=metrics.get('hazardwatch_engine_readings{verdict="duplicate"}', 0),
        lines_spooled=metrics.get('hazardwatch_influx_lines{outcome="spooled"}', 0),
        lines_replayed=metrics.get('hazardwatch_influx_lines{outcome="replayed"}', 0),
        runner_kills=rig.child.kills,
        events_expected=len(ref.events),
    )
    health = rig.health()
    case.report.recovery.update(
        {
            "healthz ok": bool(health.get("ok")),
            "spool empty": health.get("spool_fill") == 0,
            "outbox drained": rig.notifications("pending") == 0 and rig.notifications("dead") == 0,
        }
    )
    probe_ms = publisher.probe()
    points = sum(len(v) for _, _, v in workload.last_points.values())
    case.report.recovery["new readings flow"] = settle(
        lambda: sum(rig.stored_readings(probe_ms, probe_ms + 1000).values()) == points, 60
    )


def _publish_figures(case: Case, workload: Workload, published: PublishResult) -> None:
    case.report.figures.update(
        messages_published=published.messages,
        messages_unacknowledged=published.unacknowledged,
        readings_in_workload=sum(workload.readings.values()),
        publish_wall_s=round(published.wall_s),
    )


def _embedded(
    case: Case,
    endpoints: Endpoints,
    mqtt_url: str | None = None,
    influx_url: str | None = None,
    **runner: str,
) -> EmbeddedRig:
    mqtt = mqtt_url or f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}"
    influx = influx_url or endpoints.influx_url
    database = f"hwfault_{case.uid}" if influx_url else _shared_db(case, endpoints)
    rig = EmbeddedRig(case, mqtt, influx, database, **runner)
    rig.child.start()
    return rig


# -- the cases -------------------------------------------------------------------------------------


def control(case: Case, endpoints: Endpoints) -> None:
    """No fault: the harness itself must find nothing lost."""
    rig = _embedded(case, endpoints)
    workload, publisher, ref = _start_workload(case, rig.child.env["HAZARDWATCH_MQTT__URL"])
    _verify_embedded(case, rig, workload, publisher, ref.result())


def runner_sigkill(case: Case, endpoints: Endpoints) -> None:
    """SIGKILL `hazardwatch run` three times at seeded random points; restart it each time."""
    rig = _embedded(case, endpoints)
    workload, publisher, ref = _start_workload(case, rig.child.env["HAZARDWATCH_MQTT__URL"])
    points = case.fractions(3, 0.1, 0.85, 0.12)
    case.report.figures["kill_at_fraction"] = [round(p, 3) for p in points]
    for point in points:
        publisher.wait_progress(point)
        rig.child.kill()
        rig.child.start()
    _verify_embedded(case, rig, workload, publisher, ref.result())


def runner_sigkill_realtime(case: Case, endpoints: Endpoints) -> None:
    """SIGKILL `hazardwatch run` twice while gateways publish in real time (no acceleration)."""
    rig = _embedded(case, endpoints)
    workload, publisher, ref = _start_workload(
        case, rig.child.env["HAZARDWATCH_MQTT__URL"], speed=1.0, duration_s=REALTIME_S
    )
    points = case.fractions(2, 0.2, 0.8, 0.25)
    case.report.figures["kill_at_fraction"] = [round(p, 3) for p in points]
    for point in points:
        publisher.wait_progress(point)
        rig.child.kill()
        rig.child.start()
    _verify_embedded(case, rig, workload, publisher, ref.result())


def mosquitto_restart(case: Case, endpoints: Endpoints) -> None:
    """Restart a private Mosquitto (SIGTERM, 3 s down, start) under runner and gateways."""
    broker = PrivateMosquitto(private_dir("mosquitto"))
    case.at_exit(broker.close)
    broker.start()
    rig = _embedded(case, endpoints, mqtt_url=broker.url)
    workload, publisher, ref = _start_workload(case, broker.url)
    point = case.fractions(1, 0.25, 0.6, 0)[0]
    case.report.figures["restart_at_fraction"] = round(point, 3)
    publisher.wait_progress(point)
    broker.restart(down_s=3.0)
    _verify_embedded(case, rig, workload, publisher, ref.result())


def influx_down(case: Case, endpoints: Endpoints) -> None:
    """Stop a private InfluxDB for 60 s mid-run (covers issue 5's 30 s case), then start it."""
    influx = PrivateInflux(private_dir("influxdb"))
    case.at_exit(influx.close)
    influx.start()
    rig = _embedded(case, endpoints, influx_url=influx.url)
    workload, publisher, ref = _start_workload(case, rig.child.env["HAZARDWATCH_MQTT__URL"])
    point = case.fractions(1, 0.1, 0.3, 0)[0]
    case.report.figures["stop_at_fraction"] = round(point, 3)
    publisher.wait_progress(point)
    influx.stop()
    time.sleep(INFLUX_DOWN_S)  # the fault itself: InfluxDB stays down this long
    case.report.figures["healthz_during_outage"] = rig.health()
    influx.start()
    _verify_embedded(case, rig, workload, publisher, ref.result())
    spooled = case.report.figures["lines_spooled"]
    case.report.recovery["fault took effect (lines spooled)"] = bool(spooled)


def receiver_down(case: Case, endpoints: Endpoints) -> None:
    """The webhook receiver refuses connections for 2 min while alerts are raised."""
    rig = _embedded(case, endpoints)
    workload, publisher, ref = _start_workload(case, rig.child.env["HAZARDWATCH_MQTT__URL"])
    point = case.fractions(1, 0.05, 0.12, 0)[0]
    publisher.wait_progress(point)
    case.receiver.down()
    time.sleep(RECEIVER_DOWN_S)  # the fault itself: the receiver stays down this long
    queued = rig.notifications("pending")
    case.report.figures["queued_during_outage"] = queued
    case.report.recovery["fault took effect (alerts queued)"] = queued > 0
    case.receiver.up()
    # Backoff doubles from 2 s (jitter shortens it by up to half): after 2 min of failures a
    # notification's next attempt is at most one step (≤ 128 s) after the receiver's return.
    _verify_embedded(case, rig, workload, publisher, ref.result(), alerts_timeout=200)


def spool_limit(case: Case, endpoints: Endpoints) -> None:
    """InfluxDB down for 30 s with a 12 KiB spool: the spool fills, ingest holds back."""
    _spool_case(case, endpoints, tmpfs=False)


def spool_disk_full(case: Case, endpoints: Endpoints) -> None:
    """The spool's file system runs out of space (64 KiB tmpfs) while InfluxDB is down."""
    _spool_case(case, endpoints, tmpfs=True)


def tmpfs_available() -> bool:
    """True when this process may mount a tmpfs (root with CAP_SYS_ADMIN), probed once."""
    global _TMPFS
    if _TMPFS is None:
        _TMPFS = False
        if os.geteuid() == 0 and shutil.which("mount"):
            probe = Path(tempfile.mkdtemp(prefix="hw-fault-tmpfs-probe-"))
            mounted = (
                subprocess.run(
                    ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                    capture_output=True,
                ).returncode
                == 0
            )
            if mounted:
                subprocess.run(["umount", str(probe)], check=True)
            probe.rmdir()
            _TMPFS = mounted
    return _TMPFS


_TMPFS: bool | None = None


def _mount_tmpfs(case: Case, path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if not tmpfs_available():
        return False
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    case.at_exit(lambda: subprocess.run(["umount", "-l", str(path)], check=False))
    return True


def _spool_case(case: Case, endpoints: Endpoints, tmpfs: bool) -> None:
    influx = PrivateInflux(private_dir("influxdb"))
    case.at_exit(influx.close)
    influx.start()
    spool_dir = case.workdir / "data" / "spool"
    runner: dict[str, str] = {}
    if tmpfs and _mount_tmpfs(case, spool_dir, "64k"):
        case.report.figures["spool_medium"] = "tmpfs 64 KiB (real ENOSPC)"
    else:
        runner["spool_max_bytes"] = "12288"
        case.report.figures["spool_medium"] = "spool_max_bytes 12 KiB"
        if tmpfs:
            case.report.notes.append("no tmpfs here: disk full emulated by the spool byte limit")
    rig = _embedded(case, endpoints, influx_url=influx.url, **runner)
    workload, publisher, ref = _start_workload(case, rig.child.env["HAZARDWATCH_MQTT__URL"])
    point = case.fractions(1, 0.4, 0.45, 0)[0]
    publisher.wait_progress(point)
    influx.stop()
    full_seen = unhealthy_seen = False
    least_free = 2**62
    deadline = time.monotonic() + SPOOL_OUTAGE_S
    while time.monotonic() < deadline:  # the fault itself: InfluxDB down this long
        with contextlib.suppress(httpx.HTTPError):
            health = rig.health()
            # full: the next batch no longer fits, a batch or less below the limit
            full_seen |= health.get("spool_fill", 0) >= SPOOL_FULL_FILL
            unhealthy_seen |= not health.get("ok", True)
        stat = os.statvfs(spool_dir)
        least_free = min(least_free, stat.f_bavail * stat.f_frsize)
        time.sleep(0.5)
    influx.start()
    case.report.figures.update(
        spool_full_seen=full_seen,
        healthz_not_ok_seen=unhealthy_seen,
        spool_fs_least_free_bytes=least_free,
    )
    case.report.recovery["fault took effect (spool full)"] = full_seen or least_free < 4096
    _verify_embedded(case, rig, workload, publisher, ref.result())


def bridge_sigkill(case: Case, endpoints: Endpoints) -> None:
    """SIGKILL `hazardwatch bridge` three times; every reading must still reach Kafka."""
    mqtt_url = f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}"
    topics = f"hwfault_{case.uid}.v1"
    case.at_exit(lambda: delete_topics(endpoints.kafka_bootstrap, topics))
    bridge = BridgeRig(case, mqtt_url, endpoints.kafka_bootstrap, topics)
    bridge.child.start()
    workload, publisher, _ref = _start_workload(case, mqtt_url)
    points = case.fractions(3, 0.1, 0.85, 0.12)
    case.report.figures["kill_at_fraction"] = [round(p, 3) for p in points]
    for point in points:
        publisher.wait_progress(point)
        bridge.child.kill()
        bridge.child.start()
    _verify_kafka_readings(case, endpoints.kafka_bootstrap, bridge, workload, publisher)
    case.report.notes.append(
        "the bridge carries readings only: alerts are checked in the "
        "worker and alert-dispatcher cases"
    )


def _verify_kafka_readings(
    case: Case, bootstrap: str, bridge: BridgeRig, workload: Workload, publisher: GatewayPublisher
) -> None:
    published = publisher.join()
    _publish_figures(case, workload, published)
    settle(lambda: telemetry_in_kafka(bootstrap, bridge.topic)[0] == dict(published.readings), 120)
    found, copies = telemetry_in_kafka(bootstrap, bridge.topic)
    case.report.readings = compare_readings("kafka", published.readings, found, copies)
    case.report.recovery["bridge running"] = bridge.child.alive()
    before = sum(found.values())
    publisher.probe()
    points = sum(len(v) for _, _, v in workload.last_points.values())
    case.report.recovery["new readings flow"] = settle(
        lambda: sum(telemetry_in_kafka(bootstrap, bridge.topic)[0].values()) == before + points,
        60,
    )


def alerts_sigkill(case: Case, endpoints: Endpoints) -> None:
    """SIGKILL `hazardwatch alerts serve` three times while a webhook request is in flight."""
    topics = f"hwfault_{case.uid}.v1"
    bootstrap = endpoints.kafka_bootstrap
    case.at_exit(lambda: delete_topics(bootstrap, topics))
    create_topic(bootstrap, f"{topics}.alerts")
    alerts = AlertsRig(case, bootstrap, topics)
    alerts.child.start()
    workload = build_workload(case.prefix)
    ref = reference(workload, case.policy, case.workdir / "reference")
    feeder = EventFeeder(
        bootstrap, f"{topics}.alerts", list(ref.events), workload.start_ms, workload.speed
    )
    started = time.monotonic()
    feeder.start(started)
    points = case.fractions(3, 0.15, 0.85, 0.15)
    in_flight_at_kill = 0
    for point in points:
        time.sleep(max(0.0, started + point * workload.wall_duration_s - time.monotonic()))
        if settle(lambda: case.receiver.log.in_flight > 0, 30):
            time.sleep(case.rng.uniform(0, 0.8 * case.receiver.answer_delay_s))
            in_flight_at_kill += case.receiver.log.in_flight > 0
        alerts.child.kill()
        alerts.child.start()
    feeder.join()
    case.report.figures.update(
        kill_at_fraction=[round(p, 3) for p in points],
        kills_with_request_in_flight=in_flight_at_kill,
        events_expected=len(ref.events),
        events_sent=feeder.sent,
    )
    settle(
        lambda: (
            alerts_complete(ref.notices, case.receiver.log)
            and alerts.outbox().get("pending", 0) == 0
        ),
        180,
    )
    case.report.alerts = compare_alerts(ref.notices, case.receiver.log)
    outbox = alerts.outbox()
    case.report.recovery.update(
        {
            "dispatcher running": alerts.child.alive(),
            "outbox drained": outbox.get("pending", 0) == 0 and outbox.get("dead", 0) == 0,
            "delivered in flight at a kill": in_flight_at_kill > 0,
        }
    )
    case.report.notes.append("no readings path: events come from Kafka as the workers write them")


def kafka_restart(case: Case, endpoints: Endpoints) -> None:
    """Restart a private Kafka broker under the bridge and the alert dispatcher."""
    kafka = PrivateKafka(private_dir("kafka"))
    case.at_exit(kafka.close)
    kafka.start()
    topics = f"hwfault_{case.uid}.v1"
    create_topic(kafka.bootstrap, f"{topics}.alerts")
    create_topic(kafka.bootstrap, f"{topics}.telemetry", partitions=4)
    mqtt_url = f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}"
    bridge = BridgeRig(case, mqtt_url, kafka.bootstrap, topics)
    bridge.child.start()
    alerts = AlertsRig(case, kafka.bootstrap, topics)
    alerts.child.start()
    workload, publisher, ref_future = _start_workload(case, mqtt_url)
    ref = ref_future.result()
    feeder = EventFeeder(
        kafka.bootstrap, f"{topics}.alerts", list(ref.events), workload.start_ms, workload.speed
    )
    feeder.start(publisher.started)
    point = case.fractions(1, 0.3, 0.6, 0)[0]
    case.report.figures["restart_at_fraction"] = round(point, 3)
    publisher.wait_progress(point)
    kafka.restart(down_s=5.0)
    feeder.join()
    case.report.figures["feeder_retries"] = feeder.retries
    _verify_kafka_readings(case, kafka.bootstrap, bridge, workload, publisher)
    settle(
        lambda: (
            alerts_complete(ref.notices, case.receiver.log)
            and alerts.outbox().get("pending", 0) == 0
        ),
        180,
    )
    case.report.alerts = compare_alerts(ref.notices, case.receiver.log)
    outbox = alerts.outbox()
    case.report.recovery.update(
        {
            "dispatcher running": alerts.child.alive(),
            "outbox drained": outbox.get("pending", 0) == 0 and outbox.get("dead", 0) == 0,
        }
    )


def worker_sigkill(case: Case, endpoints: Endpoints) -> None:
    """Two faust workers share the partitions; SIGKILL one at a time at seeded random points."""
    mqtt_url = f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}"
    bootstrap = endpoints.kafka_bootstrap
    topics = f"hwfault_{case.uid}.v1"
    case.at_exit(lambda: delete_topics(bootstrap, topics))
    database = _shared_db(case, endpoints)
    workers = [WorkerRig(case, bootstrap, topics, endpoints.influx_url, database, f"w{i}")
               for i in (1, 2)]  # fmt: skip
    for worker in workers:  # the first creates the topics
        worker.child.start(timeout=120)
    alerts = AlertsRig(case, bootstrap, topics)
    alerts.child.start()
    bridge = BridgeRig(case, mqtt_url, bootstrap, topics)
    bridge.child.start()
    workload, publisher, ref_future = _start_workload(case, mqtt_url)
    points = case.fractions(2, 0.15, 0.8, 0.25)
    killed = []
    for point in points:
        publisher.wait_progress(point)
        # The worker evaluating the plant's partition is the one whose death matters.
        busy = [w for w in workers if w.health().get("engines")]
        victim = busy[0] if busy else case.rng.choice(workers)
        killed.append(f"{victim.child.args[-1]} (engines {victim.health().get('engines')})")
        victim.child.kill()
        victim.child.start(timeout=120)
    case.report.figures.update(kill_at_fraction=[round(p, 3) for p in points], killed=killed)
    case.report.recovery["fault took effect (busy worker killed)"] = any(
        "engines []" not in k for k in killed
    )
    published = publisher.join()
    _publish_figures(case, workload, published)
    ref = ref_future.result()
    start, end = workload.start_ms, workload.end_ms
    influx = endpoints.influx_url

    def stored() -> dict[str, int]:
        return stored_readings(influx, database, start, end)

    settle(lambda: stored() == dict(published.readings), 120)
    case.report.readings = compare_readings("influxdb", published.readings, stored())
    settle(lambda: alerts_complete(ref.notices, case.receiver.log)
           and alerts.outbox().get("pending", 0) == 0, 180)  # fmt: skip
    case.report.alerts = compare_alerts(ref.notices, case.receiver.log)
    outbox = alerts.outbox()
    health = [w.health() for w in workers]
    case.report.figures["events_expected"] = len(ref.events)
    case.report.recovery.update({
        "workers healthy": all(h.get("ok") for h in health),
        "spools empty": all(h.get("spool_fill") == 0 for h in health),
        "outbox drained": outbox.get("pending", 0) == 0 and outbox.get("dead", 0) == 0,
        "bridge running": bridge.child.alive(),
    })  # fmt: skip
    probe_ms = publisher.probe()
    points_n = sum(len(v) for _, _, v in workload.last_points.values())
    case.report.recovery["new readings flow"] = settle(
        lambda: (
            sum(stored_readings(influx, database, probe_ms, probe_ms + 1000).values()) == points_n
        ),
        60,
    )


CASES: dict[str, Callable[[Case, Endpoints], None]] = {
    "control": control,
    "runner-sigkill": runner_sigkill,
    "runner-sigkill-realtime": runner_sigkill_realtime,
    "bridge-sigkill": bridge_sigkill,
    "alerts-sigkill": alerts_sigkill,
    "mosquitto-restart": mosquitto_restart,
    "kafka-restart": kafka_restart,
    "influx-down-60s": influx_down,
    "receiver-down-120s": receiver_down,
    "spool-limit": spool_limit,
    "spool-disk-full": spool_disk_full,
    "worker-sigkill": worker_sigkill,
}

FAULTS = {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in CASES.items()}
