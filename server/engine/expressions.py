"""Expression code generation: an AST expression becomes one Python expression string.

The generated code implements SQL's NULL semantics inline (walrus temporaries guard every operator),
so a record's evaluation is straight-line Python with no tree walk and no call per operator. Only the
operators whose three-valued rules are long (BETWEEN, IN with NULL items) call a small helper.

Where a value does not come from a record column — a group key, an aggregate's result, an analytic
(OVER) value, a window bound — the operator compiling the query passes ``substitute``, which returns
the code for such nodes before the generic rules run.
"""

from __future__ import annotations

import re
from ast import literal_eval
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from velo.grammar import ast
from velo.grammar.errors import SqlValidationError

from .functions import lookup
from .types import CastError, caster, type_name

_ARITHMETIC = {"+", "-", "*"}
_COMPARISON = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _div(a: Any, b: Any) -> Any:
    """SQL division: NULL on a zero divisor; two integers give a DOUBLE, DECIMAL stays DECIMAL."""
    if b == 0:
        return None
    if (isinstance(a, Decimal) or isinstance(b, Decimal)) and not isinstance(a, float) \
            and not isinstance(b, float):
        return Decimal(a) / Decimal(b)  # DECIMAL with DECIMAL or an integer stays exact
    return float(a) / float(b)


def _mod(a: Any, b: Any) -> Any:
    """SQL modulo: NULL on a zero divisor; the sign follows the dividend (as in SQL, unlike Python)."""
    if b == 0:
        return None
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _concat(a: Any, b: Any) -> str:
    return _str(a) + _str(b)


def _between(x: Any, low: Any, high: Any) -> bool | None:
    """``x BETWEEN low AND high`` as ``x >= low AND x <= high`` in three-valued logic."""
    ge = None if x is None or low is None else x >= low
    le = None if x is None or high is None else x <= high
    if ge is False or le is False:
        return False
    if ge is None or le is None:
        return None
    return True


def _in(x: Any, items: tuple[Any, ...]) -> bool | None:
    """``x IN (items)``: TRUE on a match, NULL when no match but a NULL is involved, else FALSE."""
    if x is None:
        return None
    saw_null = False
    for item in items:
        if item is None:
            saw_null = True
        elif item == x:
            return True
    return None if saw_null else False


def _subscript(v: Any, i: Any) -> Any:
    """``a[i]`` (arrays 1-based, negative from the end as in ksqlDB and DuckDB: ``a[-1]`` is the
    last element; 0 and out of range are NULL) or ``m['k']`` (missing key is NULL)."""
    if v is None or i is None:
        return None
    if isinstance(v, list):
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"array index must be an integer, got {i!r}")
        if i > 0:
            return v[i - 1] if i <= len(v) else None
        return v[i] if i < 0 and -i <= len(v) else None
    if isinstance(v, dict):
        return v.get(str(i))
    raise TypeError(f"cannot subscript a {type(v).__name__}")


def _field(v: Any, name: str) -> Any:
    """``s.name`` on a struct (a JSON object); NULL when absent."""
    if v is None:
        return None
    if isinstance(v, dict):
        return v.get(name)
    raise TypeError(f"cannot read field '{name}' of a {type(v).__name__}")


def _extract(unit: str, ts: Any) -> Any:
    """``EXTRACT(unit FROM ts)`` for a TIMESTAMP (ms since the epoch)."""
    if ts is None:
        return None
    ms = int(ts)
    if unit == "EPOCH":
        return ms // 1000
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    if unit == "MILLISECOND":
        return ms % 1000
    if unit == "DOW":
        return dt.isoweekday() % 7  # Sunday = 0, as in PostgreSQL and DuckDB
    if unit == "DOY":
        return dt.timetuple().tm_yday
    value = getattr(dt, unit.lower(), None)
    if value is None:
        raise ValueError(f"unknown EXTRACT unit {unit}")
    return int(value)


