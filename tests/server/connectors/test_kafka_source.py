"""KafkaSource against the real broker: how a backlog spread over partitions is handed out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from velo.server.connectors.kafka import KafkaSource

from tests.kafka_helpers import create_topic, produce


async def test_a_backlog_comes_from_every_partition_in_turn(broker: str, topic_name: Callable[[str], str]) -> None:
    # aiokafka's getmany drains one partition before the next: a job reading a backlog that way saw all
    # of partition 0 before any of partition 3, and its watermark (rightly held by the partitions not
    # reached yet) kept windows and join buffers holding the whole backlog.
    topic = topic_name("rr")
    await create_topic(broker, topic, 4)
    await produce(broker, topic, [{"n": i} for i in range(8000)], partitions=[i % 4 for i in range(8000)])
    source = KafkaSource(broker, topic, offset_reset="earliest")
    await source.start()
    try:
        seen: Counter[int] = Counter()
        batches = []
        while sum(seen.values()) < 8000:
            batch = await source.read(timeout_ms=2000, max_records=1000)
            assert batch.records, "the backlog stopped short"
            per = Counter(r.partition for r in batch.records)
            batches.append(per)
            seen.update(per)
    finally:
        await source.stop()
    assert seen == {p: 2000 for p in range(4)}  # every record once
    assert all(sum(b.values()) <= 1000 for b in batches)
    # Each full batch holds every partition, none ahead of another by more than a share of the batch.
    full = [b for b in batches if sum(b.values()) == 1000]
    assert full, "no full batch"
    for b in full:
        assert set(b) == {0, 1, 2, 3}, b
        assert max(b.values()) - min(b.values()) <= 250, b
