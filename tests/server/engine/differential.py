"""Shared machinery of the differential tests: generated rows, running Velo and DuckDB, comparing.

Velo runs a query through the Processor contract over in-memory records (in small batches, event
times out of order within the allowed lateness); DuckDB runs the equivalent SQL over the same rows.
Results are compared as multisets, floats to 1e-9 relative.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

import duckdb
import orjson
from velo.grammar.parser import parse_statement
from velo.server.connectors.base import Record
from velo.server.engine.compile import compile_select
from velo.server.engine.processor import Processor, RowEvent

SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA", None]
BASE_TS = 1_700_000_000_000
OOO_MS = 5000  # the tests' 'watermark.max_out_of_orderness'; jitter stays within it


def make_rows(n: int = 300, seed: int = 7, ordered: bool = False) -> list[dict[str, Any]]:
    """Trades with NULLs, duplicate keys, and event times out of order by up to 3 s."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        ts = BASE_TS + i * 997 + (0 if ordered else -rnd.randint(0, 3000))
        rows.append({
            "symbol": rnd.choice(SYMBOLS),
            "price": None if rnd.random() < 0.08 else round(rnd.uniform(1, 200), 2),
            "qty": None if rnd.random() < 0.08 else rnd.randint(0, 100),
            "side": rnd.choice(["BUY", "SELL", None]),
            "ts": ts + i,  # unique event times
        })
    if ordered:
        rows.sort(key=lambda r: r["ts"])
    return rows


def records(rows: list[dict[str, Any]], topic: str = "t") -> list[Record]:
    return [Record(orjson.dumps(r), key=None if r.get("symbol") is None else str(r["symbol"]).encode(),
                   timestamp=r["ts"], offset=i, topic=topic) for i, r in enumerate(rows)]


def duck(tables: dict[str, list[dict[str, Any]]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, rows in tables.items():
        cols = list(rows[0])
        types = {"symbol": "VARCHAR", "price": "DOUBLE", "qty": "BIGINT", "side": "VARCHAR",
                 "ts": "BIGINT", "sector": "VARCHAR", "k": "BIGINT", "a": "BIGINT", "b": "BIGINT",
                 "s": "VARCHAR", "v": "DOUBLE", "name": "VARCHAR", "desk": "VARCHAR", "lot": "BIGINT",
                 "n": "BIGINT", "active": "BOOLEAN"}
        decl = ", ".join(f"{c} {types.get(c, 'VARCHAR')}" for c in cols)
        con.execute(f"CREATE TABLE {name} ({decl})")
        con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in cols)})",
                        [[r.get(c) for c in cols] for r in rows])
    return con


def run_velo(sql: str, inputs: list[list[Record]], batch: int = 7, **kw: Any) -> tuple[list[list[Any]], str]:
    """Result rows of a query: inserts as a multiset, upserts/deletes reduced to their final state."""
    stmt = parse_statement(sql)
    q = compile_select(stmt, **kw)  # type: ignore[arg-type]
    p: Processor = q.processor("rows")
    events: list[RowEvent] = []
    cursors = [0] * len(inputs)
    # Interleave the inputs batch by batch (a merged source does the same).
    while any(c < len(recs) for c, recs in zip(cursors, inputs, strict=True)):
        for i, recs in enumerate(inputs):
            chunk = recs[cursors[i] : cursors[i] + batch]
            cursors[i] += len(chunk)
            if chunk:
                out = p.process(chunk, i)
                assert not out.errors, out.errors[:3]
                events += out.rows
    events += p.finish().rows
    final: dict[Any, list[Any]] = {}
    inserts: list[list[Any]] = []
    for e in events:
        if e.op == "insert":
            inserts.append(e.values)
        elif e.op == "upsert":
            final[_hashable(e.key)] = e.values
        else:
            final.pop(_hashable(e.key), None)
    return inserts + list(final.values()), q.plan.emit


def _hashable(v: Any) -> Any:
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


def _norm(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return float(v)
    return v


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((0, "") if v is None else (1, round(v, 6)) if isinstance(v, float) else (2, str(v))
                 for v in row)


def same(velo_rows: list[list[Any]], duck_rows: list[tuple[Any, ...]]) -> None:
    a = sorted((tuple(_norm(v) for v in r) for r in velo_rows), key=_sort_key)
    b = sorted((tuple(_norm(v) for v in r) for r in duck_rows), key=_sort_key)
    assert len(a) == len(b), f"{len(a)} Velo rows vs {len(b)} DuckDB rows\n{a[:5]}\n{b[:5]}"
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y), (x, y)
        for u, w in zip(x, y, strict=True):
            if isinstance(u, float) and isinstance(w, float):
                assert math.isclose(u, w, rel_tol=1e-9, abs_tol=1e-9), (x, y)
            else:
                assert u == w, (x, y)
