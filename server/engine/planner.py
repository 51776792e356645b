"""The planner: a SELECT, its relations resolved, becomes a tree of plan nodes (plan.py).

``plan_query(q)`` reads the query the compiler is working on (``q``: its resolved relations, name
resolution, select list and job options, compiler/base.py) and builds, bottom-up:

    Scan (each relation) → Join (the first JOIN, then one per further table) → Filter (residual ON
    and WHERE) → Aggregate (GROUP BY / window / DISTINCT) → Filter (HAVING) | Over → Filter (WHERE,
    after the analytic values) → Project (the select list) → Sink

covering every shape the engine lowers today. Changelog modes are checked as the tree grows: an
operator that cannot take an upsert input (a table on a topic read as FROM) refuses it here, at the
relation that makes it (``SqlValidationError`` with its line and column). The lowering
(compiler/) takes its expressions from the tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from velo.grammar import ast

from .compiler.aggregate import BOUND_FUNCTIONS, WINDOW_END, WINDOW_START
from .compiler.sqlutil import agg_type
from .expressions import error, infer_type
from .plan import (
    Aggregate,
    Filter,
    Join,
    OutputColumn,
    Over,
    OverCallSpec,
    PlanNode,
    Project,
    Scan,
    Sink,
    WindowSpec,
    sql,
)
from .types import type_name
from .validate import aggregates_in, analytic_calls, walk

if TYPE_CHECKING:
    from .compiler.join import JoinPlanner
    from .compiler.relations import Relation


def plan_query(q: JoinPlanner) -> Sink:
    """The plan tree of the SELECT ``q`` compiles (raises SqlValidationError at the offending SQL)."""
    s = q.select
    has_agg = bool(s.group_by) or s.having is not None or s.window is not None or any(
        aggregates_in(i.expr) for i in s.items)
    node: PlanNode = scan(q, q.relations[0])
    residual: ast.Expr | None = None
    if s.joins:
        node, residual = _joins(q, node)
    elif s.where is not None and not analytic_calls((s.items, s.where)):
        node = Filter(node, s.where)
    if s.distinct and not has_agg:
        node = _aggregate(q, node, distinct=True)
    elif has_agg:
        node = _aggregate(q, node)
    elif analytic_calls((s.items, s.where)):
        node = _over(q, node, residual)
    else:
        node = _project(q, node)
    key = node.key if isinstance(node, Project) else ()
    agg = next((n for n in node.walk() if isinstance(n, Aggregate)), None)
    if not key and agg is not None:  # an aggregate's rows are keyed by group [+ window start]
        key = tuple(sql(k) for k in agg.keys) + (("window_start",) if agg.window is not None else ())
    return Sink(node, _target(q), q.sink.format if q.sink is not None else "json", key, s.limit)


def scan(q: JoinPlanner, rel: Relation) -> Scan:
    """The leaf reading ``rel``."""
    where = (f"file '{_shown(rel.spec.path, q)}'" if rel.spec.kind == "file"
             else f"kafka topic '{rel.spec.topic}'")
    cols = None if rel.columns is None else tuple(
        OutputColumn(c, type_name(rel.types[c]) if c in rel.types else "ANY") for c in rel.columns)
    ref = ([q.select.from_] + [j.table for j in q.select.joins])[q.relations.index(rel)]
    return Scan(rel.alias, rel.name, where, rel.spec.format, rel.spec.role, cols,
                rel.ts_field if rel.spec.role != "table" else None, rel.index,
                rel.spec.role == "table" and rel.spec.kind == "kafka", origin=ref)


def require_append(child: PlanNode, what: str, first_relation: bool = False) -> None:
    """Refuse an upsert input to an operator that cannot take retractions, at the relation making it."""
    if child.changelog.append_only:
        return
    table = next((n for n in child.walk() if isinstance(n, Scan) and not n.changelog.append_only), None)
    name = table.relation if table is not None else "its input"
    upsert = "a table on a topic is an upsert changelog (a row per key, replaced or deleted)"
    fix = f"FROM stream JOIN {name} ON …"
    if first_relation:
        message = (f"{what} cannot read table '{name}' as its first relation yet: {upsert}, which only a lookup "
                   f"takes; put the stream first ({fix})")
    else:
        message = (f"{what} cannot read table '{name}' yet: {upsert}, and it would need the retractions; "
                   f"join the table to a stream instead ({fix})")
    raise error(message, table.origin if table is not None else None)


def _target(q: JoinPlanner) -> str:
    sink = q.sink
    if sink is None:
        return "the client"
    if sink.target is not None and sink.target.kind == "file":
        return f"{sink.name}: file '{_shown(sink.target.path, q)}'"
    return f"{sink.name}: kafka"


def _shown(path: str | None, q: JoinPlanner) -> str:
    """A file's path as EXPLAIN shows it: under the data directory, relative to it (as the user wrote it),
    so a plan says nothing of the machine's folders."""
    if path is None:
        return ""
    base = Path(q.data_dir if q.data_dir is not None else ".").resolve()
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path