def like_regex(pattern: str, escape: str | None = None) -> re.Pattern[str]:
    """The regular expression of a SQL LIKE pattern (``%`` any run, ``_`` one character; after
    the ``escape`` character, if any, the next character stands for itself)."""
    out = []
    chars = iter(pattern)
    for ch in chars:
        if ch == escape:
            nxt = next(chars, None)
            if nxt is None:  # as DuckDB and PostgreSQL: an escape must escape something
                raise ValueError(f"LIKE pattern {pattern!r} ends with its ESCAPE character")
            out.append(re.escape(nxt))
        else:
            out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _like(x: Any, pattern: Any, escape: str | None = None) -> bool | None:
    if x is None or pattern is None:
        return None
    return like_regex(str(pattern), escape).fullmatch(str(x)) is not None


class SubqueryResult:
    """The rows of an uncorrelated subquery over a table, evaluated once (at deploy)."""

    __slots__ = ("has_null", "rows", "values")

    def __init__(self, rows: list[list[Any]]) -> None:
        self.rows = rows
        first = [r[0] if r else None for r in rows]
        self.values = frozenset(v for v in first if v is not None)
        self.has_null = any(v is None for v in first)


def _in_rows(x: Any, sub: SubqueryResult) -> bool | None:
    """``x IN (SELECT ...)`` in three-valued logic (``sub``: anything with ``rows``, ``values``, ``has_null``)."""
    if x is None:
        return None if sub.rows else False
    if x in sub.values:
        return True
    return None if sub.has_null else False


RUNTIME: dict[str, Any] = {
    "_div": _div, "_mod": _mod, "_concat": _concat, "_between": _between, "_in": _in,
    "_subscript": _subscript, "_field": _field, "_extract": _extract, "_like": _like,
    "_in_rows": _in_rows, "_no_rows": SubqueryResult([]),
    "Decimal": Decimal,
}
"""Helpers every generated function may call, bound into its namespace."""


def _is_constant(code: str) -> bool:
    """Whether generated ``code`` is a non-NULL literal (safe to evaluate twice, never NULL)."""
    try:
        value = literal_eval(code)
    except (ValueError, SyntaxError):
        return False
    return value is not None


def position(node: ast.Node | ast.Span | None) -> dict[str, int]:
    """``line``/``column`` keyword arguments of a node's span, or of a span (for SqlValidationError)."""
    span = node.span if isinstance(node, ast.Node) else node
    if span is None:
        return {}
    return {"line": span.line, "column": span.column}


def error(message: str, node: ast.Node | ast.Span | None = None,
          suggestions: list[str] | None = None) -> SqlValidationError:
    """A validation error placed at ``node``."""
    return SqlValidationError(message, suggestions=suggestions, **position(node))


Substitute = Callable[[ast.Expr], "str | None"]


@dataclass(frozen=True)
class SubqueryRef:
    """How generated code reads a subquery's rows (the compiler's answer for an IN / EXISTS node).

    ``name`` is bound to the rows: a ``SubqueryResult`` or ``LiveSubquery`` when uncorrelated, else a
    ``CorrelatedSubquery`` (operators/tables.py) whose groups are keyed by the table's side of the
    correlation equalities. ``outer`` is the enclosing query's side of them, in key order (one is the
    key itself, several a tuple), compiled here in the enclosing query's context; ``guard`` holds the
    subquery's conditions on the outer row alone (no row matches unless it is TRUE).
    """

    name: str
    correlated: bool = False
    outer: tuple[ast.Expr, ...] = ()
    guard: ast.Expr | None = None


SubqueryCompiler = Callable[["ast.InSubquery | ast.Exists"], SubqueryRef]


