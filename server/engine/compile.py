"""AST → plan → generated Python: each query's per-record work becomes functions over a batch.

The compiler resolves the query's relations (dialect.md §2: inline WITH definition, catalog entry,
topic), validates it (validate.py), picks the operator family and generates, as source text, the
functions that run per record — decode, cast declared columns, event time, WHERE, keys, aggregate
arguments, projection — ``compile()``d once per query. Operators (operators/) hold the state in
between and call those functions once per batch. Record errors are collected, not raised, and
handed back for the job's failure strategy.

Families: ``filter_project`` (one fused function), ``aggregate`` (GROUP BY, windows, DISTINCT),
``join`` (stream–table, stream–stream; then filter/project or aggregate), ``over`` (analytic).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from velo.grammar import ast

from ..connectors.base import OutputRow
from ..connectors.formats import avro_decoder, avro_schema, csv_decoder
from .catalog import Catalog, CatalogEntry
from .expressions import RUNTIME, ExprCompiler, error, infer_type
from .functions import lookup
from .functions.aggregates import accumulator
from .operators.aggregate import AggregateProcessor, WindowSpec
from .operators.join import StreamStreamJoin, StreamTableJoin
from .operators.output import Output, dumps, json_default
from .operators.over import OverCall, OverProcessor
from .plan import OutputColumn, QueryPlan
from .processor import Emitted, Mode, Processor, RecordErrors, RowEvent
from .time import Watermarks, event_time_parser
from .types import caster, parse_timestamp, type_name
from .validate import (
    JobOptions,
    aggregates_in,
    analytic_calls,
    check_path,
    check_properties,
    check_select_rules,
    load_config_file,
    unknown,
    walk,
)

SYSTEM_COLUMNS = ("_key", "_timestamp", "_event_time", "_partition", "_offset", "_topic")
WINDOW_START = ("_window_start", "window_start", "windowstart")
WINDOW_END = ("_window_end", "window_end", "windowend")
_BOUND_FUNCTIONS = ("TUMBLE_START", "TUMBLE_END", "WINDOWSTART", "WINDOWEND")


@dataclass(frozen=True)
class InputSpec:
    """Something a query reads: a Kafka topic or a file, as a stream or a table."""

    name: str
    topic: str
    kind: str = "kafka"  # "kafka" | "file"
    format: str = "json"
    path: str | None = None
    role: str = "stream"  # "stream" | "table"
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class CompiledQuery:
    """A plan with its generated functions; ``processor()`` gives the per-run object drivers use.

    ``inputs`` lists what the driver must read; it feeds input ``i``'s records with
    ``process(records, i)``. A file table read at start (stream–table join) is not an input.
    """

    plan: QueryPlan
    inputs: tuple[InputSpec, ...]
    source_code: str
    _factory: Callable[[Mode], Processor]

    def processor(self, mode: Mode) -> Processor:
        """A fresh processor: ``encode`` for jobs (Kafka rows), ``rows`` for clients."""
        return self._factory(mode)

    def explain(self) -> str:
        """The plan and the generated source, as EXPLAIN shows them."""
        return f"{self.plan.describe()}\n\nGenerated code:\n{self.source_code}"


# ---------------------------------------------------------------- relations


@dataclass
class Relation:
    """A resolved FROM/JOIN relation."""

    name: str
    alias: str
    index: int  # input index (a self-join's two relations share one input)
    spec: InputSpec
    columns: list[str] | None  # None: unknown (schema inferred from records)
    types: dict[str, ast.DataType] = field(default_factory=dict)
    key_column: str | None = None
    ts_field: str | None = None
    ts_format: str = "epoch_millis"
    delimiter: str = ","
    has_headers: bool = True
    path: Path | None = None
    watch: bool = False

    def has(self, column: str) -> bool:
        return self.columns is None or column in self.columns or column in SYSTEM_COLUMNS


def _resolve_relation(ref: ast.TableRef, inline: dict[str, dict[str, Any]], catalog: Catalog | None,
                      data_dir: Any, opts: JobOptions, index: int,
                      star_columns: Sequence[str] | None) -> Relation:
    alias = ref.alias or ref.name
    props = inline.get(ref.name) or inline.get(alias)
    entry = catalog.get(ref.name) if catalog is not None else None
    if props is not None and str(props.get("type", "kafka_source")).lower() in ("kafka_source",
                                                                              "file_source"):
        kind = "file" if str(props.get("type", "")).lower() == "file_source" else "kafka"
        fmt = str(props.get("format", "json")).lower()
        topic = str(props.get("topic") or props.get("topic.name") or ref.name)
        rel = Relation(ref.name, alias, index, InputSpec(alias, topic, kind, fmt), None)
        rel.delimiter = str(props.get("delimiter", ","))
        rel.has_headers = str(props.get("has_headers", "true")).lower() != "false"
        rel.watch = str(props.get("watch", "false")).lower() == "true"
        if kind == "file":
            if not props.get("path"):
                raise error(f"'{ref.name}.path' is required for a file_source", ref)
            rel.path = check_path(str(props["path"]), data_dir, ref)
            if not rel.path.exists():
                raise error(f"file '{props['path']}' of '{ref.name}' does not exist", ref)
            from ..connectors.files import file_columns

            rel.columns = file_columns(rel.path, fmt, rel.delimiter) or None
            rel.spec = InputSpec(alias, topic, "file", fmt, str(rel.path), "table")
        if entry is not None:
            _apply_entry(rel, entry)
        if rel.ts_field is None and rel.spec.role != "table":  # a table row has no event time
            rel.ts_field = opts.event_time_field
        return rel
    if entry is not None:
        kind = "file" if entry.source_type == "file_source" else "kafka"
        role = "table" if entry.kind == "table" or kind == "file" else "stream"
        rel = Relation(ref.name, alias, index,
                       InputSpec(alias, entry.topic or ref.name, kind, entry.format, entry.path, role),
                       None)
        if kind == "file":
            assert entry.path is not None
            rel.path = check_path(entry.path, data_dir, ref)
            rel.spec = InputSpec(alias, entry.topic or ref.name, kind, entry.format, str(rel.path), role)
        _apply_entry(rel, entry)
        if rel.ts_field is None and role != "table":
            rel.ts_field = opts.event_time_field
        return rel
    rel = Relation(ref.name, alias, index, InputSpec(alias, ref.name), None)
    if star_columns is not None and index == 0:
        rel.columns = list(star_columns)
    rel.ts_field = opts.event_time_field
    return rel


def _apply_entry(rel: Relation, entry: CatalogEntry) -> None:
    if entry.columns:
        rel.columns = entry.column_names()
        for c in entry.columns:
            t = c.data_type
            if t is not None:
                rel.types[c.name] = t
    rel.key_column = entry.key_column
    rel.ts_field = entry.timestamp
    rel.ts_format = entry.timestamp_format or "epoch_millis"
    rel.delimiter = str(entry.options.get("delimiter", ","))
    rel.has_headers = str(entry.options.get("has_headers", "true")).lower() != "false"
    rel.watch = str(entry.options.get("watch", "false")).lower() == "true"


# ---------------------------------------------------------------- code generation helpers


def _loop(body: list[str], name: str, item: str = "m", record: str = "m") -> list[str]:
    """The batch loop around ``body`` (which reads ``item`` and appends to ``out``)."""
    return [
        f"def {name}(batch):",
        "    out = []",
        "    append = out.append",
        "    errors = None",
        f"    for {item} in batch:",
        "        try:",
        *("            " + line for line in body),
        "        except Exception as exc:",
        "            if errors is None:",
        "                errors = []",
        f"            errors.append(({record}, exc))",
        "    return out, errors",
    ]


def _decode_key(key: bytes | None) -> str | None:
    return None if key is None else key.decode("utf-8", "replace")


class _Codegen:
    """Shared state while generating one query's source: namespace and function texts."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {**RUNTIME, "loads": orjson.loads, "dumps": orjson.dumps,
                                          "_dumps": dumps, "_dkey": _decode_key, "RowEvent": RowEvent}
        self.parts: list[str] = []
        self._n = 0

    def bind(self, value: Any, prefix: str) -> str:
        self._n += 1
        name = f"{prefix}{self._n}"
        self.namespace[name] = value
        return name

    def add(self, lines: list[str]) -> None:
        self.parts.append("\n".join(lines))

    subquery: Callable[[ast.Select], str] | None = None
    column_type: Callable[[ast.Column], str] | None = None

    def compiler(self, column_source: Callable[[ast.Column], str],
                 substitute: Callable[[ast.Expr], str | None] | None = None,
                 record_var: str | None = "m") -> ExprCompiler:
        ec = ExprCompiler(column_source, substitute, self.namespace, record_var, self.subquery,
                          self.column_type)
        ec._consts = self._n + 1000 * (len(self.parts) + 1)
        return ec

    def build(self, label: str) -> dict[str, Any]:
        source = "\n\n".join(self.parts)
        exec(compile(source, f"<velo query {label}>", "exec"), self.namespace)
        return self.namespace

    @property
    def source(self) -> str:
        return "\n\n".join(self.parts)


