"""Velo against DuckDB: every operator family, the same generated rows, results equal as multisets."""

from __future__ import annotations

from pathlib import Path

import pytest
from velo.grammar import ast

from .differential import OOO_MS, duck, make_rows, records, run_velo, same

ROWS = make_rows()
ORDERED = make_rows(ordered=True, seed=11)
ET = (f"WITH ('event.time.field' = 'ts', 'watermark.max_out_of_orderness' = '{OOO_MS}ms', "
      "'watermark.idle_timeout' = '0s')")

# (Velo SQL, DuckDB SQL); None means the same text.
FILTER_PROJECT: list[tuple[str, str | None]] = [
    ("SELECT symbol, price FROM t WHERE price > 50", None),
    ("SELECT symbol, price * qty AS n FROM t", None),
    ("SELECT qty / 2 AS h, qty / 0 AS z FROM t", "SELECT qty / 2, CASE WHEN qty IS NULL THEN NULL END FROM t"),
    ("SELECT qty % 7 AS m, -qty AS n, qty * 2 + 1 AS o FROM t", None),
    ("SELECT price FROM t WHERE price IS NULL", None),
    ("SELECT symbol FROM t WHERE side IS NOT NULL AND qty BETWEEN 10 AND 50", None),
    ("SELECT symbol, qty FROM t WHERE qty NOT BETWEEN 10 AND 50", None),
    ("SELECT symbol FROM t WHERE symbol IN ('AAPL', 'MSFT')", None),
    ("SELECT symbol FROM t WHERE symbol NOT IN ('AAPL', NULL)", None),
    ("SELECT symbol, side FROM t WHERE side NOT IN ('BUY')", None),
    ("SELECT symbol FROM t WHERE symbol LIKE 'A%'", None),
    ("SELECT symbol FROM t WHERE symbol NOT LIKE '_S%'", None),
    ("SELECT CASE WHEN price > 100 THEN 'high' WHEN price > 50 THEN 'mid' ELSE 'low' END AS band FROM t",
     None),
    ("SELECT CASE side WHEN 'BUY' THEN 1 WHEN 'SELL' THEN -1 END AS s FROM t", None),
    ("SELECT CAST(qty AS DOUBLE) AS q, CAST(price AS BIGINT) AS p, price::INT AS i FROM t",
     "SELECT CAST(qty AS DOUBLE), CAST(price AS BIGINT), CAST(price AS INT) FROM t"),
    ("SELECT symbol || '-' || side AS s FROM t", None),
    ("SELECT UPPER(symbol) AS u, LOWER(side) AS l, LENGTH(symbol) AS n FROM t", None),
    ("SELECT COALESCE(price, 0) AS p, NULLIF(qty, 0) AS q FROM t", None),
    ("SELECT ABS(price - 100) AS d, ROUND(price, 1) AS r FROM t", None),
    ("SELECT FLOOR(price) AS f, CEIL(price) AS c FROM t", None),
    ("SELECT SQRT(price) AS s, LN(price) AS l, EXP(qty / 100) AS e FROM t WHERE price > 0", None),
    ("SELECT qty FROM t WHERE NOT (qty > 10 OR price < 20)", None),
    ("SELECT price FROM t WHERE (price > 10) = (qty > 10)", None),
    ("SELECT SUBSTRING(symbol, 2, 2) AS s, REPLACE(symbol, 'A', 'x') AS r FROM t", None),
    ("SELECT GREATEST(qty, 10) AS g, LEAST(qty, 10) AS l FROM t", None),
    ("SELECT POWER(qty, 2) AS p, MOD(qty, 7) AS m FROM t", None),
    ("SELECT symbol, price FROM t WHERE price > 50 AND symbol IS NOT NULL AND side = 'BUY'", None),
    ("SELECT LEFT(symbol, 2) AS l, RIGHT(symbol, 2) AS r, LPAD(symbol, 6, '*') AS p FROM t", None),
    ("SELECT SIGN(price - 50) AS s FROM t", None),
    ("SELECT price * 2 AS p2, p2 + qty AS s FROM t WHERE qty < 50",
     "SELECT price * 2, price * 2 + qty FROM t WHERE qty < 50"),
    ("SELECT symbol FROM t WHERE qty > 10 OR side = 'BUY' AND price < 50", None),
    ("SELECT TRIM(' ' || symbol || ' ') AS s, SPLIT_PART('a,b,c', ',', 2) AS p FROM t", None),
]

