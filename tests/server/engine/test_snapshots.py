"""Operator snapshots: process half, snapshot, restore into a fresh processor, process the rest.

The output must equal one uninterrupted run's, row for row, for every stateful operator kind (and
the wrappers around them); a stateless query has no snapshot; a snapshot of one operator kind does
not restore another.
"""

from __future__ import annotations

import inspect
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from velo.grammar import ast
from velo.grammar.parser import parse_statement
from velo.server.connectors.base import Record
from velo.server.engine.compile import compile_select
from velo.server.engine.functions import aggregates
from velo.server.engine.processor import Emitted, Processor
from velo.server.engine.snapshot import SnapshotError, accumulator_columns, accumulator_rows, decode, encode

DETERMINISTIC = "'event.time.field' = 'ts', 'watermark.idle_timeout' = '0ms'"


def compiled(sql: str, data_dir: Path | None = None) -> Any:
    stmt = parse_statement(sql)
    assert isinstance(stmt, ast.Select)
    return compile_select(stmt, data_dir=data_dir)


def trades(n: int, seed: int = 7) -> list[Record]:
    """``n`` records over a few symbols on two partitions, some of them late by up to 6 s."""
    rnd = random.Random(seed)
    out = []
    t = 0
    for i in range(n):
        t += rnd.randint(0, 900)
        symbol = rnd.choice("ABCD")
        value = {"symbol": symbol, "price": rnd.randint(1, 100), "qty": rnd.choice([None, 1, 2, 3]),
                 "ts": t - rnd.choice([0, 0, rnd.randint(0, 300), rnd.randint(0, 6000)]), "k": rnd.randint(0, 5)}
        out.append(Record(orjson.dumps(value), key=symbol.encode(), partition=i % 2, offset=i // 2,
                          timestamp=t))
    return out


def batches(records: list[Any], size: int = 17) -> list[list[Any]]:
    return [records[i:i + size] for i in range(0, len(records), size)]


def rows(out: Emitted) -> list[Any]:
    return [(e.op, e.key, e.values) for e in out.rows]


def run(p: Processor, feed: list[tuple[int, list[Any]]]) -> list[Any]:
    got: list[Any] = []
    for index, batch in feed:
        out = p.process(batch, index)
        got += rows(out)
        got.append(("late", len(out.late or [])))
    return got


def interrupted(query: Any, feed: list[tuple[int, list[Any]]], at: int) -> list[Any]:
    """The output of ``feed`` with a snapshot/restore into a fresh processor after ``at`` batches."""
    first = query.processor("rows")
    got = run(first, feed[:at])
    data = first.snapshot()
    assert data is not None
    second = query.processor("rows")
    second.restore(data)
    assert second.state_bytes() == first.state_bytes()
    return got + run(second, feed[at:]) + rows(second.finish())


def uninterrupted(query: Any, feed: list[tuple[int, list[Any]]]) -> list[Any]:
    p = query.processor("rows")
    return run(p, feed) + rows(p.finish())


AGGREGATES = [
    # tumbling, EMIT FINAL, every accumulator kind
    "SELECT symbol, COUNT(*) AS n, COUNT(qty) AS nq, COUNT(DISTINCT price) AS dp, SUM(price) AS s, "
    "AVG(price) AS a, MIN(price) AS lo, MAX(price) AS hi, FIRST_VALUE(price) AS f, LAST_VALUE(price) AS l, "
    "STDDEV(price) AS sd, VAR_POP(price) AS vp, MEDIAN(price) AS med, PERCENTILE_CONT(price, 0.9) AS p90, "
    "LISTAGG(symbol, ';') AS la, COLLECT_LIST(qty) AS cl FROM s GROUP BY symbol "
    "WINDOW TUMBLING (SIZE 5 SECONDS) EMIT FINAL",
    # hopping with grace, EMIT CHANGES (upserts) and HAVING (retractions)
    "SELECT symbol, COUNT(*) AS n, SUM(price) AS s FROM s GROUP BY symbol "
    "WINDOW HOPPING (SIZE 6 SECONDS, ADVANCE BY 2 SECONDS, GRACE PERIOD 1 SECOND) HAVING SUM(price) < 400 "
    "EMIT CHANGES",
    # sessions: merges, extensions, late records
    "SELECT symbol, COUNT(*) AS n, MAX(price) AS hi FROM s GROUP BY symbol WINDOW SESSION (2 SECONDS) EMIT FINAL",
    "SELECT symbol, COUNT(*) AS n, LISTAGG(k) AS ks FROM s GROUP BY symbol WINDOW SESSION (3 SECONDS) "
    "EMIT CHANGES",
    # no window: a running aggregate (changes) and one flushed at the end (final)
    "SELECT symbol, k, COUNT(*) AS n, AVG(qty) AS aq FROM s GROUP BY symbol, k EMIT CHANGES",
    "SELECT k, COUNT(*) AS n FROM s GROUP BY k EMIT FINAL",
    # a DECIMAL sum: not plain data for marshal, so the snapshot falls back to pickle
    "SELECT symbol, SUM(CAST(price AS DECIMAL(10, 2))) AS s FROM s GROUP BY symbol "
    "WINDOW TUMBLING (SIZE 10 SECONDS) EMIT FINAL",
    "SELECT DISTINCT symbol, k FROM s",
]

