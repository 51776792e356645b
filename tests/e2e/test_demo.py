"""The trading demo end to end: the demo's own apps on a real velo-server over the real broker.

A bounded, reproducible slice of the generator's stream (fixed seed, fixed event times) goes into a
fresh topic; the reference data is installed and the apps deployed exactly as ``demo/run.py`` does
(``install_reference_data`` + ``deploy_apps``, the topic passed as the app's ``TRADES_TOPIC``
variable). Every job's output topic is then checked against values computed independently: DuckDB
for the windows, aggregates and the OVER frame, plain Python for the filter and the join. Finally the
dashboards' metric names are checked against what ``GET /metrics`` serves.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from demo import generator
from demo.run import APPS, DATA, deploy_apps, install_reference_data
from tests.conftest import ServerProcess
from tests.kafka_helpers import create_topic

Row = dict[str, Any]

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a minute boundary: windows line up with the data
STEP_MS = 100
COUNT = 3_000  # five minutes of event time
# One last trade per symbol, two minutes after the rest, all at the same instant: it moves every
# partition's watermark to T_CLOSE, which closes every window of the five minutes (end + 5 s grace
# <= T_CLOSE) and leaves the closing trades' own windows open: the closed set is exact.
T_CLOSE = T0 + COUNT * STEP_MS + 120_000
GRACE_MS = 5_000
SINKS = ("ohlc_1m", "vwap_5m", "symbol_volume", "enriched_trades", "sector_volume", "price_spikes", "big_buys")
GRAFANA = Path(__file__).resolve().parents[2] / "demo" / "grafana"
PROMETHEUS_YML = GRAFANA.parent / "prometheus.yml"


def demo_trades() -> list[Row]:
    """The bounded input: the generator's seeded stream, then the closing trades."""
    rows = list(islice(generator.trades(seed=11, start_ms=T0, step_ms=STEP_MS), COUNT))
    last = {r["symbol"]: r["price"] for r in rows}
    closing = [{"symbol": s, "price": p, "quantity": 10, "side": "SELL", "ts": T_CLOSE} for s, p in last.items()]
    return rows + closing


def instruments() -> dict[str, Row]:
    """The demo's reference CSV, by symbol."""
    with (DATA / "instruments.csv").open() as f:
        return {r["symbol"]: r for r in csv.DictReader(f)}


def query(con: duckdb.DuckDBPyConnection, sql: str) -> list[Row]:
    """Rows of a DuckDB query as dicts."""
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, values, strict=True)) for values in cur.fetchall()]