AGGREGATES: list[tuple[str, str | None]] = [
    ("SELECT symbol, COUNT(*) AS c FROM t GROUP BY symbol", None),
    ("SELECT symbol, COUNT(price), SUM(qty), MIN(price), MAX(price), AVG(price) FROM t GROUP BY symbol",
     None),
    ("SELECT side, COUNT(DISTINCT symbol) FROM t GROUP BY side", None),
    ("SELECT symbol, STDDEV(price), VARIANCE(price), STDDEV_POP(price), VAR_POP(price) FROM t "
     "GROUP BY symbol", None),
    ("SELECT symbol, side, SUM(qty) FROM t GROUP BY symbol, side", None),
    ("SELECT symbol, COUNT(*) FROM t GROUP BY symbol HAVING COUNT(*) > 50", None),
    ("SELECT symbol, MEDIAN(price) FROM t GROUP BY symbol", None),
    ("SELECT symbol, PERCENTILE_CONT(price, 0.9) FROM t GROUP BY symbol",
     "SELECT symbol, quantile_cont(price, 0.9) FROM t GROUP BY symbol"),
    ("SELECT COUNT(*), SUM(price) FROM t", None),
    ("SELECT DISTINCT symbol FROM t", None),
    ("SELECT DISTINCT symbol, side FROM t", None),
    ("SELECT symbol, FIRST_VALUE(price), LAST_VALUE(price) FROM t GROUP BY symbol",
     "SELECT symbol, arg_min(price, ts) FILTER (WHERE price IS NOT NULL), "
     "arg_max(price, ts) FILTER (WHERE price IS NOT NULL) FROM t GROUP BY symbol"),
    ("SELECT symbol, SUM(qty) * 2 AS s2, COUNT(*) + 1 AS c1 FROM t GROUP BY symbol", None),
    ("SELECT UPPER(symbol) AS u, COUNT(*) FROM t GROUP BY UPPER(symbol)", None),
    ("SELECT symbol, SUM(CASE WHEN side = 'BUY' THEN qty ELSE 0 END) AS buys FROM t GROUP BY symbol",
     None),
    ("SELECT symbol, MAX(qty) - MIN(qty) AS spread FROM t GROUP BY symbol HAVING MAX(qty) > 90", None),
    ("SELECT symbol, COUNT(*) FROM t WHERE price > 50 GROUP BY symbol", None),
    ("SELECT symbol, APPROX_COUNT_DISTINCT(side) FROM t GROUP BY symbol",
     "SELECT symbol, COUNT(DISTINCT side) FROM t GROUP BY symbol"),
    ("SELECT symbol AS s, COUNT(*) AS n FROM t GROUP BY s HAVING n > 40",
     "SELECT symbol, COUNT(*) FROM t GROUP BY symbol HAVING COUNT(*) > 40"),
    ("SELECT side, LISTAGG(symbol, '') IS NULL AS none FROM t GROUP BY side",
     "SELECT side, string_agg(symbol, '') IS NULL FROM t GROUP BY side"),
]

