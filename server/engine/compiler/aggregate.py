"""The aggregate family: GROUP BY, windows (tumbling, hopping, session), HAVING and SELECT DISTINCT.

Per record, ``extract`` yields (event time, partition, group key, aggregate arguments, record); per
group, ``project`` turns key ``k``, accumulated values ``a`` and window bounds ``ws``/``we`` into the
result row (None when HAVING rejects it). The operator (operators/aggregate.py) holds the groups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from velo.grammar import ast

from ..expressions import error
from ..functions.aggregates import accumulator
from ..operators.aggregate import AggregateProcessor, WindowSpec
from ..operators.output import Output, RowEncoder, with_encode_errors
from ..plan import Aggregate, Filter, OutputColumn, Project, QueryPlan
from ..processor import Mode, Processor
from ..time import Watermarks
from ..types import format_timestamp
from ..validate import JobOptions
from .base import QueryBase
from .codegen import Codegen, decode_lines, loop
from .model import CompiledQuery
from .sqlutil import constant, source_columns

WINDOW_START = ("_window_start", "window_start", "windowstart")
WINDOW_END = ("_window_end", "window_end", "windowend")
BOUND_FUNCTIONS = ("TUMBLE_START", "TUMBLE_END", "WINDOWSTART", "WINDOWEND")


def _timestamp_text(v: Any) -> Any:
    """A TIMESTAMP column's JSON value, as ``Output.row`` makes it (epoch ms → ISO-8601 text)."""
    return format_timestamp(v) if isinstance(v, int) else v


def _key_code(parts: list[str], never_null: set[str]) -> str:
    """Code of ``key_bytes([parts])`` inline (``a|b``; None when there are none); ``never_null`` skips the test."""

    def text(p: str) -> str:
        return f"str({p})" if p in never_null else f"('' if {p} is None else str({p}))"

    if not parts:
        return "None"
    if len(parts) == 1:
        p = parts[0]
        return f"str({p}).encode()" if p in never_null else f"(None if {p} is None else str({p}).encode())"
    return "(" + " + '|' + ".join(text(p) for p in parts) + ").encode()"


def encode_rows(cg: Codegen, names: list[str], types: list[str], pk: list[int], n_groups: int, windowed: bool,
                encoder: RowEncoder | None) -> None:
    """``agg_encode(values, k, ws, out, upsert)``: an aggregate's result row as ``Output.row`` encodes it.

    The same ``(key, value)`` bytes, without its per-row work on the query's shape: the Kafka key is the
    PRIMARY KEY columns, else group key ``k`` [+ window start ``ws``], each joined inline; the value is the
    dict literal of the output names, TIMESTAMP columns as text for JSON, or the sink's ``encoder`` (Avro),
    whose refusal ``out.refuse`` notes for ``with_encode_errors``. An upsert under a PRIMARY KEY records
    its key in ``out.sent_keys``, where the retraction of the operator's key finds it.
    """
    op_parts = [f"k[{i}]" for i in range(n_groups)] + (["ws"] if windowed else [])
    op_key = _key_code(op_parts, {"ws"})  # a window start is an int
    lines = ["def agg_encode(values, k, ws, out, upsert):"]
    if pk:
        lines.append(f"    kb = {_key_code([f'values[{i}]' for i in pk], set())}")
        lines.append(f"    if upsert: out.sent_keys[{op_key}] = kb")
    else:
        lines.append(f"    kb = {op_key}")
    ts = cg.bind(_timestamp_text, "_ts")
    if encoder is None:
        fields = [f"{n!r}: {ts}(values[{i}])" if t == "TIMESTAMP" else f"{n!r}: values[{i}]"
                  for i, (n, t) in enumerate(zip(names, types, strict=True))]
        lines.append("    return (kb, _dumps({" + ", ".join(fields) + "}))")
    else:
        fields = [f"{n!r}: values[{i}]" for i, n in enumerate(names)]
        lines += ["    o = {" + ", ".join(fields) + "}",
                  "    try:",
                  f"        return (kb, {cg.bind(encoder, '_venc')}(o))",
                  "    except Exception as exc:",
                  "        return out.refuse(kb, o, exc)"]
    cg.add(lines)


