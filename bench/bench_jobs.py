"""Job-server figures: deploy rate (jobs/s to RUNNING) and memory per idle running job.

    python -m bench.bench_jobs [--jobs N]

Deploys N filter jobs over one topic in-process against the embedded broker, sequentially (the
rate a script sees) and then N more from 10 concurrent clients, and reads the process's RSS before
and after: (after - before) / N is the memory an idle running job costs (consumer, producer, task,
compiled query).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import time

from velo.server.connectors.embedded_kafka import EmbeddedKafka
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer

from tests.kafka_helpers import create_topic


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def sql(i: int | str) -> str:
    return f"START JOB j{i} AS SELECT a, b * 2 AS c FROM bench_src WHERE a > 10 WITH ('output.topic' = 'bench_out');"


async def run(brokers: str, n: int) -> None:
    await create_topic(brokers, "bench_src", 4)
    await create_topic(brokers, "bench_out", 4)
    manager = MultiJobSqlServer(ManagerConfig(brokers, max_jobs=2 * n + 1))
    await manager.deploy_job(sql("_warm"))  # warm-up: imports, metadata
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    for i in range(n):
        await manager.deploy_job(sql(i))
    sequential = time.perf_counter() - started
    gc.collect()
    await asyncio.sleep(1)  # let every consumer finish its first fetch round before measuring memory
    per_job = (rss_mb() - before) / n

    async def client(k: int) -> None:
        for i in range(n + k, 2 * n, 10):
            await manager.deploy_job(sql(i))

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(10)))
    concurrent = time.perf_counter() - started
    print(f"deploy, sequential:      {n / sequential:8.1f} jobs/s to RUNNING ({n} jobs)")
    print(f"deploy, 10 clients:      {n / concurrent:8.1f} jobs/s to RUNNING ({n} more jobs)")
    print(f"memory per idle job:     {per_job * 1024:8.0f} KiB (RSS {before:.0f} MB → {before + per_job * n:.0f} MB)")
    started = time.perf_counter()
    await manager.shutdown()
    print(f"stop all {2 * n + 1} jobs:       {time.perf_counter() - started:8.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    with EmbeddedKafka() as kafka:
        asyncio.run(run(kafka.bootstrap_servers, args.jobs))


if __name__ == "__main__":
    main()