OVER = [
    "SELECT symbol, price, LAG(price) OVER (PARTITION BY symbol) AS prev, "
    "LAG(price, 2, 0) OVER (PARTITION BY symbol) AS prev2, "
    "ROW_NUMBER() OVER (PARTITION BY symbol) AS rn FROM s",
    "SELECT symbol, price, RANK() OVER (PARTITION BY symbol ORDER BY k) AS r, "
    "DENSE_RANK() OVER (PARTITION BY symbol ORDER BY k) AS dr FROM s",
    "SELECT symbol, SUM(price) OVER (PARTITION BY symbol ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS s3, "
    "AVG(price) OVER (PARTITION BY symbol ROWS BETWEEN 4 PRECEDING AND 1 PRECEDING) AS a4, "
    "STDDEV(price) OVER (PARTITION BY symbol ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS sd, "
    "COUNT(*) OVER (PARTITION BY symbol) AS n, MAX(price) OVER (PARTITION BY symbol ROWS BETWEEN "
    "UNBOUNDED PRECEDING AND 1 PRECEDING) AS hi FROM s",
]


@pytest.mark.parametrize("sql", AGGREGATES + OVER)
def test_one_input_operators_resume_from_a_snapshot_as_if_never_stopped(sql: str) -> None:
    query = compiled(f"{sql} WITH ({DETERMINISTIC})")
    feed = [(0, b) for b in batches(trades(600))]
    expected = uninterrupted(query, feed)
    assert any(r[0] != "late" for r in expected)
    for at in (1, len(feed) // 2, len(feed) - 1):
        assert interrupted(query, feed, at) == expected, f"snapshot after {at} batches"


def two_streams(n: int) -> list[tuple[int, list[Any]]]:
    left = trades(n, seed=1)
    right = trades(n, seed=2)
    feed: list[tuple[int, list[Any]]] = []
    for lb, rb in zip(batches(left, 11), batches(right, 13), strict=False):
        feed += [(0, lb), (1, rb)]
    return feed


JOINS = [
    "SELECT a.symbol AS symbol, a.price AS p, b.price AS q FROM l a JOIN r b ON a.symbol = b.symbol AND "
    "a.k = b.k WITHIN 2 SECONDS",
    "SELECT a.symbol AS symbol, a.price AS p, b.price AS q FROM l a FULL JOIN r b ON a.symbol = b.symbol AND "
    "a.k = b.k WITHIN 1 SECOND",
    "SELECT a.symbol AS symbol, b.k AS k FROM l a LEFT JOIN r b ON a.k = b.k",  # unbounded: TTL and a row cap
    # what follows the join keeps state too: an aggregate, OVER
    "SELECT a.symbol AS symbol, COUNT(*) AS n, SUM(b.price) AS s FROM l a JOIN r b ON a.k = b.k WITHIN 3 SECONDS "
    "GROUP BY a.symbol WINDOW TUMBLING (SIZE 10 SECONDS) EMIT FINAL",
    "SELECT a.symbol AS symbol, LAG(b.price) OVER (PARTITION BY a.symbol) AS prev FROM l a JOIN r b "
    "ON a.k = b.k WITHIN 1 SECOND",
]


@pytest.mark.parametrize("sql", JOINS)
def test_stream_stream_joins_resume_from_a_snapshot_as_if_never_stopped(sql: str) -> None:
    query = compiled(f"{sql} WITH ({DETERMINISTIC}, 'join.state.max_rows' = '300', 'join.state.ttl' = '20s')")
    feed = two_streams(400)
    expected = uninterrupted(query, feed)
    assert any(r[0] != "late" for r in expected)
    for at in (3, len(feed) // 2):
        assert interrupted(query, feed, at) == expected, f"snapshot after {at} batches"


def test_self_join_resumes_from_a_snapshot() -> None:
    query = compiled(f"SELECT a.symbol AS s, b.price AS q FROM t a JOIN t b ON a.k = b.k WITHIN 1 SECOND "
                     f"WITH ({DETERMINISTIC})")
    feed = [(0, b) for b in batches(trades(300))]
    at = len(feed) // 2
    first = query.processor("rows")
    before = [r for r in run(first, feed[:at]) if r[0] != "late"]
    data = first.snapshot()
    assert data is not None
    # The snapshot holds state: rows of the first half buffered for partners still to come.
    assert decode("stream-stream join", data)["rows"] > 0 and first.state_bytes() > 0
    resumed = query.processor("rows")
    resumed.restore(data)
    after = [r for r in run(resumed, feed[at:]) + rows(resumed.finish()) if r[0] != "late"]
    fresh = query.processor("rows")
    without = [r for r in run(fresh, feed[at:]) + rows(fresh.finish()) if r[0] != "late"]
    whole = [r for r in uninterrupted(query, feed) if r[0] != "late"]
    assert before and after  # the comparison is over rows on both sides of the snapshot
    assert before + after == whole
    # And the restored state did the work: without it, pairs spanning the snapshot are lost.
    assert len(without) < len(after)


def test_a_stream_table_join_keeps_what_follows_it_and_not_the_table(tmp_path: Path) -> None:
    table = tmp_path / "names.json"
    table.write_text("\n".join(orjson.dumps({"k": k, "name": f"n{k}"}).decode() for k in range(4)))
    props = f"{DETERMINISTIC}, 'n.type' = 'file_source', 'n.path' = '{table}', 'n.format' = 'json'"
    agg = compiled(f"SELECT n.name AS name, COUNT(*) AS c FROM s JOIN n ON s.k = n.k GROUP BY n.name "
                   f"WINDOW TUMBLING (SIZE 5 SECONDS) EMIT FINAL WITH ({props})", tmp_path)
    feed = [(0, b) for b in batches(trades(500))]
    assert interrupted(agg, feed, len(feed) // 2) == uninterrupted(agg, feed)
    # A plain lookup keeps nothing: the file is read again by every run.
    plain = compiled(f"SELECT s.symbol AS symbol, n.name AS name FROM s JOIN n ON s.k = n.k WITH ({props})", tmp_path)
    assert plain.processor("encode").snapshot() is None


def test_stateless_queries_have_no_snapshot() -> None:
    p = compiled("SELECT symbol, price * 2 AS p FROM s WHERE price > 10").processor("encode")
    assert p.snapshot() is None
    with pytest.raises(SnapshotError):
        p.restore(b"")


def test_a_snapshot_restores_only_its_own_operator_kind() -> None:
    agg = compiled("SELECT symbol, COUNT(*) AS n FROM s GROUP BY symbol").processor("rows")
    over = compiled("SELECT symbol, LAG(price) OVER (PARTITION BY symbol) AS p FROM s").processor("rows")
    agg.process(trades(10))
    data = agg.snapshot()
    assert data is not None
    with pytest.raises(SnapshotError, match="aggregate"):
        over.restore(data)
    with pytest.raises(SnapshotError):
        agg.restore(b"garbage")
    fewer = compiled("SELECT symbol, COUNT(*) AS n, SUM(price) AS s FROM s GROUP BY symbol").processor("rows")
    with pytest.raises(SnapshotError, match="aggregates"):
        fewer.restore(data)


def test_every_accumulator_class_round_trips_column_wise() -> None:
    # Every aggregate's accumulator (the analytic markers LAG, RANK, … and the bases keep nothing).
    classes = [c for _, c in inspect.getmembers(aggregates, inspect.isclass)
               if issubclass(c, aggregates.Accumulator) and c.result is not aggregates.Accumulator.result]
    assert len(classes) > 15
    for cls in classes:
        params: tuple[Any, ...] = (0.5,) if cls is aggregates.PercentileCont else ("|",) if cls is \
            aggregates.ListAgg else (2,) if cls in (aggregates.TopK, aggregates.TopKDistinct) else ()
        accs = [[cls(*params)] for _ in range(3)]
        for i, (acc,) in enumerate(accs):
            for v in range(i + 2):
                acc.add(v * 1.5, v)
        data = encode("t", {"accs": accumulator_columns([cls], accs)})
        back = accumulator_rows([cls], decode("t", data)["accs"], 3)
        for (a,), (b,) in zip(accs, back, strict=True):
            assert type(b) is cls
            assert b.result() == a.result(), cls.__name__


def test_a_big_group_state_snapshots_quickly() -> None:
    """100k groups of COUNT and SUM: the column-wise encoding keeps a snapshot well under a second."""
    import time

    query = compiled("SELECT symbol, COUNT(*) AS n, SUM(price) AS s FROM s GROUP BY symbol")
    p = query.processor("encode")
    p.process([Record(orjson.dumps({"symbol": f"s{i}", "price": i})) for i in range(100_000)])
    started = time.perf_counter()
    data = p.snapshot()
    took = time.perf_counter() - started
    assert data is not None and data[3:4] == b"M"  # plain data: marshal, not pickle
    fresh = query.processor("encode")
    fresh.restore(data)
    assert fresh.state_bytes() == p.state_bytes()
    assert took < 1.0, f"snapshot of 100k groups took {took:.2f}s"
