"""What a job does with records it cannot process (dialect.md §7) and with late records (§5).

    LogAndContinue    (default) count, log a sample, skip
    SendToDLQ         the raw record goes to the job's DLQ topic, with the error in its headers
    FailBatch         the batch is not written or committed and the job goes to FAILED
    RetryWithBackoff  re-run the failing record up to max_retries times with backoff, then DLQ

FailBatch does not re-run the batch: record errors here are deterministic (bad JSON, wrong type), so a
retry would fail the same way — and re-running a batch through a stateful operator would count its
records twice. The uncommitted batch is where a redeploy resumes, once the input or query is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ..engine.validate import FAILURE_STRATEGIES, parse_duration

STRATEGIES = {s.lower(): s for s in FAILURE_STRATEGIES}  # the spellings validate.py accepts


@dataclass(frozen=True)
class FailurePolicy:
    """A job's failure strategy and late-data strategy, parsed from its properties."""

    strategy: str = "LogAndContinue"
    max_retries: int = 3
    retry_backoff_ms: int = 100
    dlq_topic: str = ""
    late_strategy: str = "drop"

    @property
    def uses_dlq(self) -> bool:
        return self.strategy in ("SendToDLQ", "RetryWithBackoff") or self.late_strategy == "dead_letter"

    @classmethod
    def from_properties(cls, job: str, props: dict[str, Any]) -> FailurePolicy:
        """The policy of a job whose properties ``check_job_properties`` (engine/validate.py) accepted.

        Validation — with the offending property's position and a "did you mean" — happens there,
        once; this only reads the values.
        """
        raw = str(props.get("failure_strategy", "LogAndContinue"))
        return cls(
            strategy=STRATEGIES[raw.replace("_", "").lower()],
            max_retries=max(0, int(props.get("max_retries", 3))),
            retry_backoff_ms=parse_duration(props.get("retry_backoff", 100), "retry_backoff"),
            dlq_topic=str(props.get("dlq.topic") or f"{job}-dlq"),
            late_strategy=str(props.get("late.data.strategy", "drop")).lower(),
        )


def dead_letter(record: Any, job: str, reason: str) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """A DLQ record: the raw key and value unchanged, the job, reason and origin in headers.

    Keeping the bytes untouched (the Kafka Connect convention) means a record that is not JSON, or is
    1 MB of it, survives the trip intact and can be replayed once fixed.
    """
    value = record.value if record.value is not None else b""
    headers = [
        ("velo.job", job.encode()),
        ("velo.error", reason.encode("utf-8", "replace")[:4096]),
        ("velo.source", orjson.dumps({"topic": getattr(record, "topic", ""),
                                      "partition": getattr(record, "partition", None),
                                      "offset": getattr(record, "offset", None),
                                      "timestamp": getattr(record, "timestamp", None)})),
    ]
    return record.key, value, headers
