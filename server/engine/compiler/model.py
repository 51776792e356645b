"""What the compiler reads and produces: ``InputSpec`` (an input) and ``CompiledQuery`` (the result)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..plan import QueryPlan
from ..processor import Mode, Processor


@dataclass(frozen=True)
class InputSpec:
    """Something a query reads: a Kafka topic or a file, as a stream or a table."""

    name: str
    topic: str
    kind: str = "kafka"  # "kafka" | "file"
    format: str = "json"
    path: str | None = None
    role: str = "stream"  # "stream" | "table"
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class CompiledQuery:
    """A plan with its generated functions; ``processor()`` gives the per-run object drivers use.

    ``inputs`` lists what the driver must read; it feeds input ``i``'s records with
    ``process(records, i)``. A file table read at start (stream–table join) is not an input; the
    topic tables of later joins and of subqueries come after the query's own inputs (role ``table``).
    """

    plan: QueryPlan
    inputs: tuple[InputSpec, ...]
    source_code: str
    _factory: Callable[[Mode], Processor]
    output_format: str = "json"  # how ``encode`` values are written: json, or avro with output_schema
    output_schema: dict[str, Any] | None = None

    def processor(self, mode: Mode) -> Processor:
        """A fresh processor: ``encode`` for jobs (Kafka rows), ``rows`` for clients."""
        return self._factory(mode)

    def explain(self) -> str:
        """The plan and the generated source, as EXPLAIN shows them."""
        return f"{self.plan.describe()}\n\nGenerated code:\n{self.source_code}"