_TUMBLE = "ts // 10000 * 10000"
WINDOWS: list[tuple[str, str]] = [
    ("SELECT symbol, COUNT(*) AS c FROM t GROUP BY symbol WINDOW TUMBLING(10s)",
     f"SELECT symbol, COUNT(*), {_TUMBLE} AS ws, {_TUMBLE} + 10000 FROM t GROUP BY symbol, ws"),
    ("SELECT symbol, SUM(qty), AVG(price), MIN(price), MAX(price) FROM t GROUP BY symbol "
     "WINDOW TUMBLING(10s)",
     f"SELECT symbol, SUM(qty), AVG(price), MIN(price), MAX(price), {_TUMBLE} AS ws, {_TUMBLE} + 10000 "
     "FROM t GROUP BY symbol, ws"),
    ("SELECT COUNT(*) AS c, SUM(price) AS s FROM t WINDOW TUMBLING(30s)",
     "SELECT COUNT(*), SUM(price), ts // 30000 * 30000 AS ws, ts // 30000 * 30000 + 30000 FROM t "
     "GROUP BY ws"),
    ("SELECT side, COUNT(*) FROM t WHERE price > 20 GROUP BY side WINDOW TUMBLING(10s)",
     f"SELECT side, COUNT(*), {_TUMBLE} AS ws, {_TUMBLE} + 10000 FROM t WHERE price > 20 "
     "GROUP BY side, ws"),
    ("SELECT symbol, STDDEV(price) FROM t GROUP BY symbol WINDOW TUMBLING(20s)",
     "SELECT symbol, STDDEV(price), ts // 20000 * 20000 AS ws, ts // 20000 * 20000 + 20000 FROM t "
     "GROUP BY symbol, ws"),
    ("SELECT symbol, WINDOWSTART AS ws, COUNT(*) AS c FROM t GROUP BY symbol WINDOW TUMBLING(10s) "
     "HAVING COUNT(*) > 1",
     f"SELECT symbol, {_TUMBLE} AS ws, COUNT(*) FROM t GROUP BY symbol, ws HAVING COUNT(*) > 1"),
    ("SELECT symbol, COUNT(*) AS c FROM t GROUP BY symbol WINDOW HOPPING(20s, 5s)",
     "SELECT symbol, COUNT(*), ws, ws + 20000 FROM (SELECT *, unnest(range(ts // 5000 * 5000 - 15000, "
     "ts // 5000 * 5000 + 1, 5000)) AS ws FROM t) GROUP BY symbol, ws"),
    ("SELECT side, AVG(price) AS a FROM t GROUP BY side WINDOW SLIDING(30s, 10s) HAVING COUNT(*) > 3",
     "SELECT side, AVG(price), ws, ws + 30000 FROM (SELECT *, unnest(range(ts // 10000 * 10000 - 20000, "
     "ts // 10000 * 10000 + 1, 10000)) AS ws FROM t) GROUP BY side, ws HAVING COUNT(*) > 3"),
    ("SELECT symbol, COUNT(*) AS c, SUM(qty) AS s FROM t GROUP BY symbol WINDOW SESSION(3s)",
     "WITH o AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY symbol ORDER BY ts) <= 3000 "
     "THEN 0 ELSE 1 END AS new FROM t), s AS (SELECT *, SUM(new) OVER (PARTITION BY symbol ORDER BY ts "
     "ROWS UNBOUNDED PRECEDING) AS sid FROM o) SELECT symbol, COUNT(*), SUM(qty), MIN(ts), "
     "MAX(ts) + 3000 FROM s GROUP BY symbol, sid"),
    ("SELECT side, MAX(price) AS m FROM t GROUP BY side WINDOW SESSION(2s)",
     "WITH o AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY side ORDER BY ts) <= 2000 "
     "THEN 0 ELSE 1 END AS new FROM t), s AS (SELECT *, SUM(new) OVER (PARTITION BY side ORDER BY ts "
     "ROWS UNBOUNDED PRECEDING) AS sid FROM o) SELECT side, MAX(price), MIN(ts), MAX(ts) + 2000 "
     "FROM s GROUP BY side, sid"),
    ("SELECT symbol, COUNT(*) AS c FROM t GROUP BY symbol WINDOW TUMBLING(10s) GRACE PERIOD 2s",
     f"SELECT symbol, COUNT(*), {_TUMBLE} AS ws, {_TUMBLE} + 10000 FROM t GROUP BY symbol, ws"),
]

