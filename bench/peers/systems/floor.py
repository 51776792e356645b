"""The floor: a careful hand-written aiokafka loop per workload (getmany → orjson → work → batched produce).

Run by the harness in its own process with the project's interpreter:
``python floor.py '<json config>'`` (keys: brokers, input, output, ref, workload, params). Prints
``READY <epoch seconds>`` once its consumer and producer are connected and the input partitions are
assigned, then runs until killed. Windows close per input partition (each symbol lives in one):
a window is emitted when the partition's largest event time reaches its end, as Velo's per-partition
watermark does. Output goes to the same partition number as the input it came from.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

Out = list[tuple[bytes | None, bytes]]
Work = Callable[[list[Any]], Out]
loads, dumps = orjson.loads, orjson.dumps


def _filter(p: dict[str, Any]) -> Work:
    min_qty = p["filter_min_qty"]

    def work(records: list[Any]) -> Out:
        out = []
        for m in records:
            r = loads(m.value)
            if r["side"] == "BUY" and r["quantity"] >= min_qty:
                out.append((m.key, dumps({"symbol": r["symbol"], "trade_id": r["trade_id"], "price": r["price"],
                                          "quantity": r["quantity"], "notional": r["price"] * r["quantity"]})))
        return out

    return work


def _windows(size: int, advance: int) -> Work:
    """Tumbling (advance == size) or hopping windows; state and watermark of one partition."""
    state: dict[tuple[str, int], list[Any]] = {}
    wm = [0]

    def work(records: list[Any]) -> Out:
        for m in records:
            r = loads(m.value)
            ts, sym, q, price = r["ts"], r["symbol"], r["quantity"], r["price"]
            start = ts - ts % advance
            while start > ts - size:
                acc = state.get((sym, start))
                if acc is None:
                    state[(sym, start)] = [1, q, price, price]
                else:
                    acc[0] += 1
                    acc[1] += q
                    if price < acc[2]:
                        acc[2] = price
                    if price > acc[3]:
                        acc[3] = price
                start -= advance
            if ts > wm[0]:
                wm[0] = ts
        out = []
        for key in [k for k in state if k[1] + size <= wm[0]]:
            c, q, lo, hi = state.pop(key)
            out.append((key[0].encode(), dumps({"symbol": key[0], "window_start": key[1],
                                                "window_end": key[1] + size, "cnt": c, "sum_qty": q,
                                                "min_price": lo, "max_price": hi})))
        return out

    return work


def _session(gap: int) -> Work:
    sessions: dict[str, list[Any]] = {}  # symbol → [start, last, count, qty, min, max]

    def work(records: list[Any]) -> Out:
        out = []
        for m in records:
            r = loads(m.value)
            ts, sym, q, price = r["ts"], r["symbol"], r["quantity"], r["price"]
            s = sessions.get(sym)
            if s is not None and ts - s[1] > gap:
                out.append((m.key, dumps({"symbol": sym, "window_start": s[0], "window_end": s[1] + gap,
                                          "cnt": s[2], "sum_qty": s[3], "min_price": s[4], "max_price": s[5]})))
                s = None
            if s is None:
                sessions[sym] = [ts, ts, 1, q, price, price]
            else:
                s[1] = max(s[1], ts)
                s[2] += 1
                s[3] += q
                s[4] = min(s[4], price)
                s[5] = max(s[5], price)
        return out

    return work


def _over(rows: int) -> Work:
    hist: dict[str, deque[float]] = {}

    def work(records: list[Any]) -> Out:
        out = []
        for m in records:
            r = loads(m.value)
            h = hist.get(r["symbol"])
            if h is None:
                h = hist[r["symbol"]] = deque(maxlen=rows)
            h.append(r["price"])
            out.append((m.key, dumps({"symbol": r["symbol"], "trade_id": r["trade_id"], "price": r["price"],
                                      "avg_price": sum(h) / len(h)})))
        return out

    return work


def _join(table: dict[str, str | None]) -> Work:
    def work(records: list[Any]) -> Out:
        out = []
        for m in records:
            r = loads(m.value)
            out.append((m.key, dumps({"symbol": r["symbol"], "trade_id": r["trade_id"], "price": r["price"],
                                      "sector": table.get(r["symbol"])})))
        return out

    return work


def _interval(within: int) -> Work:
    """Self-join per symbol: every pair of trades at most ``within`` ms apart, both ways, and each with itself."""
    buf: dict[str, deque[tuple[int, int]]] = {}

    def work(records: list[Any]) -> Out:
        out = []
        for m in records:
            r = loads(m.value)
            ts, sym, me = r["ts"], r["symbol"], r["trade_id"]
            b = buf.get(sym)
            if b is None:
                b = buf[sym] = deque()
            while b and b[0][0] < ts - within:
                b.popleft()
            for _, other in b:  # in event-time order per symbol, so every partner left is within the bound
                out.append((m.key, dumps({"symbol": sym, "a_id": me, "b_id": other})))
                out.append((m.key, dumps({"symbol": sym, "a_id": other, "b_id": me})))
            out.append((m.key, dumps({"symbol": sym, "a_id": me, "b_id": me})))
            b.append((ts, me))
        return out

    return work


async def _read_table(brokers: str, topic: str) -> dict[str, str | None]:
    """The whole reference topic, latest value per key (read before the stream, as a table is)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
        consumer.assign(parts)
        table: dict[str, str | None] = {}
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for m in records:
                    table[m.key.decode()] = loads(m.value)["sector"]
            # The fetch high watermark is right on Tansu (ListOffsets(latest) under-reports).
            ends = {tp: consumer.highwater(tp) or 0 for tp in parts}
            positions = [await consumer.position(tp) for tp in parts]
            if all(pos >= ends[tp] for pos, tp in zip(positions, parts, strict=True)):
                return table
    finally:
        await consumer.stop()


