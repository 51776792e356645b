"""Kafka sources, sinks and topic administration — the ONLY module that imports aiokafka.

Measured behaviour of the embedded broker (architecture.md) shapes this module: group joins are slow,
so transient queries ``assign()`` partitions; ``end_offsets()`` under-reports, so lag comes from the
fetch high watermark; the produce path uses aiokafka's batch API, which is ~2.5x faster than ``send()``
per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from .base import Batch, ConnectorError, OutputRow, Sink, Source
from .formats import json_columns

# A group member is held for half the session timeout when it joins (Tansu); 6 s keeps that to ~3 s
# while still surviving a slow event loop.
_SESSION_TIMEOUT_MS = 6000
_HEARTBEAT_MS = 2000
_MAX_BATCH_BYTES = 1 << 20


def _client_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The ``'kafka.*'`` pass-through properties, as aiokafka keyword arguments."""
    return {k.replace(".", "_"): v for k, v in (options or {}).items()}


class KafkaSource(Source):
    """Reads one topic, either as a member of a consumer group or by assigning every partition.

    ``group_id=None`` assigns partitions directly (no group join: first records arrive at once), which
    is what transient queries want. With a group, offsets are committed explicitly by the job after
    its output is acknowledged (at-least-once).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        group_id: str | None = None,
        offset_reset: str = "earliest",
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.group_id = group_id
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset=offset_reset,
            session_timeout_ms=_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=_HEARTBEAT_MS,
            max_partition_fetch_bytes=_MAX_BATCH_BYTES,
            **_client_options(client_options),
        )
        self._partitions: list[TopicPartition] = []
        self._positions: dict[tuple[str, int], int] = {}

    async def start(self) -> None:
        try:
            await self._consumer.start()
            if self.group_id is None:
                partitions = await _partitions_of(self._consumer, self.topic)
                self._partitions = [TopicPartition(self.topic, p) for p in partitions]
                self._consumer.assign(self._partitions)
            else:
                self._consumer.subscribe([self.topic])
        except KafkaError as exc:
            await self._close_quietly()
            raise ConnectorError(f"cannot read topic '{self.topic}': {exc}") from exc

    async def read(self, timeout_ms: int, max_records: int) -> Batch:
        fetched = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        if not fetched:
            return Batch([])
        offsets: dict[tuple[str, int], int] = {}
        if len(fetched) == 1:
            ((tp, merged),) = fetched.items()
            offsets[(tp.topic, tp.partition)] = merged[-1].offset + 1
        else:
            merged = []
            for tp, records in fetched.items():
                merged += records
                offsets[(tp.topic, tp.partition)] = records[-1].offset + 1
        self._positions.update(offsets)
        return Batch(merged, offsets)

    async def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if self.group_id is None or not offsets:
            return
        try:
            await self._consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
        except KafkaError as exc:
            raise ConnectorError(f"offset commit failed: {exc}") from exc

    def pause(self) -> None:
        self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        self._consumer.resume(*self._consumer.assignment())

    def lag(self) -> int:
        """Records not yet read, summed over partitions (from the fetch high watermark)."""
        total = 0
        for (topic, part), position in self._positions.items():
            high = self._consumer.highwater(TopicPartition(topic, part))
            if high is not None:
                total += max(0, high - position)
        return total

    async def stop(self) -> None:
        await self._close_quietly()

    async def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self._consumer.stop()


class KafkaSink(Sink):
    """Writes ``(key, value)`` rows to one topic with aiokafka's batch API.

    Keyed rows go to the partition Kafka's default partitioner would choose (murmur2), so downstream
    consumers see the same layout as any Kafka client would produce; unkeyed rows are spread over the
    partitions batch by batch.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            max_batch_size=_MAX_BATCH_BYTES,
            linger_ms=0,
            **_client_options(client_options),
        )
        self._partitions: list[int] = []
        self._next = itertools.count()

    async def start(self) -> None:
        try:
            await self._producer.start()
            self._partitions = sorted(await self._producer.partitions_for(self.topic))
        except KafkaError as exc:
            await self._close_quietly()
            raise ConnectorError(f"cannot write topic '{self.topic}': {exc}") from exc

    async def write(self, rows: list[OutputRow]) -> None:
        if not rows:
            return
        n = len(self._partitions)
        by_partition: dict[int, list[OutputRow]] = {}
        spread = self._partitions[next(self._next) % n]
        for row in rows:
            key = row[0]
            part = spread if key is None else self._partitions[(murmur2(key) & 0x7FFFFFFF) % n]
            by_partition.setdefault(part, []).append(row)
        futures = []
        try:
            for part, part_rows in by_partition.items():
                futures += await self._send(part, part_rows)
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise ConnectorError(f"write to '{self.topic}' failed: {exc}") from exc

    async def _send(self, partition: int, rows: Iterable[OutputRow]) -> list[Any]:
        futures = []
        batch = self._producer.create_batch()
        for key, value in rows:
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append(await self._producer.send_batch(batch, self.topic, partition=partition))
                batch = self._producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        if batch.record_count():
            futures.append(await self._producer.send_batch(batch, self.topic, partition=partition))
        return futures

    async def stop(self) -> None:
        await self._close_quietly()

    async def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self._producer.stop()


