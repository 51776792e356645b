"""Avro end to end through the real broker: a hand-written ``.avsc`` in, an inline schema out.

The source topic holds values another producer wrote with fastavro and the schema in ``trades.avsc``
(decimal, timestamp-millis, a nullable field). Two jobs read it — one naming the file inline, one
through a declared stream (``CREATE STREAM … 'avro.schema.file'``) — and write Avro with inline
schemas; the output is read back with fastavro and compared exactly.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.runtime import JobState
from velo.server.jobs.statements import StatementExecutor

from tests.kafka_helpers import create_topic, produce, wait_until

TRADES_AVSC = """{
  "type": "record",
  "name": "Trade",
  "namespace": "com.example.market",
  "doc": "One executed trade, as the exchange gateway writes it.",
  "fields": [
    {"name": "symbol", "type": "string"},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "qty", "type": "int"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "venue", "type": ["null", "string"], "default": null}
  ]
}
"""
NOTIONAL = {"type": "record", "name": "Notional", "fields": [
    {"name": "symbol", "type": "string"},
    {"name": "notional", "type": {"type": "bytes", "logicalType": "decimal", "precision": 14, "scale": 2}},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "venue", "type": ["null", "string"], "default": None},
    {"name": "note", "type": ["null", "string"], "default": None},
]}
TOTALS = {"type": "record", "name": "Totals", "fields": [
    {"name": "symbol", "type": "string"},
    {"name": "trades", "type": "long"},
    {"name": "volume", "type": "long"},
]}
T0 = 1_700_000_000_000
TRADES = [  # symbol, price, qty, venue
    ("AAPL", "187.25", 10, "XNAS"), ("MSFT", "402.10", 1, None), ("AAPL", "187.30", 5, None),
    ("TSLA", "251.05", 3, "XNYS"), ("MSFT", "402.00", 7, "XNAS"), ("AAPL", "186.99", 1, "XNAS"),
]


def _when(i: int) -> datetime:
    return datetime.fromtimestamp((T0 + i * 1000) / 1000, UTC)


def _encode(schema: Any, row: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, row)
    return buf.getvalue()


def _decode(schema: Any, value: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(value), schema, None)


class TopicReader:
    """Reads a topic from the beginning into ``records`` (raw key and value) while a test waits."""

    def __init__(self, brokers: str, topic: str) -> None:
        self.brokers, self.topic = brokers, topic
        self.records: list[tuple[bytes | None, bytes | None]] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def poll(self) -> None:
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self.brokers, enable_auto_commit=False,
                                              auto_offset_reset="earliest")
            await self._consumer.start()
            await self._consumer.topics()
            parts = self._consumer.partitions_for_topic(self.topic) or set()
            self._consumer.assign([TopicPartition(self.topic, p) for p in parts])
        for batch in (await self._consumer.getmany(timeout_ms=100)).values():
            self.records += [(r.key, r.value) for r in batch]

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


@pytest.fixture
async def manager(broker: str, tmp_path: Path) -> AsyncIterator[MultiJobSqlServer]:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "trades.avsc").write_text(TRADES_AVSC, encoding="utf-8")
    mgr = MultiJobSqlServer(ManagerConfig(broker, max_jobs=4, data_dir=tmp_path))
    yield mgr
    await mgr.shutdown()


async def test_avro_in_from_an_avsc_file_and_out_with_an_inline_schema(
        broker: str, manager: MultiJobSqlServer, topic_name: Callable[[str], str]) -> None:
    src, out_fp, out_agg = topic_name("avro_trades"), topic_name("avro_notional"), topic_name("avro_totals")
    await create_topic(broker, src, 1)
    writer = fastavro.parse_schema(json.loads(TRADES_AVSC))
    values = [_encode(writer, {"symbol": s, "price": Decimal(p), "qty": q, "ts": _when(i), "venue": v})
              for i, (s, p, q, v) in enumerate(TRADES)]
    await produce(broker, src, values, keys=[s.encode() for s, *_ in TRADES], raw=True)

    executor = StatementExecutor(manager)
    fp = (f"START JOB notional AS SELECT symbol, price * qty AS notional, ts, venue FROM {src} WHERE qty > 1 "
          f"WITH ('{src}.format' = 'avro', '{src}.avro.schema.file' = 'schemas/trades.avsc', "
          f"'notional.format' = 'avro', 'notional.avro.schema' = '{json.dumps(NOTIONAL)}', "
          f"'output.topic' = '{out_fp}', 'auto.offset.reset' = 'earliest')")
    agg = (f"CREATE STREAM trades WITH (KAFKA_TOPIC='{src}', VALUE_FORMAT='AVRO', "
           f"'avro.schema.file'='schemas/trades.avsc');\n"
           f"CREATE TABLE totals AS SELECT symbol, COUNT(*) AS trades, SUM(qty) AS volume FROM trades "
           f"GROUP BY symbol WITH ('totals.format' = 'avro', 'totals.avro.schema' = '{json.dumps(TOTALS)}', "
           f"'output.topic' = '{out_agg}', 'auto.offset.reset' = 'earliest')")
    results = [*await executor.execute_script(fp, {}), *await executor.execute_script(agg, {})]
    jobs = [manager.get_job(n) for n in ("notional", "totals")]
    assert all(j.state is JobState.RUNNING for j in jobs), [(j.name, j.state, j.error) for j in jobs]
    assert results[0]["type"] == "job" and results[2]["type"] == "job"

    fp_reader, agg_reader = TopicReader(broker, out_fp), TopicReader(broker, out_agg)
    want_fp = [(s.encode(), {"symbol": s, "notional": (Decimal(p) * q).quantize(Decimal("0.01")), "ts": _when(i),
                             "venue": v, "note": None})
               for i, (s, p, q, v) in enumerate(TRADES) if q > 1]
    want_totals = {b"AAPL": {"symbol": "AAPL", "trades": 3, "volume": 16},
                   b"MSFT": {"symbol": "MSFT", "trades": 2, "volume": 8},
                   b"TSLA": {"symbol": "TSLA", "trades": 1, "volume": 3}}

    def totals() -> dict[bytes | None, Any]:
        return {k: None if v is None else _decode(TOTALS, v) for k, v in agg_reader.records}

    async def done() -> bool:
        await fp_reader.poll()
        await agg_reader.poll()
        return len(fp_reader.records) >= len(want_fp) and totals() == want_totals

    try:
        await wait_until(done, timeout=40, message="both jobs' Avro output")
        await fp_reader.poll()  # nothing more than expected came
        got = [(k, _decode(NOTIONAL, v)) for k, v in fp_reader.records if v is not None]
    finally:
        await fp_reader.close()
        await agg_reader.close()
    assert got == want_fp
    assert all(j.metrics.records_failed == 0 for j in jobs)
    # The aggregate's output is declared Avro with its schema: a later statement can read it.
    entry = manager.catalog.get("totals")
    assert entry is not None and entry.format == "avro" and json.loads(entry.options["avro.schema"]) == TOTALS


def _derived(name: str, fields: list[tuple[str, Any]]) -> dict[str, Any]:
    """The schema Velo derives for a sink without one: a nullable field per column, default null."""
    return {"type": "record", "name": name,
            "fields": [{"name": n, "type": ["null", t], "default": None} for n, t in fields]}


async def test_value_format_avro_on_create_as_select_writes_avro_a_later_job_reads(
        broker: str, manager: MultiJobSqlServer, topic_name: Callable[[str], str]) -> None:
    src, out_big, out_sums = topic_name("vf_trades"), topic_name("vf_big"), topic_name("vf_sums")
    await create_topic(broker, src, 1)
    writer = fastavro.parse_schema(json.loads(TRADES_AVSC))
    values = [_encode(writer, {"symbol": s, "price": Decimal(p), "qty": q, "ts": _when(i), "venue": v})
              for i, (s, p, q, v) in enumerate(TRADES)]
    await produce(broker, src, values, keys=[s.encode() for s, *_ in TRADES], raw=True)

    # No schema anywhere for the outputs: each is derived from its SELECT, and the second job reads the
    # first one's output through the catalog entry its CREATE registered (Avro, with that schema).
    script = (f"CREATE STREAM trades WITH (KAFKA_TOPIC='{src}', VALUE_FORMAT='AVRO', "
              f"'avro.schema.file'='schemas/trades.avsc');\n"
              f"CREATE STREAM big WITH (VALUE_FORMAT='AVRO', KAFKA_TOPIC='{out_big}') AS "
              f"SELECT symbol, price, qty, ts, venue FROM trades WHERE qty > 1 "
              f"WITH ('auto.offset.reset' = 'earliest');\n"
              f"CREATE TABLE sums WITH (VALUE_FORMAT='AVRO', KAFKA_TOPIC='{out_sums}') AS "
              f"SELECT symbol, SUM(price) AS prices, COUNT(*) AS n FROM big GROUP BY symbol "
              f"WITH ('auto.offset.reset' = 'earliest')")
    await StatementExecutor(manager).execute_script(script, {})
    jobs = [manager.get_job(n) for n in ("big", "sums")]
    assert all(j.state is JobState.RUNNING for j in jobs), [(j.name, j.state, j.error) for j in jobs]

    decimal_10_2 = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}
    big_schema = _derived("big", [("symbol", "string"), ("price", decimal_10_2), ("qty", "int"),
                                  ("ts", {"type": "long", "logicalType": "timestamp-millis"}), ("venue", "string")])
    sums_schema = _derived("sums", [("symbol", "string"), ("prices", decimal_10_2), ("n", "long")])
    entry = manager.catalog.get("big")
    assert entry is not None and entry.format == "avro" and json.loads(entry.options["avro.schema"]) == big_schema

    want_big = [(s.encode(), {"symbol": s, "price": Decimal(p), "qty": q, "ts": _when(i), "venue": v})
                for i, (s, p, q, v) in enumerate(TRADES) if q > 1]
    want_sums = {b"AAPL": {"symbol": "AAPL", "prices": Decimal("374.55"), "n": 2},
                 b"MSFT": {"symbol": "MSFT", "prices": Decimal("402.00"), "n": 1},
                 b"TSLA": {"symbol": "TSLA", "prices": Decimal("251.05"), "n": 1}}
    big_reader, sums_reader = TopicReader(broker, out_big), TopicReader(broker, out_sums)

    def sums() -> dict[bytes | None, Any]:
        return {k: None if v is None else _decode(sums_schema, v) for k, v in sums_reader.records}

    async def done() -> bool:
        await big_reader.poll()
        await sums_reader.poll()
        return len(big_reader.records) >= len(want_big) and sums() == want_sums

    try:
        await wait_until(done, timeout=40, message="both jobs' derived-schema Avro output")
        await big_reader.poll()
        got = [(k, _decode(big_schema, v)) for k, v in big_reader.records if v is not None]
    finally:
        await big_reader.close()
        await sums_reader.close()
    assert got == want_big
    assert all(j.metrics.records_failed == 0 for j in jobs)
