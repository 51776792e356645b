"""The typed AST of Velo SQL: frozen dataclasses, each carrying the source span it was parsed from.

Spans are excluded from equality so that ``parse(to_sql(ast)) == ast`` holds for any AST the parser
produces. Conventions of that AST (the printer and the server rely on them):

* identifiers are folded to lower case unless they were quoted; function names to upper case;
* ``a.b`` is ``Column("b", qualifier="a")`` — the parser cannot tell a source alias from a struct
  column, the server resolves it; deeper paths are ``FieldAccess`` on top (``a.b.c``);
* ``-7`` is ``Literal(-7)`` (a sign on a number literal is folded into it), never ``UnaryOp``;
* ``x::T`` is ``Cast``; ``<>`` is ``!=``; ``TERMINATE x`` is ``StopJob``; ``SHOW QUERIES`` is
  ``ShowJobs``; ``SLIDING`` windows are ``hopping``; every duration is an ``Interval``;
* type names are canonical (``INTEGER`` → ``INT``, ``VARCHAR``/``TEXT`` → ``STRING``,
  ``FLOAT``/``REAL`` → ``DOUBLE``, ``BOOL`` → ``BOOLEAN``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeAlias


@dataclass(frozen=True)
class Span:
    """Where a node stands in the source text (1-based lines and columns, 0-based offsets)."""

    line: int
    column: int
    end_line: int
    end_column: int
    start_pos: int
    end_pos: int


@dataclass(frozen=True)
class Node:
    """Base of every AST node."""

    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


# ---------------------------------------------------------------- types


@dataclass(frozen=True)
class SimpleType(Node):
    """``BOOLEAN INT BIGINT DOUBLE STRING TIMESTAMP DATE`` (canonical names)."""

    name: str


@dataclass(frozen=True)
class DecimalType(Node):
    """``DECIMAL(precision, scale)``."""

    precision: int
    scale: int = 0


@dataclass(frozen=True)
class ArrayType(Node):
    """``ARRAY<element>``."""

    element: DataType


@dataclass(frozen=True)
class MapType(Node):
    """``MAP<key, value>`` (keys are STRING in Velo)."""

    key: DataType
    value: DataType


@dataclass(frozen=True)
class StructField(Node):
    """One ``name type`` member of a ``STRUCT<...>``."""

    name: str
    type: DataType


@dataclass(frozen=True)
class StructType(Node):
    """``STRUCT<name T, ...>``."""

    fields: tuple[StructField, ...]


DataType: TypeAlias = SimpleType | DecimalType | ArrayType | MapType | StructType


# ---------------------------------------------------------------- expressions


LiteralValue: TypeAlias = int | float | Decimal | str | bool | None


@dataclass(frozen=True)
class Literal(Node):
    """A constant: number, string, TRUE/FALSE or NULL."""

    value: LiteralValue


@dataclass(frozen=True)
class Column(Node):
    """A column reference, optionally qualified by a source alias: ``t.price``."""

    name: str
    qualifier: str | None = None


@dataclass(frozen=True)
class Star(Node):
    """``*`` or ``alias.*`` in a select list."""

    qualifier: str | None = None


@dataclass(frozen=True)
class UnaryOp(Node):
    """``-x``, ``+x`` or ``NOT x`` (op is ``-``, ``+`` or ``NOT``)."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class BinaryOp(Node):
    """Arithmetic, comparison, ``||`` and boolean operators.

    ``op`` is one of ``+ - * / % || = != < <= > >= AND OR`` (``<>`` is normalised to ``!=``).
    """

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class OrderItem(Node):
    """``expr [ASC|DESC]`` inside ``OVER (ORDER BY ...)``."""

    expr: Expr
    descending: bool = False


@dataclass(frozen=True)
class WindowFrame(Node):
    """``ROWS BETWEEN n PRECEDING AND {CURRENT ROW | m PRECEDING}``.

    ``preceding`` is None for ``UNBOUNDED PRECEDING``; ``end_preceding`` is 0 for ``CURRENT ROW``.
    """

    preceding: int | None
    end_preceding: int = 0


