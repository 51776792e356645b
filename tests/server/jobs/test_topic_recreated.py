"""A restored job against a topic that is not the one it left: recreated, missing, or read from 'latest'.

Real velo-server processes on real brokers. "A fresh broker" is a second embedded broker under the
same data dir (the embedded broker keeps nothing across a restart); "a topic deleted and created again"
is done on the session broker (Tansu deletes topics, and their committed offsets with them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from velo.server.connectors.embedded_kafka import EmbeddedKafka

from tests.conftest import ServerProcess
from tests.kafka_helpers import consume, create_topic, produce, wait_until


def counts_job(name: str, source: str, out: str) -> str:
    """A stateful job: a running count and sum per symbol (its state is snapshotted at every stop)."""
    return (f"START JOB {name} AS SELECT symbol, COUNT(*) AS c, SUM(qty) AS q FROM {source} "
            f"GROUP BY symbol EMIT CHANGES WITH ('output.topic' = '{out}');")


def trades(n: int, seed: int) -> list[dict[str, Any]]:
    return [{"symbol": "ABCDE"[(i * 7 + seed) % 5], "qty": (i * 13 + seed) % 100} for i in range(n)]


def expected_totals(records: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """What the job must end with, computed here (not by the engine): per symbol, count and sum."""
    out: dict[str, tuple[int, int]] = {}
    for r in records:
        c, q = out.get(r["symbol"], (0, 0))
        out[r["symbol"]] = (c + 1, q + r["qty"])
    return out


def latest_totals(rows: list[Any]) -> dict[str, tuple[int, int]]:
    """The last row per symbol of an EMIT CHANGES output, in the order written (one partition)."""
    return {r["symbol"]: (r["c"], r["q"]) for r in rows if r is not None}


def job(server: ServerProcess, name: str) -> dict[str, Any]:
    view: dict[str, Any] = httpx.get(f"{server.url}/jobs/{name}").json()
    return view


def reasons(view: dict[str, Any]) -> list[str]:
    return [h["reason"] for h in view["history"]]


async def delete_topic(brokers: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def topic_gone(brokers: str, topic: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        return topic not in await admin.list_topics()
    finally:
        await admin.close()


@pytest.fixture
def fresh_brokers() -> Iterator[Callable[[], str]]:
    """Start embedded brokers of the test's own (each empty); all are stopped after the test."""
    started: list[EmbeddedKafka] = []

    def start() -> str:
        kafka = EmbeddedKafka().start()
        started.append(kafka)
        return kafka.bootstrap_servers

    yield start
    for kafka in started:
        kafka.stop()


async def run_first(brokers: str, data_dir: Path, source: str, out: str, records: list[dict[str, Any]]) -> None:
    """Deploy two counting jobs (one left paused), feed them ``records`` and stop the server gracefully."""
    await create_topic(brokers, source, 1)
    server = ServerProcess(brokers, data_dir)
    try:
        for name in ("live", "held"):
            r = httpx.post(f"{server.url}/jobs", json={"sql": counts_job(name, source, f"{out}_{name}")})
            assert r.status_code == 201, r.text
        await produce(brokers, source, records)
        await wait_until(lambda: all(job(server, n)["metrics"]["records_in"] == len(records) for n in ("live", "held")),
                         message="both jobs read the first run's records")
        assert httpx.post(f"{server.url}/jobs/held/pause").json()["state"] == "PAUSED"
    finally:
        server.stop()  # SIGTERM: both jobs snapshot their state at their positions (600)
    assert (data_dir / "state" / "live.snapshot").exists() and (data_dir / "state" / "held.snapshot").exists()


