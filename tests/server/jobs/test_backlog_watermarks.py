"""A backlog read in chunks through the real broker: partitions waiting for their turn are not idle.

Four partitions hold a backlog spread unevenly (event times interleaved across them, in order within
each); a tumbling EMIT FINAL job deployed after it reads them in chunks, so partitions sit unread, or
unseen, for a long time while the others are read. With a short idle timeout the
watermark used to run ahead of them and drop most of their records as late; now a partition with
lag is never idle, and once every partition has caught up the last windows close.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.runtime import JobState

from tests.kafka_helpers import consume, create_topic, produce, wait_until

N = 100_000
WEIGHTS = (0.4, 0.3, 0.2, 0.1)  # the share of the backlog each partition holds
BASE_TS = 1_700_000_000_000


def _backlog() -> tuple[list[dict[str, Any]], list[int]]:
    """Trades 10 ms apart, each sent to a partition at random by WEIGHTS: every partition spans the
    whole time range, in event-time order within it."""
    rnd = random.Random(15)
    rows = [{"symbol": rnd.choice("ABCDEF"), "qty": rnd.randint(1, 100), "ts": BASE_TS + i * 10} for i in range(N)]
    parts = rnd.choices(range(len(WEIGHTS)), WEIGHTS, k=N)
    return rows, parts


def _expected(rows: list[dict[str, Any]], scratch: Path) -> list[tuple[Any, ...]]:
    """DuckDB's 1 s tumbling counts over the same rows: every window that ends by the newest event
    time (the watermark once every partition is caught up and idle; no out-of-orderness, no grace)."""
    data = scratch / "backlog.jsonl"  # loaded as a file: row-by-row inserts of 40 k rows take ~20 s
    data.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM read_json(?, format = 'newline_delimited', "
                "columns = {'symbol': 'VARCHAR', 'qty': 'BIGINT', 'ts': 'BIGINT'})", [str(data)])
    return sorted(con.execute(
        "SELECT symbol, COUNT(*), SUM(qty), ts // 1000 * 1000 AS ws, ts // 1000 * 1000 + 1000 AS we FROM t "
        "GROUP BY symbol, ws, we HAVING we <= (SELECT MAX(ts) FROM t)").fetchall())


@pytest.fixture
async def manager(broker: str, tmp_path: Path) -> AsyncIterator[MultiJobSqlServer]:
    mgr = MultiJobSqlServer(ManagerConfig(broker, max_jobs=5, data_dir=tmp_path))
    yield mgr
    await mgr.shutdown()


@pytest.mark.parametrize("idle_timeout", ["0s", "200ms"])
async def test_a_backlog_loses_no_record_to_a_short_idle_timeout(
        broker: str, manager: MultiJobSqlServer, topic_name: Callable[[str], str], tmp_path: Path,
        idle_timeout: str) -> None:
    src, out = topic_name("backlog"), topic_name("windows")
    await create_topic(broker, src, len(WEIGHTS))
    rows, parts = _backlog()
    await produce(broker, src, rows, partitions=parts)
    expected = _expected(rows, tmp_path)
    # One fetch brings each partition's whole backlog, and the consumer hands buffered partitions out
    # one after the other: the partition handed out last sits unseen while at least 60 k records of
    # the others are processed — far longer than the idle timeout.
    job = await manager.deploy_job(
        f"START JOB {out} AS SELECT symbol, COUNT(*) AS c, SUM(qty) AS q FROM {src} GROUP BY symbol "
        f"WINDOW TUMBLING(1s) EMIT FINAL WITH ('event.time.field' = 'ts', "
        f"'watermark.idle_timeout' = '{idle_timeout}', 'kafka.max.partition.fetch.bytes' = '16777216', "
        f"'output.topic' = '{out}')")
    assert job.state is JobState.RUNNING, job.error
    await wait_until(lambda: job.metrics.records_in == N, timeout=60, message="the backlog read")
    got = await consume(broker, out, len(expected), timeout=30, settle=0.5)
    assert job.metrics.records_late == 0
    assert sorted((o["symbol"], o["c"], o["q"], o["window_start"], o["window_end"]) for o in got) == expected


def test_the_backlog_spreads_unevenly_with_interleaved_event_times() -> None:
    # What the test above relies on: every partition holds part of the backlog across the whole range.
    rows, parts = _backlog()
    counts = [parts.count(p) for p in range(len(WEIGHTS))]
    assert counts[0] > 3 * counts[3] > 0
    for p in range(len(WEIGHTS)):
        times = [r["ts"] for r, q in zip(rows, parts, strict=True) if q == p]
        assert times == sorted(times) and times[0] - BASE_TS < 10_000 and BASE_TS + N * 10 - times[-1] < 10_000
