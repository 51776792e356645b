"""Expression code generation: an AST expression becomes one Python expression string.

The generated code implements SQL's NULL semantics inline (walrus temporaries guard every operator),
so a record's evaluation is straight-line Python with no tree walk and no call per operator.
"""

from __future__ import annotations

from ast import literal_eval
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from velo.grammar import ast

from ..errors import ValidationError
from .functions import lookup

_ARITHMETIC = {"+", "-", "*"}
_COMPARISON = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _div(a: Any, b: Any) -> Any:
    """SQL division: NULL on a zero divisor; two integers give a DOUBLE."""
    return None if b == 0 else a / b


def _mod(a: Any, b: Any) -> Any:
    """SQL modulo: NULL on a zero divisor; the sign follows the dividend (as in SQL, unlike Python)."""
    if b == 0:
        return None
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _concat(a: Any, b: Any) -> str:
    return f"{a}{b}"


RUNTIME: dict[str, Any] = {"_div": _div, "_mod": _mod, "_concat": _concat}
"""Helpers every generated function may call, bound into its namespace."""


def _is_constant(code: str) -> bool:
    """Whether generated ``code`` is a non-NULL literal (safe to evaluate twice, never NULL)."""
    try:
        value = literal_eval(code)
    except (ValueError, SyntaxError):
        return False
    return value is not None


def _position(node: ast.Node) -> dict[str, int]:
    return {"line": node.span.line, "column": node.span.column} if node.span else {}


@dataclass
class ExprCompiler:
    """Turns expressions into Python source over a decoded record ``r`` (a dict).

    ``column_source`` maps a column reference to its access code; ``namespace`` collects the objects
    (function implementations) that the generated source refers to.
    """

    column_source: Callable[[ast.Column], str]
    namespace: dict[str, Any] = field(default_factory=lambda: dict(RUNTIME))
    _temps: int = 0

    def _temp(self) -> str:
        self._temps += 1
        return f"_t{self._temps}"

    def compile(self, node: ast.Expr) -> str:
        """Python source computing ``node``'s SQL value."""
        if isinstance(node, ast.Literal):
            return repr(node.value)
        if isinstance(node, ast.Column):
            return self.column_source(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinaryOp):
            return self._binary(node)
        if isinstance(node, ast.FunctionCall):
            return self._call(node)
        raise ValidationError(
            f"{type(node).__name__} is not supported in this position", **_position(node)
        )

    def predicate(self, node: ast.Expr) -> str:
        """Source that is truthy exactly when ``node`` is TRUE (for WHERE/HAVING).

        In this context NULL and FALSE mean the same, so top-level AND/OR map to Python's own
        short-circuit operators.
        """
        if isinstance(node, ast.BinaryOp) and node.op in ("AND", "OR"):
            op = node.op.lower()
            return f"({self.predicate(node.left)} {op} {self.predicate(node.right)})"
        return self.compile(node)

    def _guarded(self, left: str, right: str, result: Callable[[str, str], str]) -> str:
        # A non-NULL literal needs no NULL guard and no temporary.
        guards = []
        if _is_constant(left):
            a = left
        else:
            a = self._temp()
            guards.append(f"({a} := {left}) is None")
        if _is_constant(right):
            b = right
        else:
            b = self._temp()
            guards.append(f"({b} := {right}) is None")
        if not guards:
            return f"({result(a, b)})"
        return f"(None if {' or '.join(guards)} else {result(a, b)})"

    def _unary(self, node: ast.UnaryOp) -> str:
        operand = self.compile(node.operand)
        t = self._temp()
        if node.op == "NOT":
            return f"(None if ({t} := {operand}) is None else not {t})"
        return f"(None if ({t} := {operand}) is None else {node.op}{t})"

    def _binary(self, node: ast.BinaryOp) -> str:
        op = node.op
        left, right = self.compile(node.left), self.compile(node.right)
        if op == "AND":
            a, b = self._temp(), self._temp()
            return (f"(False if ({a} := {left}) is False else False if ({b} := {right}) is False "
                    f"else None if {a} is None or {b} is None else True)")
        if op == "OR":
            a, b = self._temp(), self._temp()
            return (f"(True if ({a} := {left}) is True else True if ({b} := {right}) is True "
                    f"else None if {a} is None or {b} is None else False)")
        if op in _ARITHMETIC:
            return self._guarded(left, right, lambda a, b: f"{a} {op} {b}")
        if op in _COMPARISON:
            py = _COMPARISON[op]
            return self._guarded(left, right, lambda a, b: f"{a} {py} {b}")
        if op == "/":
            return self._guarded(left, right, lambda a, b: f"_div({a}, {b})")
        if op == "%":
            return self._guarded(left, right, lambda a, b: f"_mod({a}, {b})")
        if op == "||":
            return self._guarded(left, right, lambda a, b: f"_concat({a}, {b})")
        raise ValidationError(f"operator {op} is not supported", **_position(node))

    def _call(self, node: ast.FunctionCall) -> str:
        fn = lookup(node.name)
        if fn is None:
            raise ValidationError(f"unknown function {node.name}", **_position(node))
        if not fn.accepts(len(node.args)):
            raise ValidationError(
                f"wrong number of arguments to {node.name}: expected {fn.signature}",
                **_position(node),
            )
        ref = f"_f_{fn.name}"
        self.namespace[ref] = fn.impl
        return f"{ref}({', '.join(self.compile(a) for a in node.args)})"


def infer_type(node: ast.Expr) -> str:
    """A best-effort SQL type name for a result column (records without a schema are untyped)."""
    if isinstance(node, ast.Literal):
        v = node.value
        if isinstance(v, bool):
            return "BOOLEAN"
        if isinstance(v, int):
            return "BIGINT"
        if isinstance(v, float):
            return "DOUBLE"
        return "STRING" if isinstance(v, str) else "ANY"
    if isinstance(node, ast.BinaryOp):
        if node.op in _COMPARISON or node.op in ("AND", "OR"):
            return "BOOLEAN"
        if node.op == "||":
            return "STRING"
        if node.op == "/":
            return "DOUBLE"
        left, right = infer_type(node.left), infer_type(node.right)
        return left if left == right else "DOUBLE" if "DOUBLE" in (left, right) else "ANY"
    if isinstance(node, ast.UnaryOp):
        return "BOOLEAN" if node.op == "NOT" else infer_type(node.operand)
    if isinstance(node, ast.FunctionCall):
        fn = lookup(node.name)
        return fn.return_type if fn else "ANY"
    return "ANY"
