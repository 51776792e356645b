"""Resource cleanup: many deploy/stop cycles leave no tasks, sockets, descriptors or group members."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer

from tests.kafka_helpers import create_topic, wait_until

CYCLES = 500
LANES = 5  # jobs cycling side by side (the manager's limit), 100 cycles each


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * (resource.getpagesize() // 1024)


async def test_500_deploy_stop_cycles_leave_nothing_behind(broker: str, topic_name: Callable[[str], str]) -> None:
    source = topic_name("cycle")
    await create_topic(broker, source, 2)
    manager = MultiJobSqlServer(ManagerConfig(broker, max_jobs=LANES))

    def sql(lane: int) -> str:
        return f"START JOB cyc{lane} AS SELECT n FROM {source} WHERE n > 10 WITH ('output.topic' = '{source}_out');"

    produced = 0
    producer = AIOKafkaProducer(bootstrap_servers=broker)
    await producer.start()

    async def lane(k: int, cycles: int) -> None:
        """Each cycle: five new records, a deploy that reads (at least) them, a stop that commits."""
        nonlocal produced
        for _ in range(cycles):
            for i in range(5):
                await producer.send(source, orjson.dumps({"n": produced + i}))
            await producer.flush()
            produced += 5
            job = await manager.deploy_job(sql(k))
            await wait_until(lambda j=job: j.metrics.records_in >= 5, message="new records read")
            await manager.stop_job(f"cyc{k}")

    async def run(cycles_per_lane: int) -> None:
        await asyncio.gather(*(lane(k, cycles_per_lane) for k in range(LANES)))

    await run(4)  # warm up: imports, caches and connection pools reach their steady size
    gc.collect()
    tasks_before, fds_before, rss_before = len(asyncio.all_tasks()), open_fds(), rss_kb()

    await run(CYCLES // LANES)
    await asyncio.sleep(0)  # let closed transports run their final callbacks
    gc.collect()

    await producer.stop()
    assert manager.list_jobs() == []
    assert len(asyncio.all_tasks()) <= tasks_before
    assert open_fds() <= fds_before + 2, "file descriptors or sockets leaked"
    assert rss_kb() <= rss_before * 1.10, f"memory grew from {rss_before} to {rss_kb()} kB"

    # Jobs assign partitions and never join their group, so no member can linger. Each lane's committed
    # offsets are exact: one more deploy reads precisely the records after them, no more, no fewer.
    tps = [TopicPartition(source, p) for p in (0, 1)]
    for k in range(LANES):
        consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=f"velo-cyc{k}", enable_auto_commit=False)
        await consumer.start()
        consumer.assign(tps)
        committed = sum([await consumer.committed(tp) or 0 for tp in tps])
        await consumer.stop()
        job = await manager.deploy_job(sql(k))
        await wait_until(lambda j=job, c=committed: j.metrics.records_in == produced - c and j.lag() == 0,
                         message=f"lane {k} resumes exactly at its committed offsets")
        await manager.stop_job(f"cyc{k}")
    await manager.shutdown()