@dataclass(frozen=True)
class Over(Node):
    """The ``OVER (...)`` of an analytic call."""

    partition_by: tuple[Expr, ...] = ()
    order_by: tuple[OrderItem, ...] = ()
    frame: WindowFrame | None = None


@dataclass(frozen=True)
class FunctionCall(Node):
    """``name(args)``; ``COUNT(*)`` has ``star=True`` and no args. Names are folded to upper case.

    ``POSITION(a IN b)`` is ``FunctionCall("POSITION", (a, b))`` and ``CURRENT_TIMESTAMP`` is
    ``FunctionCall("CURRENT_TIMESTAMP")``; ``over`` is set for analytic calls.
    """

    name: str
    args: tuple[Expr, ...] = ()
    distinct: bool = False
    star: bool = False
    over: Over | None = None


@dataclass(frozen=True)
class Interval(Node):
    """A duration: ``INTERVAL '5' SECOND``, ``INTERVAL '5 seconds'``, ``5s``, ``5 SECONDS``.

    ``unit`` is one of ``MILLISECOND SECOND MINUTE HOUR DAY``.
    """

    amount: int | float
    unit: str

    @property
    def millis(self) -> int:
        """The duration in milliseconds."""
        return round(self.amount * UNIT_MILLIS[self.unit])


UNIT_MILLIS: dict[str, int] = {
    "MILLISECOND": 1,
    "SECOND": 1000,
    "MINUTE": 60_000,
    "HOUR": 3_600_000,
    "DAY": 86_400_000,
}


@dataclass(frozen=True)
class IsNull(Node):
    """``x IS [NOT] NULL``."""

    operand: Expr
    negated: bool = False


@dataclass(frozen=True)
class Between(Node):
    """``x [NOT] BETWEEN low AND high``."""

    operand: Expr
    low: Expr
    high: Expr
    negated: bool = False


@dataclass(frozen=True)
class InList(Node):
    """``x [NOT] IN (a, b, ...)``."""

    operand: Expr
    items: tuple[Expr, ...]
    negated: bool = False


@dataclass(frozen=True)
class InSubquery(Node):
    """``x [NOT] IN (SELECT ...)``."""

    operand: Expr
    query: Select
    negated: bool = False


@dataclass(frozen=True)
class Like(Node):
    """``x [NOT] LIKE pattern [ESCAPE 'c']`` (``escape``: the one character that makes the next
    ``%``, ``_`` or itself literal)."""

    operand: Expr
    pattern: Expr
    negated: bool = False
    escape: str | None = None


@dataclass(frozen=True)
class Exists(Node):
    """``EXISTS (SELECT ...)``; ``NOT EXISTS`` is ``UnaryOp("NOT", Exists(...))``."""

    query: Select


@dataclass(frozen=True)
class WhenClause(Node):
    """``WHEN condition THEN result`` of a CASE."""

    condition: Expr
    result: Expr


@dataclass(frozen=True)
class Case(Node):
    """``CASE [operand] WHEN ... THEN ... [ELSE ...] END`` (operand set for the simple form)."""

    whens: tuple[WhenClause, ...]
    operand: Expr | None = None
    else_: Expr | None = None


@dataclass(frozen=True)
class Cast(Node):
    """``CAST(x AS type)`` or ``x::type``."""

    operand: Expr
    type: DataType


@dataclass(frozen=True)
class Subscript(Node):
    """``a[i]`` (arrays, 1-based) or ``m['k']`` (maps)."""

    operand: Expr
    index: Expr


@dataclass(frozen=True)
class FieldAccess(Node):
    """``expr.field`` where ``expr`` is more than a bare name (see the module docstring), and
    ksqlDB's ``expr->field`` (always this node: ``s->f`` is ``FieldAccess(Column("s"), "f")``)."""

    operand: Expr
    field: str


