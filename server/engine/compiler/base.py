"""The compiler's common ground: one SELECT's relations, name resolution and output shape.

``QueryBase`` resolves the relations and the job options, answers "which relation, which code" for
each column reference, expands the select list and describes the plan; the planners of each
operator family (filter_project.py, aggregate.py, over.py, join.py) build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from velo.grammar import ast

from ...connectors.base import Record
from ...connectors.files import read_rows
from ..catalog import Catalog
from ..expressions import ExprCompiler, SubqueryResult, error, infer_type
from ..plan import OutputColumn, QueryPlan
from ..types import type_name
from ..validate import check_properties, check_select_rules, load_config_file, unknown, walk
from .codegen import SYSTEM_CODE, Codegen, encode_output, loop
from .model import CompiledQuery, InputSpec
from .relations import SYSTEM_COLUMNS, Relation, resolve_relation
from .sqlutil import output_name, source_columns


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
        self.opts, inline = check_properties(props, names)
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
        self._data_dir = data_dir
        # Aliases a later select item may use; the projection grows it item by item.
        self._allowed: set[str] = set()
        # Set by a join whose result is aggregated: column access over the joined rows, and the
        # aggregation's functions and settings handed back to the join that drives them.
        self._pair_access: Callable[[ast.Column], str] | None = None
        self._agg_parts: tuple[Any, ...] = ()
        # How generated post-join code unpacks an item (the join adds T<j> per extra table).
        self._unpack = "L, R, m = item"

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
        return names

    def _subquery(self, sub: ast.Select) -> str:
        """Evaluate an uncorrelated subquery over a file table now; the name bound to its rows."""
        inner = type(self)(sub, None, self.catalog, self._props, self._data_dir, None)
        rel = inner.relations[0]
        if rel.spec.kind != "file" or rel.path is None:
            raise error("a subquery must read a file table ('<name>.type' = 'file_source' or a "
                        "catalog TABLE with a path)", sub.from_)
        for node in walk((sub.items, sub.where)):
            if isinstance(node, ast.Column) and node.qualifier is not None and \
                    node.qualifier not in (rel.alias, rel.name):
                raise error("correlated subqueries are not supported", node)
        compiled = inner.compile()
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

    def _projection(self, items: list[tuple[str, ast.Expr | None, str | None]],
                    ec: ExprCompiler) -> tuple[list[str], list[str], list[str]]:
        """Names, value code and types of the result columns (no ``*`` of unknown columns here)."""
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
        cg.add(loop([*body, f"append(RowEvent([{', '.join(values)}]))"], "post_rows", item="item",
                     record="item[-1]"))
        enc = [*body, "o = {" + ", ".join(f"{n!r}: {v}" for n, v in zip(names, values, strict=True)) + "}"]
        timestamps = [n for n, t in zip(names, types, strict=True) if t == "TIMESTAMP"]
        enc += encode_output(cg, names, timestamps, self._primary_key(names))
        cg.add(loop(enc, "post_encode", item="item", record="item[-1]"))
