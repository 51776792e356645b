"""The job's data model: states, history entries, counters, and what a job runs."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..engine import CompiledQuery


class JobState(StrEnum):
    """The states of a job (http-api.md, "Jobs")."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    DEGRADED = "DEGRADED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


LIVE_STATES = frozenset({JobState.STARTING, JobState.RUNNING, JobState.PAUSED, JobState.DEGRADED})
"""States that hold one of the server's ``max_jobs`` slots."""


@dataclass
class Transition:
    """One entry of a job's state history."""

    state: JobState
    at: datetime
    reason: str


LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the per-batch latency histogram; the last bucket is +Inf."""


@dataclass
class JobMetrics:
    """Counters a job keeps; plain ints, read by the API and the Prometheus collector at scrape time."""

    records_in: int = 0
    records_out: int = 0
    records_failed: int = 0
    records_late: int = 0
    records_dlq: int = 0
    records_retried: int = 0
    batches: int = 0
    last_batch_seconds: float = 0.0
    watermark_ms: int | None = None
    state_bytes: int = 0
    snapshots: int = 0  # operator state snapshots written since the job started
    snapshot_bytes: int = 0  # the size of the last one
    snapshot_seconds: float = 0.0  # how long the last one took (encode + write)
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe_batch(self, seconds: float) -> None:
        """Count one batch's processing time in the histogram."""
        self.last_batch_seconds = seconds
        self.latency_sum += seconds
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def count_failure(self, reason: str, n: int = 1) -> None:
        """Count ``n`` records that failed for ``reason`` (a short label)."""
        self.records_failed += n
        self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + n


@dataclass
class JobSpec:
    """What a job runs: its name, SQL, properties and the compiled query."""

    name: str
    sql: str
    query: CompiledQuery
    source_topic: str
    sink_topic: str
    properties: dict[str, Any] = field(default_factory=dict)
    app: str | None = None
    version: str | None = None
    batch_size: int = 2000
    batch_timeout_ms: int = 100
    snapshot_interval_ms: int = 5000  # 'state.snapshot.interval'
    # INSERT INTO: the sink is an existing stream or topic (never created; a job waits for it on restore).
    insert: bool = False

