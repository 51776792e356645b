"""The join family: stream–table and stream–stream (interval or unbounded) joins, then whatever follows.

The first JOIN becomes the operator (operators/join.py): ``scan0``/``scan1`` decode each side and
compute its equality key; matched rows go to a projection, an aggregation or OVER, after lookups in
further tables (``chain``: files loaded per processor, topic tables fed as extra inputs). ON is split
into equality keys, an event-time bound and a residual condition applied with WHERE.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from velo.grammar import ast

from ..expressions import error
from ..operators.join import StreamStreamJoin, StreamTableJoin
from ..operators.output import Output, with_encode_errors
from ..operators.over import OverProcessor
from ..operators.tables import KeyedTable
from ..plan import Filter, Join, OutputColumn, PlanNode, Project, Scan
from ..processor import Mode, Processor
from ..time import Watermarks
from ..validate import analytic_calls, walk
from .aggregate import AggregatePlanner, LoweredAggregate
from .codegen import decode_lines, loop
from .model import CompiledQuery
from .over import OverPlanner
from .processors import chained, load_table, post_aggregate, post_over, wrap_post
from .relations import Relation
from .sqlutil import conjuncts


class JoinPlanner(AggregatePlanner, OverPlanner):
    """Compiles joins; aggregation and OVER after a join reuse the other planners."""

    def _join(self, has_agg: bool) -> CompiledQuery:
        s, cg = self.select, self.cg
        join = s.joins[0]
        left, right = self.relations[0], self.relations[1]
        self_join = left.spec.topic == right.spec.topic and left.spec.kind == right.spec.kind == "kafka" \
            and right.spec.role != "table"
        if self_join:
            right.index = 0
        # The tree's Join nodes, bottom-up: the first JOIN, then one lookup per further table.
        assert self.tree is not None
        joins = [n for n in self.tree.walk() if isinstance(n, Join)][::-1]
        first = joins[0]
        keys, bound = list(first.keys), first.bound
        is_table = first.right_role == "table"
        store = self._needed_system() | {"_event_time"}
        # A WHERE conjunct the rules pushed onto the stream's Scan (rules.py) runs in its scan, before the lookup.
        pushed = first.left.condition if isinstance(first.left, Filter) else None
        for side, rel in ((0, left), (1, right)):
            self._keyed_scan(f"scan{side}", rel, [k[side] for k in keys], store, table=side == 1 and is_table,
                             where=pushed if side == 0 else None)
        both = self_join and _decodes_alike(left, right)
        if both:
            self._self_scan(left, keys, store)
        extra = [(_input_of(jn.right), jn.kind_, list(jn.keys)) for jn in joins[1:]]
        variables = {0: "L", 1: "R", **{j: f"T{j}" for j, _, _ in extra}}
        self._unpack = ", ".join(variables[i] for i in sorted(variables)) + ", m = item"
        if self_join:
            # Both relations share input 0, so column access must go by alias, not input index.
            def access(col: ast.Column) -> str:
                rel, sub = self._resolve(col)
                var = "L" if rel is left else "R" if rel is right else f"T{self.relations.index(rel)}"
                if sub is not None:
                    assert isinstance(sub, ast.FieldAccess) and isinstance(sub.operand, ast.Column)
                    return f"_field({var}.get({sub.operand.name!r}), {sub.field!r})"
                return f"{var}.get({col.name!r})"
            col_access: Callable[[ast.Column], str] = access
        else:
            col_access = self._access(variables, direct=False)
        # Before the code after the join: its subqueries' tables are read after the joined tables.
        file_tables = self._chain_code(extra, col_access) if extra else {}
        ec = cg.compiler(col_access, record_var="m")
        self._current = ec
        # The Filters between the join and what follows it (ON's residual, then WHERE), bottom-up.
        top = self.tree.child
        filters = (top.child if isinstance(top, Project) else top).filters_below()[0]
        conds = [f.condition for f in filters]
        warnings: tuple[str, ...] = ()
        if bound is None and not is_table:
            warnings = (f"unbounded stream-stream join: state kept {self.opts.join_ttl_ms} ms, "
                        f"at most {self.opts.join_max_rows} rows",)
        low: LoweredAggregate | None = None
        if analytic_calls((s.items, s.where)):
            row_unpack = self._unpack.replace(", m = item", " = r")
            specs_o, names, types = self._over_code(col_access, row_unpack)
            post_kind = "over"
        elif has_agg:
            low = self._lower_aggregate(col_access)  # its WHERE is the tree's Filter: ON's residual and WHERE
            names, types = low.names, low.types
            post_kind = "aggregate"
        else:
            body = [self._unpack]
            for c in conds:
                body.append(f"if not {ec.predicate(c)}: continue")
            ec.substitute = self._alias_substitute(self._allowed)
            assert isinstance(top, Project)
            names, values, types = self._projection(top, ec)
            self._emit_post(body, names, values, types)
            post_kind = "project"
        ns = cg.build(left.spec.topic)
        scan0, scan1 = ns["scan0"], ns["scan1"]
        opts = self.opts
        grace = s.window.grace.millis if s.window is not None and s.window.grace is not None else 0
        if join.grace is not None:  # WITHIN … GRACE PERIOD g: the join's own lateness
            grace = join.grace.millis
        pkeys = self._primary_key(names)
        plan = self._plan("join", [OutputColumn(n, t) for n, t in zip(names, types, strict=True)],
                          (low.emit if low is not None else "none"), warnings)
        inputs = self._inputs()

        def factory(mode: Mode) -> Processor:
            watermarks = Watermarks(opts.out_of_orderness_ms, opts.idle_timeout_ms)
            if low is not None:
                # Its Output takes the sink's encoder too (a retried refused row, the rows mode); project
                # and OVER took it in their generated code.
                aggp, output = low.processor(mode, opts, feed=False)
                post = post_aggregate(low.extract, aggp)
            elif post_kind == "over":
                output = Output(mode, names, types, pkeys, None)
                over = OverProcessor(ns[f"over_{mode}"], specs_o, opts.over_ttl_ms)
                post = post_over(over)
            else:
                output = Output(mode, names, types, pkeys, None)
                post = wrap_post(ns[f"post_{mode}"])
            if extra:
                for j, table in file_tables.items():  # each run reads the file tables afresh
                    table.clear()
                    table.apply(load_table(self.relations[j], ns[f"scan{j}"]))
                post = chained(ns["chain"], post)
            if is_table:
                fresh_rows = load_table(right, scan1) if right.spec.kind == "file" else None
                watch = None
                if right.watch and right.path is not None:
                    watch = (right.path, lambda: load_table(right, scan1))
                return with_encode_errors(StreamTableJoin(scan0, None if right.spec.kind == "file" else scan1, post,
                                                          join.kind == "left", fresh_rows, watch), output)
            before, after = (None, None) if bound is None else bound
            return with_encode_errors(StreamStreamJoin(scan0, scan1, post, join.kind, before, after, grace,
                                                       opts.join_ttl_ms, opts.join_max_rows, watermarks, self_join,
                                                       ns["scan_both"] if both else None),
                                      output)

        return CompiledQuery(plan, inputs, cg.source, factory)

    def _keyed_scan(self, name: str, rel: Relation, key_exprs: list[ast.Expr], store: set[str],
                    table: bool = False, where: ast.Expr | None = None) -> None:
        """``name(batch)``: ``rel``'s records as (row, event time, partition, join key, record).

        Every column of the key expressions is read from the one decoded row ``r``; a key with a
        NULL part is None (it matches nothing). A ``table``'s tombstone (null value) comes out with
        row None: it deletes its message key (operators/tables.py). ``where`` (a stream's pushed-down
        filter) drops a record before its key is computed.
        """
        lines = ["if m.value is None:", "    append((None, 0, m.partition, None, m))", "    continue"] \
            if table else []
        lines += decode_lines(self.cg, rel, True, store)
        ec = self.cg.compiler(self._access({rel.index: "r", 0: "r"}, direct=False), record_var=None)
        if where is not None:
            lines.append(f"if not {ec.predicate(where)}: continue")
        lines.append("key = (" + "".join(f"{ec.compile(k)}, " for k in key_exprs) + ")")
        lines.append("if None in key: key = None")
        lines.append("append((r, et, m.partition, key, m))")
        self.cg.add(loop(lines, name))

    def _self_scan(self, rel: Relation, keys: list[tuple[ast.Expr, ast.Expr]], store: set[str]) -> None:
        """``scan_both(batch)``: a self-join's records decoded once, each as a left row then a right row.

        Both rows hold the one decoded dict (nothing writes to a row after its scan); each side has its
        own join key. A record that fails is one error and joins on neither side.
        """
        lines = decode_lines(self.cg, rel, True, store)
        ec = self.cg.compiler(self._access({0: "r"}, direct=False), record_var=None)
        left_key = "(" + "".join(f"{ec.compile(k[0])}, " for k in keys) + ")"
        right_key = "(" + "".join(f"{ec.compile(k[1])}, " for k in keys) + ")"
        lines += [f"k0 = {left_key}", "if None in k0: k0 = None"]
        lines += ["k1 = k0"] if right_key == left_key else [f"k1 = {right_key}", "if None in k1: k1 = None"]
        lines += ["append((r, et, m.partition, k0, m))", "append((r, et, m.partition, k1, m))"]
        self.cg.add(loop(lines, "scan_both"))

    def _extra_tables(self) -> list[tuple[int, ast.Join, list[tuple[ast.Expr, ast.Expr]]]]:
        """Joins after the first: table lookups keyed by equalities with earlier relations."""
        out = []
        for j, jn in enumerate(self.select.joins[1:], start=2):
            rel = self.relations[j]
            if rel.spec.role != "table":
                raise error("a second or later JOIN must be a table (a file, a catalog TABLE or a CREATE TABLE "
                            "AS output); join two streams in the first JOIN", jn.table)
            if jn.kind not in ("inner", "left"):
                raise error(f"a join with a table is INNER or LEFT, not {jn.kind.upper()}", jn)
            keys: list[tuple[ast.Expr, ast.Expr]] = []
            for c in conjuncts(jn.on):
                if isinstance(c, ast.Literal) and c.value is True:
                    continue
                if isinstance(c, ast.BinaryOp) and c.op == "=":
                    a, b = self._relations_of(c.left), self._relations_of(c.right)
                    if b == {j} and a and max(a) < j:
                        keys.append((c.left, c.right))
                        continue
                    if a == {j} and b and max(b) < j:
                        keys.append((c.right, c.left))
                        continue
                raise error("a table join's ON must be equalities with earlier relations (or true)", c)
            out.append((j, jn, keys))
        return out

    def _relations_of(self, e: ast.Expr) -> set[int]:
        found = set()
        for n in walk(e):
            if isinstance(n, ast.Column):
                rel, _ = self._resolve(n)
                found.add(self.relations.index(rel))
        return found

    def _chain_code(self, extra: list[tuple[int, str, list[tuple[ast.Expr, ast.Expr]]]],
                    access: Callable[[ast.Column], str]) -> dict[int, KeyedTable]:
        """``scan{j}`` per extra table (its side of the keys) and ``chain``, which looks them up.

        Each table is a ``KeyedTable`` whose ``rows`` dict ``chain`` reads as ``_tab{j}``. A topic
        table becomes an extra input of the query (``_live``); the file tables are returned, to be
        loaded when a processor is made.
        """
        cg = self.cg
        store = self._needed_system() | {"_event_time"}
        file_tables: dict[int, KeyedTable] = {}
        for j, _, keys in extra:
            rel = self.relations[j]
            self._keyed_scan(f"scan{j}", rel, [k[1] for k in keys], store, table=rel.spec.kind == "kafka")
            table = KeyedTable()
            cg.namespace[f"_tab{j}"] = table.rows
            if rel.spec.kind == "file":
                file_tables[j] = table
            else:
                self._live.append((rel.spec, f"scan{j}", table))
        ec = cg.compiler(access, record_var=None)
        body = ["L, R, m = item"]
        names = ["L", "R"]
        for j, kind, keys in extra:
            body.append("k = (" + "".join(f"{ec.compile(k[0])}, " for k in keys) + ")")
            body.append(f"T{j} = None if None in k else _tab{j}.get(k)")
            miss = f"T{j} = {{}}" if kind == "left" else "continue"
            body.append(f"if T{j} is None: {miss}")
            names.append(f"T{j}")
        body.append(f"append(({', '.join(names)}, m))")
        cg.add(loop(body, "chain", item="item", record="item[-1]"))
        return file_tables

    def _join_condition(self, join: ast.Join, left: Relation, right: Relation) -> tuple[
            list[tuple[ast.Expr, ast.Expr]], tuple[int, int] | None, ast.Expr | None]:
        """Equality keys (left expr, right expr), the time bound, and the rest of ON."""
        keys: list[tuple[ast.Expr, ast.Expr]] = []
        rest: list[ast.Expr] = []
        bound: tuple[int, int] | None = None
        if join.within is not None:
            ms = join.within.millis  # WITHIN d, or ksqlDB's WITHIN (before, after)
            bound = (ms, ms if join.within_after is None else join.within_after.millis)
        for c in conjuncts(join.on):
            if isinstance(c, ast.Literal) and c.value is True:
                continue
            if isinstance(c, ast.BinaryOp) and c.op == "=":
                sl, sr = self._side(c.left, left, right), self._side(c.right, left, right)
                if sl == 0 and sr == 1:
                    keys.append((c.left, c.right))
                    continue
                if sl == 1 and sr == 0:
                    keys.append((c.right, c.left))
                    continue
            b = self._time_bound(c, left, right)
            if b is not None:
                bound = b
                continue
            rest.append(c)
        residual: ast.Expr | None = None
        for c in rest:
            residual = c if residual is None else ast.BinaryOp("AND", residual, c)
        return keys, bound, residual

    def _side(self, e: ast.Expr, left: Relation, right: Relation) -> int | None:
        sides = set()
        for n in walk(e):
            if isinstance(n, ast.Column):
                rel, _ = self._resolve(n)
                sides.add(0 if rel is left else 1)
        return sides.pop() if len(sides) == 1 else None

    def _time_bound(self, c: ast.Expr, left: Relation, right: Relation) -> tuple[int, int] | None:
        """``b._event_time BETWEEN a._event_time - x AND a._event_time + y`` → (x, y) in ms."""
        if not isinstance(c, ast.Between) or c.negated:
            return None
        if not (isinstance(c.operand, ast.Column) and c.operand.name == "_event_time"):
            return None

        def offset(e: ast.Expr) -> tuple[ast.Column, int] | None:
            if isinstance(e, ast.Column) and e.name == "_event_time":
                return e, 0
            if isinstance(e, ast.BinaryOp) and e.op in "+-" and isinstance(e.left, ast.Column) \
                    and e.left.name == "_event_time" and isinstance(e.right, ast.Interval | ast.Literal):
                ms = e.right.millis if isinstance(e.right, ast.Interval) else int(e.right.value or 0)
                return e.left, ms if e.op == "+" else -ms
            return None

        lo, hi = offset(c.low), offset(c.high)
        if lo is None or hi is None:
            return None
        operand_side = self._side(c.operand, left, right)
        if operand_side == 1:  # right.et in [left.et + lo, left.et + hi]
            return -lo[1], hi[1]
        if operand_side == 0:  # left.et in [right.et + lo, right.et + hi] → right - left in [-hi, -lo]
            return hi[1], -lo[1]
        return None


def _input_of(node: PlanNode) -> int:
    """The relation index of a lookup's table (its Scan's input)."""
    assert isinstance(node, Scan)
    return node.input


def _decodes_alike(a: Relation, b: Relation) -> bool:
    """Whether a self-join's two relations decode a record into the same row (all but the alias equal)."""
    return dataclasses.replace(a, alias=b.alias, spec=dataclasses.replace(a.spec, name=b.spec.name)) == b
