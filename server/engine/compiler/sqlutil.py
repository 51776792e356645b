"""Small AST helpers of the compiler: AND chains, constants, output names and types, SQL text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from velo.grammar import ast
from velo.grammar.printer import to_sql

from ..expressions import error, infer_type
from ..functions import lookup
from .relations import Relation


def conjuncts(e: ast.Expr) -> list[ast.Expr]:
    """The operands of a chain of ANDs."""
    if isinstance(e, ast.BinaryOp) and e.op == "AND":
        return [*conjuncts(e.left), *conjuncts(e.right)]
    return [e]


def chain_substitutes(*subs: Callable[[ast.Expr], str | None]) -> Callable[[ast.Expr], str | None]:
    """One substitute trying ``subs`` in turn: the first code returned wins."""

    def sub(node: ast.Expr) -> str | None:
        for s in subs:
            code = s(node)
            if code is not None:
                return code
        return None

    return sub


def source_columns(rels: list[Relation]) -> set[str]:
    """Every declared column of ``rels``."""
    return {c for r in rels for c in (r.columns or ())}


def constant(node: ast.Expr, call: ast.FunctionCall) -> Any:
    """The value of a literal argument of ``call`` (a parameter such as a percentile or LAG offset)."""
    if isinstance(node, ast.Literal):
        return node.value
    if isinstance(node, ast.UnaryOp) and node.op == "-" and isinstance(node.operand, ast.Literal):
        return -node.operand.value  # type: ignore[operator]
    raise error(f"this argument of {call.name} must be a constant", node)


def agg_type(e: ast.Expr, column_type: Callable[[ast.Column], str]) -> str:
    """The result type of an aggregation's output expression (``ARG``: the argument's type)."""
    if isinstance(e, ast.FunctionCall):
        fn = lookup(e.name)
        if fn is not None and fn.kind == "aggregate":
            if fn.return_type == "ARG":
                return infer_type(e.args[0], column_type) if e.args else "ANY"
            return fn.return_type
    return infer_type(e, column_type)


def sql(node: ast.Node) -> str:
    """``node`` as SQL text for plan steps (its class name when it cannot be printed)."""
    try:
        return str(to_sql(node))
    except Exception:
        return type(node).__name__


def output_name(item: ast.SelectItem, index: int) -> str:
    """The column name of a SELECT item without a unique-making suffix (``col_<n>`` as the last resort)."""
    if item.alias:
        return item.alias
    if isinstance(item.expr, ast.Column):
        return item.expr.name
    if isinstance(item.expr, ast.FieldAccess):
        return item.expr.field
    if isinstance(item.expr, ast.FunctionCall):
        return item.expr.name.lower()
    return f"col_{index}"


def all_of(conditions: Sequence[ast.Expr]) -> ast.Expr | None:
    """``conditions`` ANDed (None when there are none)."""
    out: ast.Expr | None = None
    for c in conditions:
        out = c if out is None else ast.BinaryOp("AND", out, c)
    return out
