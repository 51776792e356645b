"""The small processors and adapters the planners hand out around the operators.

``StatelessProcessor`` runs a filter/project function per batch; ``NoProcessor`` stands in where a
part of a plan is never driven on its own; ``post*`` / ``chained`` adapt a join's matched rows to
what comes after the join (projection, aggregation, OVER, further table lookups); ``load_table``
reads a file table through its generated scan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ...connectors.base import Record
from ...connectors.files import read_rows
from ..operators.aggregate import AggregateProcessor
from ..operators.over import OverProcessor
from ..processor import Emitted, Processor, RecordErrors
from .relations import Relation

Generated = Callable[[Any], tuple[list[Any], RecordErrors | None]]  # a generated batch function


class NoProcessor:
    """Keeps no state and emits nothing."""

    def process(self, records: Sequence[Any], input_index: int = 0) -> Emitted:
        return Emitted()

    def tick(self, now_ms: int) -> Emitted:
        return Emitted()

    def finish(self) -> Emitted:
        return Emitted()

    def state_bytes(self) -> int:
        return 0


def no_processor() -> Processor:
    return NoProcessor()


class StatelessProcessor(NoProcessor):
    """Filter/project keeps no state: each batch maps straight to output."""

    def __init__(self, fn: Callable[[Sequence[Any]], tuple[list[Any], RecordErrors | None]]) -> None:
        self._fn = fn

    def process(self, records: Sequence[Any], input_index: int = 0) -> Emitted:
        rows, errors = self._fn(records)
        return Emitted(rows, errors)


def wrap_post(fn: Generated) -> Callable[[Any], Emitted]:
    """Wraps a generated ``post_*`` function (which builds the output rows itself)."""

    def run(items: Any) -> Emitted:
        rows, errors = fn(items)
        return Emitted(rows, errors)

    return run


def chained(chain: Generated, then: Callable[[Any], Emitted]) -> Callable[[Any], Emitted]:
    """Looks up the extra tables of a multi-join, then runs ``then``."""

    def run(items: Any) -> Emitted:
        rows, errors = chain(items)
        out = then(rows)
        if errors:
            out.errors = errors + (out.errors or [])
        return out

    return run


def post_over(over: OverProcessor) -> Callable[[Any], Emitted]:
    """Feeds joined rows (all but the record) to the analytic operator."""

    def run(items: Any) -> Emitted:
        rows = []
        for item in items:
            row = item[:-1]
            et = next((d.get("_event_time") for d in row if d), 0)
            rows.append((row, et, item[-1]))
        return over.consume(rows)

    return run


def post_aggregate(extract: Callable[[Any], tuple[list[tuple[Any, ...]], RecordErrors | None]],
                   agg: AggregateProcessor) -> Callable[[Any], Emitted]:
    """Extracts group keys and arguments from joined rows, then feeds the aggregate operator."""

    def run(items: Any) -> Emitted:
        tuples, errors = extract(items)
        out = agg.consume(tuples)
        out.errors = errors
        return out

    return run


def load_table(rel: Relation, scan: Callable[[Any], tuple[list[tuple[Any, ...]], Any]]) -> list[tuple[Any, ...]]:
    """A file table's rows, through the same generated scan as a streamed table."""
    assert rel.path is not None
    rows = read_rows(rel.path, rel.spec.format, rel.delimiter, rel.has_headers, rel.columns)
    records = [Record(orjson.dumps(r), offset=i, topic=str(rel.path)) for i, r in enumerate(rows)]
    out, _errors = scan(records)
    return out