OVER: list[tuple[str, str | None]] = [
    ("SELECT symbol, price, LAG(price) OVER (PARTITION BY symbol ORDER BY ts) AS p FROM t", None),
    ("SELECT symbol, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY ts) AS n FROM t", None),
    ("SELECT symbol, AVG(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 3 PRECEDING AND "
     "1 PRECEDING) AS a FROM t", None),
    ("SELECT symbol, SUM(qty) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING "
     "AND CURRENT ROW) AS s FROM t", None),
    ("SELECT side, COUNT(*) OVER (PARTITION BY side ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT "
     "ROW) AS c FROM t", None),
    ("SELECT side, RANK() OVER (PARTITION BY side ORDER BY FLOOR(ts / 5000)) AS r, DENSE_RANK() OVER "
     "(PARTITION BY side ORDER BY FLOOR(ts / 5000)) AS d FROM t", None),
    ("SELECT symbol, price FROM t WHERE price > AVG(price) OVER (PARTITION BY symbol ORDER BY ts "
     "ROWS BETWEEN 5 PRECEDING AND 1 PRECEDING)",
     "SELECT symbol, price FROM (SELECT symbol, price, AVG(price) OVER (PARTITION BY symbol ORDER BY ts "
     "ROWS BETWEEN 5 PRECEDING AND 1 PRECEDING) AS a FROM t) WHERE price > a"),
    ("SELECT symbol, LAG(price, 2, 0.0) OVER (PARTITION BY symbol ORDER BY ts) AS p2, MAX(qty) OVER "
     "(PARTITION BY symbol ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS m FROM t", None),
    # Frames ending m > 1 rows back are empty (NULL, COUNT 0) for a partition's first m rows; NULLs
    # inside a frame are skipped (the generated builtin shortcut falls back to add() one by one).
    ("SELECT symbol, MAX(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 4 PRECEDING AND 3 PRECEDING) "
     "AS mx, MIN(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 4 PRECEDING AND 3 PRECEDING) AS mn, "
     "SUM(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 5 PRECEDING AND 2 PRECEDING) AS s, "
     "COUNT(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 5 PRECEDING AND 2 PRECEDING) AS c FROM t",
     None),
    ("SELECT side, FIRST_VALUE(price) OVER (PARTITION BY side ORDER BY ts ROWS BETWEEN 3 PRECEDING AND 1 PRECEDING) "
     "AS f, AVG(qty) OVER (PARTITION BY side ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING) AS a "
     "FROM t",
     # Velo's FIRST_VALUE is the first non-NULL value
     "SELECT side, FIRST_VALUE(price IGNORE NULLS) OVER (PARTITION BY side ORDER BY ts ROWS BETWEEN 3 PRECEDING "
     "AND 1 PRECEDING), AVG(qty) OVER (PARTITION BY side ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND "
     "2 PRECEDING) FROM t"),
]


@pytest.mark.parametrize(("velo", "expected"), FILTER_PROJECT, ids=range(len(FILTER_PROJECT)))
def test_filter_project(velo: str, expected: str | None) -> None:
    rows, _ = run_velo(velo, [records(ROWS)])
    same(rows, duck({"t": ROWS}).execute(expected or velo).fetchall())


@pytest.mark.parametrize(("velo", "expected"), AGGREGATES, ids=range(len(AGGREGATES)))
def test_aggregates(velo: str, expected: str | None) -> None:
    rows, emit = run_velo(velo, [records(ROWS)])
    assert emit == "changes"
    same(rows, duck({"t": ROWS}).execute(expected or velo).fetchall())


@pytest.mark.parametrize(("velo", "expected"), WINDOWS, ids=range(len(WINDOWS)))
@pytest.mark.parametrize("emit", ["FINAL", "CHANGES"])
def test_windows_in_both_emit_modes(velo: str, expected: str, emit: str) -> None:
    rows, mode = run_velo(f"{velo} EMIT {emit} {ET}", [records(ROWS)])
    assert mode == emit.lower()
    same(rows, duck({"t": ROWS}).execute(expected).fetchall())


