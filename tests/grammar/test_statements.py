"""One test per statement form of dialect.md section 3, checking the AST each one gives."""

from __future__ import annotations

import pytest
from velo.grammar import ast as a
from velo.grammar import parse, parse_statement

EXAMPLES = """
CREATE STREAM trades (symbol STRING, price DOUBLE, quantity INT, side STRING, ts BIGINT)
  WITH (KAFKA_TOPIC='trades', VALUE_FORMAT='JSON', TIMESTAMP='ts');

SELECT symbol, price FROM trades WHERE price > 100 EMIT CHANGES LIMIT 5;

CREATE STREAM ohlc_1m AS
SELECT symbol PRIMARY KEY, FIRST_VALUE(price) AS open, MAX(price) AS high, MIN(price) AS low,
       LAST_VALUE(price) AS close, SUM(quantity) AS volume, COUNT(*) AS trades
FROM trades GROUP BY symbol WINDOW TUMBLING(1m) GRACE PERIOD 5s EMIT FINAL;

START JOB big_buys AS
SELECT symbol, price, quantity FROM trades WHERE side = 'BUY' AND quantity > 1000
WITH ('output.topic' = 'big_buys');

CREATE STREAM enriched AS
SELECT t.symbol, t.price, r.sector, t.price * t.quantity AS notional
FROM trades t LEFT JOIN instruments r ON t.symbol = r.symbol
WITH ('instruments.type' = 'file_source', 'instruments.path' = 'instruments.csv', 'instruments.format' = 'csv');

CREATE STREAM spikes AS
SELECT symbol, price, AVG(price) OVER (PARTITION BY symbol ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING) AS avg20
FROM trades
WHERE price > 1.05 * AVG(price) OVER (PARTITION BY symbol ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING);
"""


def test_every_example_of_section_10_parses() -> None:
    stmts = parse(EXAMPLES)
    assert [type(s) for s in stmts] == [
        a.CreateSource, a.Select, a.CreateStreamAs, a.StartJob, a.CreateStreamAs, a.CreateStreamAs
    ]  # fmt: skip
    catalog, transient, ohlc, big_buys, enriched, spikes = stmts
    assert isinstance(catalog, a.CreateSource)
    assert [c.name for c in catalog.columns] == ["symbol", "price", "quantity", "side", "ts"]
    assert catalog.properties[0] == a.Property("KAFKA_TOPIC", "trades")
    assert isinstance(transient, a.Select) and transient.limit == 5 and transient.emit == "changes"
    assert isinstance(ohlc, a.CreateStreamAs)
    assert ohlc.query.window == a.Window(
        "tumbling", a.Interval(1, "MINUTE"), grace=a.Interval(5, "SECOND")
    )
    assert ohlc.query.emit == "final" and ohlc.query.items[0].primary_key
    assert isinstance(big_buys, a.StartJob)
    assert big_buys.properties == (a.Property("output.topic", "big_buys"),)
    assert isinstance(enriched, a.CreateStreamAs)
    assert enriched.query.joins[0].kind == "left" and len(enriched.properties) == 3
    assert isinstance(spikes, a.CreateStreamAs)
    avg = spikes.query.items[2].expr
    assert isinstance(avg, a.FunctionCall) and avg.over is not None
    assert avg.over.frame == a.WindowFrame(20, 1)


def test_create_stream_as_select_with_properties_and_columns() -> None:
    s = parse_statement(
        "CREATE OR REPLACE STREAM s (a INT, b STRING) AS SELECT a, b FROM t EMIT CHANGES "
        "WITH ('output.topic' = 'o', 'batch.size' = 100)"
    )
    assert isinstance(s, a.CreateStreamAs)
    assert (s.name, s.kind, s.or_replace) == ("s", "stream", True)
    assert [c.type for c in s.columns] == [a.SimpleType("INT"), a.SimpleType("STRING")]
    assert s.properties == (a.Property("output.topic", "o"), a.Property("batch.size", 100))
    assert s.query.properties == () and s.query.emit == "changes"


def test_create_as_select_takes_a_with_before_as_too() -> None:
    # ksqlDB puts the WITH before AS; both places make one list, the leading one's keys first.
    s = parse_statement("CREATE TABLE t WITH (VALUE_FORMAT = 'AVRO', KAFKA_TOPIC = 'o') AS SELECT k, COUNT(*) "
                        "FROM src GROUP BY k WITH ('batch.size' = 10)")
    assert isinstance(s, a.CreateStreamAs) and s.kind == "table"
    assert s.properties == (a.Property("VALUE_FORMAT", "AVRO"), a.Property("KAFKA_TOPIC", "o"),
                            a.Property("batch.size", 10))
    assert s.query.properties == () and s.query.group_by == (a.Column("k"),)
    cols = parse_statement("CREATE STREAM s (a INT) WITH (VALUE_FORMAT = 'JSON') AS SELECT a FROM src")
    assert isinstance(cols, a.CreateStreamAs) and cols.properties == (a.Property("VALUE_FORMAT", "JSON"),)


def test_create_table_as_select() -> None:
    s = parse_statement("CREATE TABLE totals AS SELECT k, COUNT(*) AS n FROM t GROUP BY k")
    assert isinstance(s, a.CreateStreamAs) and s.kind == "table"
    assert s.query.group_by == (a.Column("k"),)


def test_start_job() -> None:
    s = parse_statement("START JOB j AS SELECT * FROM t WITH ('output.topic' = 'out')")
    assert s == a.StartJob(
        "j",
        a.Select((a.SelectItem(a.Star()),), a.TableRef("t")),
        (a.Property("output.topic", "out"),),
    )


