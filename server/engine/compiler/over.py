"""The analytic family: ``f(...) OVER (PARTITION BY … ORDER BY … [ROWS …])`` per input row.

One generated loop per output mode, ``over_rows`` / ``over_encode(batch, …)``, does all the
per-record work: decode each record (or unpack a joined row), compute its partition key, order key
and call arguments, update each call's state with code written for that call's kind (no per-record
dispatch on the function, no generic accumulator for the common frames), then filter (WHERE sees the
analytic values) and build the result row. The operator (operators/over.py) keeps the partitions.
Joins reuse ``_over_code`` on joined rows.
"""

from __future__ import annotations

import functools
import operator
import sys
from collections.abc import Callable

from velo.grammar import ast

from ..expressions import error
from ..functions import lookup
from ..functions.aggregates import Avg, Count, Max, Min, accumulator
from ..operators.over import OverCall, OverProcessor, frame_pairs, frame_values
from ..plan import OutputColumn, Over, Project
from ..processor import Mode, Processor
from .base import QueryBase
from .codegen import Codegen, decode_lines, encode_output
from .model import CompiledQuery
from .sqlutil import chain_substitutes, constant

# Before 3.12 the builtin sum() of ints and floats adds left to right exactly as ``+`` does (a C
# double is a Python float); from 3.12 it compensates rounding, which AVG's add() does not.
_SUM_IS_SEQUENTIAL = sys.version_info < (3, 12)


class OverPlanner(QueryBase):
    """Compiles analytic calls, over one stream or over a join's rows."""

    def _over(self) -> CompiledQuery:
        cg = self.cg
        rel = self.relations[0]
        store = self._needed_system()  # the analytic loop reads the event time as ``et``, not from the row
        decode = decode_lines(cg, rel, True, store)
        specs, names, types = self._over_code(self._access({0: "r"}, direct=False), None, decode)
        ns = cg.build(rel.spec.topic)
        plan = self._plan("over", [OutputColumn(n, t) for n, t in zip(names, types, strict=True)], "none")
        ttl = self.opts.over_ttl_ms

        def factory(mode: Mode) -> Processor:
            return OverProcessor(ns[f"over_{mode}"], specs, ttl)

        return CompiledQuery(plan, self._inputs(), cg.source, factory)

    def _over_code(self, access: Callable[[ast.Column], str], unpack: str | None, decode: list[str] | None = None,
                   ) -> tuple[list[OverCall], list[str], list[str]]:
        """``over_rows`` / ``over_encode``: the tree's Over, the Filters above it and the Project, per batch.

        ``decode`` (one stream) turns record ``m`` into row ``r`` and event time ``et``; without it
        (after a join) the batch holds (row, event time, record) triples and ``unpack`` splits a row.
        """
        cg = self.cg
        assert self.tree is not None
        project = self.tree.child
        assert isinstance(project, Project)
        filters, over = project.child.filters_below()
        assert isinstance(over, Over)
        conds = [f.condition for f in filters]
        calls = [c.call for c in over.calls]
        ec = cg.compiler(access, record_var=None)
        pk = "(" + "".join(f"{ec.compile(p)}, " for p in over.partition) + ")"
        order = "(" + "".join(f"{ec.compile(o.expr)}, " for o in over.order) + ")"
        specs: list[OverCall] = []
        args: list[str | None] = []  # each call's argument code (None: no argument)
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
                    args.append(ec.compile(c.args[0]))
                else:
                    if c.name in ("RANK", "DENSE_RANK") and not c.over.order_by:
                        raise error(f"{c.name} needs OVER (... ORDER BY ...)", c)
                    specs.append(OverCall(c.name, None, (), None, 0))
                    args.append(None)
                continue
            params = tuple(constant(a, c) for a in c.args[1:])
            preceding = frame.preceding if frame is not None else None
            end = frame.end_preceding if frame is not None else 0
            if preceding is not None and end > preceding:
                raise error("the frame ends before it starts (m PRECEDING must not exceed n)", frame)
            specs.append(OverCall(c.name, accumulator(c.name, c.distinct), params, preceding, end))
            args.append(None if c.star or not c.args else ec.compile(c.args[0]))
        index = {c: i for i, c in enumerate(calls)}

        def sub(node: ast.Expr) -> str | None:
            if isinstance(node, ast.FunctionCall) and node in index:
                return f"ov_v{index[node]}"
            return None

        pec = cg.compiler(access, sub, record_var="m")
        self._current = pec
        body = [f"if not {pec.predicate(cond)}: continue" for cond in conds]
        pec.substitute = chain_substitutes(sub, self._alias_substitute(self._allowed))
        names, values, types = self._projection(project, pec)
        # The result row is built in the same loop as the analytic values (as QueryBase._emit_post
        # builds it for the other families): no list of intermediate (row, values, record) per batch.
        timestamps = [n for n, t in zip(names, types, strict=True) if t == "TIMESTAMP"]
        tails = {"rows": [*body, f"append(RowEvent([{', '.join(values)}]))"],
                 "encode": [*body, "o = {" + ", ".join(f"{n!r}: {v}" for n, v in zip(names, values, strict=True)) + "}",
                            *encode_output(cg, names, timestamps, self._primary_key(names),
                                           self._sink_encoder(list(zip(names, types, strict=True))))]}
        for mode, tail in tails.items():
            cg.add(_eval_code(cg, f"over_{mode}", specs, args, pk, order if over.order else None, decode,
                              unpack, tail))
        return specs, names, types


