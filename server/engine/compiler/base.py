"""The compiler's common ground: one SELECT's relations, name resolution and output shape.

``QueryBase`` resolves the relations and the job options, answers "which relation, which code" for
each column reference, expands the select list and describes the plan; the planners of each
operator family (filter_project.py, aggregate.py, over.py, join.py) build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from velo.grammar import ast

from ..catalog import Catalog
from ..expressions import ExprCompiler, SubqueryRef, error
from ..operators.output import RowEncoder
from ..operators.tables import CorrelatedSubquery, LiveSubquery, TableInputs, TableState
from ..plan import OutputColumn, Project, QueryPlan, Sink
from ..processor import Mode, Processor
from ..types import type_name
from ..validate import (
    check_properties,
    check_select_rules,
    load_config_file,
    unknown,
    walk,
)
from .codegen import SYSTEM_CODE, Codegen, encode_output, loop
from .model import CompiledQuery, InputSpec
from .processors import load_table
from .relations import SYSTEM_COLUMNS, Relation, resolve_relation
from .sink import check_columns, describe, describe_target, resolve_sink, row_encoder, sink_schema, sink_target
from .sqlutil import output_name, source_columns
from .subqueries import plan_subquery


class QueryBase:
    """One SELECT being compiled: its relations, options and code generator."""

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
        self.opts, inline = check_properties(props, names, sink=sink_name)
        for rel_name, rel_props in inline.items():
            if "config_file" in rel_props:
                inline[rel_name] = {**load_config_file(str(rel_props["config_file"]), data_dir, rel_name),
                                    **rel_props}
        check_select_rules(select)
        self.relations: list[Relation] = []
        refs = [select.from_, *(j.table for j in select.joins)]
        for i, ref in enumerate(refs):
            rel = resolve_relation(ref, inline, catalog, data_dir, self.opts, i, star_columns)
            if any(r.alias == rel.alias for r in self.relations):
                raise error(f"the alias '{rel.alias}' is used twice; give each relation its own alias",
                            ref)
            self.relations.append(rel)
        # Aliases first: resolving a name (the window's time column below) may consult them, also
        # when it fails and looks for suggestions.
        self.aliases: dict[str, ast.Expr] = {}
        for item in select.items:
            if item.alias and not isinstance(item.expr, ast.Star):
                self.aliases[item.alias] = item.expr
        if select.window is not None and select.window.time_column is not None:
            rel0, _ = self._resolve(select.window.time_column)
            rel0.ts_field = select.window.time_column.name
        self.cg = Codegen()
        self.cg.subquery = self._subquery
        self.cg.column_type = self._column_type
        self._props = props
        self.data_dir = data_dir  # where relative file paths resolve (EXPLAIN shows paths relative to it)
        # Aliases a later select item may use; the projection grows it item by item.
        self._allowed: set[str] = set()
        # Set by a join whose result is aggregated: column access over the joined rows, and the
        # aggregation's functions and settings handed back to the join that drives them.
        self._pair_access: Callable[[ast.Column], str] | None = None
        self._agg_parts: tuple[Any, ...] = ()
        # How generated post-join code unpacks an item (the join adds T<j> per extra table).
        self._unpack = "L, R, m = item"
        # Topic tables read as extra inputs after the query's own (later joins, subqueries): the input,
        # the name of the generated scan over its records and the live state the scan's output feeds.
        self._live: list[tuple[InputSpec, str, TableState]] = []
        self._subqueries: dict[int, SubqueryRef] = {}  # id of a subquery's AST → how code reads its rows
        self._in_live_subquery = False
        self._nested = False  # this SELECT is a subquery (a subquery in it cannot correlate to it)
        # Correlated subqueries over file tables, loaded once the code is built (the topic tables' kin in
        # ``_live``), and the plan lines of every correlated subquery.
        self._file_tables: list[tuple[Relation, str, TableState]] = []
        self._semi_steps: list[str] = []
        # The job's sink (None for a plain SELECT): its value format, and the Avro schema once known.
        self.sink = resolve_sink(sink_name, props, data_dir, select) if sink_name else None
        self.output_schema: dict[str, Any] | None = None
        # The plan tree (planner.py), built before the lowering, which reads its expressions from it.
        self.tree: Sink | None = None

    # ------------------------------------------------------------ name resolution

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
                return SYSTEM_CODE[col.name]
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
            if name in source_columns(self.relations):
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
            elif isinstance(node, ast.InSubquery | ast.Exists):
                # A correlated subquery's outer side (t._event_time) is computed over this query's row.
                # Its own table's system columns count too: one more value decoded is harmless.
                names |= {n.name for n in walk((node.query.items, node.query.where))
                          if isinstance(n, ast.Column) and n.name in SYSTEM_COLUMNS}
        return names

    def _subquery(self, node: ast.InSubquery | ast.Exists) -> SubqueryRef:
        """How generated code reads a subquery's rows (compiler/subqueries.py)."""
        return plan_subquery(self, node)

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
            base = name = output_name(item, i)
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
                name = item.alias or output_name(item, i)
                if name in names:
                    keys.append(names.index(name))
        return keys

    # ------------------------------------------------------------ plan

    def compile(self) -> CompiledQuery:
        """Pick the operator family and compile; the complete compiler (compile.py) defines it."""
        raise NotImplementedError

    def _inputs(self) -> tuple[InputSpec, ...]:
        """The query's own inputs: FROM and a first JOIN's topic; ``_with_tables`` adds the rest."""
        seen: dict[int, InputSpec] = {}
        for rel in self.relations[:2]:
            if rel.spec.kind == "file" and rel.index > 0:
                continue  # a file table is read at start, not streamed
            seen.setdefault(rel.index, rel.spec)
        return tuple(seen[i] for i in sorted(seen))

    def _with_tables(self, compiled: CompiledQuery) -> CompiledQuery:
        """``compiled`` reading its live topic tables too (later joins, subqueries), as inputs after its own.

        Each processor made routes those inputs to their table state (``TableInputs``), cleared
        first: every run reads its tables from the beginning of their topics. The file tables of
        correlated subqueries are loaded here, once (as an uncorrelated subquery's file is read at
        deploy); their plan lines come before the topic tables'.
        """
        ns = self.cg.namespace
        for rel, scan, state in self._file_tables:
            state.apply(load_table(rel, ns[scan]))
        if self._semi_steps:
            compiled = replace(compiled, plan=replace(compiled.plan, steps=(*compiled.plan.steps, *self._semi_steps)))
        if not self._live:
            return compiled
        first = len(compiled.inputs)
        tables = [(ns[scan], state) for _, scan, state in self._live]
        specs = tuple(spec for spec, _, _ in self._live)
        topics = tuple(spec.topic for spec in specs)
        steps = tuple(f"{'Subquery' if isinstance(state, LiveSubquery | CorrelatedSubquery) else 'Joined'} table "
                      f"{spec.name}: kafka topic "
                      f"'{spec.topic}' (input {first + i}), read to its end before the stream, then kept up to date"
                      for i, (spec, _, state) in enumerate(self._live))
        plan = replace(compiled.plan, steps=compiled.plan.steps + steps,
                       sources=compiled.plan.sources + tuple(t for t in topics if t not in compiled.plan.sources))

        def factory(mode: Mode) -> Processor:
            return TableInputs(compiled.processor(mode), {first + i: t for i, t in enumerate(tables)})

        return replace(compiled, plan=plan, inputs=compiled.inputs + specs, _factory=factory)

    def _sink_encoder(self, columns: Sequence[tuple[str, str]] | None) -> RowEncoder | None:
        """The sink's value encoder for output ``(column, type)``s (None: not known); None for JSON.

        Called once per query, where the family builds its encode path; an Avro sink without a
        given schema derives it from ``columns`` here.
        """
        if self.sink is None or self.sink.format != "avro":
            return None
        self.output_schema = sink_schema(self.sink, columns, self.select)
        return row_encoder(self.sink, self.output_schema, columns)

    def _with_sink(self, compiled: CompiledQuery) -> CompiledQuery:
        """``compiled`` with its sink's format: a given schema checked against the output columns."""
        if self.relations[0].inferred:
            compiled = replace(compiled, inferred_source=True)
        sink, schema = self.sink, self.output_schema
        if sink is None:
            return compiled
        target = sink_target(sink, compiled.plan.columns, self.select)
        where = describe_target(target)
        if where:
            compiled = replace(compiled, plan=replace(compiled.plan, steps=(*compiled.plan.steps, where)))
        compiled = replace(compiled, sink=target)
        if sink.format != "avro":
            return compiled
        assert schema is not None, "the query's encode path did not take the sink's encoder"
        if sink.schema is not None:
            check_columns(sink.name, schema, [c.name for c in compiled.plan.columns], self.select, self.relations)
        plan = replace(compiled.plan, steps=(*compiled.plan.steps, describe(sink, schema)))
        return replace(compiled, plan=plan, output_format="avro", output_schema=schema)

    def _plan(self, operator: str, columns: list[OutputColumn], emit: str,
              warnings: tuple[str, ...] = ()) -> QueryPlan:
        """The compiled query's summary; the tree (``self.tree``) says what each node does."""
        return QueryPlan(
            source=self.relations[0].spec.topic, operator=operator, columns=tuple(columns),
            emit=emit, limit=self.select.limit,
            sources=tuple(r.spec.topic for r in self.relations), late_strategy=self.opts.late_strategy,
            warnings=warnings, tree=self.tree,
        )

    def _projection(self, project: Project, ec: ExprCompiler) -> tuple[list[str], list[str], list[str]]:
        """Names, value code and types of the tree's Project (no ``*`` of unknown columns here)."""
        if project.star_of:
            raise error("SELECT * needs known columns here: declare the stream "
                        "(CREATE STREAM … (cols))", self.select)
        values: list[str] = []
        self._allowed.clear()
        for name, e in project.items:
            values.append(ec.compile(e))
            if name in self.aliases:
                self._allowed.add(name)
        return project.names, values, list(project.item_types)

    def _emit_post(self, body: list[str], names: list[str], values: list[str], types: list[str]) -> None:
        """``post_rows`` / ``post_encode``: ``body`` (filters) then the result row, built inline."""
        cg = self.cg
        cg.add(loop([*body, f"append(RowEvent([{', '.join(values)}]))"], "post_rows", item="item",
                     record="item[-1]"))
        enc = [*body, "o = {" + ", ".join(f"{n!r}: {v}" for n, v in zip(names, values, strict=True)) + "}"]
        timestamps = [n for n, t in zip(names, types, strict=True) if t == "TIMESTAMP"]
        enc += encode_output(cg, names, timestamps, self._primary_key(names),
                             self._sink_encoder(list(zip(names, types, strict=True))))
        cg.add(loop(enc, "post_encode", item="item", record="item[-1]"))