def test_final_windows_emit_one_row_per_window() -> None:
    from velo.grammar.parser import parse_statement
    from velo.server.engine.compile import compile_select

    q = compile_select(parse_statement(
        f"SELECT symbol, COUNT(*) AS c FROM t GROUP BY symbol WINDOW TUMBLING(10s) EMIT FINAL {ET}"))
    p = q.processor("rows")
    events = []
    recs = records(ROWS)
    for i in range(0, len(recs), 5):
        events += p.process(recs[i : i + 5]).rows
    events += p.finish().rows
    keys = [tuple(e.key) for e in events]
    assert len(keys) == len(set(keys))
    assert all(e.op == "insert" for e in events)


@pytest.mark.parametrize(("velo", "expected"), OVER, ids=range(len(OVER)))
def test_over(velo: str, expected: str | None) -> None:
    rows, _ = run_velo(velo, [records(ORDERED)])
    same(rows, duck({"t": ORDERED}).execute(expected or velo).fetchall())


INSTRUMENTS = [{"symbol": "AAPL", "sector": "tech"}, {"symbol": "MSFT", "sector": "tech"},
               {"symbol": "TSLA", "sector": "auto"}, {"symbol": "XOM", "sector": "energy"}]


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "instruments.csv").write_text(
        "symbol,sector\n" + "".join(f"{r['symbol']},{r['sector']}\n" for r in INSTRUMENTS))
    return tmp_path


TABLE = ("WITH ('instruments.type' = 'file_source', 'instruments.path' = 'instruments.csv', "
         "'instruments.format' = 'csv', 'event.time.field' = 'ts')")
STREAM_TABLE: list[tuple[str, str]] = [
    (f"SELECT t.symbol, t.price, r.sector FROM t LEFT JOIN instruments r ON t.symbol = r.symbol {TABLE}",
     "SELECT t.symbol, t.price, r.sector FROM t LEFT JOIN instruments r ON t.symbol = r.symbol"),
    (f"SELECT t.symbol, r.sector, t.price * t.qty AS n FROM t JOIN instruments r ON t.symbol = r.symbol "
     f"WHERE t.price > 20 {TABLE}",
     "SELECT t.symbol, r.sector, t.price * t.qty FROM t JOIN instruments r ON t.symbol = r.symbol "
     "WHERE t.price > 20"),
    (f"SELECT symbol, price FROM t WHERE symbol IN (SELECT symbol FROM instruments WHERE sector = 'tech') "
     f"{TABLE}",
     "SELECT symbol, price FROM t WHERE symbol IN (SELECT symbol FROM instruments WHERE sector = 'tech')"),
    (f"SELECT symbol FROM t WHERE symbol NOT IN (SELECT symbol FROM instruments) AND EXISTS "
     f"(SELECT * FROM instruments WHERE sector = 'auto') {TABLE}",
     "SELECT symbol FROM t WHERE symbol NOT IN (SELECT symbol FROM instruments) AND EXISTS "
     "(SELECT * FROM instruments WHERE sector = 'auto')"),
    (f"SELECT r.sector, COUNT(*) AS c, SUM(t.qty) AS q FROM t JOIN instruments r ON t.symbol = r.symbol "
     f"GROUP BY r.sector {TABLE}",
     "SELECT r.sector, COUNT(*), SUM(t.qty) FROM t JOIN instruments r ON t.symbol = r.symbol "
     "GROUP BY r.sector"),
    # DISTINCT over a join is planned as an Aggregate over the Join (it used to ignore the join's columns)
    (f"SELECT DISTINCT r.sector, t.side FROM t JOIN instruments r ON t.symbol = r.symbol {TABLE}",
     "SELECT DISTINCT r.sector, t.side FROM t JOIN instruments r ON t.symbol = r.symbol"),
]


@pytest.mark.parametrize(("velo", "expected"), STREAM_TABLE, ids=range(len(STREAM_TABLE)))
def test_stream_table_join(velo: str, expected: str, data_dir: Path) -> None:
    rows, _ = run_velo(velo, [records(ROWS)], data_dir=data_dir)
    same(rows, duck({"t": ROWS, "instruments": INSTRUMENTS}).execute(expected).fetchall())


