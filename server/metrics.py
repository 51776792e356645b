"""Prometheus metrics (http-api.md "Metrics"), collected at scrape time from the live jobs.

Jobs keep plain integer counters; this collector reads them when ``/metrics`` is scraped, so the hot
path pays nothing for metrics. HTTP request metrics come from a small ASGI middleware.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .jobs.manager import MultiJobSqlServer
from .jobs.queries import QueryManager
from .jobs.runtime import JobState


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
        counters = {
            "records_in": CounterMetricFamily("velo_job_records_in", "Records read", labels=["job"]),
            "records_out": CounterMetricFamily("velo_job_records_out", "Records written", labels=["job"]),
        }
        failed = CounterMetricFamily("velo_job_records_failed", "Records that could not be processed",
                                     labels=["job", "reason"])
        lag = GaugeMetricFamily("velo_job_lag_records", "Consumer lag summed over partitions",
                                labels=["job"])
        for job in jobs:
            m = job.metrics
            counters["records_in"].add_metric([job.name], m.records_in)
            counters["records_out"].add_metric([job.name], m.records_out)
            failed.add_metric([job.name, "record_error"], m.records_failed)
            lag.add_metric([job.name], job.lag())
        yield from counters.values()
        yield failed
        yield lag
        yield GaugeMetricFamily("velo_queries_active", "Running transient queries",
                                value=len(self.queries.list()))


def make_registry(manager: MultiJobSqlServer, queries: QueryManager) -> CollectorRegistry:
    """A registry per app (tests run several apps in one process)."""
    registry = CollectorRegistry()
    registry.register(JobCollector(manager, queries))
    ProcessCollector(registry=registry)
    return registry


class HttpMetrics:
    """ASGI middleware counting requests by method, route template and status, and timing them."""

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
            self.requests.labels(scope["method"], route, str(status)).inc()
            self.seconds.labels(route).observe(time.perf_counter() - started)