def _joined_columns(a: PlanNode, b: PlanNode, alias_a: str | None, alias_b: str) -> tuple[OutputColumn, ...] | None:
    ca, cb = a.columns, b.columns
    if ca is None or cb is None:
        return None
    left = ca if alias_a is None else tuple(OutputColumn(f"{alias_a}.{c.name}", c.type) for c in ca)
    return left + tuple(OutputColumn(f"{alias_b}.{c.name}", c.type) for c in cb)


def _joins(q: JoinPlanner, left: PlanNode) -> tuple[PlanNode, ast.Expr | None]:
    """The first JOIN (stream–table, interval or unbounded stream–stream), then the table lookups.

    Returns the node and, when OVER follows, ON's residual condition (applied after the analytic values).
    """
    s = q.select
    join = s.joins[0]
    lrel, rrel = q.relations[0], q.relations[1]
    right = scan(q, rrel)
    if lrel.spec.topic == rrel.spec.topic and lrel.spec.kind == rrel.spec.kind == "kafka" \
            and rrel.spec.role != "table":
        right = Scan(right.alias, right.relation, right.location, right.format, right.role, right.schema,
                     right.event_time, 0, right.table_on_topic, origin=right.origin)
    require_append(left, "a join", first_relation=True)
    keys, bound, residual = q._join_condition(join, lrel, rrel)
    if residual is not None and join.kind != "inner":
        # Applied after the join, such a condition would drop the unmatched rows an outer join must keep
        # (with NULLs); until the join evaluates it while matching, it is refused rather than wrong.
        raise error(f"a {join.kind.upper()} JOIN's ON takes key equalities (and WITHIN) only; the condition "
                    f"{sql(residual)} is not supported there yet: test it in the SELECT list "
                    "(CASE WHEN … THEN … END), or use an INNER JOIN", residual)
    is_table = rrel.spec.role == "table"
    if not keys and not is_table:
        raise error("a stream–stream join needs an equality key (ON a.k = b.k)", join.on)
    if not keys and not (isinstance(join.on, ast.Literal) and join.on.value is True):
        raise error("a join needs an equality key (ON a.k = b.k) or ON true", join.on)
    if is_table and join.kind not in ("inner", "left"):
        raise error(f"a stream–table join is INNER or LEFT, not {join.kind.upper()}", join)
    grace = s.window.grace.millis if s.window is not None and s.window.grace is not None else 0
    if join.grace is not None:  # WITHIN … GRACE PERIOD g: the join's own lateness
        grace = join.grace.millis
    if not is_table:
        require_append(right, "a stream–stream join")
    node: PlanNode = Join(left, right, join.kind, "stream", rrel.spec.role, tuple(keys), None, bound, grace,
                          q.opts.join_ttl_ms, q.opts.join_max_rows,
                          _joined_columns(left, right, lrel.alias, rrel.alias), origin=join)
    for j, jn, jkeys in q._extra_tables():
        table = scan(q, q.relations[j])
        node = Join(node, table, jn.kind, "stream", "table", tuple(jkeys), None, None, 0, 0, 0,
                    _joined_columns(node, table, None, q.relations[j].alias), origin=jn)
    if analytic_calls((s.items, s.where)):
        # OVER sees every joined row; ON's residual and WHERE filter after the analytic values.
        return node, residual
    if residual is not None:
        node = Filter(node, residual, "ON")
    return (node if s.where is None else Filter(node, s.where)), None


