"""Transient queries: a SELECT whose rows stream back to one client and leave nothing behind.

A query assigns every partition of its topic (no consumer group, so the first rows come at once),
runs the same compiled batch function as a job, and ends at its LIMIT, on cancel, on client
disconnect (the HTTP layer closes the event stream) or on server shutdown.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from velo.grammar import ast

from ..connectors.base import ConnectorError, Source
from ..connectors.formats import json_columns
from ..connectors.inputs import input_source
from ..connectors.kafka import KafkaAdmin, KafkaSource, sample_columns, sample_topic_columns
from ..engine import CompiledQuery, RowEvent, compile_select
from ..engine.catalog import Catalog
from ..engine.validate import check_job_properties, unknown
from ..errors import KafkaUnavailableError, NotFoundError

HEARTBEAT_S = 5.0
_POLL_MS = 200
Event = dict[str, Any]


@dataclass
class TransientQuery:
    """One running transient query, as listed by ``GET /queries``."""

    id: str
    sql: str
    client: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    rows_sent: int = 0
    _cancel: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _shutdown: bool = False

    def cancel(self, shutdown: bool = False) -> None:
        """Ask the query to end at its next poll (within ~200 ms)."""
        self._shutdown = self._shutdown or shutdown
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()


class QueryManager:
    """Starts transient queries and keeps the list of running ones."""

    def __init__(
        self,
        brokers: str,
        *,
        catalog: Catalog | None = None,
        data_dir: Path | None = None,
        source_factory: Callable[[str, str], Source] | None = None,
    ) -> None:
        self.brokers = brokers
        self.catalog = catalog
        self.data_dir = data_dir
        self._queries: dict[str, TransientQuery] = {}
        self._counter = itertools.count(1)
        self._source_factory = source_factory or self._kafka_source

    def _kafka_source(self, topic: str, offset_reset: str) -> Source:
        return KafkaSource(self.brokers, topic, group_id=None, offset_reset=offset_reset)

    def list(self) -> list[TransientQuery]:
        """The running queries."""
        return list(self._queries.values())

    def cancel(self, query_id: str) -> None:
        """Cancel a running query; NotFoundError if there is none with that id."""
        query = self._queries.get(query_id)
        if query is None:
            raise NotFoundError(f"no running query '{query_id}'")
        query.cancel()

    def shutdown(self) -> None:
        """End every open stream with ``done`` (reason ``shutdown``)."""
        for query in self._queries.values():
            query.cancel(shutdown=True)

    async def open(
        self,
        select: ast.Select,
        sql: str,
        properties: dict[str, Any],
        limit: int | None,
        client: str,
    ) -> tuple[TransientQuery, AsyncIterator[Event]]:
        """Validate and start a query; returns it with its event stream (header first).

        Errors found before the first byte (bad SQL, unknown topic, broker down) raise here, so the
        HTTP layer can answer them with a status code instead of a stream.
        """
        props = {k.lower(): v for k, v in properties.items()}
        props.update({p.key.lower(): p.value for p in select.properties})
        # The job checks, placed at the WITH property (a request's own properties have no position).
        check_job_properties(select, props, {p.key.lower(): p for p in select.properties},
                             catalog=self.catalog, data_dir=self.data_dir)
        wants_star = any(isinstance(i.expr, ast.Star) for i in select.items)
        options: dict[str, Any] = {"catalog": self.catalog, "properties": props, "data_dir": self.data_dir}
        compiled = compile_select(select, **options)  # validates before anything touches Kafka
        offset_reset = str(props.get("auto.offset.reset", "latest")).lower()
        first = compiled.inputs[0]
        # An input with its own cluster or consumer settings is built from its spec (inputs.py).
        if len(compiled.inputs) > 1 or first.kind != "kafka" or first.bootstrap_servers or first.client_options:
            source = input_source(compiled.inputs, self.brokers, group_id=None, offset_reset=offset_reset)
        else:
            source = self._source_factory(first.topic, first.offset_reset or offset_reset)
        wants_star = wants_star and first.kind == "kafka" and compiled.plan.operator == "filter_project"
        if not wants_star:
            # The columns of an undeclared topic, against its records, as a job's at deploy (a SELECT *
            # is compiled with the sampled columns below, which checks them the same way).
            await check_inferred_columns(self.brokers, select, compiled, **options)
        try:
            star_columns = await sample_columns(first.bootstrap_servers or self.brokers, first.topic) if wants_star \
                else None
            await source.start()
        except ConnectorError as exc:
            await source.stop()
            if "does not exist" not in str(exc):
                raise KafkaUnavailableError(str(exc)) from exc
            await self._raise_unknown(select, exc)
        if star_columns:
            compiled = compile_select(select, star_columns, **options)
        query = TransientQuery(f"q-{next(self._counter)}-{secrets.token_hex(3)}", sql, client)
        self._queries[query.id] = query
        effective_limit = min(x for x in (limit, select.limit) if x is not None) \
            if limit is not None or select.limit is not None else None
        # Recompiling once the first rows show the columns would make a fresh processor; with table
        # inputs (subqueries over topic tables) it would lose the rows read so far, so not then.
        delayed = wants_star and not star_columns and len(compiled.inputs) == 1
        events = self._events(query, select, compiled, source, effective_limit,
                              delay_header=delayed, options=options)
        return query, events

    async def _raise_unknown(self, select: ast.Select, cause: ConnectorError) -> None:
        """An unknown source, with the declared names and the broker's topics as suggestions."""
        admin = KafkaAdmin(self.brokers)
        try:
            topics = [t for t in await admin.list_topics() if not t.startswith("_")]
        except ConnectorError:
            topics = []
        finally:
            await admin.close()
        known = [*(self.catalog.names() if self.catalog else ()), *topics]
        raise unknown("stream or topic", select.from_.name, known, select.from_) from cause

    async def _events(
        self,
        query: TransientQuery,
        select: ast.Select,
        compiled: CompiledQuery,
        source: Source,
        limit: int | None,
        delay_header: bool,
        options: dict[str, Any] | None = None,
    ) -> AsyncIterator[Event]:
        reason = "cancelled"
        processor = compiled.processor("rows")
        try:
            if not delay_header:
                yield _header(query, compiled)
            last_sent = time.monotonic()
            while not query.cancelled:
                if limit is not None and query.rows_sent >= limit:
                    reason = "limit"
                    break
                batch = await source.read(_POLL_MS, 500)
                if batch.records and delay_header:
                    keys = json_columns(r.value for r in batch.records)
                    compiled = compile_select(select, keys, **(options or {}))
                    processor = compiled.processor("rows")
                    delay_header = False
                    yield _header(query, compiled)
                now_ms = int(time.monotonic() * 1000)  # the processor's clock: it reads none itself
                progress = source.progress()  # only caught-up partitions may go idle
                if batch.records:
                    emitted = processor.process(batch.records, getattr(source, "last_index", 0), now_ms, progress)
                elif source.at_end:
                    emitted = processor.finish()
                else:
                    emitted = processor.tick(now_ms, progress)
                rows = emitted.rows
                if limit is not None:
                    rows = rows[: limit - query.rows_sent]
                for row in rows:
                    yield _row_event(row)
                query.rows_sent += len(rows)
                now = time.monotonic()
                if rows:
                    last_sent = now
                elif now - last_sent >= HEARTBEAT_S:
                    last_sent = now
                    yield {"heartbeat": int(time.time() * 1000)}
                if source.at_end and not batch.records:
                    reason = "end_of_input"
                    break
            if query._shutdown:
                reason = "shutdown"
            if delay_header:
                yield _header(query, compiled)
            yield {"done": {"rows": query.rows_sent, "reason": reason}}
        finally:
            self._queries.pop(query.id, None)
            await source.stop()