@dataclass(frozen=True)
class LoweredAggregate:
    """An Aggregate node lowered: its generated functions and settings, for whoever drives the operator.

    ``extract`` turns the input batch into (event time, partition, group key, arguments, record) tuples;
    ``project`` (HAVING and the select list) and ``encode`` (``agg_encode``) work per group.
    """

    extract: Callable[[Any], Any]
    project: Callable[..., Any]
    encode: Callable[..., Any]
    specs: list[tuple[Any, tuple[Any, ...]]]
    window: WindowSpec | None
    emit: str
    names: list[str]
    types: list[str]
    distinct: bool
    encoder: RowEncoder | None
    pk: list[int]
    plan: QueryPlan

    def processor(self, mode: Mode, opts: JobOptions, feed: bool = True) -> tuple[AggregateProcessor, Output]:
        """A fresh operator and its output; ``feed`` False when a join hands it extracted tuples."""
        output = Output(mode, self.names, self.types, self.pk, self.encoder)
        agg = AggregateProcessor(self.extract if feed else None, self.project, self.specs, self.window, self.emit,
                                 output, Watermarks(opts.out_of_orderness_ms, opts.idle_timeout_ms),
                                 self.distinct, self.encode)
        return agg, output


class AggregatePlanner(QueryBase):
    """Lowers ``Project(Filter HAVING?(Aggregate(Filter?(input))))``, over one stream or a join's rows."""

    def _group_exprs(self) -> list[ast.Expr]:
        out = []
        for g in self.select.group_by:
            if isinstance(g, ast.Column) and g.qualifier is None and g.name in self.aliases:
                try:
                    self._resolve(g)
                    known = all(r.columns is not None for r in self.relations)
                except Exception:
                    known = True
                    g = self.aliases[g.name]
                else:
                    if not known and g.name not in source_columns(self.relations):
                        g = self.aliases[g.name]
            if isinstance(g, ast.Literal) and isinstance(g.value, int) and not isinstance(g.value, bool):
                if not 1 <= g.value <= len(self.select.items):
                    raise error(f"GROUP BY position {g.value} is out of range", g)
                g = self.select.items[g.value - 1].expr
            out.append(g)
        return out

    def _aggregate(self) -> CompiledQuery:
        """One stream aggregated: the operator reads the records through ``extract``."""
        low = self._lower_aggregate(None)
        opts = self.opts

        def factory(mode: Mode) -> Processor:
            agg, output = low.processor(mode, opts)
            return with_encode_errors(agg, output)

        return CompiledQuery(low.plan, self._inputs(), self.cg.source, factory)

    def _lower_aggregate(self, row_access: Callable[[ast.Column], str] | None) -> LoweredAggregate:
        """The tree's aggregation as generated code; ``row_access`` reads a join's rows (None: one stream)."""
        cg = self.cg
        assert self.tree is not None
        project = self.tree.child
        assert isinstance(project, Project)
        having = project.child if isinstance(project.child, Filter) and project.child.clause == "HAVING" else None
        node = (having or project).child
        assert isinstance(node, Aggregate)
        # The Filters under the Aggregate (a join's residual ON, then WHERE) as one condition, WHERE first.
        where: ast.Expr | None = None
        for f in node.child.filters_below()[0]:
            where = f.condition if where is None else ast.BinaryOp("AND", f.condition, where)
        groups, aggs, distinct = list(node.keys), list(node.aggregates), node.distinct
        window = node.window
        wspec = None if window is None else WindowSpec(window.kind, window.size_ms, window.advance_ms, window.grace_ms)
        emit = node.emit
        # -- per record: event time, group key, aggregate arguments
        if row_access is not None:
            ec = cg.compiler(row_access, record_var="m")
        else:
            ec = cg.compiler(self._access({0: "r"}, direct=True), record_var="m")
        self._current = ec
        key_code = "(" + "".join(f"{ec.compile(g)}, " for g in groups) + ")"
        arg_codes = []
        specs = []
        for call in aggs:
            params = tuple(constant(a, call) for a in call.args[1:])
            if call.star or (call.name == "COUNT" and not call.args):
                arg_codes.append("1")
            else:
                arg_codes.append(ec.compile(call.args[0]))
            specs.append((accumulator(call.name, call.distinct), params))
        args_code = "(" + "".join(f"{c}, " for c in arg_codes) + ")"
        if row_access is not None:
            body = [self._unpack]
            if where is not None:
                body.append(f"if not {ec.predicate(where)}: continue")
            body.append("et = (L.get('_event_time') if L else R.get('_event_time'))")
            body.append(f"append((et, m.partition, {key_code}, {args_code}, m))")
            cg.add(loop(body, "extract", item="item", record="item[-1]"))
        else:
            rel = self.relations[0]
            decode = decode_lines(cg, rel, True, set())
            if where is not None:
                decode.append(f"if not {ec.predicate(where)}: continue")
            decode.append(f"append((et, m.partition, {key_code}, {args_code}, m))")
            cg.add(loop(decode, "extract"))
        # -- per group: HAVING and the result row from key k, aggregates a, window ws/we
        group_index = {g: i for i, g in enumerate(groups)}
        group_names = {g.name: i for i, g in enumerate(groups) if isinstance(g, ast.Column)}
        agg_index = {c: i for i, c in enumerate(aggs)}
        active: set[str] = set()

        def sub(e: ast.Expr) -> str | None:
            if isinstance(e, ast.FunctionCall) and e in agg_index:
                return f"a[{agg_index[e]}]"
            if e in group_index:
                return f"k[{group_index[e]}]"
            if isinstance(e, ast.FunctionCall) and e.name in BOUND_FUNCTIONS:
                if window is None:
                    raise error(f"{e.name} needs a WINDOW", e)
                return "ws" if e.name in ("TUMBLE_START", "WINDOWSTART") else "we"
            if isinstance(e, ast.Column):
                if e.name in WINDOW_START and e.qualifier is None:
                    if window is None:
                        raise error(f"{e.name} needs a WINDOW", e)
                    return "ws"
                if e.name in WINDOW_END and e.qualifier is None:
                    if window is None:
                        raise error(f"{e.name} needs a WINDOW", e)
                    return "we"
                if e.name in group_names and (e.qualifier is None or groups[group_names[e.name]] == e):
                    return f"k[{group_names[e.name]}]"
                if e.qualifier is None and e.name in self.aliases and e.name not in group_names \
                        and e.name not in active:
                    active.add(e.name)
                    try:
                        return pec.compile(self.aliases[e.name])
                    finally:
                        active.discard(e.name)
                raise error(f"column '{e.name}' must appear in GROUP BY or inside an aggregate",
                            e, [f"GROUP BY {e.name}"])
            return None

        def no_columns(col: ast.Column) -> str:
            raise error(f"column '{col.name}' must appear in GROUP BY or inside an aggregate", col)

        pec = cg.compiler(no_columns, sub, record_var=None)
        names, types = project.names, list(project.item_types)
        values = [pec.compile(e) for _, e in project.items]
        lines = ["def project(k, a, ws, we):"]
        if having is not None:
            lines.append(f"    if not {pec.predicate(having.condition)}: return None")
        lines.append(f"    return [{', '.join(values)}]")
        cg.add(lines)
        pk = self._primary_key(names)
        encoder = self._sink_encoder(list(zip(names, types, strict=True)))
        encode_rows(cg, names, types, pk, len(groups), window is not None, encoder)
        ns = cg.build(self.relations[0].spec.topic)
        plan = self._plan("aggregate" if row_access is None else "join",
                          [OutputColumn(n, ty) for n, ty in zip(names, types, strict=True)], emit)
        return LoweredAggregate(ns["extract"], ns["project"], ns["agg_encode"], specs, wspec, emit, names, types,
                                distinct, encoder, pk, plan)
