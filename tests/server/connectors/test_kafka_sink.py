"""KafkaSink against the real broker: keyed rows land where Kafka's default partitioner puts them."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2
from velo.server.connectors.kafka import KafkaSink

from tests.kafka_helpers import create_topic, wait_until


async def test_keyed_rows_follow_murmur2_and_unkeyed_rows_spread(broker: str, topic_name: Callable[[str], str]) -> None:
    topic = topic_name("sink")
    await create_topic(broker, topic, 4)
    sink = KafkaSink(broker, topic)
    await sink.start()
    keys = [f"key-{i % 50}".encode() for i in range(400)]  # every key several times (the memo path)
    await sink.write([(k, b"{}") for k in keys])
    await sink.write([(None, b"{}")] * 8)
    await sink.write([(b"h", b"{}")], headers=[[("velo.job", b"j")]])
    await sink.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=broker, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(4)])

        async def all_read() -> bool:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                got.extend(records)
            return len(got) >= 409

        await wait_until(all_read, message="409 records")
    finally:
        await consumer.stop()
    keyed = [r for r in got if r.key is not None and r.key != b"h"]
    assert len(keyed) == 400
    assert all(r.partition == (murmur2(r.key) & 0x7FFFFFFF) % 4 for r in keyed)
    assert len({r.partition for r in got if r.key is None}) == 1  # one batch of unkeyed rows, one partition
    (with_headers,) = [r for r in got if r.key == b"h"]
    assert list(with_headers.headers) == [("velo.job", b"j")]
