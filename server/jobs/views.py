"""JSON views of jobs and queries: what the API, SHOW statements and the shell see."""

from __future__ import annotations

from typing import Any

from .queries import TransientQuery
from .runtime import JobRuntime


def job_view(job: JobRuntime, detail: bool = False) -> dict[str, Any]:
    """A job as the API shows it; ``detail`` adds the plan and generated code."""
    spec, m = job.spec, job.metrics
    view: dict[str, Any] = {
        "name": spec.name,
        "state": job.state.value,
        "sql": spec.sql,
        "app": spec.app,
        "version": spec.version,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "properties": spec.properties,
        "source": spec.source_topic,
        "sink": spec.sink_topic,
        "consumer_group": next((i.group_id for i in spec.query.inputs[:1] if i.group_id), f"velo-{spec.name}"),
        "metrics": {
            "records_in": m.records_in,
            "records_out": m.records_out,
            "records_failed": m.records_failed,
            "records_late": m.records_late,
            "records_dlq": m.records_dlq,
            "batches": m.batches,
            "lag": job.lag(),
            "watermark_ms": m.watermark_ms,
            "state_bytes": m.state_bytes,
            "failures_by_reason": m.failures_by_reason,
        },
        "failure_strategy": job.policy.strategy,
        "dlq_topic": job.policy.dlq_topic if job.policy.uses_dlq else None,
        "last_errors": job.last_errors,
        "error": job.error,
        "history": [
            {"state": t.state.value, "at": t.at.isoformat(), "reason": t.reason} for t in job.history
        ],
    }
    if detail:
        view["partitions"] = job.partitions()
        view["plan"] = spec.query.plan.describe()
        tree = spec.query.plan.tree  # the plan tree as JSON (engine/plan.py), which the web console draws
        view["plan_tree"] = tree.to_dict() if tree is not None else None
        view["generated_code"] = spec.query.source_code
    return view


def query_view(query: TransientQuery) -> dict[str, Any]:
    """A running transient query as ``GET /queries`` lists it."""
    return {
        "id": query.id,
        "sql": query.sql,
        "client": query.client,
        "started": query.started.isoformat(),
        "rows_sent": query.rows_sent,
    }
