"""Prometheus metrics of a runner, read from the components' own counters at scrape time.

Counting stays in the components (decoder, engine, sink, outbox) as plain integers; this
collector only reports them, so nothing on the hot path touches prometheus-client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


@dataclass
class RunnerSources:
    """Callables returning current values; any may be absent in a given runner."""

    readings_in: Callable[[], int]
    rejected_by_reason: Callable[[], dict[str, int]]
    evaluated: Callable[[], dict[str, int]]  # engine counters: accepted, late, duplicate, …
    sink: Callable[[], dict[str, int]]  # written, spooled, replayed, rejected, failed_writes
    spool_fill: Callable[[], float]
    queue_depth: Callable[[], int]  # MQTT deliveries waiting (embedded) or consumer lag (Kafka)
    alerts: Callable[[], dict[str, int]] = field(default=lambda: {})  # notifications by status
    events_out: Callable[[], int] = field(default=lambda: 0)
    # group commit (embedded runner): groups written, state saves, messages not yet acknowledged
    commit: Callable[[], dict[str, int]] | None = None


class RunnerCollector(Collector):
    """Exports `hazardwatch_*` metrics from a RunnerSources."""

    def __init__(self, sources: RunnerSources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        """Yield the current metric families."""
        s = self.sources
        yield CounterMetricFamily("hazardwatch_readings_in", "Readings accepted by ingest",
                                  value=s.readings_in())  # fmt: skip
        rejected = CounterMetricFamily(
            "hazardwatch_rejected", "Rejected readings and messages by reason", labels=["reason"]
        )
        for reason, n in sorted(s.rejected_by_reason().items()):
            rejected.add_metric([reason], n)
        yield rejected
        evaluated = CounterMetricFamily(
            "hazardwatch_engine_readings", "Readings seen by the engine by verdict",
            labels=["verdict"],
        )  # fmt: skip
        for verdict, n in sorted(s.evaluated().items()):
            evaluated.add_metric([verdict], n)
        yield evaluated
        sink = CounterMetricFamily(
            "hazardwatch_influx_lines", "InfluxDB lines by outcome", labels=["outcome"]
        )
        for outcome, n in sorted(s.sink().items()):
            sink.add_metric([outcome], n)
        yield sink
        yield GaugeMetricFamily("hazardwatch_spool_fill", "Fraction of the InfluxDB spool in use",
                                value=s.spool_fill())  # fmt: skip
        yield GaugeMetricFamily("hazardwatch_queue_depth", "Messages waiting to be processed",
                                value=s.queue_depth())  # fmt: skip
        yield CounterMetricFamily("hazardwatch_events", "Engine events emitted",
                                  value=s.events_out())  # fmt: skip
        alerts = GaugeMetricFamily(
            "hazardwatch_notifications", "Alert notifications by status", labels=["status"]
        )
        for status, n in sorted(s.alerts().items()):
            alerts.add_metric([status], n)
        yield alerts
        if s.commit is not None:
            commit = s.commit()
            yield CounterMetricFamily("hazardwatch_commit_groups", "Commit groups written",
                                      value=commit.get("groups", 0))  # fmt: skip
            yield CounterMetricFamily("hazardwatch_state_saves", "Engine state deltas committed",
                                      value=commit.get("state_saves", 0))  # fmt: skip
            yield GaugeMetricFamily(
                "hazardwatch_unacknowledged_messages",
                "MQTT messages processed but not yet acknowledged (waiting for their group)",
                value=commit.get("unacknowledged", 0),
            )