def _decode_lines(cg: _Codegen, rel: Relation, need_et: bool, store: set[str]) -> list[str]:
    """Lines decoding record ``m`` into dict ``r`` (typed), plus ``et`` when the query needs it.

    ``store`` lists system columns to keep in ``r`` (rows that outlive the record: joins, OVER).
    """
    fmt = rel.spec.format
    if rel.spec.kind == "file" or fmt == "json":
        lines = ["r = loads(m.value)"]
    elif fmt == "csv":
        if not rel.columns:
            raise error(f"a CSV stream needs declared columns: CREATE STREAM {rel.name} (...)")
        dec = cg.bind(csv_decoder(rel.columns, rel.delimiter), "_csv")
        lines = [f"r = {dec}(m.value)"]
    else:
        if not rel.columns:
            raise error(f"an Avro stream needs declared columns: CREATE STREAM {rel.name} (...)")
        schema = avro_schema(rel.name, [(c, type_name(rel.types[c]) if c in rel.types else "STRING")
                                        for c in rel.columns])
        dec = cg.bind(avro_decoder(schema), "_avro")
        lines = [f"r = {dec}(m.value)"]
    if rel.types:
        casts = {name: caster(t) for name, t in rel.types.items()}
        key_col = rel.key_column

        def cast_row(r: dict[str, Any], m: Any) -> dict[str, Any]:
            if key_col is not None:
                k = m.key
                r[key_col] = None if k is None else k.decode("utf-8", "replace")
            for name, cast in casts.items():
                v = r.get(name)
                if v is not None:
                    try:
                        r[name] = cast(v)
                    except Exception as exc:
                        raise ValueError(f"column {name}: {exc}") from exc
            return r

        lines.append(f"r = {cg.bind(cast_row, '_typed')}(r, m)")
    if need_et or "_event_time" in store:
        if rel.ts_field is not None:
            parse = cg.bind(event_time_parser(rel.ts_format), "_et")
            lines.append(f"et = {parse}(r.get({rel.ts_field!r}))")
        else:
            lines.append("et = m.timestamp")
    system = {"_key": "_dkey(m.key)", "_timestamp": "m.timestamp", "_event_time": "et",
              "_partition": "m.partition", "_offset": "m.offset", "_topic": "m.topic"}
    for col in SYSTEM_COLUMNS:
        if col in store:
            lines.append(f"r[{col!r}] = {system[col]}")
    return lines


def _system_direct(name: str) -> str | None:
    return {"_key": "_dkey(m.key)", "_timestamp": "m.timestamp", "_event_time": "et",
            "_partition": "m.partition", "_offset": "m.offset", "_topic": "m.topic"}.get(name)


# ---------------------------------------------------------------- the compiler


