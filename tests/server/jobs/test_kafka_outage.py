"""Broker trouble: a proxy cuts the connection for 10 s under 5 jobs; each goes DEGRADED and recovers
with every input record in its output. A broker that is down at deploy time is a clear error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from velo.server.connectors.embedded_kafka import EmbeddedKafka, free_port
from velo.server.errors import KafkaUnavailableError
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.runtime import JobState

from tests.kafka_helpers import consume, create_topic, produce, wait_until
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def proxied() -> Iterator[tuple[str, TcpProxy]]:
    """A broker of its own whose advertised address is a proxy the test controls."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the outage is expected
    proxy_port = free_port()
    with EmbeddedKafka(advertised_port=proxy_port) as kafka:
        proxy = TcpProxy(kafka.port, proxy_port).start()
        yield kafka.bootstrap_servers, proxy
        proxy.stop()


async def test_ten_second_cut_under_five_jobs(proxied: tuple[str, TcpProxy]) -> None:
    brokers, proxy = proxied
    manager = MultiJobSqlServer(ManagerConfig(brokers))
    names = [f"j{i}" for i in range(5)]
    for name in names:
        await create_topic(brokers, f"{name}_in", 2)
    jobs = [await manager.deploy_job(f"START JOB {n} AS SELECT v FROM {n}_in WITH ('output.topic' = '{n}_out');")
            for n in names]
    try:
        for n in names:
            await produce(brokers, f"{n}_in", [{"v": i} for i in range(100)])
        await wait_until(lambda: all(j.metrics.records_in == 100 for j in jobs), message="first records")

        proxy.cut()
        await wait_until(lambda: all(j.state is JobState.DEGRADED for j in jobs), timeout=8,
                         message="every job DEGRADED")
        assert all("unreachable" in j.history[-1].reason or "waiting" in j.history[-1].reason for j in jobs)
        await asyncio.sleep(10 - 1)  # the outage lasts 10 s (the wait above took its share)
        proxy.heal()

        await wait_until(lambda: all(j.state is JobState.RUNNING for j in jobs), timeout=20,
                         message="every job RUNNING again")
        for n in names:
            await produce(brokers, f"{n}_in", [{"v": i} for i in range(100, 200)])
        for n, job in zip(names, jobs, strict=True):
            out = await consume(brokers, f"{n}_out", 200, timeout=30)
            values = [r["v"] for r in out]
            assert set(values) == set(range(200)), f"{n} lost records"
            duplicates = len(values) - len(set(values))  # at-least-once allows them; count them
            assert duplicates == job.metrics.records_out - 200
            states = [t.state for t in job.history]
            assert states[-2:] == [JobState.DEGRADED, JobState.RUNNING]
    finally:
        await manager.shutdown()


async def test_broker_down_at_deploy_is_a_clear_error_not_a_hang(proxied: tuple[str, TcpProxy]) -> None:
    brokers, proxy = proxied
    await create_topic(brokers, "src", 1)
    manager = MultiJobSqlServer(ManagerConfig(brokers))
    proxy.cut()
    try:
        with pytest.raises(KafkaUnavailableError, match="unreachable"):
            await asyncio.wait_for(
                manager.deploy_job("START JOB late AS SELECT * FROM src WITH ('output.topic' = 'o');"), 20)
        assert manager.list_jobs() == []
    finally:
        proxy.heal()
        await manager.shutdown()
