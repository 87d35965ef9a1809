"""The prometheus-client side of :mod:`polyswarmclient.metrics`: one registry with every instrument."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge
from prometheus_client import Histogram as PromHistogram
from prometheus_client.metrics import MetricWrapperBase

from polyswarmclient import metrics
from polyswarmclient.metrics import Health, Spec

CONTENT_TYPE = CONTENT_TYPE_LATEST
# A ``_created`` series per counter and histogram doubles what is scraped and no panel reads it.
disable_created_metrics()  # type: ignore[no-untyped-call]


class PrometheusSink:
    """A fresh registry holding every declared instrument, plus the process, platform and GC collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._metrics: dict[str, MetricWrapperBase] = {}
        for instrument in metrics.INSTRUMENTS:
            self._metrics[instrument.spec.name] = self._make(instrument.spec)

    def _make(self, spec: Spec) -> MetricWrapperBase:
        kwargs = {"labelnames": spec.labels, "registry": self.registry}
        if spec.kind == "counter":
            return PromCounter(spec.name, spec.help, **kwargs)  # type: ignore[arg-type]
        if spec.kind == "gauge":
            return PromGauge(spec.name, spec.help, **kwargs)  # type: ignore[arg-type]
        return PromHistogram(spec.name, spec.help, buckets=spec.buckets, **kwargs)  # type: ignore[arg-type]

    def _child(self, spec: Spec, values: tuple[str, ...]) -> MetricWrapperBase:
        metric = self._metrics[spec.name]
        return metric.labels(*values) if values else metric

    def inc(self, spec: Spec, amount: float, values: tuple[str, ...]) -> None:
        self._child(spec, values).inc(amount)  # type: ignore[attr-defined]

    def set(self, spec: Spec, value: float, values: tuple[str, ...]) -> None:
        self._child(spec, values).set(value)  # type: ignore[attr-defined]

    def observe(self, spec: Spec, value: float, values: tuple[str, ...]) -> None:
        self._child(spec, values).observe(value)  # type: ignore[attr-defined]

    def render(self, health: Health) -> bytes:
        """The text exposition of every metric, the time-dependent gauges refreshed first."""
        health.refresh()
        return generate_latest(self.registry)


def exported_names() -> set[str]:
    """Every metric family name a scrape can show (declared instruments; counters without ``_total``
    as prometheus-client names families, the samples keep it)."""
    return {instrument.spec.name for instrument in metrics.INSTRUMENTS}