# Over a declared stream the rules push WHERE conjuncts on the stream's own columns under its table joins
# (rules.py): the same rows as DuckDB, whichever conjuncts moved and whichever stayed above the join.
DECLARED_T = "CREATE STREAM t (symbol STRING, price DOUBLE, qty BIGINT, side STRING, ts BIGINT) WITH (KAFKA_TOPIC='t')"
PUSHED: list[tuple[str, str]] = [
    (f"SELECT t.symbol, t.price, r.sector FROM t LEFT JOIN instruments r ON t.symbol = r.symbol "
     f"WHERE t.qty > 30 AND r.sector IS NULL {TABLE}",
     "SELECT t.symbol, t.price, r.sector FROM t LEFT JOIN instruments r ON t.symbol = r.symbol "
     "WHERE t.qty > 30 AND r.sector IS NULL"),
    (f"SELECT t.symbol, r.sector FROM t JOIN instruments r ON t.symbol = r.symbol "
     f"WHERE price BETWEEN 20 AND 120 AND side = 'BUY' AND r.sector <> 'auto' {TABLE}",
     "SELECT t.symbol, r.sector FROM t JOIN instruments r ON t.symbol = r.symbol "
     "WHERE price BETWEEN 20 AND 120 AND side = 'BUY' AND r.sector <> 'auto'"),
    (f"SELECT r.sector, COUNT(*) AS c, SUM(qty) AS q FROM t JOIN instruments r ON t.symbol = r.symbol "
     f"WHERE t.price > 50 OR t.qty IS NULL GROUP BY r.sector {TABLE}",
     "SELECT r.sector, COUNT(*), SUM(qty) FROM t JOIN instruments r ON t.symbol = r.symbol "
     "WHERE t.price > 50 OR t.qty IS NULL GROUP BY r.sector"),
    (f"SELECT t.symbol, t.qty, r.sector FROM t JOIN instruments r ON t.symbol = r.symbol AND r.sector <> 'energy' "
     f"WHERE t.side IS NOT NULL AND NOT (t.qty < 10) {TABLE}",
     "SELECT t.symbol, t.qty, r.sector FROM t JOIN instruments r ON t.symbol = r.symbol AND r.sector <> 'energy' "
     "WHERE t.side IS NOT NULL AND NOT (t.qty < 10)"),
]


@pytest.mark.parametrize(("velo", "expected"), PUSHED, ids=range(len(PUSHED)))
def test_filters_pushed_into_the_stream_scan(velo: str, expected: str, data_dir: Path) -> None:
    from velo.grammar.parser import parse_statement
    from velo.server.engine.compile import compile_select
    from velo.server.engine.plan import Filter

    from .tables import catalog_of

    catalog = catalog_of([DECLARED_T])
    tree = compile_select(parse_statement(velo), catalog=catalog, data_dir=data_dir).plan.tree
    assert tree is not None
    assert any(isinstance(n, Filter) and n.clause == "WHERE, pushed down" for n in tree.walk())  # the rule ran
    rows, _ = run_velo(velo, [records(ROWS)], data_dir=data_dir, catalog=catalog)
    same(rows, duck({"t": ROWS, "instruments": INSTRUMENTS}).execute(expected).fetchall())


def _payments() -> list[dict[str, object]]:
    import random

    rnd = random.Random(3)
    out = []
    for _ in range(120):
        src = ROWS[rnd.randrange(len(ROWS))]
        out.append({"symbol": src["symbol"], "qty": rnd.randint(1, 9),
                    "ts": int(src["ts"]) + rnd.randint(-8000, 8000)})
    out.sort(key=lambda r: int(r["ts"]))  # type: ignore[arg-type]
    return out


