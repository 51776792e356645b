"""Tables from Kafka topics through the real broker: bootstrap, chained joins, IN / EXISTS, live updates.

Jobs run in MultiJobSqlServer against the session's broker. A job is done with the data when its
``records_in`` counts every record of its inputs (a batch is counted after its output was
acknowledged); its output topic then holds ``records_out`` records. Results are compared with
DuckDB over the tables' final contents (differential.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from velo.grammar.parser import parse_statement
from velo.server.jobs.catalog_statements import execute_catalog
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.runtime import JobRuntime

from tests.kafka_helpers import create_topic, produce, wait_until

from .differential import duck, make_rows, same
from .tables import final, latest, read_output, run_jobs, values, write_table

ROWS = make_rows(300, seed=21)
# The instruments table as written: older versions and a deleted key come before the final rows.
INST_WRITES: list[tuple[str, dict[str, Any] | None]] = [
    ("AAPL", {"symbol": "AAPL", "sector": "old", "lot": 1}),
    ("AMZN", {"symbol": "AMZN", "sector": "retail", "lot": 7}),
    ("AAPL", {"symbol": "AAPL", "sector": "tech", "lot": 10}),
    ("MSFT", {"symbol": "MSFT", "sector": "tech", "lot": 20}),
    ("TSLA", {"symbol": "TSLA", "sector": "auto", "lot": None}),
    ("XOM", {"symbol": "XOM", "sector": "energy", "lot": 5}),
    ("GOOG", {"symbol": "GOOG", "sector": None, "lot": 30}),
    ("AMZN", None),
]
DESK_WRITES: list[tuple[str, dict[str, Any] | None]] = [
    ("tech", {"sector": "tech", "desk": "T0"}),
    ("tech", {"sector": "tech", "desk": "T1"}),
    ("auto", {"sector": "auto", "desk": "A9"}),
    ("old", {"sector": "old", "desk": "O1"}),
    ("energy", {"sector": "energy", "desk": "E2"}),
    ("energy", None),
]
REF_CSV = "symbol,sector\nAAPL,tech\nTSLA,auto\nXOM,energy\nGOOG,old\n"


@pytest.fixture
async def manager(broker: str, tmp_path: Path) -> AsyncIterator[MultiJobSqlServer]:
    (tmp_path / "ref.csv").write_text(REF_CSV)
    mgr = MultiJobSqlServer(ManagerConfig(broker, max_jobs=20, data_dir=tmp_path))
    yield mgr
    await mgr.shutdown()


class Topics:
    """The test's topics (unique names), with the catalog declaring them and a record count per topic."""

    def __init__(self, topic_name: Callable[[str], str]) -> None:
        self.trades, self.inst, self.desks = topic_name("trades"), topic_name("inst"), topic_name("desks")
        self.counts: dict[str, int] = {}

    async def setup(self, broker: str, manager: MultiJobSqlServer, trades: list[dict[str, Any]]) -> None:
        await asyncio.gather(create_topic(broker, self.trades, 3), create_topic(broker, self.inst, 2),
                             create_topic(broker, self.desks, 1))
        for sql in (
            f"CREATE STREAM trades (symbol STRING, price DOUBLE, qty BIGINT, side STRING, ts BIGINT) "
            f"WITH (KAFKA_TOPIC='{self.trades}')",
            f"CREATE TABLE inst (symbol STRING PRIMARY KEY, sector STRING, lot BIGINT) "
            f"WITH (KAFKA_TOPIC='{self.inst}')",
            f"CREATE TABLE desks (sector STRING PRIMARY KEY, desk STRING) WITH (KAFKA_TOPIC='{self.desks}')",
        ):
            await execute_catalog(manager, parse_statement(sql), {})
        await asyncio.gather(
            produce(broker, self.trades, trades, keys=[None if r["symbol"] is None else r["symbol"].encode()
                                                       for r in trades]),
            write_table(broker, self.inst, INST_WRITES), write_table(broker, self.desks, DESK_WRITES))
        self.counts = {self.trades: len(trades), self.inst: len(INST_WRITES), self.desks: len(DESK_WRITES)}

    def expected_in(self, job: JobRuntime) -> int:
        return sum(self.counts.get(i.topic, 0) for i in job.spec.query.inputs)


CHAINED = ("SELECT t.symbol, t.price, r.sector, d.desk FROM trades t JOIN inst r ON t.symbol = r.symbol "
           "LEFT JOIN desks d ON r.sector = d.sector")