async def test_a_job_restored_against_a_fresh_broker_reads_the_new_topic(
    fresh_brokers: Callable[[], str], tmp_path: Path, topic_name: Callable[[str], str]
) -> None:
    source, out = topic_name("fresh"), topic_name("fresh_out")
    await run_first(fresh_brokers(), tmp_path, source, out, trades(600, 1))

    second = fresh_brokers()  # a new, empty broker: the topic is created again with fewer records
    await create_topic(second, source, 1)
    new = trades(250, 2)
    await produce(second, source, new)
    server = ServerProcess(second, tmp_path)  # the same data dir: registry and snapshots come back
    try:
        live = job(server, "live")
        assert live["state"] == "RUNNING"
        history = reasons(live)
        assert any(f"source {source} partition 0: saved position 600 is past the topic's end 250" in r
                   and "snapshot discarded, reading from earliest (auto.offset.reset)" in r for r in history), history
        assert not any("restored from its snapshot" in r for r in history)
        await wait_until(lambda: job(server, "live")["metrics"]["records_in"] == 250, message="the new records read")
        await wait_until(lambda: job(server, "live")["metrics"]["lag"] == 0, message="live caught up")
        rows = await consume(second, f"{out}_live", 1, timeout=30, settle=1.0)
        assert latest_totals(rows) == expected_totals(new)  # the new topic's records only, from empty state

        # The paused job was moved to the new topic's start too: while it reads nothing its lag says
        # how much there is to read, never 0.
        held = job(server, "held")
        assert held["state"] == "PAUSED"
        assert held["metrics"]["lag"] == 250
        assert [(p["position"], p["lag"]) for p in held["partitions"]] == [(0, 250)]
        assert httpx.post(f"{server.url}/jobs/held/resume").json()["state"] == "RUNNING"
        await wait_until(lambda: job(server, "held")["metrics"]["records_in"] == 250, message="held reads")
        await wait_until(lambda: job(server, "held")["metrics"]["lag"] == 0, message="held caught up")
        rows = await consume(second, f"{out}_held", 1, timeout=30, settle=1.0)
        assert latest_totals(rows) == expected_totals(new)
    finally:
        server.stop()


async def test_a_topic_deleted_and_recreated_with_more_records_is_read_from_its_start(
    broker: str, tmp_path: Path, topic_name: Callable[[str], str]
) -> None:
    """The saved positions (300) are inside the new topic (500 records): only the lost offsets tell."""
    source, out = topic_name("again"), topic_name("again_out")
    await run_first(broker, tmp_path, source, out, trades(300, 3))
    await delete_topic(broker, source)
    await wait_until(lambda: topic_gone(broker, source), message="the topic deleted")
    await create_topic(broker, source, 1)
    new = trades(500, 4)
    await produce(broker, source, new)
    server = ServerProcess(broker, tmp_path)
    try:
        history = reasons(job(server, "live"))
        assert any(f"source {source} the snapshot's positions have no committed offsets in group velo-live" in r
                   and "topic recreated? snapshot discarded, reading from earliest" in r for r in history), history
        await wait_until(lambda: job(server, "live")["metrics"]["records_in"] == 500, message="the new records read")
        await wait_until(lambda: job(server, "live")["metrics"]["lag"] == 0, message="caught up")
        rows = await consume(broker, f"{out}_live", 1, timeout=30, settle=1.0)
        assert latest_totals(rows) == expected_totals(new)  # not the old state plus the last 200
    finally:
        server.stop()


async def test_a_topic_recreated_under_a_running_job_is_noticed_and_read(
    broker: str, start_server: Callable[..., ServerProcess], topic_name: Callable[[str], str]
) -> None:
    source, out = topic_name("under"), topic_name("under_out")
    await create_topic(broker, source, 1)
    server = start_server()
    assert httpx.post(f"{server.url}/jobs", json={"sql": counts_job("under", source, out)}).status_code == 201
    await produce(broker, source, trades(400, 5))
    await wait_until(lambda: job(server, "under")["metrics"]["records_in"] == 400, message="the first records read")
    await delete_topic(broker, source)
    await wait_until(lambda: topic_gone(broker, source), message="the topic deleted")
    await create_topic(broker, source, 1)
    new = trades(150, 6)
    await produce(broker, source, new)
    await wait_until(lambda: job(server, "under")["metrics"]["records_in"] == 550, timeout=30,
                     message="the recreated topic's records read")
    history = reasons(job(server, "under"))
    # The end the job saw depends on when it looked: the new topic empty (0) or holding the 150.
    noticed = re.compile(rf"source {source} partition 0: position 400 is past the topic's end (0|150) — topic "
                         r"recreated\? operator state discarded, reading from earliest")
    assert any(noticed.search(r) for r in history), history
    await wait_until(lambda: job(server, "under")["metrics"]["lag"] == 0, message="caught up")
    rows = await consume(broker, out, 1, timeout=30, settle=1.0)
    assert latest_totals(rows) == expected_totals(new)  # counted from empty state, not on top of the old


