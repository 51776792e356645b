"""Stateful jobs keep their operator state across a stop, a server restart and a crash (snapshots.py).

A tumbling EMIT FINAL count is the probe: a window open when the job went away must still count
every record once it closes. Without snapshots the restarted job resumed from its committed offsets
with empty state, and such a window undercounted.
"""

from __future__ import annotations

import logging
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.partitioner import murmur2
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.registry import JobRegistry
from velo.server.jobs.runtime import JobState
from velo.server.jobs.snapshots import SnapshotStore

from tests.conftest import ServerProcess
from tests.kafka_helpers import consume, create_topic, produce, wait_until

WINDOW_MS = 10_000


def window_job(name: str, source: str, out: str, extra: str = "") -> str:
    return (f"START JOB {name} AS SELECT symbol, COUNT(*) AS c FROM {source} GROUP BY symbol "
            f"WINDOW TUMBLING(10s) EMIT FINAL WITH ('event.time.field' = 'ts', "
            f"'watermark.idle_timeout' = '0s', 'output.topic' = '{out}'{extra});")


def finals(rows: list[Any]) -> list[tuple[str, int, int]]:
    return sorted((r["symbol"], r["window_start"], r["c"]) for r in rows)


@pytest.fixture
async def manager(broker: str, tmp_path: Path) -> AsyncIterator[MultiJobSqlServer]:
    mgr = MultiJobSqlServer(ManagerConfig(broker, data_dir=tmp_path))
    yield mgr
    await mgr.shutdown()


async def test_a_window_open_at_a_graceful_stop_counts_every_record_after_the_redeploy(
    manager: MultiJobSqlServer, broker: str, tmp_path: Path, topic_name: Callable[[str], str]
) -> None:
    source, out = topic_name("half"), topic_name("half_out")
    await create_topic(broker, source, 1)
    # No periodic snapshot: the ones on pause and stop are what this test sees.
    sql = window_job("halves", source, out, ", 'state.snapshot.interval' = '1h'")
    store = SnapshotStore(tmp_path / "state")
    job = await manager.deploy_job(sql)
    await produce(broker, source, [{"symbol": "A", "ts": 1000 * i} for i in range(5)])
    await wait_until(lambda: job.metrics.records_in == 5, message="the first half read")
    assert not store.exists("halves")
    await manager.pause_job("halves")  # a pause snapshots the state
    paused = store.load("halves")
    assert paused is not None and paused.positions == {(0, source, 0): 5}
    await manager.resume_job("halves")
    await manager.stop_job("halves")
    assert job.state is JobState.STOPPED
    assert store.exists("halves")  # kept with the committed offsets: a redeploy picks both up

    job = await manager.deploy_job(sql)
    assert job.history[-1].reason == "connected, operator state restored from its snapshot"
    await produce(broker, source, [{"symbol": "A", "ts": 5000 + 1000 * i} for i in range(5)])
    await produce(broker, source, [{"symbol": "A", "ts": 25_000}])  # the watermark passes the window's end
    rows = await consume(broker, out, 1, timeout=30, settle=1.0)
    assert finals(rows) == [("A", 0, 10)]  # every record, none twice


async def test_a_new_manager_on_the_same_data_dir_restores_the_state(
    broker: str, tmp_path: Path, topic_name: Callable[[str], str]
) -> None:
    source, out = topic_name("reboot"), topic_name("reboot_out")
    await create_topic(broker, source, 1)
    config = ManagerConfig(broker, data_dir=tmp_path)
    first = MultiJobSqlServer(config, registry=JobRegistry(tmp_path / "registry.sqlite3"))
    job = await first.deploy_job(window_job("reboot", source, out))
    await produce(broker, source, [{"symbol": s, "ts": 100 * i} for i in range(6) for s in "AB"])
    await wait_until(lambda: job.metrics.records_in == 12, message="the first half read")
    await first.shutdown()  # a server stop: every job drains and snapshots, the registry keeps them

    second = MultiJobSqlServer(config, registry=JobRegistry(tmp_path / "registry.sqlite3"))
    try:
        assert await second.restore() == ["reboot"]
        job = second.get_job("reboot")
        assert await job.wait_for(frozenset({JobState.RUNNING}), 10) is JobState.RUNNING
        await produce(broker, source, [{"symbol": "A", "ts": 9000}, {"symbol": "B", "ts": 9999},
                                       {"symbol": "C", "ts": 12_000}])
        await produce(broker, source, [{"symbol": "C", "ts": 30_000}])
        rows = await consume(broker, out, 3, timeout=30, settle=1.0)
        assert finals(rows) == [("A", 0, 7), ("B", 0, 7), ("C", 10_000, 1)]
    finally:
        await second.shutdown()