def _aggregate(q: JoinPlanner, child: PlanNode, distinct: bool = False) -> PlanNode:
    """Aggregate (keys, calls, window), HAVING above it, then the select list over its columns."""
    s = q.select
    require_append(child, "SELECT DISTINCT" if distinct else "an aggregation (GROUP BY)")
    items = q._items()
    if any(e is None for _, e, _ in items):
        raise error("SELECT * needs known columns in an aggregation: declare the stream "
                    "(CREATE STREAM … (cols))", s)
    exprs = [(n, e) for n, e, _ in items if e is not None]
    groups = [e for _, e in exprs] if distinct else q._group_exprs()
    calls: list[ast.FunctionCall] = []
    for expr in (*[e for _, e in exprs], s.having):
        for call in aggregates_in(expr):
            if call not in calls:
                calls.append(call)
    w = s.window
    window = None
    if w is not None:
        size = w.size.millis
        window = WindowSpec(w.kind, size, w.advance.millis if w.advance is not None else size,
                            w.grace.millis if w.grace is not None else 0, q.relations[0].ts_field, origin=w)
    emit = "changes" if distinct else (s.emit or ("final" if w is not None else "changes"))
    ctype = q._column_type
    watermark = (f"watermark: max event time - {q.opts.out_of_orderness_ms} ms per partition; late records: "
                 f"{q.opts.late_strategy}")
    node: PlanNode = Aggregate(child, tuple(groups), tuple(calls), window, emit,
                               tuple(infer_type(g, ctype) for g in groups),
                               tuple(agg_type(c, ctype) for c in calls), distinct, watermark, origin=s)
    if s.having is not None:
        node = Filter(node, s.having, "HAVING")
    out = [(n, e, agg_type(e, ctype)) for n, e in exprs]
    lists_bounds = any((isinstance(n, ast.Column) and n.name in WINDOW_START + WINDOW_END)
                       or (isinstance(n, ast.FunctionCall) and n.name in BOUND_FUNCTIONS)
                       for _, e in exprs for n in walk(e))
    if w is not None and not lists_bounds:
        out += [("window_start", ast.Column("window_start"), "BIGINT"),
                ("window_end", ast.Column("window_end"), "BIGINT")]
    return _project_of(q, node, out)


def _over(q: JoinPlanner, child: PlanNode, residual: ast.Expr | None = None) -> PlanNode:
    """Over (partition, order, calls), WHERE after the analytic values, then the select list."""
    s = q.select
    require_append(child, "OVER")
    items = q._items()
    calls: list[ast.FunctionCall] = []
    for expr in (*[e for _, e, _ in items if e is not None], s.where):
        for c in analytic_calls(expr):
            if c not in calls:
                calls.append(c)
    first = calls[0].over
    assert first is not None
    for c in calls[1:]:
        assert c.over is not None
        if c.over.partition_by != first.partition_by or c.over.order_by != first.order_by:
            raise error("every OVER of a query must use the same PARTITION BY and ORDER BY", c.over)
    ctype = q._column_type
    node: PlanNode = Over(child, first.partition_by, first.order_by, tuple(OverCallSpec(c) for c in calls),
                          tuple(infer_type(c, ctype) for c in calls), q.opts.over_ttl_ms, origin=first)
    if residual is not None:
        node = Filter(node, residual, "ON after OVER")
    if s.where is not None:
        node = Filter(node, s.where, "WHERE after OVER")
    return _project(q, node)


def _project(q: JoinPlanner, child: PlanNode) -> PlanNode:
    """The select list over a row-producing child (``*`` of an undeclared topic passes through)."""
    items = q._items()
    ctype = q._column_type
    return _project_of(q, child, [(n, e, infer_type(e, ctype)) for n, e, _ in items if e is not None],
                       tuple(a for _, e, a in items if e is None and a is not None))


def _project_of(q: JoinPlanner, child: PlanNode, out: list[tuple[str, ast.Expr, str]],
                star_of: tuple[str, ...] = ()) -> Project:
    names = [n for n, _, _ in out]
    key = tuple(names[i] for i in q._primary_key(names))
    return Project(child, tuple((n, e) for n, e, _ in out), tuple(t for _, _, t in out), star_of, key)


__all__ = ["plan_query", "require_append", "scan"]