async def run(cfg: dict[str, Any]) -> None:
    """Consume the input from offset 0 forever, each partition's records through its own work function."""
    brokers, workload, p = cfg["brokers"], cfg["workload"], cfg["params"]
    parts = p["partitions"]
    table = await _read_table(brokers, cfg["ref"]) if workload == "stream_table_join" else {}
    makers: dict[str, Callable[[], Work]] = {
        "filter": lambda: _filter(p),
        "tumbling": lambda: _windows(p["tumble_ms"], p["tumble_ms"]),
        "hopping": lambda: _windows(p["hop_size_ms"], p["hop_advance_ms"]),
        "session": lambda: _session(p["session_gap_ms"]),
        "over": lambda: _over(p["over_rows"]),
        "stream_table_join": lambda: _join(table),
        "interval_join": lambda: _interval(p["interval_ms"]),
    }
    works = {i: makers[workload]() for i in range(parts)}  # state per input partition
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=1 << 20, fetch_max_wait_ms=100)
    producer = AIOKafkaProducer(bootstrap_servers=brokers, linger_ms=0, max_batch_size=1 << 20)
    await consumer.start()
    await producer.start()
    consumer.assign([TopicPartition(cfg["input"], i) for i in range(parts)])
    print(f"READY {time.time()}", flush=True)
    sink = cfg["output"]
    while True:
        batch = await consumer.getmany(timeout_ms=100, max_records=4000)
        futures = []
        for tp, records in batch.items():
            out = works[tp.partition](records)
            b = producer.create_batch()
            for key, value in out:
                if b.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(b, sink, partition=tp.partition))
                    b = producer.create_batch()
                    b.append(key=key, value=value, timestamp=None)
            if b.record_count():
                futures.append(await producer.send_batch(b, sink, partition=tp.partition))
        if futures:
            await asyncio.gather(*futures)


if __name__ == "__main__":
    asyncio.run(run(orjson.loads(sys.argv[1])))