def expected_outputs(rows: list[Row]) -> dict[str, list[Row]]:
    """Every job's expected output, computed without Velo (final state for the upsert tables)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE trades (symbol VARCHAR, price DOUBLE, quantity INTEGER, side VARCHAR, ts BIGINT)")
    con.executemany("INSERT INTO trades VALUES (?, ?, ?, ?, ?)",
                    [(r["symbol"], r["price"], r["quantity"], r["side"], r["ts"]) for r in rows])
    con.execute(f"CREATE TABLE instruments AS SELECT * FROM read_csv('{DATA / 'instruments.csv'}', header = true)")
    ref = instruments()
    return {
        "ohlc_1m": query(con, f"""
            SELECT symbol, arg_min(price, ts) AS open, max(price) AS high, min(price) AS low,
                   arg_max(price, ts) AS close, sum(quantity) AS volume, count(*) AS trades,
                   ts // 60000 * 60000 AS window_start, ts // 60000 * 60000 + 60000 AS window_end
            FROM trades GROUP BY ALL HAVING window_end + {GRACE_MS} <= {T_CLOSE}"""),
        "vwap_5m": query(con, f"""
            SELECT symbol, round(sum(price * quantity) / sum(quantity), 4) AS vwap,
                   sum(quantity) AS volume, count(*) AS trades,
                   ts // 60000 * 60000 - k * 60000 AS window_start, window_start + 300000 AS window_end
            FROM trades CROSS JOIN range(5) AS hops(k)
            GROUP BY ALL HAVING window_end + {GRACE_MS} <= {T_CLOSE}"""),
        "symbol_volume": query(con, """
            SELECT symbol, count(*) AS trades, sum(quantity) AS volume,
                   sum(CASE WHEN side = 'BUY' THEN quantity ELSE 0 END) AS buy_volume,
                   sum(CASE WHEN side = 'SELL' THEN quantity ELSE 0 END) AS sell_volume,
                   round(sum(price * quantity), 2) AS notional
            FROM trades GROUP BY symbol"""),
        "enriched_trades": [
            {"symbol": r["symbol"], "name": ref[r["symbol"]]["name"], "sector": ref[r["symbol"]]["sector"],
             "exchange": ref[r["symbol"]]["exchange"], "side": r["side"], "price": r["price"],
             "quantity": r["quantity"], "notional": round(r["price"] * r["quantity"], 2), "ts": r["ts"]}
            for r in rows],
        "sector_volume": query(con, """
            SELECT i.sector, i.exchange, count(*) AS trades, round(sum(t.price * t.quantity), 2) AS notional
            FROM trades t JOIN instruments i USING (symbol) GROUP BY ALL"""),
        "price_spikes": query(con, """
            SELECT symbol, price, round(avg20, 4) AS avg20, round(100 * (price / avg20 - 1), 3) AS move_pct, ts
            FROM (SELECT *, avg(price) OVER (PARTITION BY symbol ORDER BY ts
                                             ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING) AS avg20 FROM trades)
            WHERE abs(price / avg20 - 1) > 0.01"""),
        "big_buys": [{"symbol": r["symbol"], "price": r["price"], "quantity": r["quantity"],
                      "notional": r["price"] * r["quantity"], "ts": r["ts"]}
                     for r in rows if r["side"] == "BUY" and r["quantity"] >= 1000],
    }


# How each output is compared: the columns identifying a row, and whether the topic is an upsert
# stream (only the last value per key counts) or a plain stream (every record counts, once).
KEYS: dict[str, tuple[tuple[str, ...], bool]] = {
    "ohlc_1m": (("symbol", "window_start"), False),
    "vwap_5m": (("symbol", "window_start"), False),
    "symbol_volume": (("symbol",), True),
    "enriched_trades": (("ts", "symbol"), False),
    "sector_volume": (("sector", "exchange"), True),
    "price_spikes": (("ts", "symbol"), False),
    "big_buys": (("ts", "symbol"), False),
}


def values_match(got: Row, want: Row) -> bool:
    """Same columns and values; floats within a unit of the last rounded digit (ROUND's half-way
    cases may go either way between engines, and sums may add in another order)."""
    if set(got) != set(want):
        return False
    for name, expected in want.items():
        actual = got[name]
        if isinstance(expected, float) or isinstance(actual, float):
            if actual is None or expected is None or not math.isclose(actual, expected, rel_tol=1e-9, abs_tol=0.011):
                return False
        elif actual != expected:
            return False
    return True


def outcome(name: str, records: Sequence[Row]) -> list[Row]:
    """What a topic's records amount to: every record, or the last per key for an upsert stream."""
    key, upsert = KEYS[name]
    if not upsert:
        return list(records)
    latest = {tuple(r[k] for k in key): r for r in records}
    return list(latest.values())


def mismatch(name: str, records: Sequence[Row], want: Sequence[Row]) -> str | None:
    """None when the topic's outcome equals ``want``; otherwise a short description of the first difference."""
    key, _ = KEYS[name]
    got = outcome(name, records)

    def by_key(rows: Iterable[Row]) -> list[Row]:
        return sorted(rows, key=lambda r: tuple(str(r.get(k)) for k in key))

    if len(got) != len(want):
        return f"{name}: {len(got)} rows, expected {len(want)}"
    for g, w in zip(by_key(got), by_key(want), strict=True):
        if not values_match(g, w):
            return f"{name}: got {g}, expected {w}"
    return None


