"""Canonical SQL for any AST node: ``to_sql(node)``, such that ``parse(to_sql(s)) == [s]``.

Canonical means one spelling per meaning: upper-case keywords, ``!=``, ``CAST(x AS T)`` for ``::``,
``INTERVAL '5' SECOND`` for every duration, WINDOW right after the last of FROM/WHERE/GROUP BY,
identifiers quoted only when they must be (upper case, odd characters, or a keyword), and
parentheses only where precedence needs them.
"""

from __future__ import annotations

import re
from functools import singledispatch

from . import ast as a
from .keywords import KEYWORDS, RESERVED

_PLAIN = re.compile(r"[a-z_][a-z0-9_]*\Z")
_PLAIN_FN = re.compile(r"[A-Z_][A-Z0-9_]*\Z")
# Keywords the lexer takes as keywords at the start of an expression even before '(': a function
# with one of these names must be quoted. (LEFT and RIGHT are reserved but are calls before '('.)
_EXPRESSION_KEYWORDS = frozenset(
    ["NOT", "CASE", "CAST", "EXTRACT", "POSITION", "CURRENT_TIMESTAMP", "EXISTS", "TRUE", "FALSE", "NULL"]
)
_UNQUOTED_CALLS = (RESERVED - {"LEFT", "RIGHT"}) | _EXPRESSION_KEYWORDS

# binding strength: higher binds tighter (mirrors the expression levels of velo.lark)
_OR, _AND, _NOT, _PRED, _SUM, _PRODUCT, _UNARY, _POSTFIX, _ATOM = range(1, 10)
_BINARY_LEVEL = {
    "OR": _OR, "AND": _AND, "=": _PRED, "!=": _PRED, "<": _PRED, "<=": _PRED, ">": _PRED,
    ">=": _PRED, "+": _SUM, "-": _SUM, "||": _SUM, "*": _PRODUCT, "/": _PRODUCT, "%": _PRODUCT,
}  # fmt: skip


def ident(name: str) -> str:
    """An identifier as written in SQL: bare when it reads back the same, else double-quoted."""
    if _PLAIN.match(name) and name.upper() not in KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def _function_name(name: str, reserved: frozenset[str] = _UNQUOTED_CALLS) -> str:
    if _PLAIN_FN.match(name) and name not in reserved:
        return name
    return '"' + name.replace('"', '""') + '"'


