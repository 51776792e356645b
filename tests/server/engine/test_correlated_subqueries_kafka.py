"""Correlated EXISTS / IN semi-joins through the real broker: a topic table and a file table, live updates.

Jobs run in MultiJobSqlServer against the session's broker. A job is done with the data when its
``records_in`` counts every record of its inputs (a batch is counted once the processor took it, so a
table write counted has been applied); each subquery over the table topic is an input of its own and
reads the topic whole. Results are compared with DuckDB over the table's final contents
(differential.py); the in-memory twin of these tests is test_correlated_subqueries.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from velo.grammar.parser import parse_statement
from velo.server.jobs.catalog_statements import execute_catalog
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.runtime import JobRuntime

from tests.kafka_helpers import create_topic, produce, wait_until

from .differential import duck, same
from .tables import latest, read_output, run_jobs, values, write_table
from .test_correlated_subqueries import LIMIT_WRITES, LIMITS, QUERIES, ROWS

FILE_PROPS = "'limf.type' = 'file_source', 'limf.path' = 'limits.jsonl', 'limf.format' = 'json', "


@pytest.fixture
async def manager(broker: str, tmp_path: Path) -> AsyncIterator[MultiJobSqlServer]:
    (tmp_path / "limits.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in LIMITS))
    mgr = MultiJobSqlServer(ManagerConfig(broker, max_jobs=30, data_dir=tmp_path))
    yield mgr
    await mgr.shutdown()


class Topics:
    """The test's stream ``t`` and table ``lim`` (unique topics), declared in the catalog, with record counts."""

    def __init__(self, topic_name: Callable[[str], str]) -> None:
        self.trades, self.lim = topic_name("trades"), topic_name("lim")
        self.counts: dict[str, int] = {}

    async def setup(self, broker: str, manager: MultiJobSqlServer, trades: list[dict[str, Any]],
                    writes: list[tuple[str, dict[str, Any] | None]]) -> None:
        await asyncio.gather(create_topic(broker, self.trades, 3), create_topic(broker, self.lim, 2))
        for sql in (
            f"CREATE STREAM t (symbol STRING, price DOUBLE, qty BIGINT, side STRING, ts BIGINT) "
            f"WITH (KAFKA_TOPIC='{self.trades}')",
            f"CREATE TABLE lim (id STRING PRIMARY KEY, symbol STRING, side STRING, lot BIGINT, active BOOLEAN) "
            f"WITH (KAFKA_TOPIC='{self.lim}')",
        ):
            await execute_catalog(manager, parse_statement(sql), {})
        await asyncio.gather(
            produce(broker, self.trades, trades, keys=[None if r["symbol"] is None else r["symbol"].encode()
                                                       for r in trades]),
            write_table(broker, self.lim, writes))
        self.counts = {self.trades: len(trades), self.lim: len(writes)}

    def expected_in(self, job: JobRuntime) -> int:
        return sum(self.counts.get(i.topic, 0) for i in job.spec.query.inputs)


async def test_semi_joins_over_topic_and_file_tables_match_duckdb(broker: str, manager: MultiJobSqlServer,
                                                                  topic_name: Callable[[str], str]) -> None:
    topics = Topics(topic_name)
    await topics.setup(broker, manager, ROWS, LIMIT_WRITES)  # everything is written before the jobs start
    # Each query over the topic table ``lim`` and over the file ``limf`` of its final rows.
    queries = {**QUERIES, **{f"{n}_file": sql.replace("FROM lim ", "FROM limf ") for n, sql in QUERIES.items()}}
    results = await run_jobs(broker, manager, topics, queries, FILE_PROPS)
    db = duck({"t": ROWS, "lim": LIMITS, "limf": LIMITS})
    for name, sql in queries.items():
        job, pairs = results[name]
        assert pairs, name
        if name.endswith("_file"):
            assert [i.topic for i in job.spec.query.inputs] == [topics.trades], name
        rows = latest(job, pairs) if name.startswith("aggregated") else values(job, pairs)
        same(rows, db.execute(sql).fetchall())


async def test_table_changes_reach_later_stream_records(broker: str, manager: MultiJobSqlServer,
                                                        topic_name: Callable[[str], str]) -> None:
    topics = Topics(topic_name)
    await topics.setup(broker, manager, [], [
        ("a", {"symbol": "AAPL", "side": "BUY", "lot": 1, "active": True}),
        ("m", {"symbol": "MSFT", "side": "BUY", "lot": 2, "active": True}),
        ("g", {"symbol": "GOOG", "side": "SELL", "lot": 3, "active": False}),
    ])
    sql = ("SELECT t.symbol, t.qty FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE w.symbol = t.symbol AND w.active) "
           "AND t.qty NOT IN (SELECT w.lot FROM lim w WHERE w.symbol = t.symbol)")
    (job, _), = (await run_jobs(broker, manager, topics, {"live": sql}, FILE_PROPS)).values()
    assert [i.topic for i in job.spec.query.inputs] == [topics.trades, topics.lim, topics.lim]
    seen = topics.expected_in(job)

    async def processed(count: int) -> None:
        # Counted once the batch went through the processor: a table write is applied, not just read.
        nonlocal seen
        seen += count
        await wait_until(lambda: job.metrics.records_in >= seen, message=f"{seen} records processed")

    async def trade(qty: int, *symbols: str | None) -> None:
        await produce(broker, topics.trades, [{"symbol": s, "qty": qty} for s in symbols])
        await processed(len(symbols))

    symbols = ("AAPL", "MSFT", "GOOG", "TSLA", None)
    await trade(1, *symbols)
    await trade(2, *symbols)
    # AAPL's row moves to TSLA, MSFT's turns inactive, GOOG's active, and TSLA gets a second row with a
    # NULL lot; each write is read by both subqueries' inputs.
    changes: list[tuple[str, dict[str, Any] | None]] = [
        ("a", {"symbol": "TSLA", "side": "BUY", "lot": 1, "active": True}),
        ("m", {"symbol": "MSFT", "side": "BUY", "lot": 2, "active": False}),
        ("g", {"symbol": "GOOG", "side": "SELL", "lot": 3, "active": True}),
        ("n", {"symbol": "TSLA", "side": "SELL", "lot": None, "active": False}),
    ]
    await write_table(broker, topics.lim, changes)
    await processed(2 * len(changes))
    await trade(3, *symbols)
    await trade(1, *symbols)
    # The NULL lot goes (a tombstone), and AAPL comes back under a new key.
    await write_table(broker, topics.lim, [("n", None), ("x", {"symbol": "AAPL", "side": "BUY", "lot": 9,
                                                               "active": True})])
    await processed(2 * 2)
    await trade(3, *symbols)
    await trade(1, *symbols)
    out = values(job, await read_output(broker, job.spec.sink_topic, job.metrics.records_out))
    assert sorted(out, key=lambda r: (str(r[0]), r[1])) == sorted([
        ["AAPL", 2], ["MSFT", 1],  # before the changes: AAPL holds 1, MSFT 2, GOOG is inactive
        ["GOOG", 1],  # after: TSLA's lots are {1, NULL}, so NOT IN is never true for it; GOOG holds 3
        ["AAPL", 3], ["AAPL", 1], ["TSLA", 3], ["GOOG", 1],  # after the tombstone: TSLA holds 1 alone, AAPL 9
    ], key=lambda r: (str(r[0]), r[1]))
