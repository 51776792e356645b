"""ksqlDB's expression-level forms through the engine (compiled, run over in-memory records), each
checked against DuckDB where DuckDB has the same operation: implicit select aliases, ``s->f``
struct access, ``LIKE … ESCAPE``, negative array indexes, ``ROWTIME``/``ROWPARTITION``/``ROWOFFSET``,
``WITHIN n unit GRACE PERIOD g`` and ``WITHIN (before, after)`` on stream–stream joins; and the
query shapes the engine refuses (yet) with a positioned error rather than a crash.
"""

from __future__ import annotations

from typing import Any

import duckdb
import orjson
import pytest
from velo.grammar import parse_statement
from velo.grammar.errors import SqlValidationError
from velo.server.connectors.base import Record
from velo.server.engine.compile import compile_select

from .differential import OOO_MS, duck, make_rows, records, run_velo, same

ROWS = make_rows(120, seed=5)
ET = (f"WITH ('event.time.field' = 'ts', 'watermark.max_out_of_orderness' = '{OOO_MS}ms', "
      "'watermark.idle_timeout' = '0s')")


def _compile(sql: str) -> Any:
    return compile_select(parse_statement(sql))  # type: ignore[arg-type]


def _rows(sql: str, recs: list[Record]) -> list[list[Any]]:
    out = _compile(sql).processor("rows").process(recs)
    assert not out.errors, out.errors
    return [e.values for e in out.rows]


def test_implicit_aliases_name_the_columns_and_match_duckdb() -> None:
    sql = "SELECT ABS(qty) q, t1.symbol name1, price * 2 p2 FROM t t1 WHERE qty > 10"
    query = _compile(sql)
    assert [c.name for c in query.plan.columns] == ["q", "name1", "p2"]
    rows, _ = run_velo(sql, [records(ROWS)])
    same(rows, duck({"t": ROWS}).execute(sql).fetchall())  # type: ignore[dict-item]


STRUCTS = [
    {"id": 1, "s": {"name": "a", "nested": {"c": 10}}},
    {"id": 2, "s": {"name": None, "nested": {"c": None}}},
    {"id": 3, "s": {"name": "c", "nested": None}},
    {"id": 4, "s": None},
]


def test_arrow_reads_struct_fields_like_dot_and_duckdb() -> None:
    recs = [Record(orjson.dumps(r), offset=i) for i, r in enumerate(STRUCTS)]
    arrow = _rows("SELECT id, s->name, s->nested->c FROM t", recs)
    dotted = _rows("SELECT id, (s).name, ((s).nested).c FROM t", recs)
    assert arrow == dotted == [[1, "a", 10], [2, None, None], [3, "c", None], [4, None, None]]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id BIGINT, s STRUCT(name VARCHAR, nested STRUCT(c BIGINT)))")
    con.executemany("INSERT INTO t VALUES (?, ?)", [[r["id"], r["s"]] for r in STRUCTS])
    same(arrow, con.execute("SELECT id, s.name, s.nested.c FROM t").fetchall())


WORDS = ["a%b", "a_b", "axb", "ab", "a!b", "100%", "100", "_x", "x_", None, "a%%b", "%"]
LIKES = [
    "w LIKE 'a!%b' ESCAPE '!'",
    "w LIKE 'a!_b' ESCAPE '!'",
    "w NOT LIKE 'a!_b' ESCAPE '!'",
    "w LIKE '%!%' ESCAPE '!'",
    "w LIKE 'a!!b' ESCAPE '!'",
    "w LIKE '!_%' ESCAPE '!'",
    "w LIKE 'a#%#%b' ESCAPE '#'",
    "w LIKE 'a_b'",
    "w LIKE p ESCAPE '!'",  # a pattern from the row: escaped at run time
]


@pytest.mark.parametrize("predicate", LIKES)
def test_like_escape_matches_duckdb(predicate: str) -> None:
    data = [{"w": w, "p": p} for w in WORDS for p in ("a!%b", "%!_", None)]
    recs = [Record(orjson.dumps(r), offset=i) for i, r in enumerate(data)]
    got = _rows(f"SELECT w, p, {predicate} AS m FROM t", recs)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (w VARCHAR, p VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [[r["w"], r["p"]] for r in data])
    same(got, con.execute(f"SELECT w, p, {predicate} AS m FROM t").fetchall())


