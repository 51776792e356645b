"""The logical plan of a query: what to read, what to compute, what to write. No code here runs records."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutputColumn:
    """A result column with its (best-effort) SQL type."""

    name: str
    type: str


@dataclass(frozen=True)
class QueryPlan:
    """A compiled-to-be query: its inputs, its operator chain and the result's shape.

    ``operator`` is the family: ``filter_project``, ``aggregate``, ``join`` or ``over``; ``steps``
    are the readable lines EXPLAIN shows; ``late_strategy`` tells the driver what to do with
    ``Emitted.late`` (``drop``: count only, ``dead_letter``: write to the DLQ).
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

    def describe(self) -> str:
        """A readable rendering of the plan for EXPLAIN."""
        lines = list(self.steps)
        cols = ", ".join(f"{c.name} {c.type}" for c in self.columns) or "*"
        lines.append(f"Output: {cols}")
        if self.emit != "none":
            lines.append(f"Emit: {self.emit.upper()}")
        if self.limit is not None:
            lines.append(f"Limit: {self.limit}")
        lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)