PAYMENTS = _payments()
INTERVAL: list[tuple[str, str]] = [
    (f"SELECT a.symbol, a.price, b.qty FROM t a JOIN p b ON a.symbol = b.symbol WITHIN 5s {ET}",
     "SELECT a.symbol, a.price, b.qty FROM t a JOIN p b ON a.symbol = b.symbol "
     "AND b.ts BETWEEN a.ts - 5000 AND a.ts + 5000"),
    (f"SELECT a.symbol, a.price, b.qty FROM t a LEFT JOIN p b ON a.symbol = b.symbol AND "
     f"b._event_time BETWEEN a._event_time - INTERVAL '2' SECOND AND a._event_time + INTERVAL '4' SECOND {ET}",
     "SELECT a.symbol, a.price, b.qty FROM t a LEFT JOIN p b ON a.symbol = b.symbol "
     "AND b.ts BETWEEN a.ts - 2000 AND a.ts + 4000"),
    (f"SELECT a.price, b.qty FROM t a RIGHT JOIN p b ON a.symbol = b.symbol WITHIN 3s {ET}",
     "SELECT a.price, b.qty FROM t a RIGHT JOIN p b ON a.symbol = b.symbol "
     "AND b.ts BETWEEN a.ts - 3000 AND a.ts + 3000"),
    (f"SELECT a.price, b.qty FROM t a FULL JOIN p b ON a.symbol = b.symbol WITHIN 3s {ET}",
     "SELECT a.price, b.qty FROM t a FULL JOIN p b ON a.symbol = b.symbol "
     "AND b.ts BETWEEN a.ts - 3000 AND a.ts + 3000"),
    (f"SELECT a.symbol, b.qty FROM t a JOIN p b ON a.symbol = b.symbol {ET}",
     "SELECT a.symbol, b.qty FROM t a JOIN p b ON a.symbol = b.symbol"),
]


@pytest.mark.parametrize(("velo", "expected"), INTERVAL, ids=range(len(INTERVAL)))
def test_stream_stream_join(velo: str, expected: str) -> None:
    # Payments arrive up to 8 s out of step with trades: the watermark allows 10 s.
    sql = velo.replace(f"'{OOO_MS}ms'", "'20s'")
    rows, _ = run_velo(sql, [records(ROWS), records(PAYMENTS, "p")])  # type: ignore[arg-type]
    same(rows, duck({"t": ROWS, "p": PAYMENTS}).execute(expected).fetchall())  # type: ignore[dict-item]


def test_self_join_reads_the_topic_once() -> None:
    from velo.grammar.parser import parse_statement
    from velo.server.engine.compile import compile_select

    sql = f"SELECT a.price, b.price FROM t a JOIN t b ON a.symbol = b.symbol WITHIN 2s {ET}"
    q = compile_select(parse_statement(sql))
    assert len(q.inputs) == 1
    rows, _ = run_velo(sql.replace(f"'{OOO_MS}ms'", "'20s'"), [records(ROWS)])
    same(rows, duck({"t": ROWS}).execute(
        "SELECT a.price, b.price FROM t a JOIN t b ON a.symbol = b.symbol "
        "AND b.ts BETWEEN a.ts - 2000 AND a.ts + 2000").fetchall())


def test_self_join_decodes_each_record_once() -> None:
    from velo.grammar.parser import parse_statement
    from velo.server.connectors.base import Record
    from velo.server.engine.compile import compile_select

    # Both sides decode alike: one scan makes the left and the right row of each record; a record
    # that cannot be decoded is one error (not one per side) and joins on neither side.
    sql = f"SELECT a.price, b.qty FROM t a LEFT JOIN t b ON a.symbol = b.side WITHIN 2s {ET}"
    q = compile_select(parse_statement(sql))
    assert "def scan_both" in q.source_code
    batch = records(ORDERED[:30])
    batch.insert(10, Record(b"{not json", offset=999, topic="t"))
    out = q.processor("rows").process(batch)
    assert [m.offset for m, _ in out.errors or []] == [999]
    rows, _ = run_velo(sql.replace(f"'{OOO_MS}ms'", "'20s'"), [records(ROWS)])
    same(rows, duck({"t": ROWS}).execute(
        "SELECT a.price, b.qty FROM t a LEFT JOIN t b ON a.symbol = b.side "
        "AND b.ts BETWEEN a.ts - 2000 AND a.ts + 2000").fetchall())