ARRAYS = [{"id": i, "xs": xs} for i, xs in enumerate([[1, 2, 3], [7], [], None, [4, None, 6]])]


def test_negative_array_indexes_count_from_the_end_as_in_duckdb() -> None:
    items = "id, xs[1] AS a1, xs[-1] AS last, xs[-2] AS m2, xs[-3] AS m3, xs[-4] AS m4, xs[0] AS z, xs[4] AS a4"
    recs = [Record(orjson.dumps(r), offset=i) for i, r in enumerate(ARRAYS)]
    got = _rows(f"SELECT {items} FROM t", recs)
    assert got[0] == [0, 1, 3, 2, 1, None, None, None]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id BIGINT, xs BIGINT[])")
    con.executemany("INSERT INTO t VALUES (?, ?)", [[r["id"], r["xs"]] for r in ARRAYS])
    same(got, con.execute(f"SELECT {items} FROM t").fetchall())


def test_rowtime_rowpartition_rowoffset_are_the_record_s_system_columns() -> None:
    recs = [Record(orjson.dumps({"v": i}), timestamp=1_000 + i, partition=i % 3, offset=40 + i) for i in range(6)]
    query = _compile("SELECT v, ROWTIME, rowpartition p, RowOffset, ROWTIME + 1 AS later FROM t WHERE ROWOFFSET > 41")
    assert [c.name for c in query.plan.columns] == ["v", "rowtime", "p", "rowoffset", "later"]
    got = _rows("SELECT v, ROWTIME, rowpartition p, RowOffset, ROWTIME + 1 AS later FROM t WHERE ROWOFFSET > 41",
                recs)
    assert got == [[i, 1_000 + i, i % 3, 40 + i, 1_001 + i] for i in range(2, 6)]
    assert got == _rows("SELECT v, _timestamp AS rowtime, _partition AS p, _offset AS rowoffset, "
                        "_timestamp + 1 AS later FROM t WHERE _offset > 41", recs)


def _payments() -> list[dict[str, Any]]:
    import random

    rnd = random.Random(9)
    out = [{"symbol": rnd.choice(["AAPL", "MSFT", "GOOG"]), "qty": rnd.randint(1, 9),
            "ts": r["ts"] + rnd.randint(-70_000, 70_000)} for r in ROWS[::2]]
    out.sort(key=lambda r: int(r["ts"]))
    return out


PAYMENTS = _payments()
JOINS = [
    # ksqlDB's WITHIN before ON, with a GRACE PERIOD: it runs (the interval join takes the grace)
    ("SELECT a.symbol, a.price, b.qty FROM t a JOIN p b WITHIN 1 MINUTE GRACE PERIOD 1 MINUTE "
     "ON a.symbol = b.symbol",
     "SELECT a.symbol, a.price, b.qty FROM t a JOIN p b ON a.symbol = b.symbol "
     "AND b.ts BETWEEN a.ts - 60000 AND a.ts + 60000"),
    ("SELECT a.symbol, a.price, b.qty FROM t a LEFT JOIN p b ON a.symbol = b.symbol "
     "WITHIN 30 SECONDS GRACE PERIOD 2 MINUTES",
     "SELECT a.symbol, a.price, b.qty FROM t a LEFT JOIN p b ON a.symbol = b.symbol "
     "AND b.ts BETWEEN a.ts - 30000 AND a.ts + 30000"),
    # WITHIN (before, after): b may come up to `before` earlier and `after` later than a
    ("SELECT a.symbol, a.price, b.qty FROM t a JOIN p b WITHIN (10 SECONDS, 1 MINUTE) "
     "ON a.symbol = b.symbol",
     "SELECT a.symbol, a.price, b.qty FROM t a JOIN p b ON a.symbol = b.symbol "
     "AND b.ts BETWEEN a.ts - 10000 AND a.ts + 60000"),
    ("SELECT a.symbol, b.qty FROM t a LEFT JOIN p b ON a.symbol = b.symbol "
     "WITHIN (0 SECONDS, 45 SECONDS) GRACE PERIOD 1 MINUTE",
     "SELECT a.symbol, b.qty FROM t a LEFT JOIN p b ON a.symbol = b.symbol "
     "AND b.ts BETWEEN a.ts AND a.ts + 45000"),
]


