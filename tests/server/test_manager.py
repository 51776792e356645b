"""The MultiJobSqlServer against the real broker: the seed's core cases, in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from velo.grammar.errors import SqlSyntaxError, SqlValidationError
from velo.server.errors import (
    BadRequestError,
    DuplicateJobError,
    JobLimitError,
    NotFoundError,
)
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.runtime import JobState

from tests.kafka_helpers import consume, create_topic, produce, wait_until


@pytest.fixture
async def source(broker: str, topic_name: Callable[[str], str]) -> str:
    name = topic_name("src")
    await create_topic(broker, name, 2)
    return name


@pytest.fixture
async def manager(broker: str) -> AsyncIterator[MultiJobSqlServer]:
    mgr = MultiJobSqlServer(ManagerConfig(broker, max_jobs=3))
    yield mgr
    await mgr.shutdown()


def job_sql(name: str, source: str, where: str = "price > 100") -> str:
    return f"START JOB {name} AS SELECT id, price FROM {source} WHERE {where} WITH ('output.topic' = '{name}_out');"


async def test_deploy_list_stop(manager: MultiJobSqlServer, source: str) -> None:
    job = await manager.deploy_job(job_sql("alpha", source))
    assert job.state is JobState.RUNNING
    assert [j.name for j in manager.list_jobs()] == ["alpha"]
    assert manager.get_job("ALPHA") is job  # names fold to lower case

    stopped = await manager.stop_job("alpha")
    assert stopped.state is JobState.STOPPED
    assert manager.list_jobs() == []
    with pytest.raises(NotFoundError):
        manager.get_job("alpha")


async def test_lifecycle_transitions_are_recorded_with_reasons(manager: MultiJobSqlServer, source: str) -> None:
    job = await manager.deploy_job(job_sql("life", source))
    await manager.stop_job("life")
    assert [t.state for t in job.history] == [
        JobState.STARTING, JobState.RUNNING, JobState.STOPPING, JobState.STOPPED]
    assert all(t.reason for t in job.history)
    assert [t.at for t in job.history] == sorted(t.at for t in job.history)


async def test_max_jobs_enforced_and_freed_after_stop(manager: MultiJobSqlServer, source: str) -> None:
    for i in range(3):
        await manager.deploy_job(job_sql(f"j{i}", source))
    with pytest.raises(JobLimitError, match="limit of 3"):
        await manager.deploy_job(job_sql("j3", source))
    await manager.stop_job("j1")
    job = await manager.deploy_job(job_sql("j3", source))
    assert job.state is JobState.RUNNING
    assert sorted(j.name for j in manager.list_jobs()) == ["j0", "j2", "j3"]


async def test_duplicate_name_rejected_then_accepted_after_stop(manager: MultiJobSqlServer, source: str) -> None:
    await manager.deploy_job(job_sql("dup", source))
    with pytest.raises(DuplicateJobError):
        await manager.deploy_job(job_sql("dup", source, "price < 5"))
    await manager.stop_job("dup")
    job = await manager.deploy_job(job_sql("dup", source, "price < 5"))
    assert "price < 5" in job.spec.sql


async def test_empty_name_empty_sql_and_invalid_sql(manager: MultiJobSqlServer, source: str) -> None:
    with pytest.raises(BadRequestError, match="empty"):
        await manager.deploy_job("   ")
    with pytest.raises(BadRequestError, match="empty"):
        await manager.deploy_job(job_sql("x", source), name=" ")
    with pytest.raises(SqlSyntaxError) as info:
        await manager.deploy_job(f"START JOB bad AS\nSELECT id FORM {source};")
    assert (info.value.line, info.value.column) == (2, 16)  # at the source: FORM reads as an alias
    with pytest.raises(SqlValidationError, match="unknown stream or topic"):
        await manager.deploy_job(job_sql("nosource", "no_such_topic_anywhere"))
    assert manager.list_jobs() == []


async def test_concurrent_deploys_respect_the_limit_exactly(manager: MultiJobSqlServer, source: str) -> None:
    results = await asyncio.gather(
        *(manager.deploy_job(job_sql(f"c{i}", source)) for i in range(10)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, JobLimitError)]
    assert len(ok) == 3 and len(refused) == 7
    assert sorted(j.name for j in manager.list_jobs()) == sorted(j.name for j in ok)


async def test_records_flow_and_are_counted(manager: MultiJobSqlServer, source: str, broker: str) -> None:
    values = [{"id": i, "price": i} for i in range(300)]
    await produce(broker, source, values)
    job = await manager.deploy_job(job_sql("flow", source))
    await wait_until(lambda: job.metrics.records_in == 300, message="300 records read")
    expected = [{"id": v["id"], "price": v["price"]} for v in values if v["price"] > 100]
    out = await consume(broker, "flow_out", len(expected))
    assert sorted(out, key=lambda r: r["id"]) == expected
    assert job.metrics.records_out == len(expected)
    assert job.metrics.records_failed == 0


async def test_bad_records_do_not_kill_the_job(manager: MultiJobSqlServer, source: str, broker: str) -> None:
    await produce(broker, source, [b"not json", b"[1]", b'{"id": 1, "price": "high"}', b'{"id": 2, "price": 500}'],
                  raw=True)
    job = await manager.deploy_job(job_sql("tough", source))
    await wait_until(lambda: job.metrics.records_in == 4, message="4 records read")
    assert job.state is JobState.RUNNING
    assert job.metrics.records_failed == 3
    assert await consume(broker, "tough_out", 1) == [{"id": 2, "price": 500}]
