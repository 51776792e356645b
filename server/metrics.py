"""Prometheus metrics (http-api.md "Metrics"), collected at scrape time from the live jobs.

Jobs keep plain integer counters; this collector reads them when ``/metrics`` is scraped, so the hot
path pays nothing for metrics. HTTP request metrics come from a small ASGI middleware.

Job attributes read here (``JobMetrics``): ``records_in``, ``records_out``, ``records_failed``,
``failures_by_reason`` (reason → count), ``records_late``, ``records_dlq``, ``watermark_ms``,
``state_bytes``, ``latency_counts`` (per-bucket batch counts over ``LATENCY_BUCKETS`` plus +Inf) and
``latency_sum``. Those a build does not have yet read as zero, so every metric name is always exposed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .jobs.manager import MultiJobSqlServer
from .jobs.queries import QueryManager
from .jobs.runtime import JobState

_BUCKETS: tuple[float, ...]
try:  # the job model's histogram buckets, when this build has them
    from .jobs.model import LATENCY_BUCKETS as _BUCKETS
except ImportError:  # pragma: no cover - older job layer
    _BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


def _num(metrics: Any, name: str) -> float:
    value = getattr(metrics, name, 0)
    return float(value) if isinstance(value, int | float) else 0.0


def _buckets(metrics: Any) -> tuple[list[tuple[str, float]], float]:
    """Cumulative histogram buckets and sum from a job's per-bucket batch counts."""
    counts: Sequence[int] = getattr(metrics, "latency_counts", None) or []
    bounds = list(_BUCKETS)
    if len(counts) != len(bounds) + 1:
        # No histogram in this build: every batch counts in +Inf, so _count still equals batches.
        counts = [0] * len(bounds) + [int(_num(metrics, "batches"))]
    out: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip([*map(str, bounds), "+Inf"], counts, strict=True):
        running += count
        out.append((bound, float(running)))
    return out, _num(metrics, "latency_sum")


class JobCollector(Collector):
    """Reads per-job counters from the manager at scrape time."""

    def __init__(self, manager: MultiJobSqlServer, queries: QueryManager) -> None:
        self.manager = manager
        self.queries = queries

    def collect(self) -> Iterator[Metric]:
        jobs = self.manager.list_jobs()
        states = GaugeMetricFamily("velo_jobs", "Jobs by state", labels=["state"])
        for state in JobState:
            states.add_metric([state.value], sum(1 for j in jobs if j.state is state))
        yield states
        job = ["job"]
        records_in = CounterMetricFamily("velo_job_records_in", "Records read", labels=job)
        records_out = CounterMetricFamily("velo_job_records_out", "Records written", labels=job)
        failed = CounterMetricFamily("velo_job_records_failed", "Records that could not be processed",
                                     labels=["job", "reason"])
        late = CounterMetricFamily("velo_job_late_records", "Records behind the watermark", labels=job)
        dlq = CounterMetricFamily("velo_job_dlq_records", "Records sent to the dead-letter topic",
                                  labels=job)
        lag = GaugeMetricFamily("velo_job_lag_records", "Consumer lag summed over partitions", labels=job)
        watermark = GaugeMetricFamily("velo_job_watermark_ms", "Event-time watermark (ms since epoch)",
                                      labels=job)
        processing = HistogramMetricFamily("velo_job_processing_seconds", "Per-batch processing latency",
                                           labels=job)
        state_bytes = GaugeMetricFamily("velo_job_state_bytes", "Estimated operator state", labels=job)
        for j in jobs:
            m, name = j.metrics, [j.name]
            records_in.add_metric(name, m.records_in)
            records_out.add_metric(name, m.records_out)
            reasons: dict[str, int] = dict(getattr(m, "failures_by_reason", None) or {})
            counted = sum(reasons.values())
            if m.records_failed > counted or not reasons:
                reasons["record_error"] = reasons.get("record_error", 0) + m.records_failed - counted
            for reason, count in sorted(reasons.items()):
                failed.add_metric([j.name, reason], count)
            late.add_metric(name, _num(m, "records_late"))
            dlq.add_metric(name, _num(m, "records_dlq"))
            lag.add_metric(name, j.lag())
            watermark.add_metric(name, _num(m, "watermark_ms"))
            buckets, total = _buckets(m)
            processing.add_metric(name, buckets, total)
            state_bytes.add_metric(name, _num(m, "state_bytes"))
        yield from (records_in, records_out, failed, late, dlq, lag, watermark, processing, state_bytes)
        yield GaugeMetricFamily("velo_queries_active", "Running transient queries",
                                value=len(self.queries.list()))


def make_registry(manager: MultiJobSqlServer, queries: QueryManager) -> CollectorRegistry:
    """A registry per app (tests run several apps in one process)."""
    registry = CollectorRegistry()
    registry.register(JobCollector(manager, queries))
    ProcessCollector(registry=registry)
    return registry


class HttpMetrics:
    """ASGI middleware counting requests by method, route template and status, and timing them.

    The route label is the template (``/jobs/{name}``), never the raw path, so label cardinality stays
    bounded whatever clients send; requests no route matched (404s, or refused before routing: 401,
    413) count as ``unmatched``.
    """

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("velo_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=registry)
        self.seconds = Histogram("velo_http_request_seconds", "HTTP request latency", ["route"],
                                 registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.requests.labels(method, route, str(status)).inc()
            self.seconds.labels(route).observe(time.perf_counter() - started)


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
