"""The faust settings of the worker app, and why each differs from faust's default."""

from __future__ import annotations

from pathlib import Path

import faust

from hazardwatch.settings import Settings


def faust_app(settings: Settings, app_id: str, home: Path) -> faust.App:
    """A bare faust app (no agents yet) for `app_id` (= consumer group)."""
    kafka, worker = settings.kafka, settings.worker
    servers = ";".join(kafka.bootstrap_servers.split(","))
    return faust.App(
        app_id,
        broker=f"kafka://{servers}",
        # records are bytes in and out: the worker parses and encodes them itself
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        topic_allow_declare=False,  # ensure_topics created them (see topics.py)
        topic_disable_leader=True,  # no `__assignor-__leader` topic
        web_enabled=False,  # /metrics and /healthz are served by hazardwatch.ops_http
        autodiscover=False,
        # Table rows are one engine snapshot per partition and one row per enterprise: memory
        # holds them, and the compacted changelog restores them on assignment.
        store="memory://",
        datadir=str(home / "faust"),
        consumer_auto_offset_reset="earliest",  # a new group reads the telemetry it missed
        broker_commit_interval=worker.commit_interval_s,
        broker_session_timeout=worker.session_timeout_s,
        broker_heartbeat_interval=worker.heartbeat_interval_s,
        broker_rebalance_timeout=worker.rebalance_timeout_s,
        producer_acks=-1,  # outputs count as delivered only once all in-sync replicas have them
        processing_guarantee="at_least_once",
    )
