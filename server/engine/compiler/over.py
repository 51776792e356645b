"""The analytic family: ``f(...) OVER (PARTITION BY … ORDER BY … [ROWS …])`` per input row.

``scan`` decodes records into rows, ``over_inputs(r)`` gives each row's partition key, order key and
call arguments, and ``post_*`` filters (WHERE sees the analytic values) and builds the result; the
operator (operators/over.py) keeps the partitions. Joins reuse ``_over_code`` on joined rows.
"""

from __future__ import annotations

from collections.abc import Callable

from velo.grammar import ast

from ..expressions import error
from ..functions import lookup
from ..functions.aggregates import accumulator
from ..operators.over import OverCall, OverProcessor
from ..plan import OutputColumn
from ..processor import Mode, Processor
from ..validate import analytic_calls
from .base import QueryBase
from .codegen import decode_lines, loop
from .model import CompiledQuery
from .processors import wrap_post
from .sqlutil import chain_substitutes, constant, sql


class OverPlanner(QueryBase):
    """Compiles analytic calls, over one stream or over a join's rows."""

    def _over(self) -> CompiledQuery:
        s, cg = self.select, self.cg
        rel = self.relations[0]
        store = self._needed_system() | {"_event_time"}
        scan = decode_lines(cg, rel, True, store)
        scan.append("append((r, et, m.partition, None, m))")
        cg.add(loop(scan, "scan"))
        conds = [s.where] if s.where is not None else []
        specs, names, types, steps = self._over_code(self._access({0: "r"}, direct=False), None, conds)
        ns = cg.build(rel.spec.topic)
        plan = self._plan("over", [OutputColumn(n, t) for n, t in zip(names, types, strict=True)],
                          "none", steps)
        scan_fn, inputs_fn = ns["scan"], ns["over_inputs"]
        ttl = self.opts.over_ttl_ms

        def factory(mode: Mode) -> Processor:
            return OverProcessor(scan_fn, inputs_fn, specs, wrap_post(ns[f"post_{mode}"]), ttl)

        return CompiledQuery(plan, self._inputs(), cg.source, factory)

    def _over_code(self, access: Callable[[ast.Column], str], unpack: str | None,
                   conds: list[ast.Expr]) -> tuple[list[OverCall], list[str], list[str], list[str]]:
        """``over_inputs(r)`` and ``post_*`` for analytic calls; ``unpack`` splits a joined row."""
        s, cg = self.select, self.cg
        items = self._items()
        calls = []
        for node in (*[e for _, e, _ in items if e is not None], s.where):
            for c in analytic_calls(node):
                if c not in calls:
                    calls.append(c)
        ec = cg.compiler(access, record_var=None)
        first = calls[0].over
        assert first is not None
        for c in calls[1:]:
            assert c.over is not None
            if c.over.partition_by != first.partition_by or c.over.order_by != first.order_by:
                raise error("every OVER of a query must use the same PARTITION BY and ORDER BY", c.over)
        pk = "(" + "".join(f"{ec.compile(p)}, " for p in first.partition_by) + ")"
        order = "(" + "".join(f"{ec.compile(o.expr)}, " for o in first.order_by) + ")"
        specs: list[OverCall] = []
        arg_tuples = []
        for c in calls:
            assert c.over is not None
            frame = c.over.frame
            fn = lookup(c.name)
            assert fn is not None
            if fn.kind == "analytic":
                if c.name == "LAG":
                    lag = int(constant(c.args[1], c)) if len(c.args) > 1 else 1
                    if lag < 1:
                        raise error("LAG's offset must be at least 1", c)
                    default = constant(c.args[2], c) if len(c.args) > 2 else None
                    specs.append(OverCall("LAG", None, (), None, 0, lag, default))
                    arg_tuples.append(f"({ec.compile(c.args[0])},)")
                else:
                    if c.name in ("RANK", "DENSE_RANK") and not c.over.order_by:
                        raise error(f"{c.name} needs OVER (... ORDER BY ...)", c)
                    specs.append(OverCall(c.name, None, (), None, 0))
                    arg_tuples.append("()")
                continue
            params = tuple(constant(a, c) for a in c.args[1:])
            preceding = frame.preceding if frame is not None else None
            end = frame.end_preceding if frame is not None else 0
            if preceding is not None and end > preceding:
                raise error("the frame ends before it starts (m PRECEDING must not exceed n)", frame)
            specs.append(OverCall(c.name, accumulator(c.name, c.distinct), params, preceding, end))
            arg_tuples.append("()" if c.star or not c.args else f"({ec.compile(c.args[0])},)")
        cg.add(["def over_inputs(r):", *([f"    {unpack}"] if unpack else []),
                f"    return {pk}, {order}, ({''.join(a + ', ' for a in arg_tuples)})"])
        index = {c: i for i, c in enumerate(calls)}

        def sub(node: ast.Expr) -> str | None:
            if isinstance(node, ast.FunctionCall) and node in index:
                return f"v[{index[node]}]"
            return None

        pec = cg.compiler(access, sub, record_var="m")
        self._current = pec
        body = ["r, v, m = item", *([unpack] if unpack else [])]
        for cond in conds:
            body.append(f"if not {pec.predicate(cond)}: continue")
        pec.substitute = chain_substitutes(sub, self._alias_substitute(self._allowed))
        names, values, types = self._projection(items, pec)
        self._emit_post(body, names, values, types)
        steps = [f"Analytic: {', '.join(sql(c) for c in calls)}"]
        if conds:
            steps.append("Filter: WHERE clause (after the analytic values)")
        return specs, names, types, steps