SAMPLE_TIMEOUT_MS = 2000
"""How long a deploy waits for the records of an undeclared topic whose columns it checks."""


async def check_inferred_columns(brokers: str, select: ast.Select, compiled: CompiledQuery,
                                 **options: Any) -> None:
    """Check a job's columns against the fields of its undeclared source topic's records.

    A bare topic (no CREATE STREAM, no inline definition) has no declared columns, so the compiler
    accepts any name and an unknown one reads NULL forever. When the topic holds records, the query
    is compiled once more with their fields as the relation's columns — the way a transient
    ``SELECT *`` is — and that raises the compiler's own error for an unknown column, at the column,
    with suggestions; the job itself still runs with the open relation (fields added later are
    read). An empty topic, a sample that did not reach every partition in time or values that are
    not JSON objects defer the check (nothing to compare with); a missing topic or an unreachable
    broker is left to the deploy's topic check. ``options`` are ``compile_select``'s keywords.
    """
    if not compiled.inferred_source:
        return
    try:
        first = compiled.inputs[0]
        columns, complete = await sample_topic_columns(first.bootstrap_servers or brokers, first.topic,
                                                       SAMPLE_TIMEOUT_MS)
    except ConnectorError:
        return
    if columns and complete:
        compile_select(select, columns, **options)


def _row_event(row: RowEvent) -> Event:
    if row.op == "insert" and row.key is None:
        return {"row": row.values}
    return {"row": row.values, "op": row.op, "key": row.key}


def _header(query: TransientQuery, compiled: CompiledQuery) -> Event:
    plan = compiled.plan
    return {"header": {
        "query_id": query.id,
        "columns": [{"name": c.name, "type": c.type} for c in plan.columns],
        "emit": plan.emit,
    }}
