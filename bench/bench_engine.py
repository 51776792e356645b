"""Engine throughput per operator family vs a hand-written aiokafka loop doing the same work.

    python -m bench.bench_engine [--records N] [--families fp,tumbling,...]

For each family the same input topic (JSON trades, 4 partitions, event time ``ts`` increasing) is
processed twice on the same embedded broker in the same run:
  * raw:  getmany → orjson → the family's work written by hand in plain Python → batch produce
  * velo: a Velo job (MultiJobSqlServer) running the equivalent SQL, timed from its first batch to
          the moment it has read every record
The ratio velo/raw is the figure that matters (architecture.md, "Measure against the floor").
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from velo.server.connectors.embedded_kafka import EmbeddedKafka
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer

from tests.kafka_helpers import create_topic

PARTITIONS = 4
SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA", "META", "ORCL"]
SECTORS = {"AAPL": "tech", "MSFT": "tech", "GOOG": "tech", "AMZN": "retail", "TSLA": "auto"}
BASE = 1_700_000_000_000
Work = Callable[[list[Any]], list[tuple[bytes | None, bytes]]]


async def _fill(brokers: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=brokers, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    futures = []
    for i in range(n):
        sym = SYMBOLS[i % 8]
        rec = {"symbol": sym, "price": float(i % 200), "quantity": i % 1000,
               "side": "BUY" if i % 3 else "SELL", "ts": BASE + i * 10}
        futures.append(await producer.send(topic, orjson.dumps(rec), key=sym.encode(),
                                           partition=i % PARTITIONS))
    await asyncio.gather(*futures)
    await producer.stop()


# ---------------------------------------------------------------- hand-written work per family


def _fp() -> Work:
    loads, dumps = orjson.loads, orjson.dumps

    def work(records: list[Any]) -> list[tuple[bytes | None, bytes]]:
        out = []
        for m in records:
            r = loads(m.value)
            if r["price"] > 100:
                out.append((m.key, dumps({"symbol": r["symbol"], "notional": r["price"] * r["quantity"]})))
        return out

    return work


def _windows(size: int, advance: int) -> Work:
    loads, dumps = orjson.loads, orjson.dumps
    state: dict[tuple[str, int], list[float]] = {}
    wm = [0]

    def work(records: list[Any]) -> list[tuple[bytes | None, bytes]]:
        for m in records:
            r = loads(m.value)
            ts = r["ts"]
            start = ts - ts % advance
            while start > ts - size:
                acc = state.get((r["symbol"], start))
                if acc is None:
                    acc = state[(r["symbol"], start)] = [0, 0.0]
                acc[0] += 1
                acc[1] += r["price"]
                start -= advance
            if ts > wm[0]:
                wm[0] = ts
        out = []
        for key in [k for k in state if k[1] + size <= wm[0]]:
            c, s = state.pop(key)
            out.append((key[0].encode(), dumps({"symbol": key[0], "c": c, "avg": s / c,
                                                "window_start": key[1], "window_end": key[1] + size})))
        return out

    return work


def _session(gap: int) -> Work:
    loads, dumps = orjson.loads, orjson.dumps
    sessions: dict[str, list[int]] = {}  # symbol → [start, last, count]
    wm = [0]

    def work(records: list[Any]) -> list[tuple[bytes | None, bytes]]:
        out = []
        for m in records:
            r = loads(m.value)
            ts, sym = r["ts"], r["symbol"]
            s = sessions.get(sym)
            if s is not None and ts - s[1] > gap:
                out.append((sym.encode(), dumps({"symbol": sym, "c": s[2], "window_start": s[0],
                                                 "window_end": s[1] + gap})))
                s = None
            if s is None:
                sessions[sym] = [ts, ts, 1]
            else:
                s[1] = max(s[1], ts)
                s[2] += 1
            wm[0] = max(wm[0], ts)
        return out

    return work


def _table_join() -> Work:
    loads, dumps = orjson.loads, orjson.dumps

    def work(records: list[Any]) -> list[tuple[bytes | None, bytes]]:
        out = []
        for m in records:
            r = loads(m.value)
            out.append((m.key, dumps({"symbol": r["symbol"], "price": r["price"],
                                      "sector": SECTORS.get(r["symbol"])})))
        return out

    return work


def _interval_join(within: int) -> Work:
    loads, dumps = orjson.loads, orjson.dumps
    buf: dict[str, deque[tuple[int, dict[str, Any]]]] = defaultdict(deque)

    def work(records: list[Any]) -> list[tuple[bytes | None, bytes]]:
        out = []
        for m in records:
            r = loads(m.value)
            ts, b = r["ts"], buf[r["symbol"]]
            while b and b[0][0] < ts - within:
                b.popleft()
            # A self-join pairs each record with every partner both ways, and with itself.
            for ots, o in b:
                if abs(ots - ts) <= within:
                    out.append((m.key, dumps({"symbol": r["symbol"], "p1": r["price"], "p2": o["price"]})))
                    out.append((m.key, dumps({"symbol": r["symbol"], "p1": o["price"], "p2": r["price"]})))
            out.append((m.key, dumps({"symbol": r["symbol"], "p1": r["price"], "p2": r["price"]})))
            b.append((ts, r))
        return out

    return work


def _over() -> Work:
    loads, dumps = orjson.loads, orjson.dumps
    hist: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=20))

    def work(records: list[Any]) -> list[tuple[bytes | None, bytes]]:
        out = []
        for m in records:
            r = loads(m.value)
            h = hist[r["symbol"]]
            avg = sum(h) / len(h) if h else None
            h.append(r["price"])
            out.append((m.key, dumps({"symbol": r["symbol"], "price": r["price"], "avg20": avg})))
        return out

    return work


ET = "'event.time.field' = 'ts', 'watermark.idle_timeout' = '0s'"
FAMILIES: dict[str, tuple[str, Callable[[], Work]]] = {
    "filter_project": ("SELECT symbol, price * quantity AS notional FROM {src} WHERE price > 100", _fp),
    "tumbling": ("SELECT symbol, COUNT(*) AS c, AVG(price) AS avg FROM {src} GROUP BY symbol "
                 f"WINDOW TUMBLING(1s) EMIT FINAL WITH ({ET}, 'output.topic' = '{{sink}}')",
                 lambda: _windows(1000, 1000)),
    "hopping": ("SELECT symbol, COUNT(*) AS c, AVG(price) AS avg FROM {src} GROUP BY symbol "
                f"WINDOW HOPPING(2s, 500ms) EMIT FINAL WITH ({ET}, 'output.topic' = '{{sink}}')",
                lambda: _windows(2000, 500)),
    "session": ("SELECT symbol, COUNT(*) AS c FROM {src} GROUP BY symbol WINDOW SESSION(50ms) "
                f"EMIT FINAL WITH ({ET}, 'output.topic' = '{{sink}}')", lambda: _session(50)),
    "stream_table_join": ("SELECT t.symbol, t.price, r.sector FROM {src} t LEFT JOIN ref r ON t.symbol = r.symbol "
                          "WITH ('ref.type' = 'file_source', 'ref.path' = 'ref.csv', 'ref.format' = 'csv', "
                          "'output.topic' = '{sink}')", _table_join),
    "interval_join": ("SELECT a.symbol, a.price AS p1, b.price AS p2 FROM {src} a JOIN {src} b "
                      f"ON a.symbol = b.symbol WITHIN 100ms WITH ({ET}, 'output.topic' = '{{sink}}')",
                      lambda: _interval_join(100)),
    "over": ("SELECT symbol, price, AVG(price) OVER (PARTITION BY symbol ROWS BETWEEN 20 PRECEDING AND "
             "1 PRECEDING) AS avg20 FROM {src}", _over),
}


async def _raw(brokers: str, source: str, sink: str, n: int, work: Work) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=1 << 20)
    producer = AIOKafkaProducer(bootstrap_servers=brokers, linger_ms=0, max_batch_size=1 << 20)
    await consumer.start()
    await producer.start()
    consumer.assign([TopicPartition(source, p) for p in range(PARTITIONS)])
    seen = 0
    started = None
    while seen < n:
        batch = await consumer.getmany(timeout_ms=200, max_records=2000)
        if started is None and batch:
            started = time.perf_counter()
        records = [r for recs in batch.values() for r in recs]
        seen += len(records)
        out = work(records)
        futures = []
        b = producer.create_batch()
        for key, value in out:
            if b.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(b, sink, partition=0))
                b = producer.create_batch()
                b.append(key=key, value=value, timestamp=None)
        if b.record_count():
            futures.append(await producer.send_batch(b, sink, partition=0))
        await asyncio.gather(*futures)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    await consumer.stop()
    await producer.stop()
    return elapsed


async def _velo(manager: MultiJobSqlServer, name: str, sql: str, n: int) -> float:
    job = await manager.deploy_job(sql)
    started = None
    while job.metrics.records_in < n:
        if job.error:
            raise RuntimeError(job.error)
        if started is None and job.metrics.records_in:
            started = time.perf_counter()
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    late = job.metrics.records_late
    await manager.stop_job(job.name)
    if late:
        # A figure for a job that dropped records is no figure: it did less work than the floor.
        raise RuntimeError(f"{name}: {late} of {n} records were dropped as late; the timing would be meaningless")
    return elapsed


async def run(brokers: str, n: int, families: list[str]) -> dict[str, tuple[float, float]]:
    import tempfile

    data_dir = Path(tempfile.mkdtemp(prefix="velo-bench-"))
    (data_dir / "ref.csv").write_text("symbol,sector\n" + "".join(f"{k},{v}\n" for k, v in SECTORS.items()))
    source = f"bench_engine_{uuid.uuid4().hex[:6]}"
    await create_topic(brokers, source, PARTITIONS)
    await _fill(brokers, source, n)
    manager = MultiJobSqlServer(ManagerConfig(brokers, max_jobs=50, data_dir=data_dir))
    results: dict[str, tuple[float, float]] = {}
    try:
        for fam in families:
            template, make = FAMILIES[fam]
            raw_sink, velo_sink = f"{source}_{fam}_raw", f"{source}_{fam}_velo"
            await create_topic(brokers, raw_sink, 1)
            raw_rate = n / await _raw(brokers, source, raw_sink, n, make())
            job = f"bench_{fam}_{uuid.uuid4().hex[:4]}"
            select = template.format(src=source, sink=velo_sink)
            if "output.topic" not in select:
                select += f" WITH ('output.topic' = '{velo_sink}')"
            velo_rate = n / await _velo(manager, job, f"START JOB {job} AS {select}", n)
            results[fam] = (raw_rate, velo_rate)
            print(f"  {fam:18s} raw {raw_rate:10,.0f}/s   velo {velo_rate:10,.0f}/s   "
                  f"velo/raw {velo_rate / raw_rate:5.2f}", flush=True)
    finally:
        await manager.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args()
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    print(f"engine families, {args.records} records, {PARTITIONS} partitions (records/s, higher is better)")
    with EmbeddedKafka() as kafka:
        asyncio.run(run(kafka.bootstrap_servers, args.records, families))


if __name__ == "__main__":
    main()
