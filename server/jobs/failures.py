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

import re
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import ValidationError

STRATEGIES = {"logandcontinue": "LogAndContinue", "sendtodlq": "SendToDLQ", "failbatch": "FailBatch",
              "retrywithbackoff": "RetryWithBackoff"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def duration_ms(value: Any, key: str) -> int:
    """A duration property (``100ms``, ``2s``, ``1m`` or a number of ms) in milliseconds."""
    match = _DURATION.match(str(value))
    if match is None:
        raise ValidationError(f"property '{key}' must be a duration such as 100ms, 2s or 1m; got {value!r}")
    return int(float(match.group(1)) * _UNIT_MS[(match.group(2) or "ms").lower()])


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
        raw = str(props.get("failure_strategy", "LogAndContinue"))
        strategy = STRATEGIES.get(raw.replace("_", "").lower())
        if strategy is None:
            raise ValidationError(f"unknown failure_strategy '{raw}': use one of {', '.join(STRATEGIES.values())}")
        late = str(props.get("late.data.strategy", "drop")).lower()
        if late not in ("drop", "dead_letter"):
            raise ValidationError(f"unknown late.data.strategy '{late}': use drop or dead_letter")
        try:
            retries = int(props.get("max_retries", 3))
        except (TypeError, ValueError):
            raise ValidationError("property 'max_retries' must be an integer") from None
        return cls(
            strategy=strategy,
            max_retries=max(0, retries),
            retry_backoff_ms=duration_ms(props.get("retry_backoff", 100), "retry_backoff"),
            dlq_topic=str(props.get("dlq.topic") or f"{job}-dlq"),
            late_strategy=late,
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
