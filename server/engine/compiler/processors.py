"""The small processors and adapters the planners hand out around the operators.

``StatelessProcessor`` runs a filter/project function per batch (``NoProcessor``: its stateless base);
``post*`` / ``chained`` adapt a join's matched rows to
what comes after the join (projection, aggregation, OVER, further table lookups) and hand its state
to the join's snapshot; ``load_table`` reads a file table through its generated scan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ...connectors.base import Record
from ...connectors.files import read_rows
from ..operators.aggregate import AggregateProcessor
from ..operators.over import OverProcessor
from ..processor import Emitted, RecordErrors, SourceProgress
from ..snapshot import SnapshotError, restore_into, state_of
from .relations import Relation

Generated = Callable[[Any], tuple[list[Any], RecordErrors | None]]  # a generated batch function


class NoProcessor:
    """Keeps no state and emits nothing."""

    def process(self, records: Sequence[Any], input_index: int = 0, now_ms: int | None = None,
                progress: SourceProgress | None = None) -> Emitted:
        return Emitted()

    def tick(self, now_ms: int, progress: SourceProgress | None = None) -> Emitted:
        return Emitted()

    def finish(self) -> Emitted:
        return Emitted()

    def state_bytes(self) -> int:
        return 0

    def snapshot(self) -> bytes | None:
        return None

    def restore(self, data: bytes) -> None:
        raise SnapshotError("a stateless query has no state to restore")


class StatelessProcessor(NoProcessor):
    """Filter/project keeps no state: each batch maps straight to output."""

    def __init__(self, fn: Callable[[Sequence[Any]], tuple[list[Any], RecordErrors | None]]) -> None:
        self._fn = fn

    def process(self, records: Sequence[Any], input_index: int = 0, now_ms: int | None = None,
                progress: SourceProgress | None = None) -> Emitted:
        rows, errors = self._fn(records)
        return Emitted(rows, errors)


def wrap_post(fn: Generated) -> Callable[[Any], Emitted]:
    """Wraps a generated ``post_*`` function (which builds the output rows itself)."""

    def run(items: Any) -> Emitted:
        rows, errors = fn(items)
        return Emitted(rows, errors)

    return run


class _Chained:
    """Looks up the extra tables of a multi-join, then runs ``then`` (whose state it snapshots)."""

    def __init__(self, chain: Generated, then: Callable[[Any], Emitted]) -> None:
        self._chain = chain
        self._then = then

    def __call__(self, items: Any) -> Emitted:
        rows, errors = self._chain(items)
        out = self._then(rows)
        if errors:
            out.errors = errors + (out.errors or [])
        return out

    def snapshot(self) -> bytes | None:
        # The extra tables are re-read at every start: only what follows them keeps state.
        return state_of(self._then)

    def restore(self, data: bytes) -> None:
        restore_into(self._then, data)


def chained(chain: Generated, then: Callable[[Any], Emitted]) -> Callable[[Any], Emitted]:
    """Looks up the extra tables of a multi-join, then runs ``then``."""
    return _Chained(chain, then)


class _PostOver:
    """Feeds joined rows (all but the record) to the analytic operator."""

    def __init__(self, over: OverProcessor) -> None:
        self._over = over

    def __call__(self, items: Any) -> Emitted:
        rows = []
        for item in items:
            row = item[:-1]
            et = next((d.get("_event_time") for d in row if d), 0)
            rows.append((row, et, item[-1]))
        return self._over.consume(rows)

    def snapshot(self) -> bytes:
        return self._over.snapshot()

    def restore(self, data: bytes) -> None:
        self._over.restore(data)


def post_over(over: OverProcessor) -> Callable[[Any], Emitted]:
    """Feeds joined rows (all but the record) to the analytic operator."""
    return _PostOver(over)


class _PostAggregate:
    """Extracts group keys and arguments from joined rows, then feeds the aggregate operator."""

    def __init__(self, extract: Callable[[Any], tuple[list[tuple[Any, ...]], RecordErrors | None]],
                 agg: AggregateProcessor) -> None:
        self._extract = extract
        self._agg = agg

    def __call__(self, items: Any) -> Emitted:
        tuples, errors = self._extract(items)
        out = self._agg.consume(tuples)
        out.errors = errors
        return out

    def at(self, now_ms: int | None, progress: SourceProgress | None = None) -> None:
        self._agg.at(now_ms, progress)

    def snapshot(self) -> bytes:
        return self._agg.snapshot()

    def restore(self, data: bytes) -> None:
        self._agg.restore(data)


def post_aggregate(extract: Callable[[Any], tuple[list[tuple[Any, ...]], RecordErrors | None]],
                   agg: AggregateProcessor) -> Callable[[Any], Emitted]:
    """Extracts group keys and arguments from joined rows, then feeds the aggregate operator."""
    return _PostAggregate(extract, agg)


def load_table(rel: Relation, scan: Callable[[Any], tuple[list[tuple[Any, ...]], Any]]) -> list[tuple[Any, ...]]:
    """A file table's rows, through the same generated scan as a streamed table."""
    assert rel.path is not None
    rows = read_rows(rel.path, rel.spec.format, rel.delimiter, rel.has_headers, rel.columns)
    records = [Record(orjson.dumps(r), offset=i, topic=str(rel.path)) for i, r in enumerate(rows)]
    out, _errors = scan(records)
    return out