class _Query:
    """Compiles one SELECT."""

    def __init__(self, select: ast.Select, star_columns: Sequence[str] | None, catalog: Catalog | None,
                 properties: dict[str, Any] | None, data_dir: Any, sink_name: str | None) -> None:
        self.select = select
        self.catalog = catalog
        props = {k.lower(): v for k, v in (properties or {}).items()}
        props.update({p.key.lower(): p.value for p in select.properties})
        names = [select.from_.name, *(j.table.name for j in select.joins)]
        names += [r.alias for r in (select.from_, *(j.table for j in select.joins)) if r.alias]
        if sink_name:
            names.append(sink_name)
        self.opts, inline = check_properties(props, names)
        for rel_name, rel_props in inline.items():
            if "config_file" in rel_props:
                inline[rel_name] = {**load_config_file(str(rel_props["config_file"]), data_dir, rel_name),
                                    **rel_props}
        check_select_rules(select)
        self.relations: list[Relation] = []
        refs = [select.from_, *(j.table for j in select.joins)]
        for i, ref in enumerate(refs):
            rel = _resolve_relation(ref, inline, catalog, data_dir, self.opts, i, star_columns)
            if any(r.alias == rel.alias for r in self.relations):
                raise error(f"the alias '{rel.alias}' is used twice; give each relation its own alias",
                            ref)
            self.relations.append(rel)
        if select.window is not None and select.window.time_column is not None:
            rel0 = self._column_relation(select.window.time_column)
            rel0.ts_field = select.window.time_column.name
        self.aliases: dict[str, ast.Expr] = {}
        for item in select.items:
            if item.alias and not isinstance(item.expr, ast.Star):
                self.aliases[item.alias] = item.expr
        self.cg = _Codegen()
        self.cg.subquery = self._subquery
        self.cg.column_type = self._column_type
        self._props = props
        self._data_dir = data_dir
        self._allowed: set[str] = set()
        self._pair_access: Callable[[ast.Column], str] | None = None
        self._agg_parts: tuple[Any, ...] = ()
        self._unpack = "L, R, m = item"

    # ------------------------------------------------------------ name resolution

    def _column_relation(self, col: ast.Column) -> Relation:
        rel, _ = self._resolve(col)
        return rel

    def _resolve(self, col: ast.Column) -> tuple[Relation, ast.Expr | None]:
        """The relation of ``col``; a struct access replaces ``a.b`` when ``a`` is a column."""
        rels = self.relations
        if col.qualifier is not None:
            for rel in rels:
                if col.qualifier in (rel.alias, rel.name):
                    if not rel.has(col.name):
                        raise unknown(f"column of {rel.alias}", col.name, rel.columns or (), col)
                    return rel, None
            base = ast.Column(col.qualifier, span=col.span)
            for rel in rels:
                if rel.columns is not None and col.qualifier in rel.columns:
                    return rel, ast.FieldAccess(base, col.name, span=col.span)
            if len(rels) == 1 and rels[0].columns is None:
                return rels[0], ast.FieldAccess(base, col.name, span=col.span)
            raise unknown("relation", col.qualifier, [r.alias for r in rels], col)
        name = col.name
        if name in SYSTEM_COLUMNS:
            return rels[0], None
        known = [r for r in rels if r.columns is not None and name in r.columns]
        if len(known) > 1:
            raise error(f"column '{name}' is ambiguous: qualify it ({', '.join(r.alias for r in known)})",
                        col, [f"{r.alias}.{name}" for r in known])
        if known:
            return known[0], None
        open_rels = [r for r in rels if r.columns is None]
        if open_rels:
            return open_rels[0], None
        names = [c for r in rels for c in (r.columns or ())] + list(self.aliases)
        raise unknown("column", name, names, col)

    def _column_type(self, col: ast.Column) -> str:
        if col.name in SYSTEM_COLUMNS:
            return "STRING" if col.name in ("_key", "_topic") else "BIGINT"
        try:
            rel, sub = self._resolve(col)
        except Exception:
            return "ANY"
        t = rel.types.get(col.name) if sub is None else None
        return type_name(t) if t is not None else "ANY"

    def _access(self, variables: dict[int, str], direct: bool) -> Callable[[ast.Column], str]:
        """Column access code: ``direct`` reads system columns from the record ``m``."""

        def access(col: ast.Column) -> str:
            rel, sub = self._resolve(col)
            var = variables[rel.index if rel.index in variables else 0]
            if sub is not None:
                assert isinstance(sub, ast.FieldAccess) and isinstance(sub.operand, ast.Column)
                return f"_field({var}.get({sub.operand.name!r}), {sub.field!r})"
            if direct and col.name in SYSTEM_COLUMNS:
                code = _system_direct(col.name)
                assert code is not None
                return code
            return f"{var}.get({col.name!r})"

        return access

    def _alias_substitute(self, allowed: set[str]) -> Callable[[ast.Expr], str | None]:
        """Lets later items reuse an earlier alias (not WHERE): compile the aliased expression.

        ``allowed`` is consulted at call time (the projection grows it item by item); a name
        that is a known source column stays the column.
        """
        active: set[str] = set()

        def sub(node: ast.Expr) -> str | None:
            if not (isinstance(node, ast.Column) and node.qualifier is None):
                return None
            name = node.name
            if name not in allowed or name in active or name in SYSTEM_COLUMNS:
                return None
            if name in _source_columns(self.relations):
                return None
            active.add(name)
            try:
                return self._current.compile(self.aliases[name])
            finally:
                active.discard(name)

        return sub

    _current: ExprCompiler

    def _needed_system(self) -> set[str]:
        names = set()
        for node in walk((self.select.items, self.select.where, self.select.group_by,
                          self.select.having, tuple(j.on for j in self.select.joins))):
            if isinstance(node, ast.Column) and node.name in SYSTEM_COLUMNS:
                names.add(node.name)
        return names

    def _subquery(self, sub: ast.Select) -> str:
        """Evaluate an uncorrelated subquery over a file table now; the name bound to its rows."""
        inner = _Query(sub, None, self.catalog, self._props, self._data_dir, None)
        rel = inner.relations[0]
        if rel.spec.kind != "file" or rel.path is None:
            raise error("a subquery must read a file table ('<name>.type' = 'file_source' or a "
                        "catalog TABLE with a path)", sub.from_)
        for node in walk((sub.items, sub.where)):
            if isinstance(node, ast.Column) and node.qualifier is not None and \
                    node.qualifier not in (rel.alias, rel.name):
                raise error("correlated subqueries are not supported", node)
        compiled = inner.compile()
        from ..connectors.base import Record
        from ..connectors.files import read_rows

        rows = read_rows(rel.path, rel.spec.format, rel.delimiter, rel.has_headers, rel.columns)
        processor = compiled.processor("rows")
        records = [Record(orjson.dumps(r), offset=i) for i, r in enumerate(rows)]
        events = processor.process(records).rows + processor.finish().rows
        final: dict[Any, list[Any]] = {}
        plain: list[list[Any]] = []
        for e in events:
            if e.op == "insert":
                plain.append(e.values)
            elif e.op == "upsert":
                final[repr(e.key)] = e.values
            else:
                final.pop(repr(e.key), None)
        from .expressions import SubqueryResult

        return self.cg.bind(SubqueryResult(plain + list(final.values())), "_sq")

    # ------------------------------------------------------------ output shape

    def _items(self) -> list[tuple[str, ast.Expr | None, str | None]]:
        """(output name, expression, star-source) per result column; ``*`` expands when known."""
        out: list[tuple[str, ast.Expr | None, str | None]] = []
        seen: set[str] = set()
        for i, item in enumerate(self.select.items, start=1):
            if isinstance(item.expr, ast.Star):
                rels = [r for r in self.relations
                        if item.expr.qualifier is None or item.expr.qualifier in (r.alias, r.name)]
                if not rels:
                    raise unknown("relation", item.expr.qualifier or "", [r.alias for r in self.relations],
                                  item.expr)
                for rel in rels:
                    if rel.columns is None:
                        out.append(("*", None, rel.alias))
                        continue
                    for c in rel.columns:
                        if c not in seen:
                            seen.add(c)
                            out.append((c, ast.Column(c, rel.alias), None))
                continue
            base = name = _output_name(item, i)
            n = 1
            while name in seen:
                n += 1
                name = f"{base}_{n}"
            seen.add(name)
            out.append((name, item.expr, None))
        return out

    def _primary_key(self, names: list[str]) -> list[int]:
        """Output positions of the ``PRIMARY KEY`` items (they become the Kafka key)."""
        keys = []
        for i, item in enumerate(self.select.items, start=1):
            if item.primary_key:
                name = item.alias or _output_name(item, i)
                if name in names:
                    keys.append(names.index(name))
        return keys

    # ------------------------------------------------------------ families

    def compile(self) -> CompiledQuery:
        s = self.select
        has_agg = bool(s.group_by) or s.having is not None or s.window is not None or any(
            aggregates_in(i.expr) for i in s.items)
        if s.distinct and not has_agg:
            return self._aggregate(distinct=True)
        if s.joins:
            return self._join(has_agg)
        if has_agg:
            return self._aggregate()
        if analytic_calls((s.items, s.where)):
            return self._over()
        return self._filter_project()

    def _inputs(self) -> tuple[InputSpec, ...]:
        seen: dict[int, InputSpec] = {}
        for rel in self.relations:
            if rel.spec.kind == "file" and rel.index > 0:
                continue  # a file table is read at start, not streamed
            seen.setdefault(rel.index, rel.spec)
        return tuple(seen[i] for i in sorted(seen))

    def _plan(self, operator: str, columns: list[OutputColumn], emit: str, steps: list[str],
              warnings: tuple[str, ...] = ()) -> QueryPlan:
        sources = []
        for rel in self.relations:
            where = f"file '{rel.spec.path}'" if rel.spec.kind == "file" else f"kafka topic '{rel.spec.topic}'"
            cols = f" columns ({', '.join(rel.columns)})" if rel.columns else ""
            sources.append(f"Source {rel.alias}: {where}, {rel.spec.format.upper()} {rel.spec.role}{cols}")
        return QueryPlan(
            source=self.relations[0].spec.topic, operator=operator, columns=tuple(columns),
            emit=emit, limit=self.select.limit, steps=tuple(sources + steps),
            sources=tuple(r.spec.topic for r in self.relations), late_strategy=self.opts.late_strategy,
            warnings=warnings,
        )

    def _watermarks(self) -> Watermarks:
        return Watermarks(self.opts.out_of_orderness_ms, self.opts.idle_timeout_ms)

    # ------------------------------------------------------------ filter / project

    def _filter_project(self) -> CompiledQuery:
        s, cg = self.select, self.cg
        rel = self.relations[0]
        items = self._items()
        direct = self._access({0: "r"}, direct=True)
        ec = cg.compiler(direct)
        self._current = ec
        need_et = "_event_time" in self._needed_system()
        decode = _decode_lines(cg, rel, need_et, set())
        if s.where is not None:
            decode.append(f"if not {ec.predicate(s.where)}: continue")
        ec.substitute = self._alias_substitute(self._allowed)
        star = any(e is None for _, e, _ in items)
        values = []
        self._allowed.clear()
        for name, e, _ in items:
            if e is not None:
                values.append((name, ec.compile(e)))
                if name in self.aliases:
                    self._allowed.add(name)
        types = {name: infer_type(e, self._column_type) for name, e, _ in items if e is not None}
        names = [n for n, _ in values]
        pk = self._primary_key(names)
        ts_cols = [n for n in names if types[n] == "TIMESTAMP"]
        if star and not values:
            encode_body = [*decode, "append((m.key, m.value))" if rel.spec.format == "json" and not rel.types
                           else "append((m.key, _dumps(r)))"]
        else:
            fields = ", ".join(f"{n!r}: {c}" for n, c in values)
            obj = f"{{**r, {fields}}}" if star else f"{{{fields}}}"
            encode_body = [*decode, f"o = {obj}"]
            for n in ts_cols:
                fmt = cg.bind(_iso_or_none, "_iso")
                encode_body.append(f"o[{n!r}] = {fmt}(o[{n!r}])")
            if pk:
                kb = cg.bind(_key_of, "_key")
                key = f"{kb}([{', '.join(f'o[{names[i]!r}]' for i in pk)}])"
            else:
                key = "m.key"
            encode_body.append(f"append(({key}, _dumps(o)))")
        known_star = [c for c in (rel.columns or ()) if c not in names] if star else []
        row_items = [f"r.get({c!r})" for c in known_star] + [c for _, c in values]
        rows_body = [*decode, f"append(RowEvent([{', '.join(row_items)}]))"]
        cg.add(_loop(encode_body, "encode"))
        cg.add(_loop(rows_body, "rows"))
        ns = cg.build(rel.spec.topic)
        columns = [OutputColumn(c, type_name(rel.types[c]) if c in rel.types else "ANY") for c in known_star]
        columns += [OutputColumn(n, types[n]) for n in names]
        steps = []
        if s.where is not None:
            steps.append("Filter: WHERE clause")
        steps.append(f"Project: {', '.join(names) or '*'}{' (plus every source column)' if star else ''}")
        plan = self._plan("filter_project", columns, "none" if s.emit is None else s.emit, steps)
        encode, rows = ns["encode"], ns["rows"]

        def factory(mode: Mode) -> Processor:
            return _StatelessProcessor(encode if mode == "encode" else rows)

        return CompiledQuery(plan, self._inputs(), cg.source, factory)

    # ------------------------------------------------------------ aggregation

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
                    if not known and g.name not in _source_columns(self.relations):
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
            params = tuple(_constant(a, call) for a in call.args[1:])
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
            cg.add(_loop(body, "extract", item="item", record="item[-1]"))
        else:
            rel = self.relations[0]
            decode = _decode_lines(cg, rel, True, set())
            if s.where is not None:
                decode.append(f"if not {ec.predicate(s.where)}: continue")
            decode.append(f"append((et, m.partition, {key_code}, {args_code}, m))")
            cg.add(_loop(decode, "extract"))
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
            if isinstance(node, ast.FunctionCall) and node.name in _BOUND_FUNCTIONS:
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
        types = [_agg_type(e, self._column_type) for e in exprs]
        lists_bounds = any(isinstance(n, ast.Column) and n.name in WINDOW_START + WINDOW_END
                           for e in exprs for n in walk(e)) or any(
            isinstance(n, ast.FunctionCall) and n.name in _BOUND_FUNCTIONS
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
        ns = cg.build(self.relations[0].spec.topic)
        pk = self._primary_key(names)
        steps = []
        if s.where is not None:
            steps.append("Filter: WHERE clause")
        steps.append("Group by: " + (", ".join(_sql(g) for g in groups) or "(all rows)"))
        steps.append("Aggregates: " + (", ".join(_sql(c) for c in aggs) or "none (DISTINCT)"))
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
        extract, project_fn = ns["extract"], ns["project"]
        opts = self.opts
        if pairs:
            self._agg_parts = (extract, project_fn, specs, wspec, emit, names, types, pk, distinct)
            return CompiledQuery(plan, (), cg.source, lambda mode: _no_processor())

        def factory(mode: Mode) -> Processor:
            output = Output(mode, names, types, pk)
            return AggregateProcessor(extract, project_fn, specs, wspec, emit, output,
                                      Watermarks(opts.out_of_orderness_ms, opts.idle_timeout_ms),
                                      distinct)

        return CompiledQuery(plan, self._inputs(), cg.source, factory)

    # ------------------------------------------------------------ analytic OVER

    def _over(self) -> CompiledQuery:
        s, cg = self.select, self.cg
        rel = self.relations[0]
        store = self._needed_system() | {"_event_time"}
        scan = _decode_lines(cg, rel, True, store)
        scan.append("append((r, et, m.partition, None, m))")
        cg.add(_loop(scan, "scan"))
        conds = [s.where] if s.where is not None else []
        specs, names, types, steps = self._over_code(self._access({0: "r"}, direct=False), None, conds)
        ns = cg.build(rel.spec.topic)
        plan = self._plan("over", [OutputColumn(n, t) for n, t in zip(names, types, strict=True)],
                          "none", steps)
        scan_fn, inputs_fn = ns["scan"], ns["over_inputs"]
        ttl = self.opts.over_ttl_ms

        def factory(mode: Mode) -> Processor:
            return OverProcessor(scan_fn, inputs_fn, specs, _post(ns[f"post_{mode}"]), ttl)

        return CompiledQuery(plan, self._inputs(), cg.source, factory)

    def _over_code(self, access: Callable[[ast.Column], str], unpack: str | None,
                   conds: list[ast.Expr]) -> tuple[list[OverCall], list[str], list[str], list[str]]:
        """``over_inputs(r)`` and ``post_*`` for analytic calls; ``unpack`` splits a joined row."""
        s, cg = self.select, self.cg
        items = self._items()
        calls = []
        for node in (*[e for _, e, _ in items if e is not None], s.where):
            for c in analytic_calls(node):
                if c not in calls:
                    calls.append(c)
        ec = cg.compiler(access, record_var=None)
        first = calls[0].over
        assert first is not None
        for c in calls[1:]:
            assert c.over is not None
            if c.over.partition_by != first.partition_by or c.over.order_by != first.order_by:
                raise error("every OVER of a query must use the same PARTITION BY and ORDER BY", c.over)
        pk = "(" + "".join(f"{ec.compile(p)}, " for p in first.partition_by) + ")"
        order = "(" + "".join(f"{ec.compile(o.expr)}, " for o in first.order_by) + ")"
        specs: list[OverCall] = []
        arg_tuples = []
        for c in calls:
            assert c.over is not None
            frame = c.over.frame
            fn = lookup(c.name)
            assert fn is not None
            if fn.kind == "analytic":
                if c.name == "LAG":
                    lag = int(_constant(c.args[1], c)) if len(c.args) > 1 else 1
                    if lag < 1:
                        raise error("LAG's offset must be at least 1", c)
                    default = _constant(c.args[2], c) if len(c.args) > 2 else None
                    specs.append(OverCall("LAG", None, (), None, 0, lag, default))
                    arg_tuples.append(f"({ec.compile(c.args[0])},)")
                else:
                    if c.name in ("RANK", "DENSE_RANK") and not c.over.order_by:
                        raise error(f"{c.name} needs OVER (... ORDER BY ...)", c)
                    specs.append(OverCall(c.name, None, (), None, 0))
                    arg_tuples.append("()")
                continue
            params = tuple(_constant(a, c) for a in c.args[1:])
            preceding = frame.preceding if frame is not None else None
            end = frame.end_preceding if frame is not None else 0
            if preceding is not None and end > preceding:
                raise error("the frame ends before it starts (m PRECEDING must not exceed n)", frame)
            specs.append(OverCall(c.name, accumulator(c.name, c.distinct), params, preceding, end))
            arg_tuples.append("()" if c.star or not c.args else f"({ec.compile(c.args[0])},)")
        cg.add(["def over_inputs(r):", *([f"    {unpack}"] if unpack else []),
                f"    return {pk}, {order}, ({''.join(a + ', ' for a in arg_tuples)})"])
        index = {c: i for i, c in enumerate(calls)}

        def sub(node: ast.Expr) -> str | None:
            if isinstance(node, ast.FunctionCall) and node in index:
                return f"v[{index[node]}]"
            return None

        pec = cg.compiler(access, sub, record_var="m")
        self._current = pec
        body = ["r, v, m = item", *([unpack] if unpack else [])]
        for cond in conds:
            body.append(f"if not {pec.predicate(cond)}: continue")
        pec.substitute = _chain(sub, self._alias_substitute(self._allowed))
        names, values, types = self._projection(items, pec)
        self._emit_post(body, names, values, types)
        steps = [f"Analytic: {', '.join(_sql(c) for c in calls)}"]
        if conds:
            steps.append("Filter: WHERE clause (after the analytic values)")
        return specs, names, types, steps

    def _projection(self, items: list[tuple[str, ast.Expr | None, str | None]],
                    ec: ExprCompiler) -> tuple[list[str], list[str], list[str]]:
        names: list[str] = []
        values: list[str] = []
        types: list[str] = []
        self._allowed.clear()
        for name, e, _ in items:
            if e is None:
                raise error("SELECT * needs known columns here: declare the stream "
                            "(CREATE STREAM … (cols))", self.select)
            names.append(name)
            values.append(ec.compile(e))
            types.append(infer_type(e, self._column_type))
            if name in self.aliases:
                self._allowed.add(name)
        return names, values, types

    def _emit_post(self, body: list[str], names: list[str], values: list[str], types: list[str]) -> None:
        """``post_rows`` / ``post_encode``: ``body`` (filters) then the result row, built inline."""
        cg = self.cg
        cg.add(_loop([*body, f"append(RowEvent([{', '.join(values)}]))"], "post_rows", item="item",
                     record="item[-1]"))
        enc = [*body, "o = {" + ", ".join(f"{n!r}: {v}" for n, v in zip(names, values, strict=True)) + "}"]
        for n, t in zip(names, types, strict=True):
            if t == "TIMESTAMP":
                enc.append(f"o[{n!r}] = {cg.bind(_iso_or_none, '_iso')}(o[{n!r}])")
        pk = self._primary_key(names)
        key = (f"{cg.bind(_key_of, '_key')}([{', '.join(f'o[{names[i]!r}]' for i in pk)}])" if pk
               else "m.key")
        enc.append(f"append(({key}, _dumps(o)))")
        cg.add(_loop(enc, "post_encode", item="item", record="item[-1]"))

    # ------------------------------------------------------------ joins

    def _join(self, has_agg: bool) -> CompiledQuery:
        s, cg = self.select, self.cg
        join = s.joins[0]
        left, right = self.relations[0], self.relations[1]
        self_join = left.spec.topic == right.spec.topic and left.spec.kind == right.spec.kind == "kafka" \
            and right.spec.role != "table"
        if self_join:
            right.index = 0
        keys, bound, residual = self._join_condition(join, left, right)
        is_table = right.spec.role == "table"
        if not keys and not is_table:
            raise error("a stream–stream join needs an equality key (ON a.k = b.k)", join.on)
        if not keys and not (isinstance(join.on, ast.Literal) and join.on.value is True):
            raise error("a join needs an equality key (ON a.k = b.k) or ON true", join.on)
        if is_table and join.kind not in ("inner", "left"):
            raise error(f"a stream–table join is INNER or LEFT, not {join.kind.upper()}", join)
        store = self._needed_system() | {"_event_time"}
        for side, rel in ((0, left), (1, right)):
            lines = _decode_lines(cg, rel, True, store)
            ec = cg.compiler(self._access({rel.index: "r", 0: "r", 1: "r"}, direct=False), record_var=None)
            kcode = "(" + "".join(f"{ec.compile(k[side])}, " for k in keys) + ")"
            lines.append(f"key = {kcode}")
            lines.append("if None in key: key = None")
            lines.append("append((r, et, m.partition, key, m))")
            cg.add(_loop(lines, f"scan{side}"))
        extra = self._extra_tables()
        variables = {0: "L", 1: "R", **{j: f"T{j}" for j, _, _ in extra}}
        self._unpack = ", ".join(variables[i] for i in sorted(variables)) + ", m = item"
        if self_join:
            # Both relations share input 0, so column access must go by alias, not input index.
            def access(col: ast.Column) -> str:
                rel, sub = self._resolve(col)
                var = "L" if rel is left else "R" if rel is right else f"T{self.relations.index(rel)}"
                if sub is not None:
                    assert isinstance(sub, ast.FieldAccess) and isinstance(sub.operand, ast.Column)
                    return f"_field({var}.get({sub.operand.name!r}), {sub.field!r})"
                return f"{var}.get({col.name!r})"
            col_access: Callable[[ast.Column], str] = access
        else:
            col_access = self._access(variables, direct=False)
        ec = cg.compiler(col_access, record_var="m")
        self._current = ec
        conds = [c for c in (residual, s.where) if c is not None]
        kind = "stream-table" if is_table else ("interval" if bound is not None else "unbounded")
        steps = [f"Join: {join.kind.upper()} {kind} on "
                 f"{', '.join(_sql(a) + ' = ' + _sql(b) for a, b in keys) or 'true'}"]
        if bound is not None:
            steps.append(f"Join window: right.et - left.et in [-{bound[0]}, {bound[1]}] ms")
        warnings: tuple[str, ...] = ()
        if kind == "unbounded":
            warnings = (f"unbounded stream-stream join: state kept {self.opts.join_ttl_ms} ms, "
                        f"at most {self.opts.join_max_rows} rows",)
        has_over = bool(analytic_calls((s.items, s.where)))
        if has_over:
            row_unpack = self._unpack.replace(", m = item", " = r")
            specs_o, names, types, over_steps = self._over_code(col_access, row_unpack, conds)
            steps += over_steps
            post_kind = "over"
        elif has_agg:
            if residual is not None:
                self.select = _with_where(s, residual)
            self._pair_access = col_access
            self._aggregate(pairs=True)
            agg = self._agg_parts
            extract, project_fn, specs, wspec, emit, names, types, _pk, distinct = agg
            post_kind = "aggregate"
        if not has_over and not has_agg:
            body = [self._unpack]
            for c in conds:
                body.append(f"if not {ec.predicate(c)}: continue")
            ec.substitute = self._alias_substitute(self._allowed)
            names, values, types = self._projection(self._items(), ec)
            self._emit_post(body, names, values, types)
            post_kind = "project"
        if extra:
            self._chain_code(extra, col_access)
            steps += [f"Then: {jn.kind.upper()} JOIN file table {self.relations[j].alias}"
                      for j, jn, _ in extra]
        ns = cg.build(left.spec.topic)
        scan0, scan1 = ns["scan0"], ns["scan1"]
        opts = self.opts
        grace = s.window.grace.millis if s.window is not None and s.window.grace is not None else 0
        pkeys = self._primary_key(names)
        if post_kind == "aggregate":
            steps += ["Aggregate after the join"]
        plan = self._plan("join", [OutputColumn(n, t) for n, t in zip(names, types, strict=True)],
                          (emit if post_kind == "aggregate" else "none"), steps, warnings)
        inputs = self._inputs()

        def factory(mode: Mode) -> Processor:
            output = Output(mode, names, types, pkeys)
            watermarks = Watermarks(opts.out_of_orderness_ms, opts.idle_timeout_ms)
            if post_kind == "aggregate":
                aggp = AggregateProcessor(None, project_fn, specs, wspec, emit, output,
                                          Watermarks(opts.out_of_orderness_ms, opts.idle_timeout_ms),
                                          distinct)
                post = _post_aggregate(extract, aggp)
            elif post_kind == "over":
                over = OverProcessor(None, ns["over_inputs"], specs_o, _post(ns[f"post_{mode}"]),
                                     opts.over_ttl_ms)
                post = _post_over(over)
            else:
                post = _post(ns[f"post_{mode}"])
            if extra:
                for j, _, _ in extra:  # each run reads the extra tables afresh
                    table = ns[f"_tab{j}"]
                    table.clear()
                    for row, _et, _part, key, _m in _load_table(self.relations[j], ns[f"scan{j}"]):
                        if key is not None:
                            table[key] = row
                post = _chained(ns["chain"], post)
            if is_table:
                fresh_rows = _load_table(right, scan1) if right.spec.kind == "file" else None
                watch = None
                if right.watch and right.path is not None:
                    watch = (right.path, lambda: _load_table(right, scan1))
                return StreamTableJoin(scan0, None if right.spec.kind == "file" else scan1, post,
                                       join.kind == "left", fresh_rows, watch)
            before, after = (None, None) if bound is None else bound
            return StreamStreamJoin(scan0, scan1, post, join.kind, before, after, grace,
                                    opts.join_ttl_ms, opts.join_max_rows, watermarks, self_join)

        return CompiledQuery(plan, inputs, cg.source, factory)

    def _extra_tables(self) -> list[tuple[int, ast.Join, list[tuple[ast.Expr, ast.Expr]]]]:
        """Joins after the first: file-table lookups keyed by equalities with earlier relations."""
        out = []
        for j, jn in enumerate(self.select.joins[1:], start=2):
            rel = self.relations[j]
            if rel.spec.role != "table" or rel.spec.kind != "file":
                raise error("a second or later JOIN must be a file table in this version", jn.table)
            if jn.kind not in ("inner", "left"):
                raise error(f"a join with a table is INNER or LEFT, not {jn.kind.upper()}", jn)
            keys: list[tuple[ast.Expr, ast.Expr]] = []
            for c in _conjuncts(jn.on):
                if isinstance(c, ast.Literal) and c.value is True:
                    continue
                if isinstance(c, ast.BinaryOp) and c.op == "=":
                    a, b = self._relations_of(c.left), self._relations_of(c.right)
                    if b == {j} and a and max(a) < j:
                        keys.append((c.left, c.right))
                        continue
                    if a == {j} and b and max(b) < j:
                        keys.append((c.right, c.left))
                        continue
                raise error("a table join's ON must be equalities with earlier relations (or true)", c)
            out.append((j, jn, keys))
        return out

    def _relations_of(self, e: ast.Expr) -> set[int]:
        found = set()
        for n in walk(e):
            if isinstance(n, ast.Column):
                rel, _ = self._resolve(n)
                found.add(self.relations.index(rel))
        return found

    def _chain_code(self, extra: list[tuple[int, ast.Join, list[tuple[ast.Expr, ast.Expr]]]],
                    access: Callable[[ast.Column], str]) -> None:
        """``scan{j}`` per extra table (its side of the keys) and ``chain``, which looks them up."""
        cg = self.cg
        store = self._needed_system() | {"_event_time"}
        for j, _, keys in extra:
            rel = self.relations[j]
            lines = _decode_lines(cg, rel, True, store)
            ec = cg.compiler(self._access({rel.index: "r", 0: "r"}, direct=False), record_var=None)
            lines.append("key = (" + "".join(f"{ec.compile(k[1])}, " for k in keys) + ")")
            lines.append("if None in key: key = None")
            lines.append("append((r, et, m.partition, key, m))")
            cg.add(_loop(lines, f"scan{j}"))
            cg.namespace[f"_tab{j}"] = {}
        ec = cg.compiler(access, record_var=None)
        body = ["L, R, m = item"]
        names = ["L", "R"]
        for j, jn, keys in extra:
            body.append("k = (" + "".join(f"{ec.compile(k[0])}, " for k in keys) + ")")
            body.append(f"T{j} = None if None in k else _tab{j}.get(k)")
            miss = f"T{j} = {{}}" if jn.kind == "left" else "continue"
            body.append(f"if T{j} is None: {miss}")
            names.append(f"T{j}")
        body.append(f"append(({', '.join(names)}, m))")
        cg.add(_loop(body, "chain", item="item", record="item[-1]"))

    def _join_condition(self, join: ast.Join, left: Relation, right: Relation) -> tuple[
            list[tuple[ast.Expr, ast.Expr]], tuple[int, int] | None, ast.Expr | None]:
        """Equality keys (left expr, right expr), the time bound, and the rest of ON."""
        conjuncts: list[ast.Expr] = []

        def split(e: ast.Expr) -> None:
            if isinstance(e, ast.BinaryOp) and e.op == "AND":
                split(e.left)
                split(e.right)
            else:
                conjuncts.append(e)

        split(join.on)
        keys: list[tuple[ast.Expr, ast.Expr]] = []
        rest: list[ast.Expr] = []
        bound: tuple[int, int] | None = None
        if join.within is not None:
            ms = join.within.millis
            bound = (ms, ms)
        for c in conjuncts:
            if isinstance(c, ast.Literal) and c.value is True:
                continue
            if isinstance(c, ast.BinaryOp) and c.op == "=":
                sl, sr = self._side(c.left, left, right), self._side(c.right, left, right)
                if sl == 0 and sr == 1:
                    keys.append((c.left, c.right))
                    continue
                if sl == 1 and sr == 0:
                    keys.append((c.right, c.left))
                    continue
            b = self._time_bound(c, left, right)
            if b is not None:
                bound = b
                continue
            rest.append(c)
        residual: ast.Expr | None = None
        for c in rest:
            residual = c if residual is None else ast.BinaryOp("AND", residual, c)
        return keys, bound, residual

    def _side(self, e: ast.Expr, left: Relation, right: Relation) -> int | None:
        sides = set()
        for n in walk(e):
            if isinstance(n, ast.Column):
                rel, _ = self._resolve(n)
                sides.add(0 if rel is left else 1)
        return sides.pop() if len(sides) == 1 else None

    def _time_bound(self, c: ast.Expr, left: Relation, right: Relation) -> tuple[int, int] | None:
        """``b._event_time BETWEEN a._event_time - x AND a._event_time + y`` → (x, y) in ms."""
        if not isinstance(c, ast.Between) or c.negated:
            return None
        if not (isinstance(c.operand, ast.Column) and c.operand.name == "_event_time"):
            return None

        def offset(e: ast.Expr) -> tuple[ast.Column, int] | None:
            if isinstance(e, ast.Column) and e.name == "_event_time":
                return e, 0
            if isinstance(e, ast.BinaryOp) and e.op in "+-" and isinstance(e.left, ast.Column) \
                    and e.left.name == "_event_time" and isinstance(e.right, ast.Interval | ast.Literal):
                ms = e.right.millis if isinstance(e.right, ast.Interval) else int(e.right.value or 0)
                return e.left, ms if e.op == "+" else -ms
            return None

        lo, hi = offset(c.low), offset(c.high)
        if lo is None or hi is None:
            return None
        operand_side = self._side(c.operand, left, right)
        if operand_side == 1:  # right.et in [left.et + lo, left.et + hi]
            return -lo[1], hi[1]
        if operand_side == 0:  # left.et in [right.et + lo, right.et + hi] → right - left in [-hi, -lo]
            return hi[1], -lo[1]
        return None


class _NoProcessor:
    def process(self, records: Sequence[Any], input_index: int = 0) -> Emitted:
        return Emitted()

    def tick(self, now_ms: int) -> Emitted:
        return Emitted()

    def finish(self) -> Emitted:
        return Emitted()

    def state_bytes(self) -> int:
        return 0


def _no_processor() -> Processor:
    return _NoProcessor()


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


def _post(fn: Callable[[Any], tuple[list[Any], RecordErrors | None]]) -> Callable[[Any], Emitted]:
    """Wraps a generated ``post_*`` function (which builds the output rows itself)."""

    def run(items: Any) -> Emitted:
        rows, errors = fn(items)
        return Emitted(rows, errors)

    return run


def _conjuncts(e: ast.Expr) -> list[ast.Expr]:
    """The operands of a chain of ANDs."""
    if isinstance(e, ast.BinaryOp) and e.op == "AND":
        return [*_conjuncts(e.left), *_conjuncts(e.right)]
    return [e]


def _chained(chain: Callable[[Any], tuple[list[Any], RecordErrors | None]],
             post: Callable[[Any], Emitted]) -> Callable[[Any], Emitted]:
    """Looks up the extra tables of a multi-join, then runs ``post``."""

    def run(items: Any) -> Emitted:
        rows, errors = chain(items)
        out = post(rows)
        if errors:
            out.errors = errors + (out.errors or [])
        return out

    return run


def _post_over(over: OverProcessor) -> Callable[[Any], Emitted]:
    """Feeds joined rows (all but the record) to the analytic operator."""

    def run(items: Any) -> Emitted:
        rows = []
        for item in items:
            row = item[:-1]
            et = next((d.get("_event_time") for d in row if d), 0)
            rows.append((row, et, item[-1]))
        return over.consume(rows)

    return run


def _post_aggregate(extract: Callable[[Any], tuple[list[tuple[Any, ...]], RecordErrors | None]],
                    agg: AggregateProcessor) -> Callable[[Any], Emitted]:
    def run(items: Any) -> Emitted:
        tuples, errors = extract(items)
        out = agg.consume(tuples)
        out.errors = errors
        return out

    return run


def _load_table(rel: Relation, scan: Callable[[Any], tuple[list[tuple[Any, ...]], Any]]) -> list[tuple[Any, ...]]:
    """A file table's rows, through the same generated scan as a streamed table."""
    from ..connectors.base import Record
    from ..connectors.files import read_rows

    assert rel.path is not None
    rows = read_rows(rel.path, rel.spec.format, rel.delimiter, rel.has_headers, rel.columns)
    records = [Record(orjson.dumps(r), offset=i, topic=str(rel.path)) for i, r in enumerate(rows)]
    out, _errors = scan(records)
    return out


def _chain(*subs: Callable[[ast.Expr], str | None]) -> Callable[[ast.Expr], str | None]:
    def sub(node: ast.Expr) -> str | None:
        for s in subs:
            code = s(node)
            if code is not None:
                return code
        return None

    return sub


def _with_where(select: ast.Select, extra: ast.Expr) -> ast.Select:
    from dataclasses import replace

    where = extra if select.where is None else ast.BinaryOp("AND", select.where, extra)
    return replace(select, where=where)


def _source_columns(rels: list[Relation]) -> set[str]:
    return {c for r in rels for c in (r.columns or ())}


def _constant(node: ast.Expr, call: ast.FunctionCall) -> Any:
    if isinstance(node, ast.Literal):
        return node.value
    if isinstance(node, ast.UnaryOp) and node.op == "-" and isinstance(node.operand, ast.Literal):
        return -node.operand.value  # type: ignore[operator]
    raise error(f"this argument of {call.name} must be a constant", node)


def _iso_or_none(v: Any) -> Any:
    from .types import format_timestamp

    return format_timestamp(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _key_of(values: list[Any]) -> bytes | None:
    from .operators.output import key_bytes

    return key_bytes(values)


def _agg_type(e: ast.Expr, column_type: Callable[[ast.Column], str]) -> str:
    if isinstance(e, ast.FunctionCall):
        fn = lookup(e.name)
        if fn is not None and fn.kind == "aggregate":
            if fn.return_type == "ARG":
                return infer_type(e.args[0], column_type) if e.args else "ANY"
            return fn.return_type
    return infer_type(e, column_type)


def _sql(node: ast.Node) -> str:
    try:
        from velo.grammar.printer import to_sql

        return str(to_sql(node))
    except Exception:
        return type(node).__name__


def _output_name(item: ast.SelectItem, index: int) -> str:
    if item.alias:
        return item.alias
    if isinstance(item.expr, ast.Column):
        return item.expr.name
    if isinstance(item.expr, ast.FieldAccess):
        return item.expr.field
    if isinstance(item.expr, ast.FunctionCall):
        return item.expr.name.lower()
    return f"col_{index}"


def compile_select(
    select: ast.Select,
    star_columns: Sequence[str] | None = None,
    *,
    catalog: Catalog | None = None,
    properties: dict[str, Any] | None = None,
    data_dir: Any = None,
    sink_name: str | None = None,
) -> CompiledQuery:
    """Validate, plan and compile a SELECT (raises SqlValidationError with position and suggestions).

    ``properties`` are the job's or session's WITH properties (the SELECT's own are added);
    ``catalog`` resolves declared streams/tables; file paths must lie under ``data_dir``;
    ``sink_name`` is the job's output relation (its ``'<name>.*'`` keys are allowed).
    """
    return _Query(select, star_columns, catalog, properties, data_dir, sink_name).compile()


__all__ = ["CompiledQuery", "InputSpec", "OutputRow", "compile_select", "json_default",
           "parse_timestamp"]
