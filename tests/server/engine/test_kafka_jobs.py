"""Each operator family end to end: a job deployed with MultiJobSqlServer reading and writing Kafka.

The expected output is the same query run in memory through the Processor (which the differential
suite checks against DuckDB). Every job is deployed at once, so the consumer-group joins overlap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from velo.grammar.parser import parse_statement
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.runtime import JobState

from tests.kafka_helpers import create_topic, produce

from .differential import make_rows, records

ROWS = make_rows(120, seed=5)
ORDERED = sorted(ROWS, key=lambda r: r["ts"])
FLUSH = {"symbol": "ZZZ", "price": 1.0, "qty": 1, "side": "BUY", "ts": ROWS[-1]["ts"] + 3_600_000}


async def _read(brokers: str, topic: str, expected: int, timeout: float = 40.0) -> list[tuple[Any, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()
        parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in parts])
        out: list[tuple[Any, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_since = loop.time()
        # Read until the expected count is reached and nothing new came for a second (upserts
        # may outnumber the final rows; extra rows must not go unnoticed).
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                out += [(r.key, orjson.loads(r.value)) for r in recs]
            if batch:
                quiet_since = loop.time()
            elif len(out) >= expected and loop.time() - quiet_since > 1.0:
                break
        return out
    finally:
        await consumer.stop()


def _reference(sql: str, inputs: list[list[dict[str, Any]]], data_dir: Path) -> list[tuple[Any, Any]]:
    """The job's output computed in memory: (key, value) pairs as the sink would get them."""
    from velo.server.engine.compile import compile_select

    stmt = parse_statement(sql)
    query = stmt.query  # type: ignore[union-attr]
    props = {p.key.lower(): p.value for p in stmt.properties}  # type: ignore[union-attr]
    compiled = compile_select(query, properties=props, data_dir=data_dir,
                              sink_name=stmt.name)  # type: ignore[union-attr]
    p = compiled.processor("encode")
    out: list[tuple[Any, Any]] = []
    for i, rows in enumerate(inputs):
        emitted = p.process(records(rows), i)
        out += [(k, orjson.loads(v)) for k, v in emitted.rows]
    return out


def _final_state(pairs: list[tuple[Any, Any]]) -> list[str]:
    last: dict[Any, Any] = {}
    for k, v in pairs:
        last[k] = v
    return sorted(orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode() for v in last.values())


def _multiset(pairs: list[tuple[Any, Any]]) -> list[str]:
    return sorted(orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode() for _, v in pairs)


@pytest.fixture
async def manager(broker: str, tmp_path: Path) -> AsyncIterator[MultiJobSqlServer]:
    mgr = MultiJobSqlServer(ManagerConfig(broker, max_jobs=20, data_dir=tmp_path))
    yield mgr
    await mgr.shutdown()


