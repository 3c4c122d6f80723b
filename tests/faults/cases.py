"""The faults on the embedded runner (`hazardwatch run`) and the helpers every case shares; the
distributed path is in distributed.py, the list of cases in catalogue.py.

Each case starts the real processes, plays the workload, injects its fault at seeded random points,
lets the system recover on its own and returns a FaultReport. Cases never assert: they measure, so
that a failing case still reports every figure.
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
    PrivateMosquitto,
    private_dir,
)
from tests.faults.publisher import GatewayPublisher, PublishResult
from tests.faults.rigs import (
    Case,
    EmbeddedRig,
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


def shared_db(case: Case, endpoints: Endpoints) -> str:
    name = f"hwfault_{case.uid}"
    case.at_exit(
        lambda: httpx.post(
            f"{endpoints.influx_url}/query", params={"q": f'DROP DATABASE "{name}"'}, timeout=10
        )
    )
    return name


def start_workload(
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
    publish_figures(case, workload, published)
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


def publish_figures(case: Case, workload: Workload, published: PublishResult) -> None:
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
    database = f"hwfault_{case.uid}" if influx_url else shared_db(case, endpoints)
    rig = EmbeddedRig(case, mqtt, influx, database, **runner)
    rig.child.start()
    return rig


# -- the cases -------------------------------------------------------------------------------------


def control(case: Case, endpoints: Endpoints) -> None:
    """No fault: the harness itself must find nothing lost."""
    rig = _embedded(case, endpoints)
    workload, publisher, ref = start_workload(case, rig.child.env["HAZARDWATCH_MQTT__URL"])
    _verify_embedded(case, rig, workload, publisher, ref.result())


def runner_sigkill(case: Case, endpoints: Endpoints) -> None:
    """SIGKILL `hazardwatch run` three times at seeded random points; restart it each time."""
    rig = _embedded(case, endpoints)
    workload, publisher, ref = start_workload(case, rig.child.env["HAZARDWATCH_MQTT__URL"])
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
    workload, publisher, ref = start_workload(
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
    workload, publisher, ref = start_workload(case, broker.url)
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
    workload, publisher, ref = start_workload(case, rig.child.env["HAZARDWATCH_MQTT__URL"])
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
    workload, publisher, ref = start_workload(case, rig.child.env["HAZARDWATCH_MQTT__URL"])
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
    workload, publisher, ref = start_workload(case, rig.child.env["HAZARDWATCH_MQTT__URL"])
    point = case.fractions(1, 0.4, 0.45, 0)[0]
    publisher.wait_progress(point)
    influx.stop()
    full_seen = unhealthy_seen = False
    least_free = 2**62
    deadline = time.monotonic() + SPOOL_OUTAGE_S
    while time.monotonic() < deadline:  # the fault itself: InfluxDB down this long
        with contextlib.suppress(httpx.HTTPError):
            health = rig.health()
            # full: the next batch no longer fits (the runner says so), or the fill is a batch
            # or less below the limit
            paused = bool(health.get("spool_full"))
            full_seen |= paused or health.get("spool_fill", 0) >= SPOOL_FULL_FILL
            unhealthy_seen |= paused and not health.get("ok", True)
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
    # A control room's monitoring must see the pause: /healthz fails while input waits.
    case.report.recovery["healthz not ok while input paused"] = unhealthy_seen
    _verify_embedded(case, rig, workload, publisher, ref.result())
