"""Compressed topics, end to end on the real broker: every codec in, every codec out.

Production topics are often written by librdkafka (confluent-kafka, the Java client's C twin) with
``compression.type`` snappy, lz4 or zstd; aiokafka decompresses those only with its codec extras, so a
job over such a topic failed. Here a librdkafka producer writes each codec, a job reads it, and the
batches on the wire are checked to really be compressed (a raw Fetch: no client hides the codec). A
job's sink compresses as ``'<sink>.compression'`` says, read back on the wire the same way. A server
whose install lacks the codecs (cramjam hidden from it) keeps the job, DEGRADED, with a reason that
names the codec and the fix.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords
from confluent_kafka import Producer
from velo.grammar.errors import SqlValidationError
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.runtime import JobState

from tests.conftest import ServerProcess
from tests.kafka_helpers import consume, create_topic, wait_until

CODECS = ("gzip", "snappy", "lz4", "zstd")
_CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}  # a record batch's attributes & 7


@pytest.fixture
async def manager(broker: str, tmp_path: Path) -> AsyncIterator[MultiJobSqlServer]:
    mgr = MultiJobSqlServer(ManagerConfig(broker, data_dir=tmp_path))
    yield mgr
    await mgr.shutdown()


def produce_with_librdkafka(brokers: str, topic: str, codec: str, n: int) -> None:
    """``n`` JSON trades from a confluent-kafka (librdkafka) producer compressing with ``codec``."""
    producer = Producer({"bootstrap.servers": brokers, "compression.type": codec, "linger.ms": 20,
                         "log_level": 3})
    for i in range(n):
        producer.produce(topic, orjson.dumps({"id": i, "symbol": f"S{i % 7}", "note": "x" * 40}),
                         key=f"k{i}".encode())
    assert producer.flush(15) == 0, "librdkafka did not deliver every record"


async def wire_codecs(brokers: str, topic: str, partition: int = 0) -> list[str]:
    """The codec of each record batch of a partition, as the broker returns them to a raw Fetch."""
    client = AIOKafkaClient(bootstrap_servers=brokers)
    await client.bootstrap()
    try:
        await client.force_metadata_update()
        node = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        response = await client.send(node, FetchRequest(100, 1, 8 << 20, 0, [(topic, [(partition, 0, 8 << 20)])]))
        codecs = []
        for _topic, partitions in response.topics:
            for data in partitions:
                records = MemoryRecords(data[-1])
                while records.has_next():
                    batch = records.next_batch()
                    assert batch is not None
                    codecs.append(_CODEC_NAMES[batch.compression_type])
        return codecs
    finally:
        await client.close()


@pytest.mark.parametrize("codec", CODECS)
async def test_a_job_reads_a_topic_librdkafka_compressed(manager: MultiJobSqlServer, broker: str,
                                                       topic_name: Callable[[str], str], codec: str) -> None:
    source = topic_name(f"rd_{codec}")
    await create_topic(broker, source, 1)
    produce_with_librdkafka(broker, source, codec, 300)
    codecs = await wire_codecs(broker, source)
    assert codecs and set(codecs) == {codec}, codecs  # the input really is compressed, batch by batch

    job = await manager.deploy_job(f"START JOB rd_{codec} AS SELECT id, symbol FROM {source} WHERE id % 3 = 0 "
                                   f"WITH ('output.topic' = '{source}_out')")
    out = await consume(broker, f"{source}_out", 100)
    assert sorted(r["id"] for r in out) == list(range(0, 300, 3))
    assert {r["symbol"] for r in out} == {f"S{i % 7}" for i in range(0, 300, 3)}
    assert job.state is JobState.RUNNING and job.metrics.records_in == 300


@pytest.mark.parametrize("codec", ["none", *CODECS])
async def test_a_sink_compresses_as_its_compression_key_says(manager: MultiJobSqlServer, broker: str,
                                                            topic_name: Callable[[str], str], codec: str) -> None:
    source = topic_name("plain")
    await create_topic(broker, source, 1)
    produce_with_librdkafka(broker, source, "none", 200)
    sink = topic_name(f"zip_{codec}")
    await manager.deploy_job(f"CREATE STREAM {sink} AS SELECT id, symbol, note FROM {source} "
                             f"WITH ('{sink}.compression' = '{codec.upper()}')")
    out = await consume(broker, sink, 200)  # aiokafka decodes every batch of the sink
    assert sorted(r["id"] for r in out) == list(range(200))
    # The codec on the wire, whatever partitions the sink topic was created with.
    partitions = await manager.admin.partition_count(sink) or 1
    codecs = [c for p in range(partitions) for c in await wire_codecs(broker, sink, p)]
    assert codecs and set(codecs) == {codec}, codecs


def test_an_unknown_codec_is_refused_at_its_property(manager: MultiJobSqlServer) -> None:
    with pytest.raises(SqlValidationError) as info:
        manager.build_spec("CREATE STREAM out AS SELECT id FROM trades\n  WITH ('out.compression' = 'lz5')")
    exc = info.value
    assert exc.message == "'out.compression' must be none, gzip, snappy, lz4 or zstd, got 'lz5'; did you mean lz4?"
    assert (exc.line, exc.column, exc.suggestions) == (2, 9, ["lz4"])
    with pytest.raises(SqlValidationError, match=r"'trades\.compression' applies to a job's sink") as info:
        manager.build_spec("CREATE STREAM out AS SELECT id FROM trades WITH ('trades.compression' = 'gzip')")
    assert info.value.column == 50


async def test_a_server_without_the_codecs_keeps_the_job_degraded_naming_the_fix(
        broker: str, tmp_path: Path, topic_name: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without the codec libraries (as before they were dependencies): the job stays, DEGRADED.

    A ``cramjam`` package that fails to import, first on the server's path, is what aiokafka sees in
    an install without its extras. The job reads nothing it cannot decode — it does not skip the
    records, nor fail and vanish — and says which codec is missing and how to fix it.
    """
    source = topic_name("lz4_in")
    await create_topic(broker, source, 1)
    produce_with_librdkafka(broker, source, "lz4", 50)
    hide = tmp_path / "no_codecs" / "cramjam"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text('raise ImportError("cramjam is not installed (test)")\n', encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hide.parent), os.environ.get("PYTHONPATH")])))
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(broker, data)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            sql = f"START JOB lz4_reader AS SELECT id FROM {source} WITH ('output.topic' = '{source}_out')"
            assert (await http.post("/jobs", json={"sql": sql})).status_code in (200, 201)

            async def degraded() -> bool:
                return (await http.get("/jobs/lz4_reader")).json()["state"] == "DEGRADED"

            await wait_until(degraded, message="the job DEGRADED")
            job = (await http.get("/jobs/lz4_reader")).json()
            reason = job["history"][-1]["reason"]
            assert "lz4" in reason and "pip install 'aiokafka[lz4,snappy,zstd]'" in reason, reason
            assert job["metrics"]["records_in"] == 0  # nothing skipped: the records wait for the codec
            assert [j["name"] for j in (await http.get("/jobs")).json()["jobs"]] == ["lz4_reader"]
            # A sink asking for a codec this install lacks is refused at its property, with the fix.
            sql = f"CREATE STREAM zipped AS SELECT id FROM {source} WITH ('zipped.compression' = 'zstd')"
            refused = await http.post("/jobs", json={"sql": sql})
            assert refused.status_code == 400
            error = refused.json()["error"]
            assert "lacks the zstd codec" in error["message"] and "aiokafka[lz4,snappy,zstd]" in error["message"]
            assert (error["line"], error["column"]) == (1, sql.index("'zipped.compression'") + 1)
    finally:
        server.stop()