@dataclass(frozen=True)
class ArrayLiteral(Node):
    """``ARRAY[a, b, ...]``."""

    items: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class Extract(Node):
    """``EXTRACT(unit FROM ts)``; unit is upper case (YEAR ... EPOCH)."""

    unit: str
    operand: Expr


Expr: TypeAlias = (
    Literal
    | Column
    | Star
    | UnaryOp
    | BinaryOp
    | FunctionCall
    | Interval
    | IsNull
    | Between
    | InList
    | InSubquery
    | Like
    | Exists
    | Case
    | Cast
    | Subscript
    | FieldAccess
    | ArrayLiteral
    | Extract
)


# ---------------------------------------------------------------- SELECT


@dataclass(frozen=True)
class SelectItem(Node):
    """One item of a select list: ``expr [AS alias] [PRIMARY KEY]``."""

    expr: Expr
    alias: str | None = None
    primary_key: bool = False


@dataclass(frozen=True)
class TableRef(Node):
    """A relation in FROM/JOIN: a stream, table or topic name with an optional alias, or a
    derived table ``(SELECT …) [AS] name`` (``query`` set; ``name`` is its alias, ``alias`` None)."""

    name: str
    alias: str | None = None
    query: Select | None = None


@dataclass(frozen=True)
class Property(Node):
    """One ``'key' = value`` pair of a WITH clause. Keys keep their text; values are literals."""

    key: str
    value: LiteralValue


@dataclass(frozen=True)
class Join(Node):
    """``[INNER|LEFT|RIGHT|FULL] JOIN table ON cond [WITHIN d [GRACE PERIOD g]]``; kind is lower case.

    ``WITHIN d`` bounds the right side's time to ``d`` before or after the left's; ksqlDB's
    ``WITHIN (before, after)`` sets ``within`` to *before* and ``within_after`` to *after*.
    """

    kind: str
    table: TableRef
    on: Expr
    within: Interval | None = None
    within_after: Interval | None = None
    grace: Interval | None = None


@dataclass(frozen=True)
class Window(Node):
    """``WINDOW kind (...) [GRACE PERIOD d]``, every spelling of it.

    ``kind`` is ``tumbling``, ``hopping`` (also SLIDING) or ``session``; ``size`` is the session
    gap for a session window; ``time_column`` is the optional event-time column argument.
    """

    kind: str
    size: Interval
    advance: Interval | None = None
    grace: Interval | None = None
    time_column: Column | None = None


@dataclass(frozen=True)
class Select(Node):
    """A SELECT query (transient, or the body of a job statement).

    ``ctes`` are its ``WITH name AS (…)`` queries; ``union_all`` the SELECTs after ``UNION ALL``
    (each without EMIT, LIMIT or properties: this node's apply to the whole union);
    ``partition_by`` is ksqlDB's re-key ``PARTITION BY e, …`` (not an OVER's).
    """

    items: tuple[SelectItem, ...]
    from_: TableRef
    where: Expr | None = None
    distinct: bool = False
    limit: int | None = None
    emit: str | None = None  # "changes" | "final" | None (the default for the query's shape)
    properties: tuple[Property, ...] = ()
    joins: tuple[Join, ...] = ()
    group_by: tuple[Expr, ...] = ()
    having: Expr | None = None
    window: Window | None = None
    ctes: tuple[Cte, ...] = ()
    union_all: tuple[Select, ...] = ()
    partition_by: tuple[Expr, ...] = ()
    emit_span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)  # errors about EMIT


@dataclass(frozen=True)
class Cte(Node):
    """``name AS (select)`` in a query's leading ``WITH``."""

    name: str
    query: Select


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class ColumnDef(Node):
    """``name type [KEY | PRIMARY KEY]`` in a column list."""

    name: str
    type: DataType
    key: bool = False
    primary_key: bool = False


@dataclass(frozen=True)
class CreateStreamAs(Node):
    """``CREATE STREAM|TABLE name AS select [WITH (...)]``: a persistent job."""

    name: str
    query: Select
    kind: str = "stream"  # "stream" | "table"
    properties: tuple[Property, ...] = ()
    columns: tuple[ColumnDef, ...] = ()
    or_replace: bool = False