FILE_THEN_TOPIC = ("SELECT t.symbol, t.qty, f.sector, d.desk FROM trades t LEFT JOIN ref f ON t.symbol = f.symbol "
                   "LEFT JOIN desks d ON f.sector = d.sector")
FILE_PROPS = "'ref.type' = 'file_source', 'ref.path' = 'ref.csv', 'ref.format' = 'csv', "
INSERTS: dict[str, str] = {
    "chained": CHAINED,
    "file_then_topic": FILE_THEN_TOPIC,
    "in": "SELECT symbol, price FROM trades WHERE symbol IN (SELECT symbol FROM inst WHERE sector = 'tech')",
    "not_in": "SELECT symbol, qty FROM trades WHERE symbol NOT IN (SELECT symbol FROM inst WHERE sector <> 'tech')",
    "not_in_null": "SELECT symbol, qty, price FROM trades WHERE qty NOT IN (SELECT lot FROM inst) OR price > 150",
    "exists": ("SELECT symbol, side FROM trades WHERE EXISTS (SELECT * FROM inst WHERE sector = 'auto') "
               "AND NOT EXISTS (SELECT sector FROM desks WHERE desk = 'E2') AND qty > 20"),
}
AGGREGATED = ("SELECT d.desk, COUNT(*) AS c, SUM(t.qty) AS q FROM trades t JOIN inst r ON t.symbol = r.symbol "
              "LEFT JOIN desks d ON r.sector = d.sector GROUP BY d.desk")


async def test_topic_tables_match_duckdb(broker: str, manager: MultiJobSqlServer,
                                         topic_name: Callable[[str], str]) -> None:
    topics = Topics(topic_name)
    await topics.setup(broker, manager, ROWS)  # everything is written before the jobs start
    results = await run_jobs(broker, manager, topics, {**INSERTS, "aggregated": AGGREGATED}, FILE_PROPS)
    ref = [dict(zip(("symbol", "sector"), line.split(","), strict=True)) for line in REF_CSV.split()[1:]]
    db = duck({"trades": ROWS, "inst": final(INST_WRITES), "desks": final(DESK_WRITES), "ref": ref})
    for name, sql in INSERTS.items():
        job, pairs = results[name]
        same(values(job, pairs), db.execute(sql).fetchall())
        assert pairs, name
    job, pairs = results["aggregated"]
    same(latest(job, pairs), db.execute(AGGREGATED).fetchall())


async def test_a_table_is_read_to_its_end_before_the_stream(broker: str, manager: MultiJobSqlServer,
                                                            topic_name: Callable[[str], str]) -> None:
    stream, table = topic_name("orders"), topic_name("customers")
    await asyncio.gather(create_topic(broker, stream, 4), create_topic(broker, table, 4))
    await execute_catalog(manager, parse_statement(
        f"CREATE TABLE customers (id STRING PRIMARY KEY, tier STRING) WITH (KAFKA_TOPIC='{table}')"), {})
    n_keys, n_orders = 4000, 4000
    # The stream is written first and is far longer: read in turn with the table, most orders would come
    # before their customer.
    await produce(broker, stream, [{"id": str(i % n_keys), "n": i} for i in range(n_orders)])
    await produce(broker, table, [{"tier": f"t{i}"} for i in range(n_keys)],
                  keys=[str(i).encode() for i in range(n_keys)])
    sql = (f"START JOB {stream}_tiers AS SELECT o.n, c.tier FROM {stream} o LEFT JOIN customers c ON o.id = c.id "
           f"WITH ('batch.size' = '25')")
    job = await manager.deploy_job(sql)
    await wait_until(lambda: job.metrics.records_in >= n_orders + n_keys, timeout=60, message="all records")
    rows = await read_output(broker, job.spec.sink_topic, n_orders)
    assert len(rows) == n_orders
    assert sorted((v["n"], v["tier"]) for _, v in rows) == [(i, f"t{i % n_keys}") for i in range(n_orders)]


