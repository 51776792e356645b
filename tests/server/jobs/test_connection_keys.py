"""The WITH keys that say where a job reads and writes, each doing what it says on real brokers.

``'<name>.bootstrap.servers'`` (a source or the sink on another cluster: a second embedded broker
here), ``'<name>.group.id'`` (the group a job commits to, instead of ``velo-<job>``) and
``'<sink>.type' = 'file_sink'`` (JSON lines or CSV under the data directory). Each was accepted and
then ignored before: the job read and wrote the server's cluster, committed to ``velo-<job>`` and
wrote a Kafka topic named after the sink.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from velo.grammar import ast, parse_statement
from velo.grammar.errors import SqlValidationError
from velo.server.connectors.embedded_kafka import EmbeddedKafka
from velo.server.connectors.kafka import KafkaAdmin
from velo.server.engine.validate import check_job_properties
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.runtime import JobState
from velo.server.jobs.views import job_view

from tests.kafka_helpers import consume, create_topic, produce, wait_until

TRADES = [{"id": i, "symbol": ["AAPL", "MSFT", "A,B \"co\""][i % 3], "price": 100 + i,
           "note": None if i % 4 == 0 else f"n{i}"} for i in range(30)]


@pytest.fixture(scope="module")
def other_cluster() -> Iterator[str]:
    """A second broker: a cluster the server was not started with."""
    with EmbeddedKafka() as kafka:
        yield kafka.bootstrap_servers


@pytest.fixture
async def manager(broker: str, tmp_path: Path) -> AsyncIterator[MultiJobSqlServer]:
    mgr = MultiJobSqlServer(ManagerConfig(broker, data_dir=tmp_path))
    yield mgr
    await mgr.shutdown()


async def topic_exists(brokers: str, topic: str) -> bool:
    admin = KafkaAdmin(brokers)
    try:
        return await admin.partition_count(topic) is not None
    finally:
        await admin.close()


async def committed(brokers: str, group: str, topic: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()


async def test_a_source_on_another_cluster_is_read_there(manager: MultiJobSqlServer, broker: str, other_cluster: str,
                                                         topic_name: Callable[[str], str]) -> None:
    source = topic_name("far")
    await create_topic(other_cluster, source, 1)  # on the other cluster only
    await produce(other_cluster, source, TRADES)
    job = await manager.deploy_job(f"START JOB far_reader AS SELECT id FROM {source} WHERE price >= 120 "
                                   f"WITH ('{source}.bootstrap.servers' = '{other_cluster}', "
                                   f"'output.topic' = '{source}_out')")
    assert sorted(r["id"] for r in await consume(broker, f"{source}_out", 10)) == list(range(20, 30))
    assert job.state is JobState.RUNNING
    assert not await topic_exists(broker, source)
    # It commits where it reads: the other cluster holds the job's group offsets.
    await manager.stop_job("far_reader")
    assert await committed(other_cluster, "velo-far_reader", source) == 30


async def test_a_sink_on_another_cluster_is_written_there(manager: MultiJobSqlServer, broker: str, other_cluster: str,
                                                          topic_name: Callable[[str], str]) -> None:
    source = topic_name("near")
    await create_topic(broker, source, 1)
    await produce(broker, source, TRADES)
    sink = topic_name("far_out")
    await manager.deploy_job(f"CREATE STREAM {sink} AS SELECT id, symbol FROM {source} WHERE id < 5 "
                             f"WITH ('{sink}.bootstrap.servers' = '{other_cluster}')")
    assert sorted(r["id"] for r in await consume(other_cluster, sink, 5)) == list(range(5))
    assert not await topic_exists(broker, sink)  # created on the sink's cluster, not the server's


async def test_group_id_is_the_group_the_job_commits_to(manager: MultiJobSqlServer, broker: str,
                                                        topic_name: Callable[[str], str]) -> None:
    source = topic_name("grp")
    await create_topic(broker, source, 1)
    await produce(broker, source, TRADES[:10])
    sql = (f"START JOB team_job AS SELECT id FROM {source} "
           f"WITH ('{source}.group.id' = 'analytics-team', 'output.topic' = '{source}_out')")
    job = await manager.deploy_job(sql)
    await wait_until(lambda: job.metrics.records_in == 10, message="ten records read")
    assert job_view(job)["consumer_group"] == "analytics-team"
    await manager.stop_job("team_job")
    assert await committed(broker, "analytics-team", source) == 10
    assert await committed(broker, "velo-team_job", source) is None
    # A redeploy resumes from that group: only the new records are read.
    await produce(broker, source, TRADES[10:13])
    again = await manager.deploy_job(sql)
    await wait_until(lambda: again.metrics.records_in == 3, message="the three new records")
    assert sorted(r["id"] for r in await consume(broker, f"{source}_out", 13)) == list(range(13))


async def test_a_file_sink_writes_json_lines_under_the_data_dir(manager: MultiJobSqlServer, broker: str,
                                                                tmp_path: Path,
                                                                topic_name: Callable[[str], str]) -> None:
    source = topic_name("fs")
    await create_topic(broker, source, 1)
    await produce(broker, source, TRADES)
    job = await manager.deploy_job(f"START JOB to_file AS SELECT id, symbol, note FROM {source} WHERE id < 8 "
                                   "WITH ('to_file.type' = 'file_sink', 'to_file.path' = 'exports/trades.jsonl')")
    out = tmp_path / "exports" / "trades.jsonl"
    await wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 8, message="eight lines")
    assert [orjson.loads(line) for line in out.read_text().splitlines()] == [
        {"id": t["id"], "symbol": t["symbol"], "note": t["note"]} for t in TRADES[:8]]
    assert job.spec.sink_topic == "exports/trades.jsonl"
    assert not await topic_exists(broker, "to_file")  # no Kafka topic for a file sink


async def test_a_file_sink_writes_csv_with_a_header(manager: MultiJobSqlServer, broker: str, tmp_path: Path,
                                                    topic_name: Callable[[str], str]) -> None:
    source = topic_name("csv")
    await create_topic(broker, source, 1)
    await produce(broker, source, TRADES[:6])
    # The format from the path's extension; a second job with 'format' = 'csv' and a .txt path.
    await manager.deploy_job(f"START JOB to_csv AS SELECT id, symbol, note, price * 2 AS doubled FROM {source} "
                             "WITH ('to_csv.type' = 'file_sink', 'to_csv.path' = 'out.csv')")
    await manager.deploy_job(f"START JOB to_txt AS SELECT id FROM {source} WITH ('to_txt.type' = 'file_sink', "
                             "'to_txt.path' = 'ids.txt', 'to_txt.format' = 'csv', 'to_txt.delimiter' = ';')")
    out, txt = tmp_path / "out.csv", tmp_path / "ids.txt"
    await wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 7
                     and txt.exists() and len(txt.read_text().splitlines()) == 7, message="a header and six rows")
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == ["id", "symbol", "note", "doubled"]
    assert rows[1:] == [[str(t["id"]), str(t["symbol"]), "" if t["note"] is None else str(t["note"]),
                         str(2 * int(str(t["price"])))] for t in TRADES[:6]]
    assert 'A,B ""co""' in out.read_text()  # quoted as CSV quotes
    assert txt.read_text().splitlines() == ["id", *(str(t["id"]) for t in TRADES[:6])]


def test_a_query_has_no_group_to_commit_to() -> None:
    """``'<name>.group.id'`` in a transient query would do nothing (it commits no offsets): refused there."""
    sql = "SELECT id FROM trades\nWITH ('trades.group.id' = 'team')"
    select = parse_statement(sql)
    assert isinstance(select, ast.Select)
    with pytest.raises(SqlValidationError, match="a query commits no offsets") as info:
        check_job_properties(select, {p.key: p.value for p in select.properties},
                             {p.key.lower(): p for p in select.properties})
    assert (info.value.line, info.value.column) == (2, 7)
