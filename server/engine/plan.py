"""The logical plan of a query: what to read, what to compute, what to write. No code here runs records."""

from __future__ import annotations

from dataclasses import dataclass

from velo.grammar import ast


@dataclass(frozen=True)
class OutputColumn:
    """A result column with its (best-effort) SQL type."""

    name: str
    type: str


@dataclass(frozen=True)
class FilterProject:
    """Per-record work: decode, filter by ``predicate``, project ``projections`` (after ``*``)."""

    predicate: ast.Expr | None
    projections: tuple[tuple[str, ast.Expr], ...]
    star: bool
    star_columns: tuple[str, ...] | None = None  # known columns of the source, when ``*`` is used


@dataclass(frozen=True)
class QueryPlan:
    """A compiled-to-be query: source topic, the per-record operator and the result's shape."""

    source: str
    operator: FilterProject
    columns: tuple[OutputColumn, ...]
    emit: str  # "none" for a plain stream query; "changes" | "final" for aggregates
    limit: int | None

    def describe(self) -> str:
        """A readable rendering of the plan for EXPLAIN."""
        op = self.operator
        lines = [f"Source: kafka topic '{self.source}' (JSON values)"]
        if op.predicate is not None:
            lines.append("Filter: WHERE clause")
        cols = ", ".join(c.name for c in self.columns) or "*"
        lines.append(f"Project: {cols}{' (plus every source column)' if op.star else ''}")
        if self.limit is not None:
            lines.append(f"Limit: {self.limit}")
        return "\n".join(lines)