async def test_a_create_table_as_output_is_a_table(broker: str, manager: MultiJobSqlServer,
                                                   topic_name: Callable[[str], str]) -> None:
    from velo.server.jobs.statements import StatementExecutor

    topics = Topics(topic_name)
    await topics.setup(broker, manager, ROWS)
    counts = topic_name("counts")
    executor = StatementExecutor(manager)
    await executor.execute_script(f"CREATE TABLE {counts} AS SELECT symbol, COUNT(*) AS n FROM trades "
                                  "GROUP BY symbol", {})
    producer = manager.get_job(counts)
    await wait_until(lambda: producer.metrics.records_in >= len(ROWS), timeout=60, message="the counts")
    topics.counts[counts] = producer.metrics.records_out  # its upserts, all written before the next jobs
    queries = {
        "joined": (f"SELECT t.symbol, t.qty, r.sector, c.n FROM trades t JOIN inst r ON t.symbol = r.symbol "
                   f"LEFT JOIN {counts} c ON t.symbol = c.symbol"),
        "first": f"SELECT t.symbol, c.n FROM trades t JOIN {counts} c ON t.symbol = c.symbol",
        "in": f"SELECT symbol, qty FROM trades WHERE symbol IN (SELECT symbol FROM {counts} WHERE n > 50)",
    }
    results = await run_jobs(broker, manager, topics, queries)
    db = duck({"trades": ROWS, "inst": final(INST_WRITES)})
    cte = f"WITH {counts} AS (SELECT symbol, COUNT(*) AS n FROM trades GROUP BY symbol) "
    for name, sql in queries.items():
        job, pairs = results[name]
        same(values(job, pairs), db.execute(cte + sql).fetchall())
        assert pairs, name


async def test_table_updates_reach_later_stream_records(broker: str, manager: MultiJobSqlServer,
                                                        topic_name: Callable[[str], str]) -> None:
    topics = Topics(topic_name)
    await topics.setup(broker, manager, [])
    sql = ("SELECT t.symbol, t.qty, r.sector, d.desk FROM trades t LEFT JOIN inst r ON t.symbol = r.symbol "
           "LEFT JOIN desks d ON r.sector = d.sector "
           "WHERE t.symbol NOT IN (SELECT symbol FROM inst WHERE sector = 'banned')")
    (job, _), = (await run_jobs(broker, manager, topics, {"live": sql})).values()
    seen = topics.expected_in(job)

    async def processed(count: int) -> None:
        # Counted once the batch went through the processor: a table write is applied, not just read.
        nonlocal seen
        seen += count
        await wait_until(lambda: job.metrics.records_in >= seen, message=f"{seen} records processed")

    symbols = ["AAPL", "MSFT", "TSLA", "XOM"]
    await produce(broker, topics.trades, [{"symbol": s, "qty": 1} for s in symbols])
    await processed(len(symbols))
    # An update, a tombstone, a row the subquery now takes; inst is read twice (the join and the subquery).
    await write_table(broker, topics.inst,
                      [("AAPL", {"sector": "auto"}), ("MSFT", None), ("XOM", {"sector": "banned"})])
    await processed(3 * 2)
    await write_table(broker, topics.desks, [("auto", {"desk": "A10"})])
    await processed(1)
    await produce(broker, topics.trades, [{"symbol": s, "qty": 2} for s in symbols])
    await processed(len(symbols))
    out = values(job, await read_output(broker, job.spec.sink_topic, job.metrics.records_out))
    assert sorted(out, key=lambda r: (r[1], r[0])) == [
        ["AAPL", 1, "tech", "T1"], ["MSFT", 1, "tech", "T1"], ["TSLA", 1, "auto", "A9"], ["XOM", 1, "energy", None],
        ["AAPL", 2, "auto", "A10"], ["MSFT", 2, None, None], ["TSLA", 2, "auto", "A10"],
    ]


async def test_a_transient_query_reads_its_tables_whole(broker: str, manager: MultiJobSqlServer,
                                                        topic_name: Callable[[str], str]) -> None:
    from velo.server.jobs.queries import QueryManager

    topics = Topics(topic_name)
    await topics.setup(broker, manager, [])
    sql = ("SELECT t.symbol, r.sector, d.desk FROM trades t LEFT JOIN inst r ON t.symbol = r.symbol "
           "LEFT JOIN desks d ON r.sector = d.sector WHERE t.symbol IN (SELECT symbol FROM inst)")
    queries = QueryManager(broker, catalog=manager.catalog)
    # The stream is read from 'latest' (the default); the tables from their beginning all the same.
    _, events = await queries.open(parse_statement(sql), sql, {}, 3, "test")  # type: ignore[arg-type]
    assert "header" in await anext(events)
    await produce(broker, topics.trades, [{"symbol": s} for s in ("AAPL", "AMZN", "TSLA", "XOM")])
    rows = [e["row"] async for e in events if "row" in e]
    assert sorted(rows) == [["AAPL", "tech", "T1"], ["TSLA", "auto", "A9"], ["XOM", "energy", None]]
