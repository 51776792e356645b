"""Encode-path cost per record of a filter/project query: JSON→JSON against Avro→Avro, no broker.

    python -m bench.bench_avro [--records N] [--rounds R]

The query (``WHERE price > 100`` keeping symbol, price, quantity, ts) is compiled as a job with a sink
named ``out`` and its ``encode`` processor is fed ``N`` in-memory records in batches of 2000 (the
job default), so the figure is the engine's decode → filter → project → encode work alone. The Avro
runs read values written with TRADE and write them with OUT (a DECIMAL price, a timestamp-millis
ts), or with the schema derived from the SELECT (the same fields, each nullable). Best of ``R``
rounds, in µs per input record.
"""

from __future__ import annotations

import argparse
import io
import time
from decimal import Decimal
from typing import Any

import fastavro
import orjson
from velo.grammar import ast
from velo.grammar.parser import parse_statement
from velo.server.connectors.base import Record
from velo.server.engine.compile import compile_select

BATCH = 2000
BASE = 1_700_000_000_000
SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA", "META", "ORCL"]
TRADE: dict[str, Any] = {"type": "record", "name": "Trade", "fields": [
    {"name": "symbol", "type": "string"},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
    {"name": "quantity", "type": "int"},
    {"name": "side", "type": "string"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}
OUT: dict[str, Any] = {"type": "record", "name": "Out", "fields": [
    {"name": "symbol", "type": "string"},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
    {"name": "quantity", "type": "int"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}
SQL = "SELECT symbol, price, quantity, ts FROM trades WHERE price > 100"


def _records(n: int, avro: bool) -> list[Record]:
    parsed = fastavro.parse_schema(TRADE)
    out = []
    for i in range(n):
        row: dict[str, Any] = {"symbol": SYMBOLS[i % 8], "price": Decimal(i % 200) + Decimal("0.25"),
                               "quantity": i % 1000, "side": "BUY" if i % 3 else "SELL", "ts": BASE + i}
        if avro:
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, parsed, row)
            value = buf.getvalue()
        else:
            value = orjson.dumps({**row, "price": float(row["price"])})
        out.append(Record(value, key=row["symbol"].encode(), offset=i))
    return out


def _props(avro: bool, derived: bool) -> dict[str, Any]:
    if not avro:
        return {}
    props = {"trades.format": "avro", "trades.avro.schema": orjson.dumps(TRADE).decode(), "out.format": "avro"}
    if not derived:
        props["out.avro.schema"] = orjson.dumps(OUT).decode()
    return props


def _run(n: int, rounds: int, avro: bool, derived: bool = False) -> float:
    select = parse_statement(SQL)
    assert isinstance(select, ast.Select)
    query = compile_select(select, properties=_props(avro, derived), sink_name="out")
    records = _records(n, avro)
    batches = [records[i:i + BATCH] for i in range(0, n, BATCH)]
    best = float("inf")
    for _ in range(rounds):
        processor = query.processor("encode")
        started = time.perf_counter()
        written = 0
        for batch in batches:
            emitted = processor.process(batch)
            assert not emitted.errors, emitted.errors
            written += len(emitted.rows)
        best = min(best, time.perf_counter() - started)
        assert written > 0
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for label, avro, derived in (("JSON→JSON", False, False), ("Avro→Avro", True, False),
                                 ("Avro→Avro, sink schema derived (nullable fields)", True, True)):
        print(f"filter/project {label}: {_run(args.records, args.rounds, avro, derived):.2f} µs/record "
              f"({args.records} records, best of {args.rounds})")


if __name__ == "__main__":
    main()
