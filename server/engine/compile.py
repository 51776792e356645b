"""AST → plan → generated Python: each query's per-record work becomes one function over a batch.

The function is built as source text from the plan, ``compile()``d once and cached on the query, so
the hot loop is plain Python: decode with orjson, test the predicate, build the output, append.
Record errors are collected, not raised, and handed back for the job's failure strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from velo.grammar import ast

from ..connectors.base import OutputRow
from ..errors import ValidationError
from .expressions import ExprCompiler, infer_type
from .plan import FilterProject, OutputColumn, QueryPlan
from .processor import Emitted, Mode, Processor, RecordErrors, RowEvent

EncodeFn = Callable[[Sequence[Any]], tuple[list[OutputRow], RecordErrors | None]]
RowsFn = Callable[[Sequence[Any]], tuple[list[list[Any]], RecordErrors | None]]


@dataclass(frozen=True)
class InputSpec:
    """Something a query reads: today a Kafka topic of JSON values."""

    name: str
    topic: str
    kind: str = "kafka"
    format: str = "json"


@dataclass(frozen=True)
class CompiledQuery:
    """A plan with its generated functions; ``processor()`` gives the per-run object drivers use."""

    plan: QueryPlan
    inputs: tuple[InputSpec, ...]
    source_code: str
    _encode: EncodeFn
    _rows: RowsFn

    def processor(self, mode: Mode) -> Processor:
        """A fresh processor: ``encode`` for jobs (Kafka rows), ``rows`` for clients."""
        return _StatelessProcessor(self._encode if mode == "encode" else _as_events(self._rows))

    def explain(self) -> str:
        """The plan and the generated source, as EXPLAIN shows them."""
        return f"{self.plan.describe()}\n\nGenerated code:\n{self.source_code}"


class _StatelessProcessor:
    """Filter/project keeps no state: each batch maps straight to output."""

    def __init__(self, fn: Callable[[Sequence[Any]], tuple[list[Any], RecordErrors | None]]) -> None:
        self._fn = fn

    def process(self, records: Sequence[Any], input_index: int = 0) -> Emitted:
        rows, errors = self._fn(records)
        return Emitted(rows, errors)

    def tick(self, now_ms: int) -> Emitted:
        return Emitted()

    def finish(self) -> Emitted:
        return Emitted()

    def state_bytes(self) -> int:
        return 0


def _as_events(fn: RowsFn) -> Callable[[Sequence[Any]], tuple[list[Any], RecordErrors | None]]:
    def events(records: Sequence[Any]) -> tuple[list[Any], RecordErrors | None]:
        rows, errors = fn(records)
        return [RowEvent(r) for r in rows], errors

    return events


def _output_name(item: ast.SelectItem, index: int) -> str:
    if item.alias:
        return item.alias
    if isinstance(item.expr, ast.Column):
        return item.expr.name
    if isinstance(item.expr, ast.FunctionCall):
        return item.expr.name.lower()
    return f"col_{index}"


def plan_select(select: ast.Select, star_columns: Sequence[str] | None = None) -> QueryPlan:
    """The logical plan of a filter/project SELECT."""
    projections: list[tuple[str, ast.Expr]] = []
    star = False
    seen: set[str] = set()
    for i, item in enumerate(select.items, start=1):
        if isinstance(item.expr, ast.Star):
            star = True
            continue
        name = base = _output_name(item, i)
        n = 1
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        projections.append((name, item.expr))
    known = tuple(star_columns) if star and star_columns is not None else None
    columns = [OutputColumn(c, "ANY") for c in (known or ()) if c not in seen]
    columns += [OutputColumn(name, infer_type(expr)) for name, expr in projections]
    return QueryPlan(
        source=select.from_.name,
        operator=FilterProject(select.where, tuple(projections), star, known),
        columns=tuple(columns),
        emit="none" if select.emit is None else select.emit,
        limit=select.limit,
    )


def _column_access(source: ast.TableRef) -> Callable[[ast.Column], str]:
    names = {source.name, source.alias} - {None}

    def access(col: ast.Column) -> str:
        if col.qualifier is not None and col.qualifier not in names:
            pos = {"line": col.span.line, "column": col.span.column} if col.span else {}
            raise ValidationError(
                f"unknown source '{col.qualifier}' in {col.qualifier}.{col.name}", **pos
            )
        return f"r.get({col.name!r})"

    return access


def _loop(body: list[str], name: str) -> list[str]:
    """The batch loop around ``body`` (which reads record ``m`` and appends to ``out``)."""
    return [
        f"def {name}(batch):",
        "    out = []",
        "    append = out.append",
        "    errors = None",
        "    for m in batch:",
        "        try:",
        *("            " + line for line in body),
        "        except Exception as exc:",
        "            if errors is None:",
        "                errors = []",
        "            errors.append((m, exc))",
        "    return out, errors",
    ]


def compile_select(select: ast.Select, star_columns: Sequence[str] | None = None) -> CompiledQuery:
    """Plan and compile a filter/project SELECT into its two batch functions."""
    plan = plan_select(select, star_columns)
    op = plan.operator
    exprs = ExprCompiler(_column_access(select.from_))
    decode = ["r = loads(m.value)"]
    if op.predicate is not None:
        decode.append(f"if not {exprs.predicate(op.predicate)}: continue")
    values = {name: exprs.compile(expr) for name, expr in op.projections}

    # Jobs: `SELECT *` with nothing added forwards the record's bytes untouched (no re-encode).
    if op.star and not values:
        encode_body = [*decode, "append((m.key, m.value))"]
    else:
        fields = ", ".join(f"{name!r}: {code}" for name, code in values.items())
        obj = f"{{**r, {fields}}}" if op.star else f"{{{fields}}}"
        encode_body = [*decode, f"append((m.key, dumps({obj})))"]

    row_items = [values.get(c.name, f"r.get({c.name!r})")
                 for c in plan.columns]
    rows_body = [*decode, f"append([{', '.join(row_items)}])"]

    source = "\n".join([*_loop(encode_body, "encode"), "", *_loop(rows_body, "rows")])
    namespace: dict[str, Any] = {"loads": orjson.loads, "dumps": orjson.dumps, **exprs.namespace}
    exec(compile(source, f"<velo query {plan.source}>", "exec"), namespace)
    inputs = (InputSpec(select.from_.alias or select.from_.name, select.from_.name),)
    return CompiledQuery(plan, inputs, source, namespace["encode"], namespace["rows"])