@dataclass
class ExprCompiler:
    """Turns expressions into Python source over the names a generated function defines.

    ``column_source`` maps a column reference to its access code; ``substitute`` (optional) claims
    nodes computed elsewhere; ``namespace`` collects the objects (function implementations, casts,
    patterns) that the generated source refers to.
    """

    column_source: Callable[[ast.Column], str]
    substitute: Substitute | None = None
    namespace: dict[str, Any] = field(default_factory=lambda: dict(RUNTIME))
    record_var: str | None = "m"  # the raw record, for HEADER(); None where there is none
    subquery: SubqueryCompiler | None = None  # compiles a subquery: where its rows are, how to look them up
    column_type: Callable[[ast.Column], str] | None = None  # declared types, for DECIMAL literals
    _temps: int = 0
    _consts: int = 0

    def _temp(self) -> str:
        self._temps += 1
        return f"_t{self._temps}"

    def bind(self, value: Any, prefix: str = "_c") -> str:
        """A name in the generated namespace bound to ``value``."""
        self._consts += 1
        name = f"{prefix}{self._consts}"
        self.namespace[name] = value
        return name

    def compile(self, node: ast.Expr) -> str:
        """Python source computing ``node``'s SQL value."""
        if self.substitute is not None:
            code = self.substitute(node)
            if code is not None:
                return code
        if isinstance(node, ast.Literal):
            v = node.value
            if isinstance(v, Decimal):
                return repr(float(v))  # a literal 1.05 is DOUBLE; exact DECIMAL comes from CAST
            return repr(v)
        if isinstance(node, ast.Column):
            return self.column_source(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinaryOp):
            return self._binary(node)
        if isinstance(node, ast.FunctionCall):
            return self._call(node)
        if isinstance(node, ast.Interval):
            return repr(node.millis)
        if isinstance(node, ast.IsNull):
            return f"(({self.compile(node.operand)}) is {'not ' if node.negated else ''}None)"
        if isinstance(node, ast.Between):
            code = (f"_between({self.compile(node.operand)}, {self.compile(node.low)}, "
                    f"{self.compile(node.high)})")
            return self._negate(code) if node.negated else code
        if isinstance(node, ast.InList):
            return self._in_list(node)
        if isinstance(node, ast.Like):
            return self._like(node)
        if isinstance(node, ast.Case):
            return self._case(node)
        if isinstance(node, ast.Cast):
            source = infer_type(node.operand, self.column_type)
            fn = self.bind(caster(node.type, source), "_cast")
            t = self._temp()
            return f"(None if ({t} := {self.compile(node.operand)}) is None else {fn}({t}))"
        if isinstance(node, ast.Subscript):
            return f"_subscript({self.compile(node.operand)}, {self.compile(node.index)})"
        if isinstance(node, ast.FieldAccess):
            return f"_field({self.compile(node.operand)}, {node.field!r})"
        if isinstance(node, ast.ArrayLiteral):
            return "[" + ", ".join(self.compile(i) for i in node.items) + "]"
        if isinstance(node, ast.Extract):
            return f"_extract({node.unit!r}, {self.compile(node.operand)})"
        if isinstance(node, ast.InSubquery | ast.Exists):
            if self.subquery is None:
                raise error("subqueries (IN (SELECT …), EXISTS) are not allowed here", node)
            ref = self.subquery(node)
            if ref.correlated:
                return self._semi_join(node, ref)
            if isinstance(node, ast.Exists):
                return f"bool({ref.name}.rows)"
            code = f"_in_rows({self.compile(node.operand)}, {ref.name})"
            return self._negate(code) if node.negated else code
        if isinstance(node, ast.Star):
            raise error("* is only allowed as a select item or in COUNT(*)", node)
        raise error(f"{type(node).__name__} is not supported in this position", node)

    def predicate(self, node: ast.Expr) -> str:
        """Source that is truthy exactly when ``node`` is TRUE (for WHERE/HAVING).

        In this context NULL and FALSE mean the same, so top-level AND/OR map to Python's own
        short-circuit operators.
        """
        if isinstance(node, ast.BinaryOp) and node.op in ("AND", "OR"):
            op = node.op.lower()
            return f"({self.predicate(node.left)} {op} {self.predicate(node.right)})"
        if isinstance(node, ast.BinaryOp) and node.op in _COMPARISON and (
                self.substitute is None or self.substitute(node) is None):
            # NULL and FALSE both reject: ``x is not None and x > 100`` skips the NULL branch.
            left, right = self.compile(node.left), self.compile(node.right)
            parts = []
            operands = []
            for code in (left, right):
                if _is_constant(code):
                    operands.append(code)
                else:
                    t = self._temp()
                    parts.append(f"({t} := {code}) is not None")
                    operands.append(t)
            parts.append(f"{operands[0]} {_COMPARISON[node.op]} {operands[1]}")
            return "(" + " and ".join(parts) + ")"
        return self.compile(node)

    def _semi_join(self, node: ast.InSubquery | ast.Exists, ref: SubqueryRef) -> str:
        """A correlated subquery as a keyed lookup of the outer row's correlation key.

        The table side never holds a key with a NULL part (the scan drops such rows), so an outer
        key with one finds nothing without a test of its own; a missing key is an empty subquery:
        EXISTS false, IN false, NOT IN true.
        """
        parts = [self.compile(e) for e in ref.outer]
        key = parts[0] if len(parts) == 1 else "(" + "".join(f"{p}, " for p in parts) + ")"
        guard = None if ref.guard is None else self.predicate(ref.guard)
        if isinstance(node, ast.Exists):
            found = f"({key} in {ref.name}.groups)"
            return found if guard is None else f"(bool({guard}) and {found})"
        group = f"{ref.name}.groups.get({key}, _no_rows)"
        if guard is not None:
            group = f"({group} if {guard} else _no_rows)"
        code = f"_in_rows({self.compile(node.operand)}, {group})"
        return self._negate(code) if node.negated else code

    def _negate(self, code: str) -> str:
        t = self._temp()
        return f"(None if ({t} := {code}) is None else not {t})"

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
        if node.op == "NOT":
            return self._negate(operand)
        t = self._temp()
        return f"(None if ({t} := {operand}) is None else {node.op}{t})"

    def _binary(self, node: ast.BinaryOp) -> str:
        op = node.op
        left, right = self.compile(node.left), self.compile(node.right)
        # A fractional literal next to a DECIMAL operand stays exact (Decimal * float is an error).
        if op in _ARITHMETIC or op in _COMPARISON or op in ("/", "%"):
            left = self._exact(node.left, node.right, left)
            right = self._exact(node.right, node.left, right)
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
        raise error(f"operator {op} is not supported", node)

    def _exact(self, literal: ast.Expr, other: ast.Expr, code: str) -> str:
        if not (isinstance(literal, ast.Literal) and isinstance(literal.value, float | Decimal)
                and not isinstance(literal.value, bool)):
            return code
        if infer_type(other, self.column_type).startswith("DECIMAL"):
            return self.bind(Decimal(str(literal.value)), "_dec")
        return code

    def _in_list(self, node: ast.InList) -> str:
        operand = self.compile(node.operand)
        items = [self.compile(i) for i in node.items]
        if all(_is_constant(i) for i in items):
            values = frozenset(literal_eval(i) for i in items)
            ref = self.bind(values, "_set")
            t = self._temp()
            code = f"(None if ({t} := {operand}) is None else {t} in {ref})"
        else:
            code = f"_in({operand}, ({', '.join(items)},))"
        return self._negate(code) if node.negated else code

    def _like(self, node: ast.Like) -> str:
        operand = self.compile(node.operand)
        if isinstance(node.pattern, ast.Literal) and isinstance(node.pattern.value, str):
            try:
                regex = like_regex(node.pattern.value, node.escape)
            except ValueError as exc:
                raise error(str(exc), node.pattern) from None
            ref = self.bind(regex, "_re")
            t = self._temp()
            code = f"(None if ({t} := {operand}) is None else {ref}.fullmatch(str({t})) is not None)"
        else:
            escape = "" if node.escape is None else f", {node.escape!r}"
            code = f"_like({operand}, {self.compile(node.pattern)}{escape})"
        return self._negate(code) if node.negated else code

    def _case(self, node: ast.Case) -> str:
        code = self.compile(node.else_) if node.else_ is not None else "None"
        if node.operand is not None:
            t = self._temp()
            subject = self.compile(node.operand)
            for when in reversed(node.whens):
                code = (f"({self.compile(when.result)} if {t} is not None and "
                        f"{t} == {self.compile(when.condition)} else {code})")
            return f"(({t} := {subject}), {code})[1]"
        for when in reversed(node.whens):
            code = f"({self.compile(when.result)} if {self.predicate(when.condition)} else {code})"
        return code

    def _call(self, node: ast.FunctionCall) -> str:
        fn = lookup(node.name)
        if fn is None:
            close = suggest_functions(node.name)
            hint = f"; did you mean {', '.join(close)}?" if close else " (SHOW FUNCTIONS lists them)"
            raise error(f"unknown function {node.name}{hint}", node, suggestions=close)
        if fn.kind in ("syntax", "window"):
            raise error(f"{node.name} is not a function call here (see DESCRIBE FUNCTION {node.name})", node)
        if fn.kind == "aggregate" and node.over is None:
            raise error(f"aggregate {node.name} is not allowed here", node)
        if node.over is not None or fn.kind == "analytic":
            raise error(f"analytic {node.name}(...) OVER is not allowed here", node)
        if not fn.accepts(len(node.args)):
            raise error(f"wrong number of arguments to {node.name}: got {len(node.args)}, "
                        f"expected {fn.signature}", node)
        if fn.name in ("HEADER", "HAS_HEADER", "HEADER_KEYS"):
            if self.record_var is None:
                raise error(f"{fn.name} reads the source record's headers: not available here", node)
            args = [self.record_var, *(self.compile(a) for a in node.args)]
        else:
            args = [self.compile(a) for a in node.args]
        ref = f"_f_{fn.name}"
        self.namespace[ref] = fn.impl
        return f"{ref}({', '.join(args)})"