@dataclass(frozen=True)
class CreateSource(Node):
    """``CREATE [OR REPLACE] STREAM|TABLE name [(cols)] WITH (...)``: a catalog entry, no job."""

    name: str
    kind: str = "stream"  # "stream" | "table"
    columns: tuple[ColumnDef, ...] = ()
    properties: tuple[Property, ...] = ()
    or_replace: bool = False


@dataclass(frozen=True)
class StartJob(Node):
    """``START JOB name AS select [WITH (...)]`` (the Velostream form of a persistent job)."""

    name: str
    query: Select
    properties: tuple[Property, ...] = ()


@dataclass(frozen=True)
class InsertSelect(Node):
    """``INSERT INTO name select [WITH (...)]``: a job writing into an existing stream/topic."""

    target: str
    query: Select
    properties: tuple[Property, ...] = ()


@dataclass(frozen=True)
class InsertValues(Node):
    """``INSERT INTO name [(cols)] VALUES (...), ...``: produce records."""

    target: str
    rows: tuple[tuple[Expr, ...], ...]
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Drop(Node):
    """``DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC]``."""

    name: str
    kind: str = "stream"
    if_exists: bool = False
    delete_topic: bool = False


@dataclass(frozen=True)
class Print(Node):
    """``PRINT 'topic' | name [FROM BEGINNING] [INTERVAL n] [LIMIT n]``."""

    topic: str
    from_beginning: bool = False
    interval: int | None = None
    limit: int | None = None


@dataclass(frozen=True)
class ShowJobs(Node):
    """``SHOW JOBS|QUERIES [LIKE 'pattern']``."""

    like: str | None = None


@dataclass(frozen=True)
class StopJob(Node):
    """``STOP JOB name [FORCE]`` / ``TERMINATE name``."""

    name: str
    force: bool = False


@dataclass(frozen=True)
class PauseJob(Node):
    """``PAUSE JOB name``."""

    name: str


@dataclass(frozen=True)
class ResumeJob(Node):
    """``RESUME JOB name``."""

    name: str


@dataclass(frozen=True)
class StopApp(Node):
    """``STOP APP name``: stop every job of an application."""

    name: str


@dataclass(frozen=True)
class ShowStatus(Node):
    """``SHOW STATUS name``."""

    name: str


@dataclass(frozen=True)
class ShowMetrics(Node):
    """``SHOW METRICS [name]``."""

    name: str | None = None


@dataclass(frozen=True)
class Show(Node):
    """``SHOW STREAMS|TABLES|TOPICS|FUNCTIONS|PROPERTIES``; ``what`` is the lower-case noun."""

    what: str


@dataclass(frozen=True)
class Describe(Node):
    """``DESCRIBE name``."""

    name: str


@dataclass(frozen=True)
class DescribeFunction(Node):
    """``DESCRIBE FUNCTION fn`` (the name is upper case, like FunctionCall.name)."""

    name: str


@dataclass(frozen=True)
class Explain(Node):
    """``EXPLAIN statement`` (``statement`` set) or ``EXPLAIN name`` (``name`` set)."""

    statement: Statement | None = None
    name: str | None = None


@dataclass(frozen=True)
class SetProperty(Node):
    """``SET 'key' = value`` (a session property)."""

    key: str
    value: LiteralValue


@dataclass(frozen=True)
class UnsetProperty(Node):
    """``UNSET 'key'``."""

    key: str


Statement: TypeAlias = (
    Select
    | CreateStreamAs
    | StartJob
    | ShowJobs
    | StopJob
    | CreateSource
    | InsertSelect
    | InsertValues
    | Drop
    | Print
    | PauseJob
    | ResumeJob
    | StopApp
    | ShowStatus
    | ShowMetrics
    | Show
    | Describe
    | DescribeFunction
    | Explain
    | SetProperty
    | UnsetProperty
)

JobStatement: TypeAlias = CreateStreamAs | StartJob
