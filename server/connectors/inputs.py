"""The source a query's inputs need: one Kafka topic, a file, or several merged into one.

Drivers (job manager, transient queries) call ``input_source`` with ``CompiledQuery.inputs``; a
query with several inputs (a join's topics, the table topics of later joins and subqueries) gets a
``MergedSource`` that tags each batch with its input index (``last_index``) for
``Processor.process(records, index)``. A table topic after the first input is read whole at every
start — from its beginning, under no consumer group — and up to its end before any stream record.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from .base import Source
from .files import FileSource
from .kafka import KafkaSource
from .memory import MergedSource


class InputLike(Protocol):
    """What ``input_source`` reads of an input (the engine's InputSpec)."""

    @property
    def topic(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def path(self) -> str | None: ...
    @property
    def role(self) -> str: ...


def input_source(inputs: Sequence[InputLike], brokers: str, *, group_id: str | None,
                 offset_reset: str = "earliest", client_options: dict[str, Any] | None = None) -> Source:
    """One Source reading every input (merged when there are several)."""
    sources: list[Source] = []
    tables: list[int] = []
    for i, spec in enumerate(inputs):
        if spec.kind == "file" and spec.path is not None:
            sources.append(FileSource(Path(spec.path), spec.format))
        elif i > 0 and spec.role == "table":
            # Rebuilt from its topic at every start (re-reading a table only rewrites each key's latest row).
            sources.append(KafkaSource(brokers, spec.topic, group_id=None, offset_reset="earliest",
                                       client_options=client_options, table=True))
            tables.append(i)
        else:
            # One consumer group per input: two topics under one group would rebalance together.
            group = group_id if group_id is None or i == 0 else f"{group_id}-{i}"
            sources.append(KafkaSource(brokers, spec.topic, group_id=group, offset_reset=offset_reset,
                                       client_options=client_options))
    if len(sources) == 1:
        return sources[0]
    return MergedSource(sources, tables)
