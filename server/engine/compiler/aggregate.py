"""The aggregate family: GROUP BY, windows (tumbling, hopping, session), HAVING and SELECT DISTINCT.

Per record, ``extract`` yields (event time, partition, group key, aggregate arguments, record); per
group, ``project`` turns key ``k``, accumulated values ``a`` and window bounds ``ws``/``we`` into the
result row (None when HAVING rejects it). The operator (operators/aggregate.py) holds the groups.
"""

from __future__ import annotations

from typing import Any

from velo.grammar import ast

from ..expressions import error
from ..functions.aggregates import accumulator
from ..operators.aggregate import AggregateProcessor, WindowSpec
from ..operators.output import Output, RowEncoder, with_encode_errors
from ..plan import OutputColumn
from ..processor import Mode, Processor
from ..time import Watermarks
from ..types import format_timestamp
from ..validate import aggregates_in, walk
from .base import QueryBase
from .codegen import Codegen, decode_lines, loop
from .model import CompiledQuery
from .processors import no_processor
from .sqlutil import agg_type, constant, source_columns, sql

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


class AggregatePlanner(QueryBase):
    """Compiles aggregations, over one stream or (``pairs``) over a join's matched rows."""

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

    def _aggregate(self, distinct: bool = False, pairs: bool = False) -> CompiledQuery:
        s, cg = self.select, self.cg
        items = self._items()
        if any(e is None for _, e, _ in items):
            raise error("SELECT * needs known columns in an aggregation: declare the stream "
                        "(CREATE STREAM … (cols))", s)
        groups = [e for _, e, _ in items if e is not None] if distinct else self._group_exprs()
        aggs: list[ast.FunctionCall] = []
        for node in (*[e for _, e, _ in items], s.having):
            for call in aggregates_in(node):
                if call not in aggs:
                    aggs.append(call)
        window = s.window
        wspec = None
        if window is not None:
            size = window.size.millis
            advance = window.advance.millis if window.advance is not None else size
            grace = window.grace.millis if window.grace is not None else 0
            wspec = WindowSpec(window.kind, size, advance, grace)
        emit = s.emit or ("final" if window is not None else "changes")
        # -- per record: event time, group key, aggregate arguments
        if pairs:
            assert self._pair_access is not None
            ec = cg.compiler(self._pair_access, record_var="m")
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
        if pairs:
            body = [self._unpack]
            if s.where is not None:
                body.append(f"if not {ec.predicate(s.where)}: continue")
            body.append("et = (L.get('_event_time') if L else R.get('_event_time'))")
            body.append(f"append((et, m.partition, {key_code}, {args_code}, m))")
            cg.add(loop(body, "extract", item="item", record="item[-1]"))
        else:
            rel = self.relations[0]
            decode = decode_lines(cg, rel, True, set())
            if s.where is not None:
                decode.append(f"if not {ec.predicate(s.where)}: continue")
            decode.append(f"append((et, m.partition, {key_code}, {args_code}, m))")
            cg.add(loop(decode, "extract"))
        # -- per group: HAVING and the result row from key k, aggregates a, window ws/we
        group_index = {g: i for i, g in enumerate(groups)}
        group_names = {g.name: i for i, g in enumerate(groups) if isinstance(g, ast.Column)}
        agg_index = {c: i for i, c in enumerate(aggs)}
        active: set[str] = set()

        def sub(node: ast.Expr) -> str | None:
            if isinstance(node, ast.FunctionCall) and node in agg_index:
                return f"a[{agg_index[node]}]"
            if node in group_index:
                return f"k[{group_index[node]}]"
            if isinstance(node, ast.FunctionCall) and node.name in BOUND_FUNCTIONS:
                if window is None:
                    raise error(f"{node.name} needs a WINDOW", node)
                return "ws" if node.name in ("TUMBLE_START", "WINDOWSTART") else "we"
            if isinstance(node, ast.Column):
                if node.name in WINDOW_START and node.qualifier is None:
                    if window is None:
                        raise error(f"{node.name} needs a WINDOW", node)
                    return "ws"
                if node.name in WINDOW_END and node.qualifier is None:
                    if window is None:
                        raise error(f"{node.name} needs a WINDOW", node)
                    return "we"
                if node.name in group_names and (node.qualifier is None or
                                                 groups[group_names[node.name]] == node):
                    return f"k[{group_names[node.name]}]"
                if node.qualifier is None and node.name in self.aliases and node.name not in group_names \
                        and node.name not in active:
                    active.add(node.name)
                    try:
                        return pec.compile(self.aliases[node.name])
                    finally:
                        active.discard(node.name)
                raise error(f"column '{node.name}' must appear in GROUP BY or inside an aggregate",
                            node, [f"GROUP BY {node.name}"])
            return None

        def no_columns(col: ast.Column) -> str:
            raise error(f"column '{col.name}' must appear in GROUP BY or inside an aggregate", col)

        pec = cg.compiler(no_columns, sub, record_var=None)
        names = [n for n, _, _ in items]
        exprs = [e for _, e, _ in items if e is not None]
        values = [pec.compile(e) for e in exprs]
        types = [agg_type(e, self._column_type) for e in exprs]
        lists_bounds = any(isinstance(n, ast.Column) and n.name in WINDOW_START + WINDOW_END
                           for e in exprs for n in walk(e)) or any(
            isinstance(n, ast.FunctionCall) and n.name in BOUND_FUNCTIONS
            for e in exprs for n in walk(e))
        if window is not None and not lists_bounds:
            names += ["window_start", "window_end"]
            values += ["ws", "we"]
            types += ["BIGINT", "BIGINT"]
        project = ["def project(k, a, ws, we):"]
        if s.having is not None:
            project.append(f"    if not {pec.predicate(s.having)}: return None")
        project.append(f"    return [{', '.join(values)}]")
        cg.add(project)
        pk = self._primary_key(names)
        encoder = self._sink_encoder(list(zip(names, types, strict=True)))
        encode_rows(cg, names, types, pk, len(groups), window is not None, encoder)
        ns = cg.build(self.relations[0].spec.topic)
        steps = []
        if s.where is not None:
            steps.append("Filter: WHERE clause")
        steps.append("Group by: " + (", ".join(sql(g) for g in groups) or "(all rows)"))
        steps.append("Aggregates: " + (", ".join(sql(c) for c in aggs) or "none (DISTINCT)"))
        if window is not None:
            assert wspec is not None
            extra = f", advance {wspec.advance} ms" if wspec.kind == "hopping" else ""
            steps.append(f"Window: {wspec.kind} size {wspec.size} ms{extra}, grace {wspec.grace} ms "
                         f"(event time: {self.relations[0].ts_field or 'record timestamp'})")
            steps.append(f"Watermark: max event time - {self.opts.out_of_orderness_ms} ms per partition; "
                         f"late records: {self.opts.late_strategy}")
        if s.having is not None:
            steps.append("Having: HAVING clause")
        plan = self._plan("aggregate", [OutputColumn(n, t) for n, t in zip(names, types, strict=True)],
                          "changes" if distinct else emit, steps)
        extract, project_fn, encode = ns["extract"], ns["project"], ns["agg_encode"]
        opts = self.opts
        if pairs:
            self._agg_parts = (extract, project_fn, specs, wspec, emit, names, types, distinct, encoder, encode)
            return CompiledQuery(plan, (), cg.source, lambda mode: no_processor())

        def factory(mode: Mode) -> Processor:
            output = Output(mode, names, types, pk, encoder)
            return with_encode_errors(AggregateProcessor(extract, project_fn, specs, wspec, emit, output,
                                                         Watermarks(opts.out_of_orderness_ms, opts.idle_timeout_ms),
                                                         distinct, encode), output)

        return CompiledQuery(plan, self._inputs(), cg.source, factory)
