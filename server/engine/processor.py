"""The contract between the engine and whoever drives it (job runtime, transient queries).

A compiled query hands out a fresh ``Processor`` per run. The driver feeds it batches and, when
idle, ticks; it never looks inside. Everything a processor returns comes back as ``Emitted``.

    processor.process(records, input_index, now_ms, progress)  one batch from input ``input_index``
                                             (see CompiledQuery.inputs), read at ``now_ms``
    processor.tick(now_ms, progress)         time passes without records (idle watermarks, timers)
    processor.finish()                       bounded input ended: emit what is pending (EMIT FINAL)
    processor.state_bytes()                  an estimate of the operator state held
    processor.snapshot()                     the operator state as bytes (None: it keeps none)
    processor.restore(data)                  take over a snapshot, on a fresh processor of the same query

``now_ms`` is the driver's clock (monotonic milliseconds): a processor never reads a clock itself,
so idle partitions and watched files follow the time it is given (a test drives time through the
argument); a ``process`` without it does not advance time. ``progress`` is the source's
(``Source.progress()``, after the read): which of its partitions are still behind their end. A
watermark lets a partition go idle only once it has caught up, so reading a backlog in chunks never
makes the partitions waiting for their turn idle; without it (None) idleness goes by silence alone.

A snapshot is taken between batches only, so it covers exactly the records processed so far; the
driver stores it with the source positions after those records (server/jobs/snapshots.py).

Modes: ``"encode"`` gives ``(key, value)`` byte pairs for a sink; ``"rows"`` gives ``RowEvent``s
(values in result-column order, with an op and a key for upserts) for a client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..connectors.base import OutputRow, SourceProgress

Mode = Literal["encode", "rows"]
RecordErrors = list[tuple[Any, Exception]]


@dataclass(frozen=True, slots=True)
class RowEvent:
    """One result row for a client: ``op`` is insert | upsert | delete; ``key`` identifies upserts."""

    values: list[Any]
    op: str = "insert"
    key: list[Any] | None = None


@dataclass(slots=True)
class Emitted:
    """What one call to a processor produced."""

    rows: list[Any] = field(default_factory=list)  # OutputRow in "encode" mode, RowEvent in "rows"
    errors: RecordErrors | None = None  # records that could not be processed, with the reason
    late: list[Any] | None = None  # records that arrived after their windows closed


class Processor(Protocol):
    """Per-run operator state and the compiled functions over it."""

    def process(self, records: Sequence[Any], input_index: int = 0, now_ms: int | None = None,
                progress: SourceProgress | None = None) -> Emitted: ...

    def tick(self, now_ms: int, progress: SourceProgress | None = None) -> Emitted: ...

    def finish(self) -> Emitted: ...

    def state_bytes(self) -> int: ...

    def snapshot(self) -> bytes | None: ...

    def restore(self, data: bytes) -> None: ...


__all__ = ["Emitted", "Mode", "OutputRow", "Processor", "RecordErrors", "RowEvent", "SourceProgress"]
