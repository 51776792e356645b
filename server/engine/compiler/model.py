"""What the compiler reads and produces: ``InputSpec`` (an input), ``SinkSpec`` (a job's output) and
``CompiledQuery`` (the result)."""

from __future__ import annotations

import re
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
    # Where and how a Kafka input is read, from '<name>.bootstrap.servers', '<name>.group.id' and the
    # 'kafka.*' keys (job-level, the declaration's, then '<name>.kafka.*'): None is the server's brokers
    # and the job's own group; client_options are aiokafka keywords (connectors/kafka_options.py).
    bootstrap_servers: str | None = None
    group_id: str | None = None
    client_options: tuple[tuple[str, Any], ...] = ()
    # '<name>.auto.offset.reset': where this input starts without a committed offset; None is the job's.
    offset_reset: str | None = None


@dataclass(frozen=True)
class SinkSpec:
    """Where a job writes: a Kafka topic (its cluster, compression and client settings) or a file.

    ``kind`` is ``kafka`` or ``file``; a file sink writes ``format`` (``json``: JSON lines, ``csv``) at
    ``path`` (resolved under the data directory), CSV with ``columns`` as its header and ``delimiter``.
    """

    name: str
    kind: str = "kafka"
    format: str = "json"
    path: str | None = None
    compression: str | None = None
    bootstrap_servers: str | None = None
    client_options: tuple[tuple[str, Any], ...] = ()
    columns: tuple[str, ...] = ()
    delimiter: str = ","


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
    sink: SinkSpec | None = None  # a job's sink (None: a query's rows go to its client)
    # The FROM relation is a bare topic (no declaration): its columns are inferred from its records.
    inferred_source: bool = False

    def processor(self, mode: Mode) -> Processor:
        """A fresh processor: ``encode`` for jobs (Kafka rows), ``rows`` for clients."""
        return self._factory(mode)

    def explain(self) -> str:
        """The plan tree, the fused stages and the generated source, as EXPLAIN shows them."""
        stages = [f"  {name}: {_stage(name)}" for name in re.findall(r"^def (\w+)\(", self.source_code, re.M)]
        return (f"{self.plan.describe()}\n\nFused stages (one generated function each, run per batch):\n"
                + "\n".join(stages) + f"\n\nGenerated code:\n{self.source_code}")


# What each generated function of a lowering does, in the tree's terms (EXPLAIN's "Fused stages").
_STAGES = {
    "encode": "Scan → Filter → Project → Sink, as the sink's key and value",
    "rows": "Scan → Filter → Project → Sink, as rows for a client",
    "extract": "the Aggregate's input (Scan or joined rows) → Filter → group key and arguments per row",
    "project": "per group: HAVING → Project",
    "agg_encode": "per group: the Sink's key and value",
    "scan0": "the join's left Scan → its join key",
    "scan1": "the join's right Scan → its join key",
    "scan_both": "a self-join's Scan, decoded once for both sides",
    "scan": "a table's Scan → its join key",
    "chain": "lookups in the further joined tables",
    "post_rows": "after the join: Filter → Project → Sink, as rows",
    "post_encode": "after the join: Filter → Project → Sink, as key and value",
    "over_rows": "Over (per-call state updates) → Filter → Project → Sink, as rows",
    "over_encode": "Over (per-call state updates) → Filter → Project → Sink, as key and value",
}


def _stage(name: str) -> str:
    if name in _STAGES:
        return _STAGES[name]
    if name.endswith("_scan"):
        return "a subquery's table Scan → the rows IN / EXISTS reads"
    return _STAGES["scan"] if name.startswith("scan") else "a helper of the stages above"
