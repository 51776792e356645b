"""Avro schemas given in WITH or a file: validation (with positions), decoding sources, encoding sinks.

Statements go the way the server sends them — job statements through ``MultiJobSqlServer.build_spec``
(property checks, then the compiler), catalog statements through the statement executor — with no
broker: nothing here touches Kafka (test_avro_kafka.py does).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest
from velo.grammar import ast
from velo.grammar.errors import SqlValidationError
from velo.grammar.parser import parse_statement
from velo.server.connectors.base import Record
from velo.server.engine.catalog import CatalogEntry
from velo.server.engine.compile import compile_select
from velo.server.engine.compiler.model import CompiledQuery
from velo.server.engine.operators.output import UnencodableRow
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.statements import StatementError, StatementExecutor

TRADE: dict[str, Any] = {
    "type": "record", "name": "Trade", "namespace": "velo.test",
    "fields": [
        {"name": "symbol", "type": "string"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "qty", "type": "int"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "venue", "type": ["null", "string"], "default": None},
        {"name": "raw", "type": "bytes", "default": ""},
    ],
}
OUT: dict[str, Any] = {
    "type": "record", "name": "Notional",
    "fields": [
        {"name": "symbol", "type": "string"},
        {"name": "notional", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}
TS = 1_700_000_000_123


def _sql_json(schema: Any) -> str:
    """A schema as the value of a SQL string literal."""
    return json.dumps(schema).replace("'", "''")


def _value(schema: dict[str, Any], row: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), row)
    return buf.getvalue()


def _read(schema: dict[str, Any], value: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(value), fastavro.parse_schema(schema), None)


def _trade(symbol: str, price: str, qty: int, ts: int = TS) -> bytes:
    return _value(TRADE, {"symbol": symbol, "price": Decimal(price), "qty": qty,
                          "ts": datetime.fromtimestamp(ts / 1000, UTC), "venue": None, "raw": b""})


@pytest.fixture
def manager(tmp_path: Path) -> MultiJobSqlServer:
    (tmp_path / "trade.avsc").write_text(json.dumps(TRADE, indent=2), encoding="utf-8")
    return MultiJobSqlServer(ManagerConfig("127.0.0.1:1", data_dir=tmp_path))


def _build(manager: MultiJobSqlServer, sql: str) -> CompiledQuery:
    return manager.build_spec(sql).query


def _fails(manager: MultiJobSqlServer, sql: str) -> SqlValidationError:
    with pytest.raises(SqlValidationError) as info:
        manager.build_spec(sql)
    return info.value


def _at(sql: str, exc: SqlValidationError, text: str) -> None:
    """The error points at the first occurrence of ``text`` in the single-line ``sql``."""
    assert (exc.line, exc.column) == (1, sql.index(text) + 1), (exc.message, exc.line, exc.column)


# ---------------------------------------------------------------- sources


def test_an_inline_schema_gives_the_columns_their_types_and_no_casts(manager: MultiJobSqlServer) -> None:
    sql = (f"CREATE STREAM out AS SELECT symbol, price, qty, ts, venue FROM trades WHERE qty > 1 "
           f"WITH ('trades.format' = 'avro', 'trades.avro.schema' = '{_sql_json(TRADE)}')")
    query = _build(manager, sql)
    assert [(c.name, c.type) for c in query.plan.columns] == [
        ("symbol", "STRING"), ("price", "DECIMAL(10, 2)"), ("qty", "INT"), ("ts", "TIMESTAMP"), ("venue", "STRING")]
    assert "_typed" not in query.source_code  # the schema already typed every value: no cast per record
    rows = query.processor("rows").process([Record(_trade("AAPL", "187.25", 3)), Record(_trade("MSFT", "1", 1))])
    assert [e.values for e in rows.rows] == [["AAPL", Decimal("187.25"), 3, TS, None]]


def test_a_schema_file_under_the_data_dir_is_read(manager: MultiJobSqlServer) -> None:
    sql = ("CREATE STREAM out AS SELECT symbol, qty * 2 AS q FROM trades "
           "WITH ('trades.format' = 'avro', 'trades.avro.schema.file' = 'trade.avsc')")
    query = _build(manager, sql)
    out = query.processor("encode").process([Record(_trade("AAPL", "2.50", 4), key=b"k")])
    assert out.errors is None
    assert [(k, json.loads(v)) for k, v in out.rows] == [(b"k", {"symbol": "AAPL", "q": 8})]


def test_the_confluent_header_is_skipped_when_asked_for(manager: MultiJobSqlServer) -> None:
    sql = ("CREATE STREAM out AS SELECT symbol FROM trades WITH ('trades.format' = 'avro', "
           "'trades.avro.schema.file' = 'trade.avsc', 'trades.avro.confluent' = 'true')")
    query = _build(manager, sql)
    framed = b"\x00\x00\x00\x00\x2a" + _trade("AAPL", "1", 1)
    plain = _trade("MSFT", "1", 1)
    out = query.processor("rows").process([Record(framed), Record(plain)])
    assert [e.values for e in out.rows] == [["AAPL"]]
    assert out.errors is not None and "Confluent wire format" in str(out.errors[0][1])


async def test_a_declared_stream_takes_its_columns_from_the_schema_file(manager: MultiJobSqlServer,
                                                                        tmp_path: Path) -> None:
    executor = StatementExecutor(manager)
    await executor.execute_script(
        "CREATE STREAM trades WITH (KAFKA_TOPIC='trades', VALUE_FORMAT='AVRO', 'avro.schema.file'='trade.avsc', "
        "TIMESTAMP='ts')", {})
    entry = manager.catalog.get("trades")
    assert entry is not None and entry.format == "avro"
    assert [(c.name, c.type) for c in entry.columns] == [
        ("symbol", "STRING"), ("price", "DECIMAL(10, 2)"), ("qty", "INT"), ("ts", "TIMESTAMP"),
        ("venue", "STRING"), ("raw", "ANY")]
    # The entry keeps the schema itself: it survives the registry and no longer needs the file.
    (tmp_path / "trade.avsc").unlink()
    restored = CatalogEntry.from_dict(entry.to_dict())
    assert json.loads(restored.options["avro.schema"]) == TRADE
    query = _build(manager, "CREATE STREAM big AS SELECT symbol, price * qty AS n FROM trades WHERE qty >= 10")
    out = query.processor("rows").process([Record(_trade("AAPL", "1.50", 10)), Record(_trade("X", "1", 1))])
    assert [e.values for e in out.rows] == [["AAPL", Decimal("15.00")]]


async def test_declared_columns_must_be_fields_of_the_schema(manager: MultiJobSqlServer) -> None:
    sql = ("CREATE STREAM trades (symbol STRING KEY, qty INT, prize DOUBLE) WITH (KAFKA_TOPIC='trades', "
           "VALUE_FORMAT='AVRO', 'avro.schema.file'='trade.avsc')")
    with pytest.raises(StatementError) as info:
        await StatementExecutor(manager).execute_script(sql, {})
    exc = info.value.cause
    assert isinstance(exc, SqlValidationError)
    assert exc.message == "column 'prize' of trades is not a field of its Avro schema; did you mean price?"
    assert exc.suggestions == ["price"]
    _at(sql, exc, "prize")
    # symbol is the KEY column: it comes from the message key, so the schema need not have it.
    ok = ("CREATE STREAM trades (symbol STRING KEY, qty INT, price DOUBLE) WITH (KAFKA_TOPIC='trades', "
          "VALUE_FORMAT='AVRO', 'avro.schema'='" + _sql_json({**TRADE, "fields": TRADE["fields"][1:]}) + "')")
    await StatementExecutor(manager).execute_script(ok, {})
    entry = manager.catalog.get("trades")
    assert entry is not None and [c.name for c in entry.columns] == ["symbol", "qty", "price"]
    # A declared DOUBLE over a decimal field is cast (not exact); the INT is not.
    query = _build(manager, "CREATE STREAM o AS SELECT symbol, qty, price FROM trades")
    value = _value({**TRADE, "fields": TRADE["fields"][1:]},
                   {"price": Decimal("2.50"), "qty": 3, "ts": TS, "venue": "X", "raw": b""})
    out = query.processor("rows").process([Record(value, key=b"AAPL")])
    assert [e.values for e in out.rows] == [["AAPL", 3, 2.5]]


def test_an_inline_schema_is_checked_against_a_declared_streams_columns(tmp_path: Path) -> None:
    from velo.server.engine.catalog import Catalog, entry_from_statement

    catalog = Catalog()
    stmt = parse_statement("CREATE STREAM trades (symbol STRING, bid DOUBLE) WITH (KAFKA_TOPIC='trades')")
    assert isinstance(stmt, ast.CreateSource)
    catalog.put(entry_from_statement(stmt))
    select = parse_statement("SELECT symbol FROM trades")
    assert isinstance(select, ast.Select)
    with pytest.raises(SqlValidationError, match="column 'bid' of trades is not a field of its Avro schema"):
        compile_select(select, catalog=catalog, data_dir=tmp_path, properties={
            "trades.format": "avro", "trades.avro.schema": json.dumps(TRADE)})


@pytest.mark.parametrize(("props", "message", "at"), [
    ("'trades.avro.schema' = '{}'", "'trades.avro.schema' needs 'trades.format' = 'avro'", "'trades.avro.schema'"),
    ("'trades.format' = 'avro', 'trades.avro.schema' = '{\"type\": \"record\"', "
     "'trades.avro.schema.file' = 'trade.avsc'",
     "give 'trades.avro.schema' or 'trades.avro.schema.file', not both", "'trades.avro.schema.file'"),
    ("'trades.format' = 'avro', 'trades.avro.schema' = '{oops}'",
     "the Avro schema of 'trades' is not valid JSON: unexpected character, expected a string key: "
     "line 1 column 2 (char 1)",
     "'trades.avro.schema'"),
    ("'trades.format' = 'avro', 'trades.avro.schema' = "
     "'{\"type\": \"record\", \"name\": \"t\", \"fields\": [{\"name\": \"a\", \"type\": \"strng\"}]}'",
     "the Avro schema of 'trades' is not valid: unknown type 'strng'", "'trades.avro.schema'"),
    ("'trades.format' = 'avro', 'trades.avro.schema' = '{\"type\": \"string\"}'",
     "the Avro schema of 'trades' must be a record (its fields are the columns), got 'string'",
     "'trades.avro.schema'"),
    ("'trades.format' = 'avro', 'trades.avro.schema.file' = 'nope.avsc'",
     "Avro schema file 'nope.avsc' of 'trades' does not exist", "'trades.avro.schema.file'"),
    ("'trades.format' = 'avro', 'trades.avro.schema.file' = '../trade.avsc'",
     "file path '../trade.avsc' lies outside the server's data directory", "'trades.avro.schema.file'"),
    ("'trades.format' = 'avro', 'trades.avro.schema.file' = 'trade.avsc', 'trades.avro.confluent' = 'yes'",
     "'trades.avro.confluent' must be true or false, got 'yes'", "'trades.avro.confluent'"),
])
def test_bad_source_schemas_are_placed_at_their_property(manager: MultiJobSqlServer, props: str, message: str,
                                                         at: str) -> None:
    sql = f"CREATE STREAM out AS SELECT symbol FROM trades WITH ({props})"
    exc = _fails(manager, sql)
    assert exc.message == message
    _at(sql, exc, at)


# ---------------------------------------------------------------- sinks


def _sink_sql(select: str, schema: Any = OUT, extra: str = "") -> str:
    return (f"CREATE STREAM out AS {select} WITH ('trades.format' = 'avro', 'trades.avro.schema.file' = "
            f"'trade.avsc', 'out.format' = 'avro', 'out.avro.schema' = '{_sql_json(schema)}'{extra})")


def test_a_sink_writes_avro_with_its_inline_schema(manager: MultiJobSqlServer) -> None:
    query = _build(manager, _sink_sql("SELECT symbol, price * qty AS notional, ts FROM trades WHERE qty > 1"))
    assert query.output_format == "avro" and query.output_schema == OUT
    assert "Sink out: Avro values, schema Notional (4 fields)" in query.plan.describe()
    out = query.processor("encode").process([Record(_trade("AAPL", "187.25", 3), key=b"k"),
                                             Record(_trade("MSFT", "1", 1))])
    assert out.errors is None
    assert [(k, _read(OUT, v)) for k, v in out.rows] == [
        (b"k", {"symbol": "AAPL", "notional": Decimal("561.75"), "ts": datetime.fromtimestamp(TS / 1000, UTC),
                "note": None})]
    # A client's rows are not the sink's business: they stay values.
    rows = query.processor("rows").process([Record(_trade("AAPL", "1", 2))])
    assert [e.values for e in rows.rows] == [["AAPL", Decimal("2.00"), TS]]


def test_an_aggregate_writes_avro_upserts(manager: MultiJobSqlServer) -> None:
    schema = {"type": "record", "name": "Counts", "fields": [
        {"name": "symbol", "type": "string"}, {"name": "n", "type": "long"},
        {"name": "volume", "type": ["null", "long"], "default": None}]}
    query = _build(manager, _sink_sql("SELECT symbol, COUNT(*) AS n, SUM(qty) AS volume FROM trades GROUP BY symbol",
                                      schema))
    p = query.processor("encode")
    out = p.process([Record(_trade("A", "1", 2)), Record(_trade("B", "1", 5)), Record(_trade("A", "1", 1))])
    assert out.errors is None
    final = {k: _read(schema, v) for k, v in out.rows}
    assert final == {b"A": {"symbol": "A", "n": 2, "volume": 3}, b"B": {"symbol": "B", "n": 1, "volume": 5}}


def test_a_row_that_does_not_fit_is_the_input_records_error(manager: MultiJobSqlServer) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "symbol", "type": "long"}]}
    query = _build(manager, _sink_sql("SELECT symbol FROM trades", schema))
    p = query.processor("encode")
    bad, good = Record(_trade("AAPL", "1", 1), key=b"k"), Record(_trade("MSFT", "1", 1))
    out = p.process([bad, good, bad])
    # Filter/project encodes inside its batch loop: the record whose row does not fit is the error
    # (the DLQ gets it as it came), and the batch goes on.
    assert out.rows == [] and out.errors is not None and [r for r, _ in out.errors] == [bad, good, bad]
    assert str(out.errors[0][1]).startswith("the output row does not fit the Avro schema of 'out': ")


def test_an_aggregate_row_that_does_not_fit_is_an_error_of_its_own_and_retries_only_encode(
        manager: MultiJobSqlServer) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "symbol", "type": "long"},
                                                        {"name": "n", "type": "long"}]}
    query = _build(manager, _sink_sql("SELECT symbol, COUNT(*) AS n FROM trades GROUP BY symbol", schema))
    p = query.processor("encode")
    out = p.process([Record(_trade("AAPL", "1", 1))])
    assert out.rows == [] and out.errors is not None
    (row, exc), = out.errors
    # An aggregate's row comes from many records: the row itself is the failed record (JSON for the DLQ).
    assert isinstance(row, UnencodableRow) and json.loads(row.value or b"") == {"symbol": "AAPL", "n": 1}
    assert row.key == b"AAPL"
    assert str(exc).startswith("the output row does not fit the Avro schema of 'out': ")
    again = p.process([row])  # RetryWithBackoff: the row is encoded again, not run through the query
    assert again.rows == [] and again.errors is not None and again.errors[0][0].row == row.row
    # The group's state is untouched by the failed row: the next record counts on.
    schema_ok = {"type": "record", "name": "R", "fields": [{"name": "symbol", "type": "string"},
                                                           {"name": "n", "type": "long"}]}
    ok = _build(manager, _sink_sql("SELECT symbol, COUNT(*) AS n FROM trades GROUP BY symbol", schema_ok))
    q = ok.processor("encode")
    rows = q.process([Record(_trade("AAPL", "1", 1)), Record(_trade("AAPL", "1", 1))]).rows
    assert [_read(schema_ok, v) for _, v in rows][-1] == {"symbol": "AAPL", "n": 2}


@pytest.mark.parametrize(("select", "schema", "extra", "message", "at"), [
    ("SELECT symbol, qty FROM trades", OUT, "",
     "column 'qty' is not a field of the Avro schema of 'out' (fields: symbol, notional, ts, note)", "qty"),
    ("SELECT symbol, ts FROM trades", OUT, "",
     "the Avro schema of 'out' needs field 'notional', which the SELECT does not produce; select it or make "
     "the field nullable or give it a default", "SELECT"),
    ("SELECT symbol, price * qty AS notional FROM trades", None, "",
     "the Avro schema of 'out' is derived from the SELECT, but the type of column 'notional' is not known: "
     "CAST it, declare the source's columns (CREATE STREAM … (cols)) or give 'out.avro.schema'", "price * qty"),
    ("SELECT symbol, price * qty AS notional, ts FROM trades", OUT, ", 'out.avro.confluent' = 'true'",
     "'out.avro.confluent' applies to sources: a sink writes plain Avro values (there is no schema registry "
     "to give a schema id)", "SELECT"),
])
def test_the_select_is_checked_against_the_sink_schema(manager: MultiJobSqlServer, select: str, schema: Any,
                                                        extra: str, message: str, at: str) -> None:
    sql = _sink_sql(select, schema, extra)
    if schema is None:
        sql = sql.replace(", 'out.avro.schema' = 'null'", "")
    exc = _fails(manager, sql)
    assert exc.message == message
    _at(sql, exc, at)


async def test_an_avro_job_output_is_declared_with_its_schema(manager: MultiJobSqlServer) -> None:
    from velo.server.jobs.catalog_statements import register_job_output

    sql = _sink_sql("SELECT symbol, price * qty AS notional, ts FROM trades")
    stmt = parse_statement(sql)
    query = manager.build_spec(sql).query
    register_job_output(manager, stmt, "out_topic", [(c.name, c.type) for c in query.plan.columns],
                        query.output_schema)
    entry = manager.catalog.get("out")
    assert entry is not None and entry.format == "avro" and json.loads(entry.options["avro.schema"]) == OUT
    reader = _build(manager, "CREATE STREAM again AS SELECT symbol, notional FROM out")
    value = _value(OUT, {"symbol": "A", "notional": Decimal("1.50"), "ts": TS, "note": None})
    assert [e.values for e in reader.processor("rows").process([Record(value)]).rows] == [["A", Decimal("1.50")]]


# ---------------------------------------------------------------- sinks without a schema, VALUE_FORMAT


def _nullable(t: Any) -> list[Any]:
    return ["null", t]


def _derived(name: str, fields: list[tuple[str, Any]]) -> dict[str, Any]:
    return {"type": "record", "name": name,
            "fields": [{"name": n, "type": _nullable(t), "default": None} for n, t in fields]}


TIMESTAMP_MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
SOURCE = "WITH ('trades.format' = 'avro', 'trades.avro.schema.file' = 'trade.avsc'"


def test_a_sink_without_a_schema_derives_it_from_the_selects_columns(manager: MultiJobSqlServer) -> None:
    query = _build(manager, "CREATE STREAM out AS SELECT symbol, price, qty, ts, venue, CAST(qty AS DOUBLE) AS q, "
                            "CAST('2024-02-29' AS DATE) AS day FROM trades WHERE qty > 1 "
                            + SOURCE + ", 'out.format' = 'avro')")
    expected = _derived("out", [
        ("symbol", "string"), ("price", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}),
        ("qty", "int"), ("ts", TIMESTAMP_MILLIS), ("venue", "string"), ("q", "double"),
        ("day", {"type": "int", "logicalType": "date"})])
    assert query.output_format == "avro" and query.output_schema == expected
    assert "Sink out: Avro values, schema out (7 fields, derived from the SELECT)" in query.plan.describe()
    out = query.processor("encode").process([Record(_trade("AAPL", "187.25", 3), key=b"k"),
                                             Record(_trade("MSFT", "1", 1))])
    assert out.errors is None
    assert [(k, _read(expected, v)) for k, v in out.rows] == [
        (b"k", {"symbol": "AAPL", "price": Decimal("187.25"), "qty": 3,
                "ts": datetime.fromtimestamp(TS / 1000, UTC), "venue": None, "q": 3.0,
                "day": date(2024, 2, 29)})]


def test_a_derived_schema_keeps_decimals_exact_beyond_a_doubles_digits(manager: MultiJobSqlServer) -> None:
    wide = {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 10}
    src = {"type": "record", "name": "Big",
           "fields": [{"name": "id", "type": "long"}, {"name": "amount", "type": wide}]}
    query = _build(manager, "CREATE STREAM out AS SELECT id, amount FROM big WITH ('big.format' = 'avro', "
                            f"'big.avro.schema' = '{_sql_json(src)}', 'out.format' = 'avro')")
    assert query.output_schema == _derived("out", [("id", "long"), ("amount", wide)])
    amounts = [Decimal("12345678901234567890.1234567891"), Decimal("-0.0000000001"), Decimal("99999999999999999999")]
    records = [Record(_value(src, {"id": i, "amount": a})) for i, a in enumerate(amounts)]
    out = query.processor("encode").process(records)
    assert out.errors is None
    assert [_read(query.output_schema, v)["amount"] for _, v in out.rows] == amounts


def test_an_aggregate_with_a_derived_schema_writes_upserts_and_tombstones(manager: MultiJobSqlServer) -> None:
    query = _build(manager, "CREATE TABLE out AS SELECT symbol, COUNT(*) AS n, SUM(price) AS total FROM trades "
                            "WINDOW TUMBLING (ts, 1 MINUTE) GROUP BY symbol HAVING COUNT(*) < 2 EMIT CHANGES "
                            + SOURCE + ", 'out.format' = 'avro')")
    decimal_10_2 = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}
    expected = _derived("out", [("symbol", "string"), ("n", "long"), ("total", decimal_10_2),
                                ("window_start", "long"), ("window_end", "long")])
    assert query.output_schema == expected
    p = query.processor("encode")
    first = p.process([Record(_trade("AAPL", "1.10", 1))])
    window = TS - TS % 60_000
    assert first.errors is None
    assert [(k, _read(expected, v or b"")) for k, v in first.rows] == [
        (f"AAPL|{window}".encode(), {"symbol": "AAPL", "n": 1, "total": Decimal("1.10"), "window_start": window,
                                     "window_end": window + 60_000})]
    # HAVING turns false: the row is retracted, a tombstone under the same key (no Avro value).
    second = p.process([Record(_trade("AAPL", "2.20", 1))])
    assert second.errors is None and second.rows == [(f"AAPL|{window}".encode(), None)]


def test_over_and_join_outputs_take_the_sinks_encoder_too(manager: MultiJobSqlServer) -> None:
    over = _build(manager, "CREATE STREAM out AS SELECT symbol, qty, SUM(qty) OVER (PARTITION BY symbol ORDER BY ts) "
                           "AS running FROM trades " + SOURCE + ", 'out.format' = 'avro')")
    schema = _derived("out", [("symbol", "string"), ("qty", "int"), ("running", "int")])
    assert over.output_schema == schema
    rows = over.processor("encode").process([Record(_trade("A", "1", 2)), Record(_trade("A", "1", 5))]).rows
    assert [_read(schema, v)["running"] for _, v in rows] == [2, 7]
    join = _build(manager, "CREATE STREAM out AS SELECT a.symbol, a.qty, b.qty AS other FROM trades a JOIN fills b "
                           "ON a.symbol = b.symbol AND b.ts BETWEEN a.ts - INTERVAL '1' MINUTE AND a.ts "
                           + SOURCE + ", 'fills.format' = 'avro', 'fills.avro.schema.file' = 'trade.avsc', "
                           "'out.format' = 'avro')")
    schema = _derived("out", [("symbol", "string"), ("qty", "int"), ("other", "int")])
    assert join.output_format == "avro" and join.output_schema == schema
    p = join.processor("encode")
    out = [*p.process([Record(_trade("A", "1", 2))], 0).rows, *p.process([Record(_trade("A", "1", 3))], 1).rows]
    assert [_read(schema, v) for _, v in out] == [{"symbol": "A", "qty": 2, "other": 3}]


@pytest.mark.parametrize("create", [
    "CREATE STREAM out WITH (VALUE_FORMAT = 'AVRO') AS SELECT symbol, qty FROM trades {src})",
    "CREATE STREAM out AS SELECT symbol, qty FROM trades {src}, VALUE_FORMAT = 'avro')",
    "CREATE STREAM out AS SELECT symbol, qty FROM trades {src}, 'format' = 'AVRO')",
    "START JOB out AS SELECT symbol, qty FROM trades {src}, VALUE_FORMAT = 'AVRO')",
])
def test_value_format_avro_makes_the_sink_avro(manager: MultiJobSqlServer, create: str) -> None:
    query = _build(manager, create.format(src=SOURCE))
    schema = _derived("out", [("symbol", "string"), ("qty", "int")])
    assert query.output_format == "avro" and query.output_schema == schema
    rows = query.processor("encode").process([Record(_trade("AAPL", "1", 4))]).rows
    assert [_read(schema, v) for _, v in rows] == [{"symbol": "AAPL", "qty": 4}]


def test_job_level_avro_keys_give_the_sinks_schema(manager: MultiJobSqlServer, tmp_path: Path) -> None:
    schema = {"type": "record", "name": "Slim", "fields": [{"name": "symbol", "type": "string"},
                                                           {"name": "qty", "type": "long"}]}
    (tmp_path / "slim.avsc").write_text(json.dumps(schema), encoding="utf-8")
    inline = _build(manager, f"CREATE STREAM out WITH (VALUE_FORMAT = 'AVRO', 'avro.schema' = '{_sql_json(schema)}') "
                             f"AS SELECT symbol, qty FROM trades {SOURCE})")
    from_file = _build(manager, "CREATE STREAM out WITH (VALUE_FORMAT = 'AVRO', 'avro.schema.file' = 'slim.avsc') "
                                f"AS SELECT symbol, qty FROM trades {SOURCE})")
    for query in (inline, from_file):
        assert query.output_schema == schema
        rows = query.processor("encode").process([Record(_trade("AAPL", "1", 4))]).rows
        assert [_read(schema, v) for _, v in rows] == [{"symbol": "AAPL", "qty": 4}]
    # The sink's own key and the job-level one may say the same thing.
    same = _build(manager, f"CREATE STREAM out AS SELECT symbol FROM trades {SOURCE}, VALUE_FORMAT = 'AVRO', "
                           "'out.format' = 'avro')")
    assert same.output_format == "avro"


def test_value_format_json_keeps_json(manager: MultiJobSqlServer) -> None:
    query = _build(manager, "CREATE STREAM out WITH (VALUE_FORMAT = 'JSON') AS SELECT symbol, ts FROM trades "
                            f"{SOURCE})")
    assert query.output_format == "json" and query.output_schema is None
    rows = query.processor("encode").process([Record(_trade("AAPL", "1", 4))]).rows
    assert [json.loads(v or b"") for _, v in rows] == [{"symbol": "AAPL", "ts": "2023-11-14T22:13:20.123Z"}]


@pytest.mark.parametrize(("sql", "message", "at"), [
    ("CREATE STREAM out WITH (VALUE_FORMAT = 'CSV') AS SELECT symbol FROM trades",
     "'value_format' must be json or avro, got 'CSV'", "VALUE_FORMAT"),
    ("CREATE STREAM out AS SELECT symbol FROM trades WITH ('out.format' = 'csv')",
     "'out.format' must be json or avro, got 'csv'", "'out.format'"),
    ("CREATE STREAM out WITH (VALUE_FORMAT = 'AVRO') AS SELECT symbol FROM trades WITH ('out.format' = 'json')",
     "'value_format' and 'out.format' both give the sink's format: give it once", "VALUE_FORMAT"),
    ("CREATE STREAM out WITH ('avro.schema' = '{}') AS SELECT symbol FROM trades",
     "'avro.schema' needs VALUE_FORMAT = 'AVRO' (or 'out.format' = 'avro')", "'avro.schema'"),
    ("CREATE STREAM out WITH (VALUE_FORMAT = 'AVRO', 'avro.schema.file' = 'nope.avsc') AS SELECT symbol FROM trades",
     "Avro schema file 'nope.avsc' of 'out' does not exist", "'avro.schema.file'"),
    ("CREATE STREAM out WITH (VALUE_FORMAT = 'AVRO', 'avro.schema' = '{\"type\": \"string\"}') AS SELECT symbol "
     "FROM trades", "the Avro schema of 'out' must be a record (its fields are the columns), got 'string'",
     "'avro.schema'"),
    ("CREATE STREAM out WITH (VALUE_FORMAT = 'AVRO') AS SELECT * FROM trades",
     "an Avro sink without a schema takes it from the SELECT's columns, which are not known here (SELECT * over an "
     "undeclared topic): declare the source (CREATE STREAM … (cols)) or give 'out.avro.schema' or "
     "'out.avro.schema.file'", "SELECT"),
    ("CREATE STREAM out WITH (VALUE_FORMAT = 'AVRO') AS SELECT symbol FROM trades",
     "the Avro schema of 'out' is derived from the SELECT, but the type of column 'symbol' is not known: CAST it, "
     "declare the source's columns (CREATE STREAM … (cols)) or give 'out.avro.schema'", "symbol FROM"),
    ("CREATE STREAM out WITH (VALUE_FORMAT = 'AVRO') AS SELECT CAST(qty AS INT) AS \"the qty\" FROM trades",
     "column 'the qty' is not a valid Avro field name (letters, digits and _): give it an alias", "CAST"),
])
def test_sink_format_errors_are_placed_where_they_were_written(manager: MultiJobSqlServer, sql: str, message: str,
                                                               at: str) -> None:
    exc = _fails(manager, sql)
    assert exc.message == message
    _at(sql, exc, at)


async def test_a_derived_schema_is_registered_with_the_output(manager: MultiJobSqlServer) -> None:
    from velo.server.jobs.catalog_statements import register_job_output

    sql = f"CREATE STREAM out WITH (VALUE_FORMAT = 'AVRO') AS SELECT symbol, price, ts FROM trades {SOURCE})"
    stmt = parse_statement(sql)
    query = manager.build_spec(sql).query
    register_job_output(manager, stmt, "out_topic", [(c.name, c.type) for c in query.plan.columns],
                        query.output_schema)
    entry = manager.catalog.get("out")
    assert entry is not None and entry.format == "avro"
    assert json.loads(entry.options["avro.schema"]) == query.output_schema
    assert [(c.name, c.type) for c in entry.columns] == [("symbol", "STRING"), ("price", "DECIMAL(10, 2)"),
                                                        ("ts", "TIMESTAMP")]
    value = query.processor("encode").process([Record(_trade("AAPL", "187.25", 1))]).rows[0][1]
    reader = _build(manager, "CREATE STREAM again AS SELECT symbol, price, ts FROM out")
    assert [e.values for e in reader.processor("rows").process([Record(value)]).rows] == [
        ["AAPL", Decimal("187.25"), TS]]