def _eval_code(cg: Codegen, name: str, calls: list[OverCall], args: list[str | None], pk: str,
               order: str | None, decode: list[str] | None, unpack: str | None, tail: list[str]) -> list[str]:
    """``name(batch, parts, last, new_state, max_et)``: the whole per-record work of OVER.

    A record whose decoding, key or arguments fail is collected with its exception (as the other
    generated loops do); the state updates come after that, outside the ``try``, so a failed record
    leaves its partition untouched. ``tail`` (WHERE, then the result row) has its own ``try``: a row
    that fails there is collected too, after its values counted in the partition.
    """
    lines = [f"def {name}(batch, parts, last, new_state, max_et):",
             "    out = []",
             "    append = out.append",
             "    errors = None"]
    if decode is None:  # after a join: (row, event time, record) triples
        lines += ["    for item in batch:", "        r, et, m = item"]
        inputs = [unpack] if unpack else []
    else:
        lines.append("    for m in batch:")
        inputs = list(decode)
    inputs.append(f"ov_pk = {pk}")
    if order is not None:
        inputs.append(f"ov_order = {order}")
    inputs += [f"ov_a{i} = {a}" for i, a in enumerate(args) if a is not None]
    lines += ["        try:", *("            " + line for line in inputs),
              "        except Exception as exc:",
              "            if errors is None:",
              "                errors = []",
              "            errors.append((m, exc))",
              "            continue",
              "        ov_st = parts.get(ov_pk)",
              "        if ov_st is None:",
              "            ov_st = parts[ov_pk] = new_state()",
              "        last[ov_pk] = et",
              "        if et > max_et:",
              "            max_et = et"]
    for i, (c, a) in enumerate(zip(calls, args, strict=True)):
        lines += ["        " + line for line in _call_code(cg, i, c, None if a is None else f"ov_a{i}",
                                                          "()" if order is None else "ov_order")]
    lines += ["        try:", *("            " + line for line in tail),
              "        except Exception as exc:",
              "            if errors is None:",
              "                errors = []",
              "            errors.append((m, exc))",
              "    return out, errors, max_et"]
    return lines


def _call_code(cg: Codegen, i: int, c: OverCall, arg: str | None, order: str) -> list[str]:
    """Lines that update call ``i``'s state ``ov_st[i]`` with this row and set its value ``ov_v{i}``."""
    s, v = f"ov_s{i}", f"ov_v{i}"
    if c.name == "LAG":
        default = "None" if c.default is None else cg.bind(c.default, "_ovdefault")
        return [f"{s} = ov_st[{i}]",
                f"{v} = {s}[0] if len({s}) == {c.lag} else {default}",
                f"{s}.append({arg})"]
    if c.name in ("ROW_NUMBER", "RANK", "DENSE_RANK"):
        result = {"ROW_NUMBER": "count", "RANK": "rank", "DENSE_RANK": "dense"}[c.name]
        return [f"{s} = ov_st[{i}]",
                f"{s}.count += 1",
                f"if {order} != {s}.last:",
                f"    {s}.rank = {s}.count",
                f"    {s}.dense += 1",
                f"    {s}.last = {order}",
                f"{v} = {s}.{result}"]
    assert c.acc is not None
    value = arg if arg is not None else "1"  # COUNT(*) counts rows: every row brings a 1
    m = c.end_preceding
    if c.preceding is None:
        if m == 0:
            return [f"{s} = ov_st[{i}]", f"{s}.add({value}, et)", f"{v} = {s}.result()"]
        # m PRECEDING: a row reaches the running aggregate once m newer rows have arrived.
        return [f"{s}, ov_pend{i} = ov_st[{i}]",
                f"ov_pend{i}.append(({value}, et))",
                f"if len(ov_pend{i}) > {m}:",
                f"    {s}.add(*ov_pend{i}.popleft())",
                f"{v} = {s}.result()"]
    win, pend = f"ov_win{i}", f"ov_pend{i}"
    item = value if c.plain_frame else f"({value}, et)"
    lines = [f"{win}, {pend} = ov_st[{i}]"]
    if m:
        lines += [f"if len({pend}) == {m}:", f"    {win}.append({pend}.popleft())", f"{pend}.append({item})"]
    else:
        lines.append(f"{win}.append({item})")
    if not c.plain_frame:
        return [*lines, f"{v} = {cg.bind(functools.partial(frame_pairs, c.acc, c.params), '_ovframe')}({win})"]
    if c.acc is Count:
        return [*lines, f"{v} = len({win})" + ("" if arg is None else f" - {win}.count(None)")]
    # The builtins below do what add() does, value by value in frame order, so the result is the
    # same to the last bit; a NULL in the frame makes them raise TypeError, and the frame is then
    # aggregated the slow way (which skips NULLs, or raises the same error on values it cannot add).
    if c.acc is Min or c.acc is Max:
        fast = f"{cg.bind(min if c.acc is Min else max, '_ovbuiltin')}({win})"
    elif c.acc is Avg and _SUM_IS_SEQUENTIAL:
        fast = f"{cg.bind(sum, '_ovsum')}({win}, 0) / len({win})"
    else:
        # Sum starts from the first value, not 0 (0 + -0.0 is 0.0): reduce(add) adds exactly as add().
        reduce, add = cg.bind(functools.reduce, "_ovreduce"), cg.bind(operator.add, "_ovadd")
        fast = f"{reduce}({add}, {win}, 0) / len({win})" if c.acc is Avg else f"{reduce}({add}, {win})"
    slow = cg.bind(functools.partial(frame_values, c.acc, c.params), "_ovframe")
    return [*lines,
            "try:",
            f"    {v} = {fast} if {win} else None",
            "except TypeError:",
            f"    {v} = {slow}({win})"]
