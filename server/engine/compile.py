"""AST → plan tree → generated Python: each query's per-record work becomes functions over a batch.

The compiler resolves the query's relations (dialect.md §2: inline WITH definition, catalog entry,
topic) and validates it (validate.py); the planner (planner.py) builds the plan tree (plan.py), the
rules (rules.py) rewrite it, and the lowering of the family the tree's shape needs generates, as
source text, the functions that run per record — decode, cast declared columns, event time, WHERE,
keys, aggregate arguments, projection — ``compile()``d once per query. Operators (operators/) hold
the state in between and call those functions once per batch. Record errors are collected, not
raised, and handed back for the job's failure strategy.

Families: ``filter_project`` (one fused function), ``aggregate`` (GROUP BY, windows, DISTINCT),
``join`` (stream–table, stream–stream; then filter/project, aggregate or OVER), ``over`` (analytic).
This module is the public face and the dispatcher; the parts live in the ``compiler/`` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from velo.grammar import ast

from ..connectors.base import OutputRow
from .catalog import Catalog
from .compiler.aggregate import WINDOW_END, WINDOW_START
from .compiler.filter_project import FilterProjectPlanner
from .compiler.join import JoinPlanner
from .compiler.model import CompiledQuery, InputSpec
from .compiler.relations import SYSTEM_COLUMNS, Relation
from .operators.output import json_default
from .plan import Aggregate, Join, Over
from .planner import plan_query
from .rules import apply_rules
from .types import parse_timestamp
from .validate import check_query_shape


class _Query(FilterProjectPlanner, JoinPlanner):
    """Compiles one SELECT: plans the tree (planner.py), then lowers it through the operator family."""

    def compile(self) -> CompiledQuery:
        self.tree = apply_rules(plan_query(self))
        compiled = self._family()
        return self._with_tables(replace(compiled, plan=replace(compiled.plan, tree=self.tree)))

    def _family(self) -> CompiledQuery:
        """The lowering the tree's shape needs: a join drives what follows it; else the one operator."""
        assert self.tree is not None
        nodes = self.tree.walk()
        has_agg = any(isinstance(n, Aggregate) for n in nodes)  # GROUP BY, a window, DISTINCT
        if any(isinstance(n, Join) for n in nodes):
            return self._join(has_agg)
        if has_agg:
            return self._aggregate()
        if any(isinstance(n, Over) for n in nodes):
            return self._over()
        return self._filter_project()


def compile_select(
    select: ast.Select,
    star_columns: Sequence[str] | None = None,
    *,
    catalog: Catalog | None = None,
    properties: dict[str, Any] | None = None,
    data_dir: Any = None,
    sink_name: str | None = None,
) -> CompiledQuery:
    """Validate, plan and compile a SELECT (raises SqlValidationError with position and suggestions).

    ``properties`` are the job's or session's WITH properties (the SELECT's own are added);
    ``catalog`` resolves declared streams/tables; file paths must lie under ``data_dir``;
    ``sink_name`` is the job's output relation (its ``'<name>.*'`` keys are allowed; with
    ``'<name>.format' = 'avro'`` or ``VALUE_FORMAT = 'AVRO'`` the encoded values are Avro,
    compiler/sink.py).
    """
    select = check_query_shape(select)  # forms not run yet refused; ROWTIME & co. as system columns
    query = _Query(select, star_columns, catalog, properties, data_dir, sink_name)
    return query._with_sink(query.compile())


__all__ = ["SYSTEM_COLUMNS", "WINDOW_END", "WINDOW_START", "CompiledQuery", "InputSpec", "OutputRow",
           "Relation", "compile_select", "json_default", "parse_timestamp"]
