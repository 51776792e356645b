"""Rewrite rules: plain functions from a plan tree to a plan tree (plan.py), run between planner and lowering.

``apply_rules(tree)`` runs them in order. Each rule keeps the query's result as it was — rows,
changelog, and the records that become errors only where the docs say so — and changes only where
the work happens; the lowering (compiler/) then generates code for the tree it is given.

- ``push_filters_into_stream_scans``: the conjuncts of a WHERE above a chain of stream–table joins
  (INNER or LEFT, the stream on the left) that read the stream's own columns alone move below the
  joins, onto the stream's Scan, so a record they reject is dropped as it is decoded, before any
  table lookup. Not pushed: conjuncts naming a table's column (after a LEFT join they see the
  NULL-extended row), system columns, subqueries, columns of a relation whose schema is inferred
  (which relation an unqualified name belongs to is known only at run time), ON's residual
  condition (it decides matching, not survival), and anything into a stream–stream join (its scans
  feed the watermark, which a dropped record would no longer advance).
"""

from __future__ import annotations

from collections.abc import Callable

from velo.grammar import ast

from .compiler.relations import SYSTEM_COLUMNS
from .compiler.sqlutil import all_of, conjuncts
from .plan import Filter, Join, PlanNode, Scan, Sink
from .validate import walk

Rule = Callable[[PlanNode], PlanNode]


def transform(node: PlanNode, rule: Callable[[PlanNode], PlanNode]) -> PlanNode:
    """``rule`` applied to every node, children first (a frozen tree is rebuilt along the way)."""
    kids = node.inputs()
    if kids:
        new = tuple(transform(k, rule) for k in kids)
        if new != kids:
            node = node.with_inputs(new)
    return rule(node)


def _stream_of_lookups(node: PlanNode) -> Scan | None:
    """The stream Scan under a chain of INNER/LEFT stream–table joins, or None if ``node`` is not one."""
    if not isinstance(node, Join) or node.right_role != "table" or node.kind_ not in ("inner", "left"):
        return None
    left = node.left
    while isinstance(left, Filter):  # a filter pushed already
        left = left.child
    if isinstance(left, Scan):
        return left if left.role == "stream" else None
    return _stream_of_lookups(left)


def _reads_only(cond: ast.Expr, scan: Scan, others: list[Scan]) -> bool:
    """Whether ``cond`` reads columns of ``scan`` alone (and nothing a rule cannot place)."""
    if scan.columns is None or any(o.columns is None for o in others):
        return False
    own = {c.name for c in scan.columns}
    seen = False
    for n in walk(cond):
        if isinstance(n, ast.InSubquery | ast.Exists | ast.Star):
            return False  # a semi-join's code is built where the subquery is (and reads other relations)
        if isinstance(n, ast.FunctionCall) and n.over is not None:
            return False
        if not isinstance(n, ast.Column):
            continue
        if n.name in SYSTEM_COLUMNS:
            return False
        if n.qualifier is not None:
            if n.qualifier not in (scan.alias, scan.relation) or n.name not in own:
                return False
        elif n.name not in own or any(n.name in {c.name for c in o.columns or ()} for o in others):
            return False
        seen = True
    return seen


def _push_into_lookups(join: Join, pushed: list[ast.Expr]) -> PlanNode:
    """``join`` with ``pushed`` ANDed onto the Filter over its stream Scan (made when there is none)."""
    left = join.left
    if isinstance(left, Join):
        return join.with_inputs((_push_into_lookups(left, pushed), join.right))
    cond = all_of(pushed)
    assert cond is not None
    if isinstance(left, Filter):
        new_left: PlanNode = Filter(left.child, ast.BinaryOp("AND", left.condition, cond), left.clause)
    else:
        new_left = Filter(left, cond, "WHERE, pushed down")
    return join.with_inputs((new_left, join.right))


def push_filters_into_stream_scans(node: PlanNode) -> PlanNode:
    """WHERE conjuncts on a stream's own columns, moved under its stream–table joins onto its Scan."""
    if not isinstance(node, Filter) or node.clause != "WHERE":
        return node
    chain, below = node.child.filters_below()
    stream = _stream_of_lookups(below)
    if stream is None:
        return node
    assert isinstance(below, Join)
    tables = [n for n in below.walk() if isinstance(n, Scan) and n is not stream]
    parts = conjuncts(node.condition)
    pushed = [c for c in parts if _reads_only(c, stream, tables)]
    if not pushed:
        return node
    kept = all_of([c for c in parts if c not in pushed])
    rebuilt: PlanNode = _push_into_lookups(below, pushed)
    for f in chain:  # ON's residual stays where it was, between the joins and the rest of WHERE
        rebuilt = Filter(rebuilt, f.condition, f.clause)
    return rebuilt if kept is None else Filter(rebuilt, kept, node.clause)


RULES: tuple[Rule, ...] = (push_filters_into_stream_scans,)


def apply_rules(tree: Sink, rules: tuple[Rule, ...] = RULES) -> Sink:
    """``tree`` rewritten by every rule in turn."""
    out: PlanNode = tree
    for rule in rules:
        out = transform(out, rule)
    assert isinstance(out, Sink)
    return out
