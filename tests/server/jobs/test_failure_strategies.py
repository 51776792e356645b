"""Bad records under each failure strategy: the job keeps running and each strategy does what it says."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from velo.grammar.errors import SqlValidationError
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.runtime import JobState

from tests.kafka_helpers import consume, create_topic, produce, wait_until

BAD = [
    b"not json at all",
    b'{"id": 1, "price": "expensive"}',  # wrong type: price > 100 raises
    b"[1, 2, 3]",  # JSON, but not an object
    b'{"id": 2, "price": ' + b"9" * 10 + b', "pad": "' + b"x" * 1_000_000 + b'"}',  # a 1 MB value: fine
    b'{"id": 3, "deep": ' + b"[" * 5000 + b"]" * 5000 + b', "price": 1}',  # nested past orjson's limit
    b'{"id": 4, "price": 500}',
]


@pytest.fixture
async def manager(broker: str) -> AsyncIterator[MultiJobSqlServer]:
    mgr = MultiJobSqlServer(ManagerConfig(broker))
    yield mgr
    await mgr.shutdown()


@pytest.fixture
async def source(broker: str, topic_name: Callable[[str], str]) -> str:
    name = topic_name("bad")
    await create_topic(broker, name, 1)
    await produce(broker, name, BAD, raw=True)
    return name


def job(name: str, source: str, strategy: str, extra: str = "") -> str:
    return (f"START JOB {name} AS SELECT id, price FROM {source} WHERE price > 100 "
            f"WITH ('output.topic' = '{name}_out', 'failure_strategy' = '{strategy}'{extra});")


async def read_dlq(broker: str, topic: str, expected: int) -> list[tuple[bytes, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        out: list[tuple[bytes, dict[str, bytes]]] = []

        async def enough() -> bool:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                out.extend((r.value, dict(r.headers)) for r in records)
            return len(out) >= expected

        await wait_until(enough, message=f"{expected} dead letters")
        return out
    finally:
        await consumer.stop()


async def test_log_and_continue_counts_and_skips(manager: MultiJobSqlServer, source: str, broker: str) -> None:
    j = await manager.deploy_job(job("lac", source, "LogAndContinue"))
    await wait_until(lambda: j.metrics.records_in == len(BAD), message="every record read")
    assert j.state is JobState.RUNNING
    assert j.metrics.records_failed == 4
    assert j.metrics.failures_by_reason == {"invalid_json": 2, "type_error": 1, "not_an_object": 1}
    assert await consume(broker, "lac_out", 2) == [{"id": 2, "price": 9_999_999_999}, {"id": 4, "price": 500}]
    assert len(j.last_errors) == 1 and "invalid JSON" in j.last_errors[0]


async def test_send_to_dlq_keeps_raw_bytes_and_reason(manager: MultiJobSqlServer, source: str, broker: str) -> None:
    j = await manager.deploy_job(job("dlq", source, "SendToDLQ"))
    await wait_until(lambda: j.metrics.records_in == len(BAD), message="every record read")
    dead = await read_dlq(broker, "dlq-dlq", 4)
    assert [value for value, _ in dead] == [BAD[0], BAD[1], BAD[2], BAD[4]]  # the raw records, byte for byte
    for _, headers in dead:
        assert headers["velo.job"] == b"dlq"
        assert headers["velo.error"]
        assert orjson.loads(headers["velo.source"])["topic"] == source
    assert j.metrics.records_dlq == 4
    assert j.state is JobState.RUNNING


async def test_retry_with_backoff_then_dlq(manager: MultiJobSqlServer, source: str, broker: str) -> None:
    retries = ", 'max_retries' = '2', 'retry_backoff' = '10ms'"
    j = await manager.deploy_job(job("rwb", source, "RetryWithBackoff", retries))
    await wait_until(lambda: j.metrics.records_dlq == 4, message="4 dead letters after retries")
    assert j.metrics.records_retried == 8  # 4 records x 2 retries
    dead = await read_dlq(broker, "rwb-dlq", 4)
    assert all(b"after 2 retries" in h["velo.error"] for _, h in dead)


async def test_fail_batch_fails_the_job_and_commits_nothing(manager: MultiJobSqlServer, source: str) -> None:
    j = await manager.deploy_job(job("fb", source, "FailBatch"))
    await wait_until(lambda: j.state is JobState.FAILED, message="job FAILED")
    assert j.error and "FailBatch" in j.error and "invalid JSON" in j.error
    assert j.metrics.records_out == 0
    assert manager.get_job("fb").state is JobState.FAILED  # kept, with its reason, until deleted
    assert manager.live_count() == 0  # a FAILED job holds no slot


async def test_unknown_strategy_and_exactly_once_are_rejected(manager: MultiJobSqlServer, source: str) -> None:
    with pytest.raises(SqlValidationError, match="unknown failure_strategy"):
        await manager.deploy_job(job("x", source, "Ignore"))
    with pytest.raises(SqlValidationError, match="transactions"):
        await manager.deploy_job(job("y", source, "LogAndContinue", ", 'delivery.guarantee' = 'exactly_once'"))


async def test_a_failing_job_never_affects_another(manager: MultiJobSqlServer, source: str, broker: str) -> None:
    failing = await manager.deploy_job(job("failing", source, "FailBatch"))
    healthy = await manager.deploy_job(job("healthy", source, "LogAndContinue"))
    await wait_until(lambda: failing.state is JobState.FAILED, message="the FailBatch job failed")
    await wait_until(lambda: healthy.metrics.records_in == len(BAD), message="the other job read everything")
    assert healthy.state is JobState.RUNNING
    assert len(await consume(broker, "healthy_out", 2)) == 2