def test_query_count() -> None:
    """At least 60 distinct Velo queries are compared with DuckDB, counted from the tests that run them.

    A case counts only if a test of this module is parametrized with it (a list no test uses counts
    nothing), once per distinct Velo text as run (an EMIT mode makes another query; a repeated query
    counts once), and only if it compiles.
    """
    from velo.grammar.parser import parse_statement
    from velo.server.engine.compile import compile_select

    run: dict[str, str] = {}  # the Velo text as run -> the test that runs it
    tests = {name: fn for name, fn in globals().items() if name.startswith("test_") and callable(fn)}
    for name, fn in tests.items():
        marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
        cases = [m.args[1] for m in marks if m.args[0] == ("velo", "expected")]
        emits = [list(m.args[1]) for m in marks if m.args[0] == "emit"] or [[None]]
        for velo, expected in (c for case in cases for c in case):
            assert isinstance(velo, str) and (expected is None or isinstance(expected, str)), name
            for emit in emits[0]:
                text = velo if emit is None else f"{velo} EMIT {emit} {ET}"
                run.setdefault(text, name)
    families = set(run.values())
    assert {"test_filter_project", "test_aggregates", "test_windows_in_both_emit_modes", "test_over",
            "test_stream_table_join", "test_stream_stream_join"} <= families
    # Every case is a query Velo accepts (file tables need their file: the stream–table cases' own fixture).
    for text, name in run.items():
        if name not in ("test_stream_table_join", "test_filters_pushed_into_the_stream_scan"):
            stmt = parse_statement(text)
            assert isinstance(stmt, ast.Select), text
            compile_select(stmt)
    assert len(run) >= 60, f"only {len(run)} distinct queries are compared with DuckDB"


def test_stream_joined_with_two_tables(data_dir: Path) -> None:
    (data_dir / "desks.csv").write_text("sector,desk\ntech,T1\nauto,A9\n")
    sql = ("SELECT t.symbol, r.sector, d.desk FROM t JOIN instruments r ON t.symbol = r.symbol "
           "LEFT JOIN desks d ON r.sector = d.sector WHERE t.qty > 10 "
           "WITH ('instruments.type' = 'file_source', 'instruments.path' = 'instruments.csv', "
           "'instruments.format' = 'csv', 'desks.type' = 'file_source', 'desks.path' = 'desks.csv', "
           "'desks.format' = 'csv')")
    rows, _ = run_velo(sql, [records(ROWS)], data_dir=data_dir)
    desks = [{"sector": "tech", "desk": "T1"}, {"sector": "auto", "desk": "A9"}]
    same(rows, duck({"t": ROWS, "instruments": INSTRUMENTS, "desks": desks}).execute(
        "SELECT t.symbol, r.sector, d.desk FROM t JOIN instruments r ON t.symbol = r.symbol "
        "LEFT JOIN desks d ON r.sector = d.sector WHERE t.qty > 10").fetchall())


def test_over_after_a_stream_table_join(data_dir: Path) -> None:
    sql = (f"SELECT t.symbol, r.sector, LAG(t.price) OVER (PARTITION BY r.sector ORDER BY t.ts) AS p, "
           f"COUNT(*) OVER (PARTITION BY r.sector ORDER BY t.ts ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) "
           f"AS n FROM t LEFT JOIN instruments r ON t.symbol = r.symbol {TABLE}")
    rows, _ = run_velo(sql, [records(ORDERED)], data_dir=data_dir)
    same(rows, duck({"t": ORDERED, "instruments": INSTRUMENTS}).execute(
        "SELECT t.symbol, r.sector, LAG(t.price) OVER (PARTITION BY r.sector ORDER BY t.ts), "
        "COUNT(*) OVER (PARTITION BY r.sector ORDER BY t.ts ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) "
        "FROM t LEFT JOIN instruments r ON t.symbol = r.symbol").fetchall())
