"""Tables from Kafka topics, in memory: table state, chained joins and live IN / EXISTS subqueries.

The queries are fed through the Processor contract, table records at their input index (as the
merged source tags them); the broker tests (test_topic_tables_kafka.py) check the same against
DuckDB through Kafka.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from velo.grammar.errors import SqlValidationError
from velo.server.connectors.base import Record
from velo.server.engine.compiler.model import CompiledQuery
from velo.server.engine.operators.tables import KeyedTable, LiveSubquery
from velo.server.engine.processor import Processor

from .tables import compile_with

CATALOG = [
    "CREATE STREAM trades (symbol STRING, qty BIGINT, ts BIGINT) WITH (KAFKA_TOPIC='trades')",
    "CREATE TABLE inst (symbol STRING PRIMARY KEY, sector STRING, lot BIGINT) WITH (KAFKA_TOPIC='inst')",
    "CREATE TABLE desks (sector STRING PRIMARY KEY, desk STRING) WITH (KAFKA_TOPIC='desks')",
]


def _compile(sql: str, data_dir: Path | None = None) -> CompiledQuery:
    return compile_with(CATALOG, sql, data_dir)


def rec(value: dict[str, Any] | None, key: str | None = None, offset: int = 0) -> Record:
    return Record(None if value is None else orjson.dumps(value), key=None if key is None else key.encode(),
                  offset=offset)


def trades(p: Processor, *symbols: str) -> list[list[Any]]:
    out = p.process([rec({"symbol": s, "qty": i, "ts": i}) for i, s in enumerate(symbols)], 0)
    assert not out.errors, out.errors
    return [e.values for e in out.rows]


def feed(p: Processor, index: int, *records: Record) -> None:
    out = p.process(list(records), index)
    assert not out.rows and not out.errors, out


class _M:
    def __init__(self, key: bytes | None) -> None:
        self.key = key


def test_a_keyed_table_keeps_the_latest_row_per_message_key() -> None:
    t = KeyedTable()
    t.apply([({"s": "tech"}, 0, 0, ("AAPL",), _M(b"A")), ({"s": "auto"}, 0, 0, ("TSLA",), _M(b"T"))])
    t.apply([({"s": "tech2"}, 0, 0, ("AAPL2",), _M(b"A"))])  # the key's join key changed: the old one goes
    assert t.rows == {("TSLA",): {"s": "auto"}, ("AAPL2",): {"s": "tech2"}}
    t.apply([(None, 0, 0, None, _M(b"T"))])  # a tombstone
    assert t.rows == {("AAPL2",): {"s": "tech2"}}
    t.apply([({"s": "x"}, 0, 0, None, _M(b"A"))])  # a row no key matches still replaces the key's row
    assert t.rows == {} and len(t) == 0


def test_message_keys_sharing_a_join_key_uncover_each_other() -> None:
    t = KeyedTable()
    t.apply([({"v": 1}, 0, 0, ("k",), _M(b"a")), ({"v": 2}, 0, 0, ("k",), _M(b"b"))])
    assert t.rows[("k",)] == {"v": 2}
    t.apply([(None, 0, 0, None, _M(b"b"))])
    assert t.rows[("k",)] == {"v": 1}
    t.apply([({"v": 3}, 0, 0, ("k",), _M(None))])  # unkeyed (a file row): replaces by join key
    t.apply([({"v": 4}, 0, 0, ("k",), _M(None))])
    assert t.rows[("k",)] == {"v": 4} and len(t) == 2


def test_a_live_subquery_keeps_a_multiset_of_values() -> None:
    s = LiveSubquery()
    s.apply([(b"a", ["x"]), (b"b", ["x"]), (b"c", [None])])
    assert "x" in s.values and s.has_null and len(s) == 3
    s.apply([(b"a", None), (b"c", ["y"])])
    assert s.values == {"x": 1, "y": 1} and not s.has_null
    s.apply([(b"b", None), (b"c", None)])
    assert not s.values and not s.rows


def test_chained_joins_with_topic_tables_follow_table_updates() -> None:
    q = _compile("SELECT t.symbol, r.sector, d.desk FROM trades t JOIN inst r ON t.symbol = r.symbol "
                 "LEFT JOIN desks d ON r.sector = d.sector")
    assert [(i.topic, i.role) for i in q.inputs] == [("trades", "stream"), ("inst", "table"), ("desks", "table")]
    assert "Joined table d: kafka topic 'desks' (input 2)" in q.explain()
    p = q.processor("rows")
    feed(p, 1, rec({"sector": "tech"}, "AAPL"), rec({"sector": "auto"}, "TSLA"), rec({"sector": "tech"}, "MSFT"))
    feed(p, 2, rec({"desk": "T1"}, "tech"), rec({"desk": "A1"}, "auto"))
    assert trades(p, "AAPL", "TSLA", "XOM") == [["AAPL", "tech", "T1"], ["TSLA", "auto", "A1"]]
    feed(p, 2, rec({"desk": "T2"}, "tech"), rec(None, "auto"))  # an update and a tombstone
    feed(p, 1, rec(None, "MSFT"), rec({"sector": "energy"}, "XOM"))
    assert trades(p, "AAPL", "TSLA", "MSFT", "XOM") == [["AAPL", "tech", "T2"], ["TSLA", "auto", None],
                                                       ["XOM", "energy", None]]


def test_a_topic_table_after_a_file_table_gets_its_own_input(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_text("symbol,sector\nAAPL,tech\nTSLA,auto\n")
    q = _compile("SELECT t.symbol, r.sector, d.desk FROM trades t LEFT JOIN ref r ON t.symbol = r.symbol "
                 "JOIN desks d ON r.sector = d.sector "
                 "WITH ('ref.type' = 'file_source', 'ref.path' = 'ref.csv', 'ref.format' = 'csv')", tmp_path)
    assert [i.topic for i in q.inputs] == ["trades", "desks"]
    p = q.processor("rows")
    feed(p, 1, rec({"desk": "T1"}, "tech"))
    assert trades(p, "AAPL", "TSLA") == [["AAPL", "tech", "T1"]]


def test_a_stream_stream_join_then_a_topic_table() -> None:
    q = _compile("SELECT a.symbol, b.qty, r.sector FROM trades a JOIN trades b ON a.symbol = b.symbol "
                 "WITHIN 1s LEFT JOIN inst r ON a.symbol = r.symbol WITH ('watermark.idle_timeout' = '0s')")
    assert [i.topic for i in q.inputs] == ["trades", "inst"]  # a self-join reads the topic once
    p = q.processor("rows")
    feed(p, 1, rec({"sector": "tech"}, "AAPL"))
    assert trades(p, "AAPL", "XOM") == [["AAPL", 0, "tech"], ["XOM", 1, None]]


def test_the_first_table_join_deletes_on_a_tombstone() -> None:
    p = _compile("SELECT t.symbol, r.sector FROM trades t LEFT JOIN inst r ON t.symbol = r.symbol").processor("rows")
    feed(p, 1, rec({"sector": "tech"}, "AAPL"))
    assert trades(p, "AAPL") == [["AAPL", "tech"]]
    feed(p, 1, rec(None, "AAPL"))
    assert trades(p, "AAPL") == [["AAPL", None]]


def test_in_and_exists_over_a_topic_table_are_live() -> None:
    q = _compile("SELECT symbol FROM trades WHERE symbol IN (SELECT symbol FROM inst WHERE sector = 'tech') "
                 "AND NOT EXISTS (SELECT * FROM desks WHERE desk = 'halt')")
    assert [i.topic for i in q.inputs] == ["trades", "inst", "desks"]
    p = q.processor("rows")
    feed(p, 1, rec({"sector": "tech"}, "AAPL"), rec({"sector": "tech"}, "MSFT"), rec({"sector": "auto"}, "TSLA"))
    assert trades(p, "AAPL", "MSFT", "TSLA") == [["AAPL"], ["MSFT"]]
    # A row the WHERE now rejects leaves the set; a tombstone too; a new row joins it.
    feed(p, 1, rec({"sector": "auto"}, "AAPL"), rec(None, "MSFT"), rec({"sector": "tech"}, "TSLA"))
    assert trades(p, "AAPL", "MSFT", "TSLA") == [["TSLA"]]
    feed(p, 2, rec({"desk": "halt"}, "x"))
    assert trades(p, "TSLA") == []
    feed(p, 2, rec({"desk": "open"}, "x"))
    assert trades(p, "TSLA") == [["TSLA"]]


def test_not_in_a_topic_table_with_a_null_follows_sql() -> None:
    p = _compile("SELECT symbol, qty FROM trades WHERE qty NOT IN (SELECT lot FROM inst)").processor("rows")
    assert trades(p, "A", "B") == [["A", 0], ["B", 1]]  # an empty set: NOT IN is true
    feed(p, 1, rec({"lot": 1}, "X"))
    assert trades(p, "A", "B") == [["A", 0]]
    feed(p, 1, rec({"lot": None}, "Y"))  # NULL in the set: NOT IN is never true
    assert trades(p, "A", "B") == []
    feed(p, 1, rec(None, "Y"))
    assert trades(p, "A", "B") == [["A", 0]]


def test_every_processor_reads_its_tables_afresh() -> None:
    q = _compile("SELECT symbol FROM trades WHERE symbol IN (SELECT symbol FROM inst)")
    first = q.processor("rows")
    feed(first, 1, rec({"sector": "tech"}, "AAPL"))
    assert trades(first, "AAPL") == [["AAPL"]]
    assert trades(q.processor("rows"), "AAPL") == []


def test_a_bad_table_record_is_a_record_error() -> None:
    p = _compile("SELECT symbol FROM trades WHERE symbol IN (SELECT symbol FROM inst)").processor("rows")
    out = p.process([Record(b"{not json", key=b"A")], 1)
    assert out.errors and not out.rows


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT symbol FROM trades t WHERE EXISTS (SELECT * FROM inst i WHERE i.lot < t.qty)",
     "a correlated subquery's WHERE can only correlate by equalities"),
    ("SELECT symbol FROM trades WHERE EXISTS (SELECT lot FROM inst WHERE lot = qty GROUP BY lot)",
     "a correlated subquery is SELECT … FROM table WHERE …: no JOIN, GROUP BY"),
    ("SELECT symbol FROM trades WHERE symbol IN (SELECT symbol FROM trades)",
     "a subquery must read a table"),
    ("SELECT symbol FROM trades WHERE symbol IN (SELECT sector FROM inst GROUP BY sector)",
     "a subquery over a Kafka table is SELECT … FROM table [WHERE …]"),
    ("SELECT t.symbol FROM trades t JOIN inst r ON t.symbol = r.symbol JOIN trades u ON t.symbol = u.symbol",
     "a second or later JOIN must be a table"),
])
def test_unsupported_subqueries_and_joins_are_errors(sql: str, message: str) -> None:
    with pytest.raises(SqlValidationError, match=message.replace("[", r"\[").replace("…", ".")):
        _compile(sql)
