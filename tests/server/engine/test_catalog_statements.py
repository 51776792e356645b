"""Catalog and inspection statements through the statement executor (no broker needed)."""

from __future__ import annotations

import fastavro  # noqa: F401 - the Avro format's dependency
import orjson
import pytest
from velo.grammar.errors import SqlValidationError
from velo.grammar.parser import parse_statement
from velo.server.connectors.base import Record
from velo.server.connectors.formats import avro_encode, avro_schema, csv_encode
from velo.server.engine.compile import compile_select
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.statements import StatementExecutor


@pytest.fixture
def executor() -> StatementExecutor:
    return StatementExecutor(MultiJobSqlServer(ManagerConfig("127.0.0.1:1")))


async def test_create_show_describe_drop(executor: StatementExecutor) -> None:
    results = await executor.execute_script(
        "CREATE STREAM trades (symbol STRING KEY, price DOUBLE, ts BIGINT) "
        "WITH (KAFKA_TOPIC='trades_t', VALUE_FORMAT='JSON', TIMESTAMP='ts');"
        "SHOW STREAMS; DESCRIBE trades; DESCRIBE FUNCTION substring; SHOW FUNCTIONS;", {})
    assert results[0]["message"] == "Stream 'trades' created"
    assert results[1]["rows"][0][:2] == ["trades", "trades_t"]
    assert results[2]["rows"] == [["symbol", "STRING", "KEY"], ["price", "DOUBLE", ""],
                                  ["ts", "BIGINT", "TIMESTAMP"]]
    assert ["signature", "SUBSTRING(s STRING, start INT [, len INT]) -> STRING"] in results[3]["rows"]
    assert len(results[4]["rows"]) > 70
    again = await executor.execute_script("CREATE OR REPLACE STREAM trades (symbol STRING) "
                                          "WITH (KAFKA_TOPIC='trades_t')", {})
    assert again[0]["message"] == "Stream 'trades' replaced"
    dropped = await executor.execute_script("DROP STREAM trades; DROP STREAM IF EXISTS trades", {})
    assert dropped[0]["message"] == "Stream 'trades' dropped"
    assert executor.manager.catalog.get("trades") is None


async def test_explain_shows_plan_and_generated_code(executor: StatementExecutor) -> None:
    await executor.execute_script("CREATE STREAM trades (symbol STRING, price DOUBLE, ts BIGINT) "
                                  "WITH (KAFKA_TOPIC='trades', TIMESTAMP='ts')", {})
    (result,) = await executor.execute_script(
        "EXPLAIN SELECT symbol, COUNT(*) AS n FROM trades GROUP BY symbol WINDOW TUMBLING(1m)", {})
    assert "Aggregate: GROUP BY symbol; COUNT(*); window tumbling size 60000 ms, grace 0 ms (event time: ts)" \
        in result["message"]
    assert "def extract(batch):" in result["generated_code"]


async def test_create_with_typo_is_a_validation_error(executor: StatementExecutor) -> None:
    from velo.server.jobs.statements import StatementError

    with pytest.raises(StatementError) as info:
        await executor.execute_script("CREATE STREAM s (a INT) WITH (KAFKA_TOPC='s')", {})
    assert isinstance(info.value.cause, SqlValidationError)
    assert "kafka_topic" in info.value.cause.suggestions


def test_csv_and_avro_streams_decode_and_cast() -> None:
    from velo.server.engine.catalog import Catalog, entry_from_statement

    cat = Catalog()
    for fmt in ("CSV", "AVRO"):
        stmt = parse_statement(f"CREATE STREAM s_{fmt.lower()} (symbol STRING, qty INT, price DECIMAL(10, 2)) "
                               f"WITH (KAFKA_TOPIC='x', VALUE_FORMAT='{fmt}')")
        cat.put(entry_from_statement(stmt))  # type: ignore[arg-type]
    csv_q = compile_select(parse_statement("SELECT symbol, qty * 2 AS q, price FROM s_csv"),  # type: ignore[arg-type]
                           catalog=cat)
    out = csv_q.processor("rows").process([Record(csv_encode(["AAPL", "21", "1.505"]))])
    from decimal import Decimal

    assert [e.values for e in out.rows] == [["AAPL", 42, Decimal("1.50")]] or \
        [e.values for e in out.rows] == [["AAPL", 42, Decimal("1.51")]]
    schema = avro_schema("s_avro", [("symbol", "STRING"), ("qty", "INT"), ("price", "STRING")])
    avro_q = compile_select(parse_statement("SELECT symbol, qty + 1 AS q FROM s_avro"),  # type: ignore[arg-type]
                            catalog=cat)
    value = avro_encode(schema, {"symbol": "MSFT", "qty": 4, "price": "2.5"})
    out = avro_q.processor("encode").process([Record(value, key=b"k")])
    assert out.rows == [(b"k", orjson.dumps({"symbol": "MSFT", "q": 5}))]


def test_headers_and_primary_key() -> None:
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT symbol PRIMARY KEY, HEADER('trace') AS t, HAS_HEADER('x') AS h, HEADER_KEYS() AS ks FROM s"))
    rec = Record(orjson.dumps({"symbol": "A"}), key=b"old", headers=[("trace", b"abc")])
    (row,) = q.processor("encode").process([rec]).rows
    assert row == (b"A", orjson.dumps({"symbol": "A", "t": "abc", "h": False, "ks": ["trace"]}))


def test_join_with_a_topic_table_keyed_by_its_primary_key() -> None:
    from velo.server.engine.catalog import Catalog, entry_from_statement

    cat = Catalog()
    stmt = parse_statement("CREATE TABLE inst (symbol STRING PRIMARY KEY, sector STRING) "
                           "WITH (KAFKA_TOPIC='inst')")
    cat.put(entry_from_statement(stmt))  # type: ignore[arg-type]
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT t.symbol, i.sector FROM trades t LEFT JOIN inst i ON t.symbol = i.symbol"), catalog=cat)
    assert [i.topic for i in q.inputs] == ["trades", "inst"]
    p = q.processor("rows")
    # The table's value has no symbol: it comes from the message key (PRIMARY KEY).
    p.process([Record(orjson.dumps({"sector": "tech"}), key=b"AAPL"),
               Record(orjson.dumps({"sector": "old"}), key=b"MSFT"),
               Record(orjson.dumps({"sector": "software"}), key=b"MSFT")], 1)
    out = p.process([Record(orjson.dumps({"symbol": s})) for s in ("AAPL", "MSFT", "XOM")], 0)
    assert [e.values for e in out.rows] == [["AAPL", "tech"], ["MSFT", "software"], ["XOM", None]]


async def test_the_querys_event_time_field_wins_over_the_declared_timestamp(executor: StatementExecutor) -> None:
    await executor.execute_script(
        "CREATE STREAM ticks (symbol STRING, ts BIGINT, exch_ts BIGINT) "
        "WITH (KAFKA_TOPIC='ticks_t', TIMESTAMP='ts');", {})
    catalog = executor.manager.catalog
    sql = "SELECT symbol, COUNT(*) AS n FROM ticks WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY symbol EMIT FINAL"
    q = compile_select(parse_statement(sql), catalog=catalog, properties={"event.time.field": "exch_ts"})
    assert "event time: exch_ts" in q.explain()
    assert "event time: ts" in compile_select(parse_statement(sql), catalog=catalog).explain()
