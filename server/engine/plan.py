"""The logical plan of a query: a tree of frozen nodes, one per concept, and what EXPLAIN prints.

The planner (planner.py) builds the tree from the AST once the relations are resolved: ``Scan``
leaves (one per FROM/JOIN relation), ``Filter``, ``Project``, ``Aggregate``, ``Join``, ``Over``,
``Union`` and a ``Sink`` at the root. Every node knows its output schema (``columns``: names and SQL
types; None when a relation's columns are inferred from its records) and its **changelog mode**
(``Changelog``): append-only, or upserts by a key, possibly with deletes (retractions). An operator
that cannot take an upsert input refuses it while planning (planner.py), at the relation that makes it.

Expressions stay AST nodes (``velo.grammar.ast``) and print as SQL through the grammar's printer.
No code here runs records: the compiler (compiler/) lowers the tree into generated batch functions
and operators. ``QueryPlan`` is the summary a compiled query carries (family, output columns, the
readable details EXPLAIN adds under the tree), with the tree itself in ``tree``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from velo.grammar import ast
from velo.grammar.printer import to_sql


@dataclass(frozen=True)
class OutputColumn:
    """A result column with its (best-effort) SQL type."""

    name: str
    type: str


@dataclass(frozen=True)
class Changelog:
    """How a node's output changes: ``append`` (every row is new) or ``upsert`` by ``key``.

    An upsert row replaces the previous row of its key; ``deletes`` says the node also retracts a key's
    row (HAVING turning false, a session merged away), which a Kafka sink writes as a tombstone.
    """

    kind: str = "append"  # "append" | "upsert"
    key: tuple[str, ...] = ()
    deletes: bool = False

    @property
    def append_only(self) -> bool:
        return self.kind == "append"

    def __str__(self) -> str:
        if self.kind == "append":
            return "append-only"
        return f"upsert by ({', '.join(self.key)})" + (", with deletes" if self.deletes else "")


APPEND = Changelog()

Columns = tuple[OutputColumn, ...] | None  # None: not known while planning (inferred from records)


def sql(node: ast.Node | None) -> str:
    """``node`` as SQL (the grammar's printer); its class name if the printer has no form for it."""
    if node is None:
        return ""
    try:
        return str(to_sql(node))
    except Exception:
        return type(node).__name__


def _columns_text(columns: Columns) -> str:
    if columns is None:
        return "(inferred from the records)"
    return ", ".join(f"{c.name} {c.type}" for c in columns) or "(none)"


@dataclass(frozen=True)
class PlanNode:
    """A node of the plan tree. Subclasses name their inputs in ``inputs()`` and describe themselves."""

    def inputs(self) -> tuple[PlanNode, ...]:
        return ()

    def with_inputs(self, inputs: tuple[PlanNode, ...]) -> PlanNode:
        """This node over other inputs (in ``inputs()`` order): how rules rebuild a frozen tree."""
        if not inputs:
            return self
        if isinstance(self, Join):
            return replace(self, left=inputs[0], right=inputs[1])
        if isinstance(self, Union):
            return replace(self, children=inputs)
        return replace(self, child=inputs[0])  # type: ignore[call-arg]

    @property
    def columns(self) -> Columns:
        """The output schema (None: not known until the records are read)."""
        raise NotImplementedError

    @property
    def changelog(self) -> Changelog:
        raise NotImplementedError

    @property
    def kind(self) -> str:
        return type(self).__name__

    def detail(self) -> str:
        """The node's expressions as SQL, on one line."""
        return ""

    def state(self) -> str:
        """What the node keeps between batches and what bounds it ("none" for stateless nodes)."""
        return "none"

    def filters_below(self) -> tuple[list[Filter], PlanNode]:
        """The chain of Filters from this node down, bottom-up, and the node under them."""
        chain: list[Filter] = []
        node: PlanNode = self
        while isinstance(node, Filter):
            chain.insert(0, node)
            node = node.child
        return chain, node

    def walk(self) -> list[PlanNode]:
        """This node and every node under it, parents first."""
        out: list[PlanNode] = [self]
        for child in self.inputs():
            out += child.walk()
        return out

    def render(self, indent: str = "", last: bool = True, top: bool = True) -> list[str]:
        """The subtree as EXPLAIN prints it: a node a line, then its changelog, its state and its columns
        (left out when they are its only input's)."""
        branch = "" if top else ("└─ " if last else "├─ ")
        lines = [f"{indent}{branch}{self.kind}: {self.detail()}".rstrip(": ").rstrip()]
        inner = indent + ("" if top else ("   " if last else "│  "))
        kids = self.inputs()
        bar = "│  " if kids else "   "
        state = self.state()
        if state == "none":
            lines.append(f"{inner}{bar}changelog: {self.changelog}; stateless")
        else:
            lines.append(f"{inner}{bar}changelog: {self.changelog}")
            lines.append(f"{inner}{bar}state: {state}")
        if len(kids) != 1 or kids[0].columns != self.columns:  # a Filter's or a Sink's are its input's
            lines.append(f"{inner}{bar}columns: {_columns_text(self.columns)}")
        for i, child in enumerate(kids):
            lines += child.render(inner, i == len(kids) - 1, top=False)
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The subtree as JSON (``GET /jobs/{name}``'s ``plan_tree``, drawn by the web console)."""
        cols = self.columns
        return {
            "kind": _CONSOLE_KIND.get(self.kind, self.kind),
            "node": self.kind,
            "text": self.detail(),
            "changelog": str(self.changelog),
            "state_kept": self.state(),
            "columns": None if cols is None else [{"name": c.name, "type": c.type} for c in cols],
            "children": [c.to_dict() for c in self.inputs()],
        }


# The console names leaves and roots as it always has (its boxes are styled by these kinds).
_CONSOLE_KIND = {"Scan": "Source"}


@dataclass(frozen=True)
class Scan(PlanNode):
    """A FROM/JOIN relation read: a Kafka topic or a file, as a stream or a table.

    A table on a topic is an upsert changelog by its message key (a tombstone deletes the key); a file
    table is read whole, append-only. ``event_time`` is the field the event time comes from (None: the
    Kafka timestamp; tables have none). ``input`` is the input index the driver feeds it as.
    """

    alias: str
    relation: str
    location: str  # "kafka topic 't'" | "file 'p'"
    format: str
    role: str  # "stream" | "table"
    schema: Columns
    event_time: str | None
    input: int
    table_on_topic: bool = False
    origin: ast.Node | None = field(default=None, compare=False, repr=False)

    @property
    def columns(self) -> Columns:
        return self.schema

    @property
    def changelog(self) -> Changelog:
        if self.table_on_topic:
            return Changelog("upsert", ("_key",), deletes=True)
        return APPEND

    def detail(self) -> str:
        name = self.relation if self.alias == self.relation else f"{self.relation} {self.alias}"
        et = "" if self.role == "table" else f", event time {self.event_time or 'record timestamp'}"
        return f"{name} ({self.location}, {self.format.upper()} {self.role}{et})"


@dataclass(frozen=True)
class Filter(PlanNode):
    """Rows of ``child`` for which ``condition`` is TRUE (WHERE, HAVING, a join's residual ON)."""

    child: PlanNode
    condition: ast.Expr
    clause: str = "WHERE"  # WHERE | ON (a join's residual condition) | HAVING | WHERE after OVER | ON after OVER

    def inputs(self) -> tuple[PlanNode, ...]:
        return (self.child,)

    @property
    def columns(self) -> Columns:
        return self.child.columns

    @property
    def changelog(self) -> Changelog:
        cl = self.child.changelog
        if self.clause == "HAVING":  # a group's row that stops passing is retracted
            return Changelog(cl.kind, cl.key, deletes=True)
        # Over a table's upserts a WHERE passes the changes it accepts and drops the rest (it does not yet
        # retract a key whose new row it rejects: docs/engine.md, "What remains").
        return cl

    def detail(self) -> str:
        return f"{sql(self.condition)}" + ("" if self.clause == "WHERE" else f" ({self.clause})")


@dataclass(frozen=True)
class Project(PlanNode):
    """The select list: ``items`` (output name, expression) in order; ``star_of`` relations whose
    unknown columns pass through whole (``SELECT *`` over an undeclared topic)."""

    child: PlanNode
    items: tuple[tuple[str, ast.Expr], ...]
    item_types: tuple[str, ...]
    star_of: tuple[str, ...] = ()
    key: tuple[str, ...] = ()  # PRIMARY KEY items: the sink's message key

    def inputs(self) -> tuple[PlanNode, ...]:
        return (self.child,)

    @property
    def columns(self) -> Columns:
        if self.star_of:
            return None
        return tuple(OutputColumn(n, t) for (n, _), t in zip(self.items, self.item_types, strict=True))

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.items]

    @property
    def changelog(self) -> Changelog:
        cl = self.child.changelog
        if cl.append_only:
            return cl
        names = {sql(e): n for n, e in self.items}
        return Changelog(cl.kind, tuple(names.get(k, k) for k in cl.key), cl.deletes)

    def detail(self) -> str:
        parts = [sql(e) if (isinstance(e, ast.Column) and e.name == n) else f"{sql(e)} AS {n}"
                 for n, e in self.items]
        parts += [f"{s}.*" for s in self.star_of]
        text = ", ".join(parts) or "*"
        return text + (f"; PRIMARY KEY ({', '.join(self.key)})" if self.key else "")


@dataclass(frozen=True)
class WindowSpec:
    """A GROUP BY window: tumbling, hopping or session, in milliseconds; ``time`` is its event time."""

    kind: str
    size_ms: int
    advance_ms: int
    grace_ms: int
    time: str | None
    origin: ast.Window | None = field(default=None, compare=False, repr=False)

    def text(self) -> str:
        extra = f", advance {self.advance_ms} ms" if self.kind == "hopping" else ""
        return (f"{self.kind} size {self.size_ms} ms{extra}, grace {self.grace_ms} ms "
                f"(event time: {self.time or 'record timestamp'})")


@dataclass(frozen=True)
class Aggregate(PlanNode):
    """GROUP BY ``keys`` computing ``aggregates``, per ``window`` when there is one.

    Its columns are the key expressions (as SQL) and the aggregate calls (as SQL), then the window
    bounds; the Project above it names the select list. ``emit`` is ``final`` (one row per window when
    it closes: append-only) or ``changes`` (an upsert per key and batch; HAVING turning false and
    merged sessions delete). ``distinct`` marks ``SELECT DISTINCT`` (keys only).
    """

    child: PlanNode
    keys: tuple[ast.Expr, ...]
    aggregates: tuple[ast.FunctionCall, ...]
    window: WindowSpec | None
    emit: str
    key_types: tuple[str, ...]
    aggregate_types: tuple[str, ...]
    distinct: bool = False
    watermark: str = ""
    origin: ast.Node | None = field(default=None, compare=False, repr=False)

    def inputs(self) -> tuple[PlanNode, ...]:
        return (self.child,)

    @property
    def columns(self) -> Columns:
        cols = [OutputColumn(sql(k), t) for k, t in zip(self.keys, self.key_types, strict=True)]
        cols += [OutputColumn(sql(a), t) for a, t in zip(self.aggregates, self.aggregate_types, strict=True)]
        if self.window is not None:
            cols += [OutputColumn("window_start", "BIGINT"), OutputColumn("window_end", "BIGINT")]
        return tuple(cols)

    @property
    def changelog(self) -> Changelog:
        if self.emit == "final" and not self.distinct:
            return APPEND
        key = tuple(sql(k) for k in self.keys) + (("window_start",) if self.window is not None else ())
        deletes = self.window is not None and self.window.kind == "session"
        return Changelog("upsert", key, deletes)

    def detail(self) -> str:
        keys = ", ".join(sql(k) for k in self.keys) or "(all rows)"
        parts = [("DISTINCT " if self.distinct else "GROUP BY ") + keys]
        if self.aggregates:
            parts.append(", ".join(sql(a) for a in self.aggregates))
        if self.window is not None:
            parts.append(f"window {self.window.text()}")
        parts.append(f"EMIT {self.emit.upper()}")
        return "; ".join(parts)

    def state(self) -> str:
        what = "the distinct rows" if self.distinct else "an accumulator set per group"
        if self.window is None:
            return f"{what}, unbounded (grows with the number of distinct keys)"
        return (f"{what} and open {self.window.kind} window, each window dropped once the watermark "
                f"passes its end + grace ({self.watermark})")


@dataclass(frozen=True)
class Join(PlanNode):
    """``left`` JOIN ``right``: ``kind`` INNER/LEFT/RIGHT/FULL, each side a ``stream`` or a ``table``.

    ``keys`` are the equalities (left expression, right expression); ``bound`` the event-time interval
    (``right.et - left.et`` in ``[-before, after]`` ms, from WITHIN or a BETWEEN on ``_event_time``)
    with ``grace_ms``; ``condition`` the rest of ON (applied after matching).
    """

    left: PlanNode
    right: PlanNode
    kind_: str
    left_role: str
    right_role: str
    keys: tuple[tuple[ast.Expr, ast.Expr], ...]
    condition: ast.Expr | None = None
    bound: tuple[int, int] | None = None
    grace_ms: int = 0
    ttl_ms: int = 0
    max_rows: int = 0
    schema: Columns = None
    origin: ast.Node | None = field(default=None, compare=False, repr=False)

    def inputs(self) -> tuple[PlanNode, ...]:
        return (self.left, self.right)

    @property
    def columns(self) -> Columns:
        return self.schema

    @property
    def changelog(self) -> Changelog:
        # A stream meets the table as it stands (no retraction when the table changes later); outer rows
        # of an interval join are emitted once, when their partners can no longer come.
        return APPEND

    @property
    def shape(self) -> str:
        if self.right_role == "table":
            return "stream-table" if self.left_role == "stream" else "lookup"
        return "interval" if self.bound is not None else "unbounded"

    def detail(self) -> str:
        on = " AND ".join(f"{sql(a)} = {sql(b)}" for a, b in self.keys) or "true"
        text = f"{self.kind_.upper()} {self.shape} ON {on}"
        if self.bound is not None:
            text += f"; right.et - left.et in [-{self.bound[0]}, {self.bound[1]}] ms, grace {self.grace_ms} ms"
        if self.condition is not None:
            text += f"; then {sql(self.condition)}"
        return text

    def state(self) -> str:
        if self.right_role == "table":
            return "the table's latest row per key (as many rows as the table has keys)"
        if self.bound is not None:
            return ("both sides' rows per join key, each evicted once the watermark passes its time + the "
                    "interval + grace")
        return f"both sides' rows, kept {self.ttl_ms} ms of event time, at most {self.max_rows} rows"


@dataclass(frozen=True)
class OverCallSpec:
    """One analytic call: the call as written (its OVER carries partition, order and frame)."""

    call: ast.FunctionCall

    def frame(self) -> str:
        over = self.call.over
        fr = over.frame if over is not None else None
        if fr is None:
            return "rows from the partition's start"
        start = "UNBOUNDED" if fr.preceding is None else str(fr.preceding)
        end = "CURRENT ROW" if not fr.end_preceding else f"{fr.end_preceding} PRECEDING"
        return f"ROWS BETWEEN {start} PRECEDING AND {end}"


@dataclass(frozen=True)
class Over(PlanNode):
    """Analytic ``calls`` per row of ``child``, over ``partition``, ordered by ``order`` (arrival order
    within the partition); every call of a query shares partition and order."""

    child: PlanNode
    partition: tuple[ast.Expr, ...]
    order: tuple[ast.OrderItem, ...]
    calls: tuple[OverCallSpec, ...]
    call_types: tuple[str, ...]
    ttl_ms: int = 0
    origin: ast.Node | None = field(default=None, compare=False, repr=False)

    def inputs(self) -> tuple[PlanNode, ...]:
        return (self.child,)

    @property
    def columns(self) -> Columns:
        base = self.child.columns
        extra = tuple(OutputColumn(sql(c.call), t) for c, t in zip(self.calls, self.call_types, strict=True))
        return None if base is None else base + extra

    @property
    def changelog(self) -> Changelog:
        return APPEND

    def detail(self) -> str:
        part = ", ".join(sql(p) for p in self.partition)
        order = ", ".join(sql(o) for o in self.order)
        head = (f"PARTITION BY {part}" if part else "one partition") + (f" ORDER BY {order}" if order else "")
        return head + "; " + ", ".join(f"{sql(c.call)} [{c.frame()}]" for c in self.calls)

    def state(self) -> str:
        return (f"per partition, each call's frame (its n PRECEDING rows, or a running aggregate); a "
                f"partition silent for {self.ttl_ms} ms of event time is dropped")


@dataclass(frozen=True)
class Union(PlanNode):
    """``UNION ALL`` of ``children`` (same column count; types widened as SQL does). Not planned yet."""

    children: tuple[PlanNode, ...]
    schema: Columns = None

    def inputs(self) -> tuple[PlanNode, ...]:
        return self.children

    @property
    def columns(self) -> Columns:
        return self.schema

    @property
    def changelog(self) -> Changelog:
        modes = [c.changelog for c in self.children]
        return APPEND if all(m.append_only for m in modes) else next(m for m in modes if not m.append_only)

    def detail(self) -> str:
        return "ALL"


@dataclass(frozen=True)
class Sink(PlanNode):
    """Where the rows go: ``target`` (the client, a Kafka topic or a file) in ``format``, keyed by
    ``key`` (the PRIMARY KEY columns, else an aggregate's group key [+ window start]; none: the input
    record's key, or the changelog's)."""

    child: PlanNode
    target: str
    format: str = "json"
    key: tuple[str, ...] = ()
    limit: int | None = None

    def inputs(self) -> tuple[PlanNode, ...]:
        return (self.child,)

    @property
    def columns(self) -> Columns:
        return self.child.columns

    @property
    def changelog(self) -> Changelog:
        return self.child.changelog

    def detail(self) -> str:
        text = f"{self.target}, {self.format.upper()}"
        cl = self.child.changelog
        if self.key:
            text += f", key ({', '.join(self.key)})"
        elif not cl.append_only:
            text += f", key ({', '.join(cl.key)})"
        elif self.target != "the client":
            text += ", key: the input record's"
        if self.limit is not None:
            text += f", LIMIT {self.limit}"
        return text


@dataclass(frozen=True)
class QueryPlan:
    """A compiled query's summary: its inputs, its operator family and the result's shape.

    ``operator`` is the lowering's family: ``filter_project``, ``aggregate``, ``join`` or ``over``;
    ``steps`` are the details EXPLAIN prints under the tree (relations' files and topics, semi-joins,
    live tables, the sink's format); ``tree`` is the plan tree (None only for a plan made by hand);
    ``late_strategy`` tells the driver what to do with ``Emitted.late`` (``drop``: count only,
    ``dead_letter``: write to the DLQ).
    """

    source: str
    operator: str
    columns: tuple[OutputColumn, ...]
    emit: str  # "none" for a plain stream query; "changes" | "final" for aggregates
    limit: int | None
    steps: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    late_strategy: str = "drop"
    warnings: tuple[str, ...] = field(default=())
    key_columns: tuple[str, ...] = ()
    tree: Sink | None = field(default=None, compare=False)

    def describe(self) -> str:
        """A readable rendering of the plan for EXPLAIN: the tree, then the details."""
        lines = self.tree.render() if self.tree is not None else []
        lines += list(self.steps)
        cols = ", ".join(f"{c.name} {c.type}" for c in self.columns) or "*"
        lines.append(f"Output: {cols}")
        if self.emit != "none":
            lines.append(f"Emit: {self.emit.upper()}")
        if self.limit is not None:
            lines.append(f"Limit: {self.limit}")
        lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)
