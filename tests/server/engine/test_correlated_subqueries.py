"""Correlated EXISTS / NOT EXISTS / IN / NOT IN as semi-joins against tables, in memory.

A correlated subquery compiles to a keyed lookup (operators/tables.CorrelatedSubquery): the table's
rows that pass the subquery's own conditions, grouped by their side of the correlation equalities,
looked up with the outer row's side. Results are compared with DuckDB (differential.py) over a file
table and over a topic table fed through the Processor contract — the table's records first, as the
merged source reads a table to its end before the stream. test_correlated_subqueries_kafka.py runs
the same through the broker.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from velo.grammar.errors import SqlValidationError
from velo.server.connectors.base import Record
from velo.server.engine.compiler.model import CompiledQuery
from velo.server.engine.operators.tables import CorrelatedSubquery
from velo.server.engine.processor import Processor

from .differential import duck, make_rows, records, run_velo, same
from .tables import compile_with, final

ROWS = make_rows(300, seed=33)
# The limits table as written: per symbol several rows (a duplicate value, a NULL value, an inactive
# row), a row with a NULL symbol (it can equal no trade), and, before the final rows, older versions,
# a row that moves from one symbol to another, and deleted rows.
LIMIT_WRITES: list[tuple[str, dict[str, Any] | None]] = [
    ("l1", {"id": "l1", "symbol": "AAPL", "side": "BUY", "lot": 1, "active": True}),
    ("l2", {"id": "l2", "symbol": "AMZN", "side": "SELL", "lot": 2, "active": True}),
    ("l3", {"id": "l3", "symbol": "AAPL", "side": None, "lot": None, "active": False}),
    ("l4", {"id": "l4", "symbol": "MSFT", "side": "BUY", "lot": 3, "active": True}),
    ("l5", {"id": "l5", "symbol": "MSFT", "side": "BUY", "lot": 1, "active": True}),
    ("l6", {"id": "l6", "symbol": "GOOG", "side": "SELL", "lot": 2, "active": False}),
    ("l7", {"id": "l7", "symbol": None, "side": "BUY", "lot": 0, "active": True}),
    ("l8", {"id": "l8", "symbol": "TSLA", "side": None, "lot": 0, "active": True}),
    ("l9", {"id": "l9", "symbol": "AAPL", "side": "BUY", "lot": 1, "active": True}),
    ("l2", {"id": "l2", "symbol": "AAPL", "side": "SELL", "lot": 2, "active": True}),  # AMZN → AAPL
    ("l10", {"id": "l10", "symbol": "AMZN", "side": "BUY", "lot": 3, "active": True}),
    ("l10", None),
    ("l4", {"id": "l4", "symbol": "MSFT", "side": "BUY", "lot": None, "active": True}),  # a NULL value now
    ("l11", {"id": "l11", "symbol": "GOOG", "side": "BUY", "lot": 3, "active": True}),
    ("l11", None),
]
CATALOG = [
    "CREATE STREAM t (symbol STRING, price DOUBLE, qty BIGINT, side STRING, ts BIGINT) WITH (KAFKA_TOPIC='t')",
    "CREATE TABLE lim (id STRING PRIMARY KEY, symbol STRING, side STRING, lot BIGINT, active BOOLEAN) "
    "WITH (KAFKA_TOPIC='lim')",
]
FILE = "WITH ('lim.type' = 'file_source', 'lim.path' = 'limits.jsonl', 'lim.format' = 'json')"
# Each runs over the topic table ``lim`` of the catalog and, with FILE, over the file of the same rows.
QUERIES = {
    "exists": "SELECT symbol, price FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE w.symbol = t.symbol AND w.active)",
    "not_exists": "SELECT symbol, qty FROM t WHERE NOT EXISTS (SELECT * FROM lim w WHERE w.symbol = t.symbol "
                  "AND w.active)",
    "in": "SELECT symbol, qty FROM t WHERE t.qty % 4 IN (SELECT w.lot FROM lim w WHERE w.symbol = t.symbol)",
    "not_in": "SELECT symbol, qty FROM t WHERE t.qty % 4 NOT IN (SELECT w.lot FROM lim w WHERE w.symbol = t.symbol)",
    "two_keys": "SELECT symbol, side, qty FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE t.symbol = w.symbol "
                "AND w.side = t.side)",
    "not_in_or": "SELECT symbol, qty, price FROM t WHERE qty % 4 NOT IN (SELECT lot FROM lim w "
                 "WHERE w.symbol = t.symbol AND w.active) OR price > 150",
    "values": "SELECT symbol, qty, qty % 4 IN (SELECT w.lot FROM lim w WHERE w.symbol = t.symbol) AS i, "
              "qty % 4 NOT IN (SELECT w.lot FROM lim w WHERE w.symbol = t.symbol AND w.lot > 1) AS ni, "
              "EXISTS (SELECT 1 FROM lim w WHERE w.lot = t.qty % 4 AND t.price > 50) AS e, "
              "NOT EXISTS (SELECT 1 FROM lim w WHERE w.symbol = t.symbol AND w.side = 'SELL') AS ne FROM t",
    "aggregated": "SELECT side, COUNT(*) AS c, SUM(qty) AS q FROM t WHERE NOT EXISTS (SELECT 1 FROM lim w "
                  "WHERE w.symbol = t.symbol AND w.lot IS NOT NULL) GROUP BY side",
}


LIMITS = final(LIMIT_WRITES)


def _compile(sql: str, data_dir: Path | None = None) -> CompiledQuery:
    return compile_with(CATALOG, sql, data_dir)


def table_records(writes: list[tuple[str, dict[str, Any] | None]]) -> list[Record]:
    return [Record(None if v is None else orjson.dumps(v), key=k.encode(), offset=i, topic="lim")
            for i, (k, v) in enumerate(writes)]


def feed_tables(q: CompiledQuery, p: Processor, recs: list[Record]) -> None:
    """``recs`` to every input of ``q`` that reads the table topic (one per subquery over it)."""
    for index, spec in enumerate(q.inputs):
        if spec.topic == "lim":
            out = p.process(recs, index)
            assert not out.rows and not out.errors, out


def run_live(sql: str, batch: int = 7) -> list[list[Any]]:
    """``sql`` over the topic table: its records first, then the stream in batches; final rows."""
    q = _compile(sql)
    p = q.processor("rows")
    feed_tables(q, p, table_records(LIMIT_WRITES))
    events = []
    stream = records(ROWS)
    for i in range(0, len(stream), batch):
        out = p.process(stream[i : i + batch], 0)
        assert not out.errors, out.errors[:3]
        events += out.rows
    events += p.finish().rows
    final_rows: dict[Any, list[Any]] = {}
    inserts = []
    for e in events:
        if e.op == "insert":
            inserts.append(e.values)
        elif e.op == "upsert":
            final_rows[repr(e.key)] = e.values
        else:
            final_rows.pop(repr(e.key), None)
    return inserts + list(final_rows.values())


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "limits.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in LIMITS))
    return tmp_path


def _checked(name: str, rows: list[list[Any]]) -> list[list[Any]]:
    assert rows, name
    if name not in ("values", "aggregated"):
        assert len(rows) < len(ROWS), f"{name} filters nothing"
    return rows


@pytest.mark.parametrize("name", list(QUERIES))
def test_over_a_file_table_matches_duckdb(name: str, data_dir: Path) -> None:
    sql = QUERIES[name]
    rows, _ = run_velo(f"{sql} {FILE}", [records(ROWS)], data_dir=data_dir)
    same(_checked(name, rows), duck({"t": ROWS, "lim": LIMITS}).execute(sql).fetchall())


@pytest.mark.parametrize("name", list(QUERIES))
def test_over_a_topic_table_matches_duckdb(name: str) -> None:
    sql = QUERIES[name]
    same(_checked(name, run_live(sql)), duck({"t": ROWS, "lim": LIMITS}).execute(sql).fetchall())


def test_a_correlated_subquery_groups_rows_by_key_and_rekeys() -> None:
    s = CorrelatedSubquery()
    s.apply([(b"1", "A", [10]), (b"2", "A", [10]), (b"3", "A", [None]), (b"4", "B", [20])])
    assert set(s.groups) == {"A", "B"} and s.groups["A"].values == {10: 2} and s.groups["A"].has_null
    assert len(s) == 4
    s.apply([(b"2", "B", [10]), (b"3", None, None)])  # a row moves to B; one whose key went NULL leaves
    assert s.groups["A"].values == {10: 1} and not s.groups["A"].has_null
    assert s.groups["B"].values == {20: 1, 10: 1}
    s.apply([(b"1", None, None), (b"4", "B", [21])])  # a tombstone empties A, which goes; an update in place
    assert set(s.groups) == {"B"} and s.groups["B"].values == {21: 1, 10: 1} and len(s) == 2
    s.clear()
    assert not s.groups and len(s) == 0


def trades(p: Processor, *rows: tuple[str | None, int | None]) -> list[list[Any]]:
    out = p.process([Record(orjson.dumps({"symbol": s, "qty": q, "ts": 0})) for s, q in rows], 0)
    assert not out.errors, out.errors
    return [e.values for e in out.rows]


def test_topic_table_changes_reach_later_records_only() -> None:
    q = _compile("SELECT symbol, qty FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE w.symbol = t.symbol "
                 "AND w.active) AND qty NOT IN (SELECT w.lot FROM lim w WHERE w.symbol = t.symbol)")
    p = q.processor("rows")

    def write(*writes: tuple[str, dict[str, Any] | None]) -> None:
        feed_tables(q, p, table_records(list(writes)))

    write(("a", {"symbol": "AAPL", "lot": 1, "active": True}), ("m", {"symbol": "MSFT", "lot": 2, "active": True}))
    batch = (("AAPL", 1), ("AAPL", 2), ("MSFT", 1), ("TSLA", 1), (None, 1))
    assert trades(p, *batch) == [["AAPL", 2], ["MSFT", 1]]
    # AAPL's row moves to TSLA, MSFT turns inactive, a NULL lot joins TSLA: NOT IN is NULL for a miss there.
    write(("a", {"symbol": "TSLA", "lot": 1, "active": True}), ("m", {"symbol": "MSFT", "lot": 2, "active": False}))
    assert trades(p, *batch, ("TSLA", 2)) == [["TSLA", 2]]  # TSLA's only row holds 1: NOT IN is false for 1
    write(("n", {"symbol": "TSLA", "lot": None, "active": False}))
    assert trades(p, ("TSLA", 3), ("TSLA", 1)) == []  # the NULL makes a miss NULL
    write(("n", None), ("a", None), ("x", {"symbol": "AAPL", "lot": 5, "active": True}))
    assert trades(p, *batch) == [["AAPL", 1], ["AAPL", 2]]


def test_explain_shows_the_semi_join(data_dir: Path) -> None:
    live = _compile("SELECT symbol FROM t WHERE t.qty NOT IN (SELECT w.lot FROM lim w WHERE w.symbol = t.symbol "
                    "AND w.active AND t.price > 1)").explain()
    assert ("Semi-join NOT IN (w.lot): table lim w looked up by w.symbol = t.symbol when t.price > 1, its rows "
            "where w.active (kafka topic 'lim', kept up to date)") in live
    assert "Subquery table w: kafka topic 'lim' (input 1)" in live
    file = _compile(f"SELECT symbol FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE w.symbol = t.symbol "
                    f"AND w.side = t.side) {FILE}", data_dir).explain()
    assert re.search(r"Semi-join EXISTS: table lim w looked up by w\.symbol = t\.symbol AND w\.side = t\.side "
                     r"\(file '.*limits\.jsonl', read at deploy\)", file)


def test_a_file_table_is_loaded_once_at_deploy(data_dir: Path) -> None:
    q = _compile(f"SELECT symbol FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE w.symbol = t.symbol) {FILE}",
                 data_dir)
    (data_dir / "limits.jsonl").write_text("")  # read already: later processors see the rows of deploy
    assert [i.topic for i in q.inputs] == ["t"]
    assert trades(q.processor("rows"), ("AAPL", 1), ("AMZN", 1)) == [["AAPL"]]


@pytest.mark.parametrize(("sql", "message", "at"), [
    ("SELECT symbol FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE w.lot > t.qty)",
     "a correlated subquery's WHERE can only correlate by equalities", "w.lot > t.qty"),
    ("SELECT symbol FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE w.symbol = t.symbol OR w.active)",
     "a correlated subquery's WHERE can only correlate by equalities", "w.symbol = t.symbol OR"),
    ("SELECT symbol FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE w.lot = t.qty + w.lot)",
     "a correlated subquery's WHERE can only correlate by equalities", "w.lot = t.qty +"),
    ("SELECT symbol FROM t WHERE qty IN (SELECT w.lot + t.qty FROM lim w WHERE w.symbol = t.symbol)",
     "a correlated subquery's select list can only use its own table's columns", "t.qty FROM"),
    ("SELECT symbol FROM t WHERE qty IN (SELECT MAX(w.lot) FROM lim w WHERE w.symbol = t.symbol)",
     "a correlated subquery cannot use MAX", "MAX("),
    ("SELECT symbol FROM t WHERE EXISTS (SELECT w.side FROM lim w WHERE w.symbol = t.symbol GROUP BY w.side)",
     "a correlated subquery is SELECT … FROM table WHERE …: no JOIN, GROUP BY", "SELECT w.side"),
    ("SELECT symbol FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE w.symbol = t.symbol "
     "AND w.side IN (SELECT side FROM lim))",
     "a correlated subquery cannot contain a subquery", "w.side IN"),
    ("SELECT symbol FROM t WHERE symbol IN (SELECT w.symbol FROM lim w WHERE EXISTS "
     "(SELECT 1 FROM lim v WHERE v.id = w.id))",
     "a correlated subquery cannot be nested in another subquery", "w.id))"),
    ("SELECT symbol FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE w.symbol = x.symbol)",
     "unknown relation 'x' (known: t)", "x.symbol"),
    ("SELECT symbol FROM t WHERE EXISTS (SELECT 1 FROM t u WHERE u.symbol = t.symbol)",
     "a subquery must read a table", "t u WHERE"),
])
def test_other_correlated_subqueries_are_errors(sql: str, message: str, at: str) -> None:
    with pytest.raises(SqlValidationError) as exc:
        _compile(sql)
    assert exc.value.message.startswith(message), exc.value.message
    assert (exc.value.line, exc.value.column) == (1, sql.index(at) + 1)


def test_a_nested_correlated_subquery_under_a_file_subquery_is_an_error(data_dir: Path) -> None:
    sql = (f"SELECT symbol FROM t WHERE symbol IN (SELECT w.symbol FROM lim w WHERE EXISTS "
           f"(SELECT 1 FROM lim v WHERE v.id = w.id)) {FILE}")
    with pytest.raises(SqlValidationError, match="cannot be nested in another subquery"):
        _compile(sql, data_dir)


def test_an_unqualified_column_the_table_lacks_is_the_outer_querys() -> None:
    q = _compile("SELECT symbol, qty FROM t WHERE EXISTS (SELECT * FROM lim WHERE lot = qty AND symbol = 'AAPL')")
    assert "Semi-join EXISTS: table lim looked up by lot = qty, its rows where symbol = 'AAPL'" in q.explain()
    p = q.processor("rows")
    feed_tables(q, p, table_records([("a", {"symbol": "AAPL", "lot": 1}), ("b", {"symbol": "MSFT", "lot": 2})]))
    assert trades(p, ("X", 1), ("Y", 2), ("Z", None)) == [["X", 1]]


def test_the_outer_side_may_read_system_columns_and_joined_tables() -> None:
    q = _compile("SELECT symbol FROM t WHERE EXISTS (SELECT 1 FROM lim w WHERE w.lot = t._event_time)")
    p = q.processor("rows")
    feed_tables(q, p, table_records([("a", {"symbol": "AAPL", "lot": 5})]))
    out = p.process([Record(orjson.dumps({"symbol": s}), timestamp=ts) for s, ts in (("X", 5), ("Y", 6))], 0)
    assert not out.errors and [e.values for e in out.rows] == [["X"]]
    # After a stream–table join: the outer side is the joined table's column.
    q = _compile("SELECT t.symbol, r.side FROM t JOIN lim r ON t.symbol = r.id "
                 "WHERE EXISTS (SELECT 1 FROM lim w WHERE w.symbol = r.side)")
    assert [i.topic for i in q.inputs] == ["t", "lim", "lim"]
    p = q.processor("rows")
    feed_tables(q, p, table_records([("A", {"side": "B"}), ("B", {"symbol": "B", "side": "Z"})]))
    assert trades(p, ("A", 1), ("B", 1)) == [["A", "B"]]