def test_insert_into_select() -> None:
    s = parse_statement("INSERT INTO sink SELECT a FROM src WHERE a > 1 WITH ('k' = 'v')")
    assert isinstance(s, a.InsertSelect)
    assert s.target == "sink" and s.properties == (a.Property("k", "v"),)
    assert s.query.where == a.BinaryOp(">", a.Column("a"), a.Literal(1))


def test_insert_values() -> None:
    s = parse_statement("INSERT INTO trades (symbol, price) VALUES ('A', 1.5), ('B', -2)")
    assert s == a.InsertValues(
        "trades",
        ((a.Literal("A"), a.Literal(1.5)), (a.Literal("B"), a.Literal(-2))),
        ("symbol", "price"),
    )
    assert parse_statement("INSERT INTO t VALUES (1)") == a.InsertValues("t", ((a.Literal(1),),))


def test_catalog_stream_with_key_column() -> None:
    s = parse_statement(
        "CREATE STREAM s (id STRING KEY, v DOUBLE) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', "
        "PARTITIONS=4)"
    )
    assert isinstance(s, a.CreateSource)
    assert s.columns[0] == a.ColumnDef("id", a.SimpleType("STRING"), key=True)
    assert s.properties[-1] == a.Property("PARTITIONS", 4)


def test_catalog_table_with_primary_key_and_file_source() -> None:
    s = parse_statement(
        "CREATE OR REPLACE TABLE instruments (symbol STRING PRIMARY KEY, sector STRING) "
        "WITH ('type' = 'file_source', 'path' = 'x.csv')"
    )
    assert isinstance(s, a.CreateSource) and s.kind == "table" and s.or_replace
    assert s.columns[0].primary_key and not s.columns[0].key


def test_catalog_without_columns() -> None:
    s = parse_statement("CREATE STREAM raw WITH (KAFKA_TOPIC = 'raw')")
    assert s == a.CreateSource("raw", "stream", (), (a.Property("KAFKA_TOPIC", "raw"),))


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("DROP STREAM s", a.Drop("s")),
        ("DROP TABLE IF EXISTS t", a.Drop("t", "table", if_exists=True)),
        ("DROP STREAM s DELETE TOPIC", a.Drop("s", delete_topic=True)),
        ("DROP TABLE IF EXISTS t DELETE TOPIC", a.Drop("t", "table", True, True)),
    ],
)
def test_drop(sql: str, expected: a.Drop) -> None:
    assert parse_statement(sql) == expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("PRINT 'Trades'", a.Print("Trades")),
        ("PRINT trades FROM BEGINNING", a.Print("trades", from_beginning=True)),
        ("PRINT 't' INTERVAL 10 LIMIT 3", a.Print("t", interval=10, limit=3)),
        ("PRINT t FROM BEGINNING INTERVAL 2 LIMIT 1", a.Print("t", True, 2, 1)),
    ],
)
def test_print(sql: str, expected: a.Print) -> None:
    assert parse_statement(sql) == expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("STOP JOB j", a.StopJob("j")),
        ("STOP JOB j FORCE", a.StopJob("j", force=True)),
        ("TERMINATE j", a.StopJob("j")),
        ("PAUSE JOB j", a.PauseJob("j")),
        ("RESUME JOB j", a.ResumeJob("j")),
        ("STOP APP trading", a.StopApp("trading")),
        ("SHOW JOBS", a.ShowJobs()),
        ("SHOW QUERIES", a.ShowJobs()),
        ("SHOW JOBS LIKE 'price%'", a.ShowJobs("price%")),
        ("SHOW STATUS j", a.ShowStatus("j")),
        ("SHOW METRICS", a.ShowMetrics()),
        ("SHOW METRICS j", a.ShowMetrics("j")),
        ("SHOW STREAMS", a.Show("streams")),
        ("SHOW TABLES", a.Show("tables")),
        ("SHOW TOPICS", a.Show("topics")),
        ("SHOW FUNCTIONS", a.Show("functions")),
        ("SHOW PROPERTIES", a.Show("properties")),
        ("DESCRIBE trades", a.Describe("trades")),
        ("DESCRIBE FUNCTION avg", a.DescribeFunction("AVG")),
        ("DESCRIBE FUNCTION left", a.DescribeFunction("LEFT")),
        ("EXPLAIN j", a.Explain(name="j")),
        ("SET 'auto.offset.reset' = 'earliest'", a.SetProperty("auto.offset.reset", "earliest")),
        ("SET 'batch.size' = 10", a.SetProperty("batch.size", 10)),
        ("UNSET 'auto.offset.reset'", a.UnsetProperty("auto.offset.reset")),
    ],
)
def test_control_and_inspection(sql: str, expected: a.Statement) -> None:
    assert parse_statement(sql) == expected
    assert parse_statement(sql.lower().replace("'price%'", "'price%'")) is not None


def test_explain_a_statement() -> None:
    s = parse_statement("EXPLAIN SELECT a FROM t")
    assert s == a.Explain(a.Select((a.SelectItem(a.Column("a")),), a.TableRef("t")))


def test_several_statements_and_empty_ones() -> None:
    stmts = parse(";; SHOW JOBS;\n\n;STOP JOB x ; -- done\n")
    assert stmts == [a.ShowJobs(), a.StopJob("x")]
    assert parse("") == [] and parse(" -- nothing\n/* at all */ ;") == []


def test_statement_spans_cover_the_statement_text() -> None:
    text = "SHOW JOBS;\n  SELECT a\n  FROM t ;"
    _, second = parse(text)
    assert second.span is not None
    assert text[second.span.start_pos : second.span.end_pos] == "SELECT a\n  FROM t"
    assert (second.span.line, second.span.column, second.span.end_line) == (2, 3, 3)