async def test_every_family_through_kafka(broker: str, manager: MultiJobSqlServer,
                                          topic_name: Callable[[str], str], tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_text("symbol,sector\nAAPL,tech\nMSFT,tech\nTSLA,auto\n")
    trades, ordered, pays = topic_name("trades"), topic_name("ordered"), topic_name("pays")
    for t in (trades, ordered, pays):
        await create_topic(broker, t, 1)
    pay_rows = [{"symbol": r["symbol"], "qty": 1, "ts": r["ts"] + 500} for r in ROWS[::3]]
    et = "'event.time.field' = 'ts', 'watermark.idle_timeout' = '0s'"
    out = {fam: topic_name(fam) for fam in ("fp", "agg", "tumble", "session", "table", "interval", "over")}
    jobs = {
        "fp": (f"START JOB {out['fp']} AS SELECT symbol, price * qty AS n FROM {trades} "
               f"WHERE price > 50 WITH ('output.topic' = '{out['fp']}')", [[*ROWS, FLUSH]], _multiset),
        "agg": (f"CREATE TABLE {out['agg']} AS SELECT side, COUNT(*) AS c, SUM(qty) AS q FROM {trades} "
                f"GROUP BY side", [[*ROWS, FLUSH]], _final_state),
        "tumble": (f"START JOB {out['tumble']} AS SELECT symbol, COUNT(*) AS c, AVG(price) AS a FROM {trades} "
                   f"GROUP BY symbol WINDOW TUMBLING(10s) EMIT FINAL WITH ({et}, "
                   f"'watermark.max_out_of_orderness' = '5s', 'output.topic' = '{out['tumble']}')",
                   [[*ROWS, FLUSH]], _multiset),
        "session": (f"START JOB {out['session']} AS SELECT symbol, COUNT(*) AS c FROM {trades} "
                    f"GROUP BY symbol WINDOW SESSION(3s) EMIT CHANGES WITH ({et}, "
                    f"'watermark.max_out_of_orderness' = '5s', 'output.topic' = '{out['session']}')",
                    [[*ROWS, FLUSH]], _final_state),
        "table": (f"START JOB {out['table']} AS SELECT t.symbol, t.price, r.sector FROM {trades} t "
                  f"LEFT JOIN ref r ON t.symbol = r.symbol WITH ('ref.type' = 'file_source', "
                  f"'ref.path' = 'ref.csv', 'ref.format' = 'csv', 'output.topic' = '{out['table']}')",
                  [[*ROWS, FLUSH]], _multiset),
        "interval": (f"START JOB {out['interval']} AS SELECT a.symbol, a.price, b.qty FROM {trades} a "
                     f"JOIN {pays} b ON a.symbol = b.symbol WITHIN 2s WITH ({et}, "
                     f"'watermark.max_out_of_orderness' = '2h', 'output.topic' = '{out['interval']}')",
                     [[*ROWS, FLUSH], pay_rows], _multiset),
        "over": (f"START JOB {out['over']} AS SELECT symbol, price, AVG(price) OVER (PARTITION BY symbol "
                 f"ROWS BETWEEN 3 PRECEDING AND 1 PRECEDING) AS a FROM {ordered} "
                 f"WITH ('output.topic' = '{out['over']}')", [ORDERED], _multiset),
    }
    expected = {fam: reduce(_reference(sql, inputs, tmp_path)) for fam, (sql, inputs, reduce) in jobs.items()}
    deployed = await asyncio.gather(*(manager.deploy_job(sql) for sql, _, _ in jobs.values()))
    assert all(j.state is JobState.RUNNING for j in deployed), [(j.name, j.state, j.error) for j in deployed]
    await asyncio.gather(produce(broker, trades, [*ROWS, FLUSH]), produce(broker, ordered, ORDERED),
                         produce(broker, pays, pay_rows))

    async def check(fam: str) -> None:
        _, _, reduce = jobs[fam]
        want = expected[fam]
        got = await _read(broker, out[fam], len(want), timeout=40)
        assert reduce(got) == want, fam

    await asyncio.gather(*(check(fam) for fam in jobs))
    assert expected["tumble"] and expected["session"] and expected["interval"] and expected["over"]


async def test_late_records_go_to_the_dead_letter_topic(broker: str, manager: MultiJobSqlServer,
                                                        topic_name: Callable[[str], str]) -> None:
    from tests.kafka_helpers import consume, wait_until

    src = topic_name("late")
    await create_topic(broker, src, 1)
    job = topic_name("latejob")
    sql = (f"START JOB {job} AS SELECT symbol, COUNT(*) AS c FROM {src} GROUP BY symbol "
           f"WINDOW TUMBLING(10s) GRACE PERIOD 1s EMIT FINAL WITH ('event.time.field' = 'ts', "
           f"'watermark.idle_timeout' = '0s', 'late.data.strategy' = 'dead_letter', "
           f"'output.topic' = '{job}_out')")
    deployed = await manager.deploy_job(sql)
    assert deployed.state is JobState.RUNNING, deployed.error
    times = [1000, 5000, 10_500, 11_000, 9999, 3000, 12_000, 25_000]
    # 11 000 closes [0, 10 000) (grace 1 s): 9999 and 3000 are late; 10 500 and 12 000 are not.
    await produce(broker, src, [{"symbol": "A", "ts": t} for t in times])
    dead = await consume(broker, f"{job}-dlq", 2, timeout=30, settle=0.5)
    assert sorted(d["ts"] for d in dead) == [3000, 9999]
    await wait_until(lambda: deployed.metrics.records_late == 2, message="late count")
    out = await consume(broker, f"{job}_out", 2, timeout=30, settle=0.5)
    assert sorted((o["window_start"], o["c"]) for o in out) == [(0, 2), (10_000, 3)]
