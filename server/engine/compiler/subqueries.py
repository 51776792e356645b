"""Subqueries in IN / EXISTS: what generated code reads for each, by the table it reads and correlation.

* Uncorrelated, over a file table: evaluated once, at compile time (``SubqueryResult``).
* Uncorrelated, over a Kafka topic table: the table becomes an extra input of the query, kept live
  per message key (``LiveSubquery``).
* Correlated by equalities: a semi-join, the table's rows keyed by their side of the correlation
  (``CorrelatedSubquery``; a file table loaded at deploy, a topic table kept live).

The functions work on the enclosing query being compiled (``QueryBase``): they add generated scans to
its code and the live tables to its extra inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from velo.grammar import ast

from ...connectors.base import Record
from ...connectors.files import read_rows
from ..expressions import ExprCompiler, SubqueryRef, SubqueryResult, error
from ..operators.tables import CorrelatedSubquery, LiveSubquery
from ..validate import aggregates_in, analytic_calls, walk
from .codegen import decode_lines, loop
from .relations import Relation
from .sqlutil import all_of, conjuncts, source_columns, sql

if TYPE_CHECKING:
    from .base import QueryBase


def plan_subquery(q: QueryBase, node: ast.InSubquery | ast.Exists) -> SubqueryRef:
    """How generated code reads a subquery's rows. Uncorrelated: over a file table, evaluated now;
    over a topic table, kept live from an extra input (``_live_subquery``). Correlated: a keyed
    lookup (``_correlated_subquery``)."""
    sub = node.query
    known = q._subqueries.get(id(sub))
    if known is not None:  # an expression compiled twice must not read the table twice
        return known
    inner = type(q)(sub, None, q.catalog, q._props, q.data_dir, None)
    inner._nested = True
    rel = inner.relations[0]
    is_file = rel.spec.kind == "file" and rel.path is not None
    if not is_file and not (rel.spec.kind == "kafka" and rel.spec.role == "table"):
        raise error("a subquery must read a table: a file table ('<name>.type' = 'file_source' or a "
                    "catalog TABLE with a path) or a Kafka topic declared as a TABLE (CREATE TABLE … "
                    "WITH (KAFKA_TOPIC = …) or CREATE TABLE … AS SELECT)", sub.from_)
    outer_refs = [n for n in walk((sub.items, sub.where)) if isinstance(n, ast.Column) and _is_outer(q, n, rel)]
    if outer_refs:
        ref = _correlated_subquery(q, node, inner, rel, outer_refs[0])
    elif is_file:
        ref = SubqueryRef(_file_subquery(q, inner, rel))
    else:
        if q._in_live_subquery:
            raise error("a subquery inside a subquery over a Kafka table must read a file table", sub.from_)
        ref = SubqueryRef(_live_subquery(q, sub, inner, rel))
    q._subqueries[id(sub)] = ref
    return ref


def _is_outer(q: QueryBase, col: ast.Column, rel: Relation) -> bool:
    """Whether ``col``, in a subquery over ``rel``, is a column of ``q`` (the enclosing query).

    The subquery's own table comes first: its alias or name, a struct column of it (``addr.city``),
    an unqualified name it has or may have (its columns unknown). Any other qualifier is the
    enclosing query's (an unknown one fails as the enclosing query resolves it).
    """
    if col.qualifier is not None:
        return col.qualifier not in (rel.alias, rel.name) and not (rel.columns and col.qualifier in rel.columns)
    return rel.columns is not None and not rel.has(col.name) and col.name in source_columns(q.relations)


def _file_subquery(q: QueryBase, inner: QueryBase, rel: Relation) -> str:
    """Evaluate the subquery over its file table now."""
    assert rel.path is not None
    compiled = inner.compile()
    if inner._live:
        raise error("a subquery over a file table cannot contain a subquery over a Kafka table",
                    inner.select.from_)
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
    return q.cg.bind(SubqueryResult(plain + list(final.values())), "_sq")


def _live_subquery(q: QueryBase, sub: ast.Select, inner: QueryBase, rel: Relation) -> str:
    """A subquery over a topic table: the table becomes an extra input of the query.

    ``<name>_scan`` turns the table's records into ``(row id, values or None)``: the row id is
    the message key (a record without one is a row of its own); None says the key has no row
    now (a tombstone, or a row the subquery's WHERE rejects, which removes the key's previous
    row). A ``LiveSubquery`` bound to ``<name>`` keeps the rows and the multiset of IN values,
    and generated code reads it as it reads a file subquery's ``SubqueryResult``.
    """
    if sub.joins or sub.group_by or sub.having is not None or sub.window is not None \
            or sub.limit is not None or any(aggregates_in(i.expr) for i in sub.items) \
            or analytic_calls((sub.items, sub.where)):
        raise error("a subquery over a Kafka table is SELECT … FROM table [WHERE …]: no JOIN, GROUP BY, "
                    "aggregate, window, OVER or LIMIT", sub)
    cg = q.cg
    state = LiveSubquery()
    name = cg.bind(state, "_sq")
    lines, ec = _table_scan(q, inner, rel, (sub.items, sub.where), "(i, None)")
    q._in_live_subquery = True
    try:
        if sub.where is not None:
            lines += [f"if not {ec.predicate(sub.where)}:", "    append((i, None))", "    continue"]
        values = [ec.compile(e) if e is not None else "True" for _, e, _ in inner._items()]
    finally:
        q._in_live_subquery = False
    # An unhashable first value (an array) fails here, as the record's error, not in the IN set.
    lines += [f"v = [{', '.join(values)}]", "hash(v[0])", "append((i, v))"]
    cg.add(loop(lines, f"{name}_scan"))
    q._live.append((rel.spec, f"{name}_scan", state))
    return name


def _correlated_subquery(q: QueryBase, node: ast.InSubquery | ast.Exists, inner: QueryBase, rel: Relation,
                         first_outer: ast.Column) -> SubqueryRef:
    """A correlated EXISTS / IN as a semi-join: the table's rows, keyed by their side of the correlation.

    The subquery's WHERE is split into conjuncts: equalities between an expression of the table
    alone and one of the enclosing query alone are the key (the table's side computed by
    ``<name>_scan``, the enclosing side by the generated code that tests the row, see
    ``ExprCompiler._semi_join``); conjuncts on the table alone filter the scan; conjuncts on the
    enclosing row alone guard the lookup. The scan's rows feed a ``CorrelatedSubquery`` bound to
    ``<name>``: a file table's once the code is built, a topic table's live, as an extra input.
    """
    sub = node.query

    def is_outer(n: ast.Node) -> bool:
        return isinstance(n, ast.Column) and _is_outer(q, n, rel)

    def sides(e: ast.Expr) -> tuple[bool, bool]:
        """Whether ``e`` reads the enclosing query's columns, and whether it reads the table's."""
        cols = [n for n in walk(e) if isinstance(n, ast.Column)]
        return any(is_outer(c) for c in cols), any(not is_outer(c) for c in cols)

    if q._nested or q._in_live_subquery:
        raise error("a correlated subquery cannot be nested in another subquery: only a subquery of the "
                    "outermost query may refer to its columns", first_outer)
    for n in walk((sub.items, sub.where)):
        if isinstance(n, ast.InSubquery | ast.Exists):
            raise error("a correlated subquery cannot contain a subquery", n)
    calls = aggregates_in(sub.items) or analytic_calls((sub.items, sub.where))
    if calls:
        raise error(f"a correlated subquery cannot use {calls[0].name}: it is SELECT … FROM table WHERE …, "
                    "without aggregates or OVER", calls[0])
    if sub.joins or sub.group_by or sub.having is not None or sub.window is not None \
            or sub.limit is not None or sub.distinct:
        raise error("a correlated subquery is SELECT … FROM table WHERE …: no JOIN, GROUP BY, HAVING, "
                    "window, DISTINCT or LIMIT", sub)
    for n in walk(sub.items):
        if is_outer(n):
            raise error("a correlated subquery's select list can only use its own table's columns: "
                        "correlate in its WHERE", n)
    keys: list[tuple[ast.Expr, ast.Expr]] = []  # (the table's side, the enclosing query's side)
    table_only: list[ast.Expr] = []
    outer_only: list[ast.Expr] = []
    for c in conjuncts(sub.where) if sub.where is not None else []:
        reads_outer, reads_table = sides(c)
        if not reads_outer:
            table_only.append(c)
        elif not reads_table:
            outer_only.append(c)
        elif isinstance(c, ast.BinaryOp) and c.op == "=" and sides(c.left) == (False, True) \
                and sides(c.right) == (True, False):
            keys.append((c.left, c.right))
        elif isinstance(c, ast.BinaryOp) and c.op == "=" and sides(c.left) == (True, False) \
                and sides(c.right) == (False, True):
            keys.append((c.right, c.left))
        else:
            raise error("a correlated subquery's WHERE can only correlate by equalities between an expression "
                        "of its table and one of the outer query (w.symbol = t.symbol), ANDed with conditions "
                        "on either alone", c)
    value: ast.Expr | None = None
    if isinstance(node, ast.InSubquery):
        items = inner._items()
        value = items[0][1] if items else None
        if value is None:
            raise error("IN (SELECT …) needs the column to compare: name it (SELECT * needs declared "
                        "columns)", sub.items[0] if sub.items else sub)
    cg = q.cg
    state = CorrelatedSubquery()
    name = cg.bind(state, "_sq")
    table_side = tuple(k[0] for k in keys)
    read = (*table_only, *table_side, *(() if value is None else (value,)))
    lines, ec = _table_scan(q, inner, rel, read, "(i, None, None)")
    ec.subquery = None  # refused above: a nested subquery has no rows here
    where = all_of(table_only)
    if where is not None:
        lines += [f"if not {ec.predicate(where)}:", "    append((i, None, None))", "    continue"]
    # One key part is the key itself, several a tuple (ExprCompiler._semi_join builds the same); a
    # row whose key has a NULL part can equal no outer row, and leaves the table like a tombstone.
    parts = [ec.compile(e) for e in table_side]
    if len(parts) == 1:
        lines += [f"k = {parts[0]}", "if k is None:"]
    else:
        lines += ["k = (" + "".join(f"{p}, " for p in parts) + ")", "if None in k:"]
    lines += ["    append((i, None, None))", "    continue"]
    if value is None:
        lines.append("append((i, k, [True]))")  # EXISTS reads only whether the key has rows
    else:
        # An unhashable value (an array) fails here, as the record's error, not in the IN set.
        lines += [f"v = [{ec.compile(value)}]", "hash(v[0])", "append((i, k, v))"]
    cg.add(loop(lines, f"{name}_scan"))
    if rel.spec.kind == "file":
        q._file_tables.append((rel, f"{name}_scan", state))
        where_from = f"file '{rel.spec.path}', read at deploy"
    else:
        q._live.append((rel.spec, f"{name}_scan", state))
        where_from = f"kafka topic '{rel.spec.topic}', kept up to date"
    negated = isinstance(node, ast.InSubquery) and node.negated
    kind = "EXISTS" if value is None else f"{'NOT ' if negated else ''}IN ({sql(value)})"
    on = " AND ".join(f"{sql(a)} = {sql(b)}" for a, b in keys) or "no key"
    guard = all_of(outer_only)
    named = rel.name if rel.alias == rel.name else f"{rel.name} {rel.alias}"
    text = f"Semi-join {kind}: table {named} looked up by {on}"
    if guard is not None:
        text += f" when {sql(guard)}"
    if where is not None:
        text += f", its rows where {sql(where)}"
    q._semi_steps.append(f"{text} ({where_from})")
    return SubqueryRef(name, correlated=True, outer=tuple(k[1] for k in keys), guard=guard)


def _table_scan(q: QueryBase, inner: QueryBase, rel: Relation, reads: Any,
                no_row: str) -> tuple[list[str], ExprCompiler]:
    """The start of a table scan's loop body, and the compiler of the subquery's expressions over its row.

    The row id is the message key (a record without one is a row of its own); a tombstone appends
    ``no_row``; ``_event_time`` is decoded only when ``reads`` (the expressions the scan computes) use it.
    """
    uses_et = any(isinstance(n, ast.Column) and n.name == "_event_time" for n in walk(reads))
    lines = ["i = m.key if m.key is not None else (m.topic, m.partition, m.offset)",
             "if m.value is None:", f"    append({no_row})", "    continue",
             *decode_lines(q.cg, rel, uses_et, set())]
    ec = q.cg.compiler(inner._access({rel.index: "r"}, direct=True), record_var="m")
    ec.column_type = inner._column_type
    ec._consts = 1_000_000 * len(q._subqueries) + 1_000_000  # apart from the enclosing expression's names
    return lines, ec