async def read_until(brokers: str, topic: str, done: Callable[[list[Row]], bool], timeout: float,
                     quiet: float = 1.0) -> list[Row]:
    """Read ``topic`` from the beginning until ``done(records)`` holds and nothing new has come for
    ``quiet`` seconds (so extra or duplicate records are seen too), or the deadline passes."""
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()])
        out: list[Row] = []
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out += [orjson.loads(r.value) for r in records]
            if batch:
                last_new = time.monotonic()
            elif done(out) and time.monotonic() - last_new >= quiet:
                break
        return out
    finally:
        await consumer.stop()


def dashboard_metric_names() -> set[str]:
    """Every metric name the dashboards and the Prometheus config refer to."""
    texts = [p.read_text() for p in sorted(GRAFANA.rglob("*.json"))]
    exprs = [t["expr"] for text in texts for panel in json.loads(text).get("panels", [])
             for t in panel.get("targets", [])]
    found = set()
    for text in [*exprs, *(p.read_text() for p in sorted(GRAFANA.rglob("*.yml"))), PROMETHEUS_YML.read_text()]:
        found |= set(re.findall(r"\b((?:velo|process)_[a-z_]+)", text))
    return found


def served_metric_names(exposition: str) -> set[str]:
    """The series names in a Prometheus text exposition."""
    return {line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if line and not line.startswith("#")}


async def existing(brokers: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` are topics on the broker already."""
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers)
    await consumer.start()
    try:
        topics: set[str] = await consumer.topics()
        return set(names) & topics
    finally:
        await consumer.stop()


async def test_trading_demo_apps_produce_the_right_analytics(
    broker: str, start_server: Callable[..., ServerProcess], topic_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    # The jobs write to fixed topics named after them (as in the demo): they must start empty.
    assert not await existing(broker, SINKS), "the demo's output topics already exist on this broker"
    trades_topic = topic_name("trades")
    await create_topic(broker, trades_topic, 4)
    rows = demo_trades()
    await generator.produce(broker, trades_topic, math.inf, None, iter(rows))
    want = expected_outputs(rows)
    assert all(want.values()), {k: len(v) for k, v in want.items()}  # every job has something to show

    data_dir = tmp_path / "server0"  # start_server's first server's --data-dir
    server = start_server()
    assert server.log_path.parent == data_dir
    install_reference_data(data_dir)
    apps = await asyncio.to_thread(deploy_apps, server.url, {"TRADES_TOPIC": trades_topic})
    assert len(apps) == len(list(APPS.glob("*.sql")))
    analytics = next(a for a in apps if a["name"] == "trading_analytics")
    assert sorted(j["name"] for j in analytics["jobs"]) == sorted(SINKS)

    async def check(name: str) -> str | None:
        records = await read_until(broker, name, lambda out: mismatch(name, out, want[name]) is None,
                                   timeout=max(5.0, 50 - (time.monotonic() - started)))
        return mismatch(name, records, want[name])

    problems = [p for p in await asyncio.gather(*(check(name) for name in SINKS)) if p]
    assert not problems, "\n".join(problems)

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        jobs = (await client.get("/jobs")).json()
        jobs = jobs.get("jobs", jobs) if isinstance(jobs, dict) else jobs
        for job in (j for j in jobs if j["app"] == "trading_analytics"):
            assert job["state"] == "RUNNING", job
            assert job["metrics"]["records_in"] == len(rows), job["name"]
            assert job["metrics"]["records_failed"] == 0 and job["metrics"]["records_late"] == 0, job
        # The dashboards only chart series the server really serves.
        served = served_metric_names((await client.get("/metrics")).text)
        assert dashboard_metric_names() - served == set()
