"""Faults of the distributed path: bridge, faust workers and the alert dispatcher on Kafka.

Like the embedded cases (cases.py), each measures and never asserts.
"""

from __future__ import annotations

import time

from tests.faults.cases import publish_figures, settle, shared_db, start_workload
from tests.faults.figures import alerts_complete, compare_alerts, compare_readings
from tests.faults.private_services import PrivateKafka, private_dir
from tests.faults.publisher import GatewayPublisher
from tests.faults.rigs import (
    AlertsRig,
    BridgeRig,
    Case,
    EventFeeder,
    WorkerRig,
    create_topic,
    delete_topics,
    stored_readings,
    telemetry_in_kafka,
)
from tests.faults.workload import Workload, build_workload, reference
from tests.services import Endpoints


def bridge_sigkill(case: Case, endpoints: Endpoints) -> None:
    """SIGKILL `hazardwatch bridge` three times; every reading must still reach Kafka."""
    mqtt_url = f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}"
    topics = f"hwfault_{case.uid}.v1"
    case.at_exit(lambda: delete_topics(endpoints.kafka_bootstrap, topics))
    bridge = BridgeRig(case, mqtt_url, endpoints.kafka_bootstrap, topics)
    bridge.child.start()
    workload, publisher, _ref = start_workload(case, mqtt_url)
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
    publish_figures(case, workload, published)
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
    workload, publisher, ref_future = start_workload(case, mqtt_url)
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
    database = shared_db(case, endpoints)
    workers = [WorkerRig(case, bootstrap, topics, endpoints.influx_url, database, f"w{i}")
               for i in (1, 2)]  # fmt: skip
    for worker in workers:  # the first creates the topics
        worker.child.start(timeout=120)
    alerts = AlertsRig(case, bootstrap, topics)
    alerts.child.start()
    bridge = BridgeRig(case, mqtt_url, bootstrap, topics)
    bridge.child.start()
    workload, publisher, ref_future = start_workload(case, mqtt_url)
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
    publish_figures(case, workload, published)
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
    # how often faust skipped telemetry offsets the workers then read back (app.py, fill_holes)
    case.report.figures["skips_read_back"] = sum(
        w.child.log.read_text("utf-8", errors="replace").count("faust skipped") for w in workers
    )
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