def string(value: str) -> str:
    """A string literal, quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def literal_value(value: a.LiteralValue) -> str:
    """A WITH/SET value or a literal: strings quoted, numbers as Python writes them."""
    if value is None:
        return "NULL"
    if value is True:
        return "TRUE"
    if value is False:
        return "FALSE"
    if isinstance(value, str):
        return string(value)
    return repr(value) if isinstance(value, float) else str(value)


def to_sql(node: a.Node) -> str:
    """Canonical SQL text of a statement, a clause, an expression or a type."""
    return _sql(node)


@singledispatch
def _sql(node: a.Node) -> str:
    raise TypeError(f"no SQL form for {type(node).__name__}")


# ---------------------------------------------------------------- expressions


def _level(node: a.Node) -> int:
    if isinstance(node, a.BinaryOp):
        return _BINARY_LEVEL[node.op]
    if isinstance(node, a.UnaryOp):
        return _NOT if node.op == "NOT" else _UNARY
    if isinstance(node, (a.IsNull, a.Between, a.InList, a.InSubquery, a.Like, a.Exists)):
        return _PRED
    if isinstance(node, a.Literal) and type(node.value) in (int, float) and _negative(node.value):
        return _UNARY
    if isinstance(node, (a.Subscript, a.FieldAccess)):
        return _POSTFIX
    return _ATOM


def _negative(value: object) -> bool:
    return str(value).startswith("-")


def _at(node: a.Node, level: int) -> str:
    """``node`` in a place that needs at least ``level`` binding strength."""
    text = _sql(node)
    return f"({text})" if _level(node) < level else text


def _not(negated: bool) -> str:
    return "NOT " if negated else ""


@_sql.register
def _(n: a.Literal) -> str:
    return literal_value(n.value)


@_sql.register
def _(n: a.Column) -> str:
    return ident(n.name) if n.qualifier is None else f"{ident(n.qualifier)}.{ident(n.name)}"


@_sql.register
def _(n: a.Star) -> str:
    return "*" if n.qualifier is None else f"{ident(n.qualifier)}.*"


@_sql.register
def _(n: a.UnaryOp) -> str:
    if n.op == "NOT":
        return f"NOT {_at(n.operand, _NOT)}"
    operand = _at(n.operand, _UNARY)
    return f"{n.op} {operand}" if operand.startswith(("-", "+")) else f"{n.op}{operand}"


@_sql.register
def _(n: a.BinaryOp) -> str:
    level = _BINARY_LEVEL[n.op]
    if level == _PRED:  # comparisons do not chain: both sides are sums
        return f"{_at(n.left, _SUM)} {n.op} {_at(n.right, _SUM)}"
    return f"{_at(n.left, level)} {n.op} {_at(n.right, level + 1)}"


@_sql.register
def _(n: a.IsNull) -> str:
    return f"{_at(n.operand, _SUM)} IS {_not(n.negated)}NULL"


@_sql.register
def _(n: a.Between) -> str:
    return (f"{_at(n.operand, _SUM)} {_not(n.negated)}BETWEEN {_at(n.low, _SUM)} "
            f"AND {_at(n.high, _SUM)}")  # fmt: skip


@_sql.register
def _(n: a.InList) -> str:
    items = ", ".join(_sql(x) for x in n.items)
    return f"{_at(n.operand, _SUM)} {_not(n.negated)}IN ({items})"


@_sql.register
def _(n: a.InSubquery) -> str:
    return f"{_at(n.operand, _SUM)} {_not(n.negated)}IN ({_sql(n.query)})"


@_sql.register
def _(n: a.Like) -> str:
    text = f"{_at(n.operand, _SUM)} {_not(n.negated)}LIKE {_at(n.pattern, _SUM)}"
    return text if n.escape is None else f"{text} ESCAPE {string(n.escape)}"


@_sql.register
def _(n: a.Exists) -> str:
    return f"EXISTS ({_sql(n.query)})"


@_sql.register
def _(n: a.Case) -> str:
    parts = ["CASE"]
    if n.operand is not None:
        parts.append(_sql(n.operand))
    parts += [f"WHEN {_sql(w.condition)} THEN {_sql(w.result)}" for w in n.whens]
    if n.else_ is not None:
        parts.append(f"ELSE {_sql(n.else_)}")
    return " ".join([*parts, "END"])


@_sql.register
def _(n: a.WhenClause) -> str:
    return f"WHEN {_sql(n.condition)} THEN {_sql(n.result)}"


@_sql.register
def _(n: a.Cast) -> str:
    return f"CAST({_sql(n.operand)} AS {_sql(n.type)})"


@_sql.register
def _(n: a.Subscript) -> str:
    return f"{_at(n.operand, _POSTFIX)}[{_sql(n.index)}]"


@_sql.register
def _(n: a.FieldAccess) -> str:
    if type(n.operand) is a.Column and n.operand.qualifier is None:
        return f"{ident(n.operand.name)}->{ident(n.field)}"  # `s.f` would read as column f of s
    if type(n.operand) is a.FieldAccess:  # a->b->c rather than (a->b).c
        return f"{_sql(n.operand)}->{ident(n.field)}"
    base = _at(n.operand, _POSTFIX)
    if base[-1:].isalnum() or base.endswith("_"):
        # `1.x` would read as the number `1.`, `NULL.x` or `... END.x` as a qualified column
        base = f"({base})"
    return f"{base}.{ident(n.field)}"


@_sql.register
def _(n: a.ArrayLiteral) -> str:
    return "ARRAY[" + ", ".join(_sql(x) for x in n.items) + "]"


@_sql.register
def _(n: a.Extract) -> str:
    return f"EXTRACT({n.unit} FROM {_sql(n.operand)})"


@_sql.register
def _(n: a.Interval) -> str:
    return f"INTERVAL {string(literal_value(n.amount))} {n.unit}"


@_sql.register
def _(n: a.FunctionCall) -> str:
    if n.name == "CURRENT_TIMESTAMP" and not n.args and not n.star and n.over is None:
        return "CURRENT_TIMESTAMP"
    if n.name == "POSITION" and len(n.args) == 2 and not n.distinct and n.over is None:
        return f"POSITION({_at(n.args[0], _SUM)} IN {_at(n.args[1], _SUM)})"
    args = ", ".join(_sql(x) for x in n.args)
    inner = "*" if n.star else ("DISTINCT " if n.distinct else "") + args
    text = f"{_function_name(n.name)}({inner})"
    return text if n.over is None else f"{text} {_sql(n.over)}"


@_sql.register
def _(n: a.Over) -> str:
    parts = []
    if n.partition_by:
        parts.append("PARTITION BY " + ", ".join(_sql(x) for x in n.partition_by))
    if n.order_by:
        parts.append("ORDER BY " + ", ".join(_sql(x) for x in n.order_by))
    if n.frame is not None:
        parts.append(_sql(n.frame))
    return "OVER (" + " ".join(parts) + ")"


@_sql.register
def _(n: a.OrderItem) -> str:
    return _sql(n.expr) + (" DESC" if n.descending else "")


@_sql.register
def _(n: a.WindowFrame) -> str:
    start = "UNBOUNDED" if n.preceding is None else str(n.preceding)
    end = "CURRENT ROW" if n.end_preceding == 0 else f"{n.end_preceding} PRECEDING"
    return f"ROWS BETWEEN {start} PRECEDING AND {end}"


# ---------------------------------------------------------------- types


@_sql.register
def _(n: a.SimpleType) -> str:
    return n.name


@_sql.register
def _(n: a.DecimalType) -> str:
    return f"DECIMAL({n.precision}, {n.scale})"


@_sql.register
def _(n: a.ArrayType) -> str:
    return f"ARRAY<{_sql(n.element)}>"


@_sql.register
def _(n: a.MapType) -> str:
    return f"MAP<{_sql(n.key)}, {_sql(n.value)}>"


@_sql.register
def _(n: a.StructField) -> str:
    return f"{ident(n.name)} {_sql(n.type)}"


@_sql.register
def _(n: a.StructType) -> str:
    return "STRUCT<" + ", ".join(_sql(f) for f in n.fields) + ">"


# ---------------------------------------------------------------- SELECT


def _with(properties: tuple[a.Property, ...]) -> str:
    if not properties:
        return ""
    return " WITH (" + ", ".join(_sql(p) for p in properties) + ")"


@_sql.register
def _(n: a.Property) -> str:
    return f"{string(n.key)} = {literal_value(n.value)}"


@_sql.register
def _(n: a.SelectItem) -> str:
    text = _sql(n.expr)
    if n.alias is not None:  # AS kept: an alias without it is accepted, never written
        text += f" AS {ident(n.alias)}"
    return text + (" PRIMARY KEY" if n.primary_key else "")


@_sql.register
def _(n: a.TableRef) -> str:
    if n.query is not None:
        return f"({_sql(n.query)}) {ident(n.name)}"
    return ident(n.name) if n.alias is None else f"{ident(n.name)} {ident(n.alias)}"


@_sql.register
def _(n: a.Join) -> str:
    kind = "" if n.kind == "inner" else n.kind.upper() + " "
    text = f"{kind}JOIN {_sql(n.table)} ON {_sql(n.on)}"
    if n.within is None:
        return text
    if n.within_after is None:
        text += f" WITHIN {_sql(n.within)}"
    else:
        text += f" WITHIN ({_sql(n.within)}, {_sql(n.within_after)})"
    return text if n.grace is None else f"{text} GRACE PERIOD {_sql(n.grace)}"


@_sql.register
def _(n: a.Window) -> str:
    args = [] if n.time_column is None else [_sql(n.time_column)]
    args.append(_sql(n.size))
    if n.advance is not None:
        args.append(_sql(n.advance))
    kind = "HOPPING" if n.kind == "hopping" else n.kind.upper()
    text = f"WINDOW {kind} ({', '.join(args)})"
    return text if n.grace is None else f"{text} GRACE PERIOD {_sql(n.grace)}"


@_sql.register
def _(n: a.Cte) -> str:
    return f"{ident(n.name)} AS ({_sql(n.query)})"


@_sql.register
def _(n: a.Select) -> str:
    parts = []
    if n.ctes:
        parts.append("WITH " + ", ".join(_sql(c) for c in n.ctes))
    parts.append(_core(n))
    parts += ["UNION ALL " + _core(u) for u in n.union_all]
    if n.emit is not None:
        parts.append("EMIT " + n.emit.upper())
    if n.limit is not None:
        parts.append(f"LIMIT {n.limit}")
    return " ".join(parts) + _with(n.properties)


def _core(n: a.Select) -> str:
    """SELECT … FROM … up to HAVING: what a UNION ALL branch has (EMIT, LIMIT and WITH are the
    whole query's)."""
    parts = ["SELECT"]
    if n.distinct:
        parts.append("DISTINCT")
    parts.append(", ".join(_sql(i) for i in n.items))
    parts.append("FROM " + _sql(n.from_))
    parts += [_sql(j) for j in n.joins]
    window = [] if n.window is None else [_sql(n.window)]
    if n.where is not None:
        parts.append("WHERE " + _sql(n.where))
    if n.group_by:
        parts.append("GROUP BY " + ", ".join(_sql(x) for x in n.group_by))
    parts += window  # after the last of FROM / WHERE / GROUP BY: a place every dialect accepts
    if n.having is not None:
        parts.append("HAVING " + _sql(n.having))
    if n.partition_by:
        parts.append("PARTITION BY " + ", ".join(_sql(x) for x in n.partition_by))
    return " ".join(parts)


# ---------------------------------------------------------------- statements


def _columns(columns: tuple[a.ColumnDef, ...]) -> str:
    return " (" + ", ".join(_sql(c) for c in columns) + ")" if columns else ""


@_sql.register
def _(n: a.ColumnDef) -> str:
    key = " PRIMARY KEY" if n.primary_key else " KEY" if n.key else ""
    return f"{ident(n.name)} {_sql(n.type)}{key}"


def _create(or_replace: bool, kind: str, name: str) -> str:
    return f"CREATE {'OR REPLACE ' if or_replace else ''}{kind.upper()} {ident(name)}"


@_sql.register
def _(n: a.CreateStreamAs) -> str:
    head = _create(n.or_replace, n.kind, n.name) + _columns(n.columns)
    return f"{head} AS {_sql(n.query)}{_with(n.properties)}"


@_sql.register
def _(n: a.CreateSource) -> str:
    return _create(n.or_replace, n.kind, n.name) + _columns(n.columns) + _with(n.properties)


@_sql.register
def _(n: a.StartJob) -> str:
    return f"START JOB {ident(n.name)} AS {_sql(n.query)}{_with(n.properties)}"


@_sql.register
def _(n: a.InsertSelect) -> str:
    return f"INSERT INTO {ident(n.target)} {_sql(n.query)}{_with(n.properties)}"


@_sql.register
def _(n: a.InsertValues) -> str:
    cols = " (" + ", ".join(ident(c) for c in n.columns) + ")" if n.columns else ""
    rows = ", ".join("(" + ", ".join(_sql(x) for x in row) + ")" for row in n.rows)
    return f"INSERT INTO {ident(n.target)}{cols} VALUES {rows}"


@_sql.register
def _(n: a.Drop) -> str:
    text = f"DROP {n.kind.upper()} {'IF EXISTS ' if n.if_exists else ''}{ident(n.name)}"
    return text + (" DELETE TOPIC" if n.delete_topic else "")


@_sql.register
def _(n: a.Print) -> str:
    text = "PRINT " + string(n.topic)
    if n.from_beginning:
        text += " FROM BEGINNING"
    if n.interval is not None:
        text += f" INTERVAL {n.interval}"
    return text if n.limit is None else f"{text} LIMIT {n.limit}"


@_sql.register
def _(n: a.StopJob) -> str:
    return f"STOP JOB {ident(n.name)}" + (" FORCE" if n.force else "")


@_sql.register
def _(n: a.PauseJob) -> str:
    return f"PAUSE JOB {ident(n.name)}"


@_sql.register
def _(n: a.ResumeJob) -> str:
    return f"RESUME JOB {ident(n.name)}"


@_sql.register
def _(n: a.StopApp) -> str:
    return f"STOP APP {ident(n.name)}"


@_sql.register
def _(n: a.ShowJobs) -> str:
    return "SHOW JOBS" + ("" if n.like is None else f" LIKE {string(n.like)}")


@_sql.register
def _(n: a.ShowStatus) -> str:
    return f"SHOW STATUS {ident(n.name)}"


@_sql.register
def _(n: a.ShowMetrics) -> str:
    return "SHOW METRICS" + ("" if n.name is None else f" {ident(n.name)}")


@_sql.register
def _(n: a.Show) -> str:
    return f"SHOW {n.what.upper()}"


@_sql.register
def _(n: a.Describe) -> str:
    return f"DESCRIBE {ident(n.name)}"


@_sql.register
def _(n: a.DescribeFunction) -> str:
    return f"DESCRIBE FUNCTION {_function_name(n.name, frozenset(KEYWORDS))}"


@_sql.register
def _(n: a.Explain) -> str:
    if n.statement is not None:
        return f"EXPLAIN {_sql(n.statement)}"
    return f"EXPLAIN {ident(n.name or '')}"


@_sql.register
def _(n: a.SetProperty) -> str:
    return f"SET {string(n.key)} = {literal_value(n.value)}"


@_sql.register
def _(n: a.UnsetProperty) -> str:
    return f"UNSET {string(n.key)}"