async def _partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    """The partition ids of ``topic``, asking the broker for fresh metadata."""
    topics = await consumer.topics()
    if topic not in topics:
        raise ConnectorError(f"topic '{topic}' does not exist")
    return sorted(consumer.partitions_for_topic(topic) or ())


class KafkaAdmin:
    """Topic administration: list, describe, create (idempotent)."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers

    async def _admin(self) -> AIOKafkaAdminClient:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        try:
            await admin.start()
        except KafkaError as exc:
            raise ConnectorError(f"Kafka at {self.bootstrap_servers} is unreachable: {exc}") from exc
        return admin

    async def list_topics(self) -> list[str]:
        """Names of the user topics on the broker."""
        admin = await self._admin()
        try:
            return sorted(t for t in await admin.list_topics() if not t.startswith("__"))
        finally:
            await admin.close()

    async def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has, or None when it does not exist."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers)
        try:
            await consumer.start()
            if topic not in await consumer.topics():
                return None
            return len(consumer.partitions_for_topic(topic) or ())
        except KafkaError as exc:
            raise ConnectorError(f"Kafka at {self.bootstrap_servers} is unreachable: {exc}") from exc
        finally:
            await consumer.stop()

    async def ensure_topic(self, topic: str, partitions: int) -> None:
        """Create ``topic`` with ``partitions`` partitions unless it exists."""
        admin = await self._admin()
        try:
            await admin.create_topics([NewTopic(topic, partitions, 1)])
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            raise ConnectorError(f"cannot create topic '{topic}': {exc}") from exc
        finally:
            await admin.close()

    async def reachable(self) -> bool:
        """Whether the broker answers a metadata request."""
        try:
            await self.list_topics()
        except ConnectorError:
            return False
        return True


async def sample_columns(bootstrap_servers: str, topic: str, timeout_ms: int = 500) -> list[str]:
    """Infer a schemaless topic's columns from its latest record in each partition.

    Returns ``[]`` for an empty topic; raises ConnectorError when the topic does not exist.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in await _partitions_of(consumer, topic)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        wanted = 0
        for tp in tps:
            end = await consumer.position(tp)
            if end > 0:
                consumer.seek(tp, end - 1)
                wanted += 1
        values: list[bytes | None] = []
        if wanted:
            fetched = await consumer.getmany(timeout_ms=timeout_ms, max_records=wanted * 10)
            values = [r.value for records in fetched.values() for r in records]
        return json_columns(values)
    except KafkaError as exc:
        raise ConnectorError(f"Kafka at {bootstrap_servers} is unreachable: {exc}") from exc
    finally:
        await consumer.stop()
