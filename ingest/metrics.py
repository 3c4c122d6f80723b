"""Prometheus export of the ingest counters (the one module that imports prometheus-client).

The pure core keeps plain counters (`RejectionCounters`); this collector reads them at scrape
time, so nothing is counted twice and the core stays free of metric libraries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

from ingest.reasons import Reason, RejectionCounters


class IngestCollector(Collector):
    """Exposes decoder counters and any extra named counters (bridge, service) under a prefix."""

    def __init__(
        self,
        counters: RejectionCounters,
        extra: Callable[[], Mapping[str, int]] | None = None,
        prefix: str = "hazardwatch_ingest",
    ) -> None:
        self.counters = counters
        self.extra = extra
        self.prefix = prefix

    def collect(self) -> Iterator[Metric]:
        """Current values; rejections are one family labelled by reason."""
        c = self.counters
        yield CounterMetricFamily(f"{self.prefix}_messages", "MQTT messages decoded", c.messages)
        yield CounterMetricFamily(
            f"{self.prefix}_readings_accepted", "readings accepted", c.readings_accepted
        )
        rejected = CounterMetricFamily(
            f"{self.prefix}_rejections", "rejections by reason", labels=["reason"]
        )
        for reason in Reason:
            rejected.add_metric([reason.value], c[reason])
        yield rejected
        for name, value in (self.extra() if self.extra else {}).items():
            yield CounterMetricFamily(f"{self.prefix}_{name}", name.replace("_", " "), value)


def register(
    counters: RejectionCounters,
    extra: Callable[[], Mapping[str, int]] | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> IngestCollector:
    """Register a collector for these counters; returns it (unregister it when done)."""
    collector = IngestCollector(counters, extra)
    registry.register(collector)
    return collector