def suggest_functions(name: str) -> list[str]:
    """Registered function names close to ``name``."""
    import difflib

    from .functions import all_functions

    return difflib.get_close_matches(name.upper(), [f.name for f in all_functions()], n=3)


def check_cast(value: Any, t: ast.DataType) -> Any:
    """Cast one value (used outside generated code, e.g. for table rows)."""
    if value is None:
        return None
    try:
        return caster(t)(value)
    except CastError:
        raise
    except Exception as exc:
        raise CastError(f"cannot cast {value!r} to {type_name(t)}") from exc


def infer_type(node: ast.Expr, column_type: Callable[[ast.Column], str] | None = None) -> str:
    """A best-effort SQL type name for a result column (records without a schema are untyped)."""
    if isinstance(node, ast.Literal):
        v = node.value
        if isinstance(v, bool):
            return "BOOLEAN"
        if isinstance(v, int):
            return "BIGINT"
        if isinstance(v, float | Decimal):
            return "DOUBLE"
        return "STRING" if isinstance(v, str) else "ANY"
    if isinstance(node, ast.Column):
        return column_type(node) if column_type else "ANY"
    if isinstance(node, ast.BinaryOp):
        if node.op in _COMPARISON or node.op in ("AND", "OR"):
            return "BOOLEAN"
        if node.op == "||":
            return "STRING"
        if node.op == "/":
            return "DOUBLE"
        left, right = infer_type(node.left, column_type), infer_type(node.right, column_type)
        return left if left == right else "DOUBLE" if "DOUBLE" in (left, right) else "ANY"
    if isinstance(node, ast.UnaryOp):
        return "BOOLEAN" if node.op == "NOT" else infer_type(node.operand, column_type)
    if isinstance(node, ast.IsNull | ast.Between | ast.InList | ast.Like | ast.Exists
                  | ast.InSubquery):
        return "BOOLEAN"
    if isinstance(node, ast.Cast):
        return type_name(node.type)
    if isinstance(node, ast.Extract | ast.Interval):
        return "BIGINT"
    if isinstance(node, ast.Case):
        return infer_type(node.whens[0].result, column_type)
    if isinstance(node, ast.FunctionCall):
        fn = lookup(node.name)
        if fn is None:
            return "ANY"
        if fn.return_type == "ARG" and node.args:
            return infer_type(node.args[0], column_type)
        return fn.return_type
    return "ANY"
