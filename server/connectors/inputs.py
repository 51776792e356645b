"""The source a query's inputs need: one Kafka topic, a file, or several merged into one.

Drivers (job manager, transient queries) call ``input_source`` with ``CompiledQuery.inputs``; a
query with several inputs (a join's topics, the table topics of later joins and subqueries) gets a
``MergedSource`` that tags each batch with its input index (``last_index``) for
``Processor.process(records, index)``. A table topic after the first input is read whole at every
start — from its beginning, under no consumer group — and up to its end before any stream record.
A Kafka input reads from its own cluster when it names one (``bootstrap_servers``), commits to its
own group when it names one (``group_id``, a job's only: a query commits nothing), and takes its
consumer settings (``client_options``, the ``kafka.*`` keys) from its spec.
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
    @property
    def bootstrap_servers(self) -> str | None: ...
    @property
    def group_id(self) -> str | None: ...
    @property
    def client_options(self) -> tuple[tuple[str, Any], ...]: ...
    @property
    def offset_reset(self) -> str | None: ...


def input_source(inputs: Sequence[InputLike], brokers: str, *, group_id: str | None,
                 offset_reset: str = "earliest", client_options: dict[str, Any] | None = None) -> Source:
    """One Source reading every input (merged when there are several).

    ``group_id`` is the job's group (None: a query, which commits nothing); ``client_options`` are
    aiokafka keywords under each input's own.
    """
    sources: list[Source] = []
    tables: list[int] = []
    for i, spec in enumerate(inputs):
        servers = spec.bootstrap_servers or brokers
        options = {**(client_options or {}), **dict(spec.client_options)}
        if spec.kind == "file" and spec.path is not None:
            sources.append(FileSource(Path(spec.path), spec.format))
        elif i > 0 and spec.role == "table":
            # Rebuilt from its topic at every start (re-reading a table only rewrites each key's latest row).
            sources.append(KafkaSource(servers, spec.topic, group_id=None, offset_reset="earliest",
                                       client_options=options, table=True))
            tables.append(i)
        else:
            # One consumer group per input: two topics under one group would rebalance together.
            if group_id is None:
                group = None
            elif spec.group_id:
                group = spec.group_id
            else:
                group = group_id if i == 0 else f"{group_id}-{i}"
            sources.append(KafkaSource(servers, spec.topic, group_id=group,
                                       offset_reset=spec.offset_reset or offset_reset, client_options=options))
    if len(sources) == 1:
        return sources[0]
    return MergedSource(sources, tables)