@pytest.mark.parametrize(("velo", "expected"), JOINS, ids=range(len(JOINS)))
def test_within_grace_and_before_after_joins_match_duckdb(velo: str, expected: str) -> None:
    sql = f"{velo} {ET}".replace(f"'{OOO_MS}ms'", "'200s'")  # payments are up to 70 s out of step
    rows, _ = run_velo(sql, [records(ROWS), records(PAYMENTS, "p")])  # type: ignore[arg-type]
    same(rows, duck({"t": ROWS, "p": PAYMENTS}).execute(expected).fetchall())  # type: ignore[dict-item]


def test_the_join_grace_period_reaches_the_interval_join() -> None:
    """A LEFT interval join emits a row without a match once the watermark is past ``after +
    grace``: with a longer GRACE PERIOD it waits longer."""

    def unmatched_after(grace: str, now: int) -> list[list[Any]]:
        sql = (f"SELECT a.v, b.w FROM t a LEFT JOIN p b ON a.k = b.k WITHIN 1 SECOND {grace} "
               "WITH ('event.time.field' = 'ts', 'watermark.max_out_of_orderness' = '0s', "
               "'watermark.idle_timeout' = '0s')")
        proc = _compile(sql).processor("rows")
        out = proc.process([Record(orjson.dumps({"k": 1, "v": 1, "ts": 1_000}), timestamp=1_000)], 0)
        rows = [e.values for e in out.rows]
        out = proc.process([Record(orjson.dumps({"k": 2, "w": 9, "ts": now}), timestamp=now)], 1)
        rows += [e.values for e in out.rows]
        out = proc.process([Record(orjson.dumps({"k": 3, "v": 3, "ts": now}), timestamp=now)], 0)
        return rows + [e.values for e in out.rows]

    assert [1, None] in unmatched_after("", 5_000)
    assert [1, None] not in unmatched_after("GRACE PERIOD 10 SECONDS", 5_000)
    assert [1, None] in unmatched_after("GRACE PERIOD 10 SECONDS", 20_000)


REFUSED = [
    ("SELECT a FROM (SELECT a FROM t) q", "FROM (SELECT …) is not supported yet", 1, 15),
    ("SELECT a FROM (SELECT a FROM t) AS q WHERE a > 1", "FROM (SELECT …) is not supported yet", 1, 15),
    ("SELECT t.a FROM t JOIN (SELECT a FROM u) q ON t.a = q.a", "JOIN (SELECT …) is not supported yet", 1, 24),
    ("WITH x AS (SELECT a FROM t), y AS (SELECT a FROM x) SELECT a FROM y",
     "WITH … AS (SELECT …) is not supported yet", 1, 6),
    ("SELECT a FROM t UNION ALL SELECT a FROM u", "UNION ALL is not supported yet", 1, 27),
    ("SELECT a FROM t PARTITION BY a, b EMIT CHANGES", "PARTITION BY is not supported yet", 1, 30),
    ("SELECT a FROM t WHERE a IN (SELECT a FROM u UNION ALL SELECT b FROM v)",
     "UNION ALL is not supported yet", 1, 55),
    ("SELECT a FROM t WHERE w LIKE 'x!' ESCAPE '!'", "LIKE pattern 'x!' ends with its ESCAPE character", 1, 30),
    ("SELECT t.a FROM t JOIN u WITHIN (0s, 0s) ON t.a = u.a",
     "WITHIN (before, after) needs a positive before or after", 1, 34),
    ("SELECT t.a FROM t JOIN u ON t.a = u.a WITHIN 1s GRACE PERIOD INTERVAL '-1' SECOND",
     "GRACE PERIOD must not be negative", 1, 62),
]


@pytest.mark.parametrize(("sql", "message", "line", "column"), REFUSED, ids=range(len(REFUSED)))
def test_forms_the_engine_does_not_run_are_refused_at_their_place(
        sql: str, message: str, line: int, column: int) -> None:
    with pytest.raises(SqlValidationError) as info:
        _compile(sql)
    assert (info.value.message, info.value.line, info.value.column) == (message, line, column)
