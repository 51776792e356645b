"""Test helpers that talk to the real broker: make topics, produce JSON, read a topic back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def create_topic(brokers: str, name: str, partitions: int = 1) -> None:
    """Create a topic (tests name topics uniquely, so it never exists already)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def produce(brokers: str, topic: str, values: Iterable[Any], keys: Iterable[bytes | None] | None = None,
                  raw: bool = False, partitions: Iterable[int] | None = None) -> None:
    """Produce ``values`` (JSON-encoded unless ``raw``) and wait for every acknowledgement.

    ``partitions``, when given, names each record's partition (else the key decides).
    """
    producer = AIOKafkaProducer(bootstrap_servers=brokers, linger_ms=5)
    await producer.start()
    try:
        key_list = list(keys) if keys is not None else None
        part_list = list(partitions) if partitions is not None else None
        futures = []
        for i, value in enumerate(values):
            payload = value if raw else orjson.dumps(value)
            futures.append(await producer.send(topic, payload, key=key_list[i] if key_list else None,
                                               partition=part_list[i] if part_list else None))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume(brokers: str, topic: str, expected: int, timeout: float = 30.0,
                  settle: float = 0.0) -> list[Any]:
    """Read the topic from the beginning until ``expected`` records arrived (or the deadline).

    ``settle`` keeps reading that long after the count is reached, to catch extra records.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer.topics()
            parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in parts])
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        reached: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out += [None if r.value is None else orjson.loads(r.value) for r in records]  # None: tombstone
            if len(out) >= expected:
                reached = reached or time.monotonic()
                if time.monotonic() - reached >= settle:
                    break
        return out
    finally:
        await consumer.stop()


async def wait_until(condition: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 20.0,
                     interval: float = 0.05, message: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail the test at the deadline (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)