async def test_a_changed_query_under_the_same_name_starts_empty(
    manager: MultiJobSqlServer, broker: str, tmp_path: Path, topic_name: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, out = topic_name("change"), topic_name("change_out")
    await create_topic(broker, source, 1)
    store = SnapshotStore(tmp_path / "state")
    job = await manager.deploy_job(window_job("changing", source, out))
    await produce(broker, source, [{"symbol": "A", "ts": 1000 * i} for i in range(4)])
    await wait_until(lambda: job.metrics.records_in == 4, message="records read")
    await manager.stop_job("changing")
    before = store.load("changing")
    assert before is not None

    # Same name, another query (a sum, not a count): the old state does not fit it.
    changed = (f"START JOB changing AS SELECT symbol, SUM(ts) AS c FROM {source} GROUP BY symbol "
               f"WINDOW TUMBLING(10s) EMIT FINAL WITH ('event.time.field' = 'ts', "
               f"'watermark.idle_timeout' = '0s', 'output.topic' = '{out}');")
    with caplog.at_level(logging.INFO, logger="velo.job"):
        job = await manager.deploy_job(changed)
    assert job.history[-1].reason == "connected"
    assert "query changed since its state snapshot" in caplog.text
    assert not store.exists("changing")
    await produce(broker, source, [{"symbol": "A", "ts": 5000}, {"symbol": "A", "ts": 40_000}])
    rows = await consume(broker, out, 1, timeout=30, settle=1.0)
    # It resumed from the committed offsets with empty state: only the new record is in the window.
    assert finals(rows) == [("A", 0, 5000)]
    await manager.stop_job("changing")
    after = store.load("changing")
    assert after is not None and after.fingerprint != before.fingerprint


def key_for(partition: int, partitions: int, prefix: str) -> bytes:
    """A message key the default partitioner sends to ``partition``."""
    return next(k for k in (f"{prefix}{i}".encode() for i in range(1000))
                if (murmur2(k) & 0x7FFFFFFF) % partitions == partition)


async def test_after_a_sigkill_no_window_undercounts(
    broker: str, tmp_path: Path, topic_name: Callable[[str], str]
) -> None:
    source, out = topic_name("kill"), topic_name("kill_out")
    await create_topic(broker, source, 2)
    keys = [key_for(0, 2, "k"), key_for(1, 2, "k")]
    sent: list[dict[str, Any]] = []

    async def send(start_ms: int, n: int) -> None:
        """``n`` records 100 ms of event time apart, alternating the partitions, in calls spanning 10 s.

        The watermark lags the newest event time by 15 s, more than one partition can run ahead of the
        other within a call, so no record is late and every window's exact count is known.
        """
        for first in range(0, n, 100):
            values = [{"symbol": "AB"[i % 3 % 2], "ts": start_ms + i * 100} for i in range(first, min(n, first + 100))]
            await produce(broker, source, values, keys=[keys[i % 2] for i in range(len(values))])
            sent.extend(values)

    sql = window_job("killed", source, out, ", 'watermark.max_out_of_orderness' = '15s', "
                                            "'state.snapshot.interval' = '300ms'")
    store = SnapshotStore(tmp_path / "state")

    def covered() -> int:
        snapshot = store.load("killed")
        return sum(snapshot.positions.values()) if snapshot is not None else 0

    server = ServerProcess(broker, tmp_path)
    try:
        assert httpx.post(f"{server.url}/jobs", json={"sql": sql}).status_code == 201
        await send(0, 150)  # windows 0 s and 10 s, both open (the watermark is below 0)
        await wait_until(lambda: covered() == 150, timeout=30, message="a snapshot covering the first 150 records")
        await send(15_000, 200)  # the watermark passes 10 s: window 0 s closes; 10 s..30 s fill
        await wait_until(lambda: httpx.get(f"{server.url}/jobs/killed").json()["metrics"]["records_in"] > 150,
                         message="the next records being read")
        server.proc.send_signal(signal.SIGKILL)  # no stop, no final snapshot
        server.proc.wait()
        await send(35_000, 100)  # arrives while the server is down
    finally:
        server.stop()

    server = ServerProcess(broker, tmp_path)  # same data dir: the registry and the snapshot are read back
    try:
        assert httpx.get(f"{server.url}/jobs/killed").json()["state"] == "RUNNING"
        exact = Counter((v["symbol"], v["ts"] - v["ts"] % WINDOW_MS) for v in sent)
        await send(100_000, 2)  # both partitions: the watermark (85 s) passes every window above
        rows = await consume(broker, out, len(exact), timeout=60, settle=2.0)
        # At-least-once: a window may come out twice (it closed after the snapshot, before the kill),
        # but every row has the exact count and every window is there.
        assert set(finals(rows)) == {(s, w, c) for (s, w), c in exact.items()}
        assert "operator state restored from its snapshot" in server.log_path.read_text()
    finally:
        server.stop()


async def test_a_stream_stream_join_keeps_its_buffered_rows_across_a_stop(
    manager: MultiJobSqlServer, broker: str, tmp_path: Path, topic_name: Callable[[str], str]
) -> None:
    left, right, out = topic_name("left"), topic_name("right"), topic_name("joined")
    await create_topic(broker, left, 2)
    await create_topic(broker, right, 1)
    sql = (f"START JOB pairs AS SELECT a.id AS id, a.x AS x, b.y AS y FROM {left} a JOIN {right} b "
           f"ON a.id = b.id WITHIN 1 MINUTE WITH ('event.time.field' = 'ts', 'output.topic' = '{out}');")
    job = await manager.deploy_job(sql)
    await produce(broker, left, [{"id": i, "x": i * 10, "ts": 1000 + i} for i in range(6)])
    await produce(broker, right, [{"id": 0, "y": "early", "ts": 1000}])
    await wait_until(lambda: job.metrics.records_in == 7, message="both inputs read")
    await manager.stop_job("pairs")
    snapshot = SnapshotStore(tmp_path / "state").load("pairs")
    assert snapshot is not None
    # Both inputs' partitions, each under its input's index: input 0 has two, input 1 one.
    assert {(i, t) for i, t, _ in snapshot.positions} == {(0, left), (1, right)}
    assert sum(o for (i, _, _), o in snapshot.positions.items() if i == 0) == 6

    await manager.deploy_job(sql)
    # The left rows waiting in the join's buffer meet right rows that arrive after the redeploy.
    await produce(broker, right, [{"id": i, "y": f"late{i}", "ts": 2000 + i} for i in range(1, 6)])
    rows = await consume(broker, out, 6, timeout=30, settle=1.0)
    assert sorted((r["id"], r["y"]) for r in rows) == [(0, "early"), *((i, f"late{i}") for i in range(1, 6))]
