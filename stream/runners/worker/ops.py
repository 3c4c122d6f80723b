"""`/metrics` and `/healthz` of a worker (same metric names as the embedded runner, plus lag).

`hazardwatch_queue_depth` is the consumer lag (telemetry records not yet evaluated, over the
worker's partitions), `hazardwatch_consumer_lag{partition}` the same per partition.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from hazardwatch.ops_http import OpsServer
from stream.runners.metrics import RunnerCollector
from stream.runners.worker.app import WorkerRuntime


class WorkerCollector(Collector):
    """Per-partition lag and the worker's own counters."""

    def __init__(self, runtime: WorkerRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        """Yield the current metric families."""
        lag = GaugeMetricFamily("hazardwatch_consumer_lag", "Telemetry records not yet evaluated",
                                labels=["partition"])  # fmt: skip
        for partition, n in sorted(dict(self.runtime.lag).items()):
            lag.add_metric([str(partition)], n)
        yield lag
        yield GaugeMetricFamily("hazardwatch_worker_partitions", "Telemetry partitions owned",
                                value=len(self.runtime.engines))  # fmt: skip
        counters = CounterMetricFamily("hazardwatch_worker", "Worker counters", labels=["what"])
        for name, n in sorted(dict(self.runtime.counters).items()):
            counters.add_metric([name], n)
        yield counters
        seconds = CounterMetricFamily(
            "hazardwatch_worker_seconds", "Time spent per stage of a batch", labels=["stage"]
        )
        for stage, spent in sorted(dict(self.runtime.seconds).items()):
            seconds.add_metric([stage], spent)
        yield seconds


def ops_server(runtime: WorkerRuntime) -> OpsServer:
    """The ops HTTP server of `runtime` on `http.host:http.port` (not started)."""
    registry = CollectorRegistry()
    registry.register(RunnerCollector(runtime.runner_sources()))
    registry.register(WorkerCollector(runtime))
    http = runtime.settings.http
    return OpsServer(http.host, http.port, registry, runtime.health)