async def test_a_job_whose_topic_is_missing_at_restore_waits_for_it_and_starts(
    broker: str, tmp_path: Path, topic_name: Callable[[str], str]
) -> None:
    source, other = topic_name("later"), topic_name("never")
    await create_topic(broker, source, 1)
    await create_topic(broker, other, 1)
    server = ServerProcess(broker, tmp_path)
    try:
        for name, topic in (("waits", source), ("dropped", other)):
            sql = f"START JOB {name} AS SELECT n FROM {topic} WITH ('output.topic' = '{topic}_out');"
            assert httpx.post(f"{server.url}/jobs", json={"sql": sql}).status_code == 201
    finally:
        server.stop()
    for topic in (source, other):
        await delete_topic(broker, topic)
        await wait_until(lambda t=topic: topic_gone(broker, t), message=f"{topic} deleted")  # type: ignore[misc]

    server = ServerProcess(broker, tmp_path)
    try:
        jobs = {j["name"]: j for j in httpx.get(f"{server.url}/jobs").json()["jobs"]}
        assert set(jobs) == {"waits", "dropped"}  # still listed: a job definition is the user's data
        for name, topic in (("waits", source), ("dropped", other)):
            assert jobs[name]["state"] == "DEGRADED"
            assert jobs[name]["history"][-1]["reason"] == f"waiting for topic '{topic}' to exist"
        # A waiting job can be stopped (and is forgotten, as any stopped job).
        assert httpx.delete(f"{server.url}/jobs/dropped").json()["state"] == "STOPPED"
        assert [j["name"] for j in httpx.get(f"{server.url}/jobs").json()["jobs"]] == ["waits"]
        # ... and paused and resumed at once (not after a timeout), still waiting.
        paused = httpx.post(f"{server.url}/jobs/waits/pause", timeout=3).json()
        assert paused["state"] == "PAUSED"
        assert paused["history"][-1]["reason"] == f"paused, waiting for topic '{source}' to exist"
        assert httpx.post(f"{server.url}/jobs/waits/resume", timeout=3).json()["state"] == "DEGRADED"

        await create_topic(broker, source, 1)
        await produce(broker, source, [{"n": i} for i in range(20)])
        await wait_until(lambda: job(server, "waits")["state"] == "RUNNING", timeout=30, message="the job started")
        rows = await consume(broker, f"{source}_out", 20, timeout=30, settle=0.5)
        assert sorted(r["n"] for r in rows) == list(range(20))
    finally:
        server.stop()

    server = ServerProcess(broker, tmp_path)  # the stopped one stays gone, the other runs on
    try:
        jobs = httpx.get(f"{server.url}/jobs").json()["jobs"]
        assert [(j["name"], j["state"]) for j in jobs] == [("waits", "RUNNING")]
    finally:
        server.stop()


@pytest.mark.parametrize("per_input", [False, True], ids=["job_key", "input_key"])
async def test_auto_offset_reset_latest_reads_only_what_comes_after_the_deploy(
    broker: str, start_server: Callable[..., ServerProcess], topic_name: Callable[[str], str], per_input: bool
) -> None:
    source, out = topic_name("late"), topic_name("late_out")
    await create_topic(broker, source, 2)
    await produce(broker, source, [{"n": i} for i in range(1000)])
    server = start_server()
    key = f"{source}.auto.offset.reset" if per_input else "auto.offset.reset"
    sql = (f"START JOB tail AS SELECT n FROM {source} "
           f"WITH ('output.topic' = '{out}', '{key}' = 'latest');")
    assert httpx.post(f"{server.url}/jobs", json={"sql": sql}).status_code == 201
    await produce(broker, source, [{"n": i} for i in range(1000, 1300)])
    rows = await consume(broker, out, 300, timeout=30, settle=1.5)
    assert sorted(r["n"] for r in rows) == list(range(1000, 1300))  # exactly the 300 new ones
