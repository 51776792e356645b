"""Helpers of the table tests (topic tables, subqueries): table writes, job runs, outputs, catalogs.

A table is written as ``(message key, value or None)`` pairs, in order; None is a tombstone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from velo.grammar.parser import parse_statement
from velo.server.engine.catalog import Catalog, entry_from_statement
from velo.server.engine.compile import compile_select
from velo.server.engine.compiler.model import CompiledQuery
from velo.server.jobs.manager import MultiJobSqlServer
from velo.server.jobs.runtime import JobRuntime, JobState

from tests.kafka_helpers import produce, wait_until

Writes = list[tuple[str, dict[str, Any] | None]]


def final(writes: Writes) -> list[dict[str, Any]]:
    """A table's contents after its writes: the latest value per key, deleted keys gone."""
    rows: dict[str, dict[str, Any] | None] = {}
    for key, value in writes:
        rows.pop(key, None)
        rows[key] = value
    return [v for v in rows.values() if v is not None]


async def write_table(brokers: str, topic: str, writes: Writes) -> None:
    """Produce a table's writes in order (a tombstone is a null value)."""
    payloads = [None if v is None else orjson.dumps(v) for _, v in writes]
    await produce(brokers, topic, payloads, keys=[k.encode() for k, _ in writes], raw=True)


async def read_output(brokers: str, topic: str, count: int, timeout: float = 30.0) -> list[tuple[Any, Any]]:
    """The first ``count`` records of ``topic`` as (key, decoded value) pairs."""
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    out: list[tuple[Any, Any]] = []
    try:
        await consumer.topics()
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()])

        async def enough() -> bool:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                out.extend((r.key, None if r.value is None else orjson.loads(r.value)) for r in records)
            return len(out) >= count

        await wait_until(enough, timeout=timeout, message=f"{count} records on {topic}")
        return out
    finally:
        await consumer.stop()


def values(job: JobRuntime, pairs: list[tuple[Any, Any]]) -> list[list[Any]]:
    """Output records as rows in the plan's column order."""
    names = [c.name for c in job.spec.query.plan.columns]
    return [[v.get(n) for n in names] for _, v in pairs]


def latest(job: JobRuntime, pairs: list[tuple[Any, Any]]) -> list[list[Any]]:
    """An upsert output's final rows (the last value per key)."""
    last: dict[Any, Any] = {}
    for key, value in pairs:
        last[key] = value
    return values(job, [(k, v) for k, v in last.items() if v is not None])


def catalog_of(statements: Iterable[str]) -> Catalog:
    """A catalog holding the streams and tables ``statements`` declare."""
    cat = Catalog()
    for sql in statements:
        cat.put(entry_from_statement(parse_statement(sql)))  # type: ignore[arg-type]
    return cat


def compile_with(statements: Iterable[str], sql: str, data_dir: Path | None = None) -> CompiledQuery:
    """``sql`` compiled against a catalog of ``statements``."""
    return compile_select(parse_statement(sql), catalog=catalog_of(statements), data_dir=data_dir)  # type: ignore[arg-type]


class Topics(Protocol):
    """A test's topics: the stream's name, and how many records a job's inputs hold."""

    trades: str

    def expected_in(self, job: JobRuntime) -> int: ...


async def run_jobs(broker: str, manager: MultiJobSqlServer, topics: Topics, queries: dict[str, str],
                   props: str = "") -> dict[str, tuple[JobRuntime, list[tuple[Any, Any]]]]:
    """Deploy one job per query (together), wait until each has read all its input; its output."""
    names = {q: f"{q}_{topics.trades}" for q in queries}
    jobs = await asyncio.gather(*(manager.deploy_job(f"START JOB {names[q]} AS {sql} "
                                                     f"WITH ({props}'output.topic' = '{names[q]}')")
                                  for q, sql in queries.items()))
    assert all(j.state is JobState.RUNNING for j in jobs), [(j.name, j.error) for j in jobs]

    async def done(job: JobRuntime) -> tuple[JobRuntime, list[tuple[Any, Any]]]:
        want = topics.expected_in(job)
        await wait_until(lambda: job.metrics.records_in >= want, timeout=60, message=f"{job.name} input")
        assert job.metrics.records_in == want and job.metrics.records_failed == 0
        return job, await read_output(broker, job.spec.sink_topic, job.metrics.records_out)

    results = await asyncio.gather(*(done(j) for j in jobs))
    return dict(zip(queries, results, strict=True))
