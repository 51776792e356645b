"""Filter/project job throughput vs hand-written aiokafka loops, same broker, same run.

    python -m bench.bench_filter [--records N]

Three runs over the same input topic (JSON trades, 4 partitions):
  * raw-send:  getmany → orjson decode → filter → orjson encode → producer.send() per record → commit
  * raw-batch: the same with aiokafka's batch API (create_batch/send_batch): the floor
  * velo:      a Velo job (`START JOB … WHERE price > 100`) deployed in-process, timed from its first
               batch to its last (the consumer-group join is not part of throughput)
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from velo.server.connectors.embedded_kafka import EmbeddedKafka
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer

from tests.kafka_helpers import create_topic

PARTITIONS = 4
ROUNDS = 3


async def _fill(brokers: str, topic: str, n: int) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=brokers, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    symbols = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA", "META", "ORCL"]
    futures = []
    for i in range(n):
        rec = {"symbol": symbols[i % 8], "price": float(i % 200), "quantity": i % 1000,
               "side": "BUY" if i % 3 else "SELL", "ts": 1_700_000_000_000 + i}
        futures.append(await producer.send(topic, orjson.dumps(rec), partition=i % PARTITIONS))
    await asyncio.gather(*futures)
    await producer.stop()
    return sum(1 for i in range(n) if float(i % 200) > 100)


async def _raw_loop(brokers: str, source: str, sink: str, n: int, batch_api: bool) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=1 << 20)
    producer = AIOKafkaProducer(bootstrap_servers=brokers, linger_ms=0, max_batch_size=1 << 20)
    await consumer.start()
    await producer.start()
    consumer.assign([TopicPartition(source, p) for p in range(PARTITIONS)])
    seen = 0
    started = None
    loads, dumps = orjson.loads, orjson.dumps
    while seen < n:
        batch = await consumer.getmany(timeout_ms=200, max_records=2000)
        if started is None and batch:
            started = time.perf_counter()
        futures = []
        for tp, records in batch.items():
            seen += len(records)
            out = []
            for m in records:
                r = loads(m.value)
                if r["price"] > 100:
                    out.append((m.key, dumps({"symbol": r["symbol"], "price": r["price"]})))
            if batch_api:
                b = producer.create_batch()
                for key, value in out:
                    if b.append(key=key, value=value, timestamp=None) is None:
                        futures.append(await producer.send_batch(b, sink, partition=tp.partition))
                        b = producer.create_batch()
                        b.append(key=key, value=value, timestamp=None)
                futures.append(await producer.send_batch(b, sink, partition=tp.partition))
            else:
                for key, value in out:
                    futures.append(await producer.send(sink, value, key=key, partition=tp.partition))
        await asyncio.gather(*futures)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    await consumer.stop()
    await producer.stop()
    return elapsed


async def _velo(brokers: str, source: str, sink: str, n: int, name: str) -> float:
    manager = MultiJobSqlServer(ManagerConfig(brokers))
    sql = (f"START JOB {name} AS SELECT symbol, price FROM {source} WHERE price > 100 "
           f"WITH ('output.topic' = '{sink}')")
    job = await manager.deploy_job(sql)
    started = None
    while job.metrics.records_in < n:
        if started is None and job.metrics.records_in:
            started = time.perf_counter() - job.metrics.last_batch_seconds
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    await manager.stop_job(name)
    await manager.shutdown()
    return elapsed


async def run(brokers: str, n: int) -> dict[str, float]:
    source = f"bench_in_{uuid.uuid4().hex[:6]}"
    await create_topic(brokers, source, PARTITIONS)
    await _fill(brokers, source, n)
    results: dict[str, float] = {}
    # Interleaved rounds, best of each: the machine's other load hits every variant alike.
    for round_no in range(ROUNDS):
        for name, run_one in (
            ("raw-send", lambda s: _raw_loop(brokers, source, s, n, batch_api=False)),
            ("raw-batch", lambda s: _raw_loop(brokers, source, s, n, batch_api=True)),
            ("velo", lambda s, r=round_no: _velo(brokers, source, s, n, f"bench_filter_{r}")),
        ):
            sink = f"{source}_{name.replace('-', '_')}_{round_no}"
            await create_topic(brokers, sink, PARTITIONS)
            results[name] = max(results.get(name, 0.0), n / await run_one(sink))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    with EmbeddedKafka() as kafka:
        results = asyncio.run(run(kafka.bootstrap_servers, args.records))
    floor = results["raw-batch"]
    print(f"filter/project, {args.records} records, {PARTITIONS} partitions, best of {ROUNDS} interleaved rounds")
    for name, rate in results.items():
        print(f"  {name:10s} {rate:10,.0f} records/s   ratio to raw-batch {rate / floor:5.2f}")


if __name__ == "__main__":
    main()
