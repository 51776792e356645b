"""Retractions of EMIT CHANGES results reach Kafka as tombstones (the key with a null value)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from velo.grammar import parse_statement
from velo.server.connectors.base import Record
from velo.server.engine import compile_select
from velo.server.engine.snapshot import decode
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer

from tests.kafka_helpers import create_topic, produce, wait_until

QUERY = "SELECT symbol, COUNT(*) AS n FROM {src} GROUP BY symbol HAVING COUNT(*) < 2 EMIT CHANGES"


def test_a_retracted_group_becomes_a_tombstone_in_encode_mode() -> None:
    processor = compile_select(parse_statement(QUERY.format(src="t"))).processor("encode")
    first, second = (processor.process([Record(orjson.dumps({"symbol": "A"}), offset=i)]).rows for i in (0, 1))
    assert first == [(b"A", b'{"symbol":"A","n":1}')]
    assert second == [(b"A", None)]  # HAVING turned false: the key is retracted


def test_a_retraction_goes_out_under_the_primary_key_its_upsert_used() -> None:
    # The group key is (symbol, venue); the PRIMARY KEY is the venue-less label, so the tombstone must
    # carry the label — the operator's own key would leave the upserted row standing in a compacted topic.
    sql = ("SELECT symbol || '@' || venue AS label PRIMARY KEY, COUNT(*) AS n FROM t "
           "GROUP BY symbol, venue HAVING COUNT(*) < 2 EMIT CHANGES")
    processor = compile_select(parse_statement(sql)).processor("encode")
    rec = [Record(orjson.dumps({"symbol": "A", "venue": "X"}), offset=i) for i in (0, 1)]
    assert processor.process([rec[0]]).rows == [(b"A@X", b'{"label":"A@X","n":1}')]
    assert processor.process([rec[1]]).rows == [(b"A@X", None)]


def test_the_key_an_upsert_went_out_under_survives_a_snapshot() -> None:
    sql = ("SELECT symbol || '@' || venue AS label PRIMARY KEY, COUNT(*) AS n FROM t "
           "GROUP BY symbol, venue HAVING COUNT(*) < 2 EMIT CHANGES")
    query = compile_select(parse_statement(sql))
    first = query.processor("encode")
    first.process([Record(orjson.dumps({"symbol": "A", "venue": "X"}), offset=0)])
    data = first.snapshot()
    assert data is not None
    second = query.processor("encode")
    second.restore(data)
    assert second.process([Record(orjson.dumps({"symbol": "A", "venue": "X"}), offset=1)]).rows == [(b"A@X", None)]


def test_a_closed_window_forgets_the_key_it_was_sent_under() -> None:
    # What an operator remembers is what its snapshot holds (a restart brings back exactly that): the
    # snapshot, through the engine's own decoder, shows the keys kept for later retractions.
    sql = ("SELECT symbol AS s PRIMARY KEY, COUNT(*) AS n FROM t WINDOW TUMBLING (SIZE 1 SECOND) "
           "GROUP BY symbol EMIT CHANGES WITH ('watermark.idle_timeout' = '0s')")
    query = compile_select(parse_statement(sql))

    def after(windows: int) -> bytes:
        processor = query.processor("encode")
        for i in range(windows):  # one record per window, each far past any out-of-orderness
            out = processor.process([Record(orjson.dumps({"symbol": "A"}), offset=i, timestamp=i * 100_000)])
            assert [key for key, _ in out.rows] == [b"A"]  # each window's row went out under the key A
        data = processor.snapshot()
        assert data is not None
        return data

    few, many = after(3), after(300)
    # Only the open (last) window's key is remembered, not one per window ever sent.
    assert list(decode("aggregate", few)["sent"].values()) == [b"A"]
    assert list(decode("aggregate", many)["sent"].values()) == [b"A"]
    assert len(many) - len(few) < 16  # the state does not grow with the windows closed (wider numbers only)


@pytest.fixture
async def manager(broker: str) -> AsyncIterator[MultiJobSqlServer]:
    mgr = MultiJobSqlServer(ManagerConfig(broker))
    yield mgr
    await mgr.shutdown()


async def test_tombstones_reach_the_output_topic(manager: MultiJobSqlServer, broker: str,
                                                 topic_name: Callable[[str], str]) -> None:
    src = topic_name("tomb")
    await create_topic(broker, src, 1)
    sql = f"CREATE TABLE counts AS {QUERY.format(src=src)} WITH ('output.topic' = '{src}_out');"
    job = await manager.deploy_job(sql)
    await produce(broker, src, [{"symbol": "A"}, {"symbol": "B"}])
    await wait_until(lambda: job.metrics.records_in == 2, message="first records")
    await produce(broker, src, [{"symbol": "A"}])  # a second A: HAVING COUNT(*) < 2 no longer holds
    await wait_until(lambda: job.metrics.records_in == 3, message="the retracting record")

    consumer = AIOKafkaConsumer(bootstrap_servers=broker, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: list[tuple[bytes | None, bytes | None]] = []
    try:
        await consumer.topics()
        consumer.assign([TopicPartition(f"{src}_out", p) for p in consumer.partitions_for_topic(f"{src}_out") or ()])

        async def three() -> bool:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                seen.extend((r.key, r.value) for r in records)
            return len(seen) >= 3

        await wait_until(three, message="two upserts and a tombstone")
    finally:
        await consumer.stop()
    assert sorted(seen, key=lambda kv: (kv[0], kv[1] is None)) == [
        (b"A", b'{"symbol":"A","n":1}'), (b"A", None), (b"B", b'{"symbol":"B","n":1}')]
