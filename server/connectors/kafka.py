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
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from .base import Batch, ConnectorError, Headers, OutputRow, Positions, Sink, Source
from .formats import json_columns
from .murmur import murmur2

# A group member is held for half the session timeout when it joins (Tansu); 6 s keeps that to ~3 s
# while still surviving a slow event loop.
_SESSION_TIMEOUT_MS = 6000
_HEARTBEAT_MS = 2000
_MAX_BATCH_BYTES = 1 << 20
_PARTITION_MEMO = 100_000
_HEALTH_INTERVAL_S = 1.0
_HEALTH_TIMEOUT_S = 2.0
_NO_HEADERS: list[tuple[str, bytes]] = []  # shared, never mutated: aiokafka's C builder wants a list


def _client_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The ``'kafka.*'`` pass-through properties, as aiokafka keyword arguments."""
    return {k.replace(".", "_"): v for k, v in (options or {}).items()}


class RecordTooLargeError(ConnectorError):
    """One output record is larger than a producer batch may hold."""


class KafkaSource(Source):
    """Reads one topic by assigning its partitions, or as a member of a consumer group.

    Jobs assign every partition and commit offsets to their group (``velo-<job>``) without joining
    it: no join delay (3 s on Tansu) at deploy, no rebalance pause, and a restart still resumes from
    the committed offsets. ``membership=True`` subscribes through the group protocol instead, so
    several servers running the same job share its partitions (the scale-out path). Offsets are
    committed explicitly, after the job's output is acknowledged (at-least-once). Without a group
    (transient queries) nothing is committed. A ``table`` (a join's or a subquery's table topic) is
    read from its beginning at every start, without a group; ``loaded()`` says when it has read what
    the topic held at start.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        group_id: str | None = None,
        membership: bool = False,
        offset_reset: str = "earliest",
        client_options: dict[str, Any] | None = None,
        table: bool = False,
    ) -> None:
        self.topic = topic
        self.group_id = group_id
        self.table = table
        self.membership = membership and group_id is not None
        self._offset_reset = offset_reset
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset=offset_reset,
            session_timeout_ms=_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=_HEARTBEAT_MS,
            max_partition_fetch_bytes=_MAX_BATCH_BYTES,
            # A transient query's first rows (and its start probe) should not wait out the broker's
            # default 500 ms long poll on a quiet topic.
            fetch_max_wait_ms=100 if group_id is None else 500,
            **_client_options(client_options),
        )
        self._partitions: list[TopicPartition] = []
        self._positions: dict[tuple[str, int], int] = {}
        self._last_ok = time.monotonic()
        self._load_end: dict[TopicPartition, int] = {}  # a table's partitions not yet read to their start end
        self._start_at: dict[tuple[str, int], int] = {}  # seek(): where to start instead of the committed offsets

    async def start(self) -> None:
        try:
            await self._consumer.start()
            if self.membership:
                self._consumer.subscribe([self.topic])
            else:
                partitions = await _partitions_of(self._consumer, self.topic)
                self._partitions = [TopicPartition(self.topic, p) for p in partitions]
                self._consumer.assign(self._partitions)
                self._seek_start()
                if self.table:
                    await self._mark_load_end()
                elif self.group_id is None and self._offset_reset == "latest":
                    await self._pin_to_end()
        except KafkaError as exc:
            await self._close_quietly()
            raise ConnectorError(f"cannot read topic '{self.topic}': {exc}") from exc

    async def _pin_to_end(self, timeout: float = 2.0) -> None:
        """Fix a `latest` reader's start at the true end of each partition, before start() returns.

        Left alone, the position would only be resolved at the first fetch — records produced in
        between would be missed — and from ListOffsets(latest), which on the embedded broker answers
        the last batch's base offset + 1, replaying most of that batch. So: seek to that answer, fetch
        once to learn each partition's high watermark, and start there; the records the probe read
        were all written before the query began.
        """
        for tp, high in (await self._high_watermarks(timeout)).items():
            self._consumer.seek(tp, high)
            self._positions[(tp.topic, tp.partition)] = high

    async def _high_watermarks(self, timeout: float) -> dict[TopicPartition, int]:
        """Each partition's true end now: seek to ListOffsets' answer and fetch until the high watermarks are known.

        A partition whose fetch did not answer within ``timeout`` is left out. The read position is
        left near the end: the caller seeks where it wants to read.
        """
        tps = self._partitions
        await self._consumer.seek_to_end(*tps)
        deadline = time.monotonic() + timeout
        while any(self._consumer.highwater(tp) is None for tp in tps) and time.monotonic() < deadline:
            await self._consumer.getmany(*tps, timeout_ms=50)
        highs = {tp: self._consumer.highwater(tp) for tp in tps}
        return {tp: high for tp, high in highs.items() if high is not None}

    async def _mark_load_end(self, timeout: float = 2.0) -> None:
        """A table reads from the beginning; note where each partition ended at start (see ``loaded``)."""
        self._load_end = {tp: high for tp, high in (await self._high_watermarks(timeout)).items() if high > 0}
        await self._consumer.seek_to_beginning(*self._partitions)

    async def loaded(self) -> bool:
        """Whether a table has read every record its topic held at start (always True for a stream).

        Goes by the consumer's position, which also steps over offsets without a record (compacted
        away, transaction markers). A position still being resolved (the broker does not answer)
        counts as not there yet: the next read reports the broker's trouble.
        """
        for tp, end in list(self._load_end.items()):
            try:
                position = await asyncio.wait_for(self._consumer.position(tp), _HEALTH_TIMEOUT_S)
            except (KafkaError, TimeoutError):
                return False
            if position >= end:
                del self._load_end[tp]
        return not self._load_end

    def seek(self, positions: Positions) -> None:
        """Start each partition named in ``positions`` there (a job restoring its state snapshot).

        The seek happens right after the partitions are assigned, before any fetch, so the committed
        offsets are never used for them. A table ignores it: it is read whole at every start.
        """
        if self.table or self.membership:
            return
        self._start_at = {(t, p): o for (i, t, p), o in positions.items() if i == 0 and t == self.topic}
        if self._partitions:
            self._seek_start()

    def _seek_start(self) -> None:
        for tp in self._partitions:
            offset = self._start_at.get((tp.topic, tp.partition))
            if offset is not None:
                self._consumer.seek(tp, offset)
                self._positions[(tp.topic, tp.partition)] = offset

    async def positions(self) -> Positions | None:
        """The consumer's next offset per assigned partition, read or not (input index 0).

        Between batches that is exactly after the last record handed out: aiokafka advances a
        partition's position as records are returned, not as they are prefetched. A table has none
        (it is read whole at every start); a group member's partitions may move, so it has no say.
        """
        if self.membership:
            return None
        if self.table:
            return {}
        return {(0, tp.topic, tp.partition): await self._consumer.position(tp) for tp in self._partitions}

    async def read(self, timeout_ms: int, max_records: int) -> Batch:
        fetched = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        if not fetched:
            await self._check_connection()
            return Batch([])
        self._last_ok = time.monotonic()
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

    async def _check_connection(self) -> None:
        """Raise ConnectorError when the broker is unreachable.

        A consumer cut off from its broker just returns empty fetches, so an idle source asks for
        metadata (at most once a second) to tell "no records" from "no broker".
        """
        now = time.monotonic()
        if now - self._last_ok < _HEALTH_INTERVAL_S:
            return
        try:
            await asyncio.wait_for(self._consumer.topics(), _HEALTH_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            raise ConnectorError(f"broker unreachable: {exc or 'no answer'}") from exc
        self._last_ok = time.monotonic()

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

    def partitions(self) -> list[dict[str, Any]]:
        """Per partition: the next offset to read, the high watermark and the lag between them."""
        out = []
        for tp in sorted(self._consumer.assignment(), key=lambda t: (t.topic, t.partition)):
            position = self._positions.get((tp.topic, tp.partition))
            high = self._consumer.highwater(tp)
            lag = max(0, high - position) if high is not None and position is not None else None
            out.append({"topic": tp.topic, "partition": tp.partition, "position": position,
                        "high_watermark": high, "lag": lag})
        return out

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
        # murmur2 is pure Python (~2 µs a key); keyed outputs (aggregates) repeat their keys, so the
        # partition of each key is remembered, up to a bound.
        self._partition_of: dict[bytes, int] = {}

    async def start(self) -> None:
        try:
            await self._producer.start()
            self._partitions = await self._wait_for_partitions()
        except KafkaError as exc:
            await self._close_quietly()
            raise ConnectorError(f"cannot write topic '{self.topic}': {exc}") from exc

    async def _wait_for_partitions(self, timeout: float = 10.0) -> list[int]:
        """The topic's partitions; a topic created a moment ago may report none at first."""
        deadline = time.monotonic() + timeout
        while True:
            partitions = sorted(await self._producer.partitions_for(self.topic))
            if partitions:
                return partitions
            if time.monotonic() > deadline:
                raise ConnectorError(f"topic '{self.topic}' has no partitions")
            await asyncio.sleep(0.05)
            await self._producer.client.force_metadata_update()

    async def write(self, rows: list[OutputRow], headers: list[Headers] | None = None) -> None:
        if not rows:
            return
        n = len(self._partitions)
        by_partition: dict[int, list[tuple[bytes | None, bytes | None, Headers]]] = {}
        spread = self._partitions[next(self._next) % n]
        partition_of = self._partition_of
        if len(partition_of) > _PARTITION_MEMO:
            partition_of.clear()
        for i, (key, value) in enumerate(rows):
            if key is None:
                part = spread
            else:
                part = partition_of.get(key, -1)
                if part < 0:
                    part = partition_of[key] = self._partitions[(murmur2(key) & 0x7FFFFFFF) % n]
            by_partition.setdefault(part, []).append((key, value, list(headers[i]) if headers else _NO_HEADERS))
        futures = []
        try:
            for part, part_rows in by_partition.items():
                futures += await self._send(part, part_rows)
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise ConnectorError(f"write to '{self.topic}' failed: {exc}") from exc

    async def _send(self, partition: int, rows: Iterable[tuple[bytes | None, bytes | None, Headers]]) -> list[Any]:
        futures = []
        batch = self._producer.create_batch()
        for key, value, headers in rows:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                if batch.record_count():
                    futures.append(await self._producer.send_batch(batch, self.topic, partition=partition))
                    batch = self._producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    raise RecordTooLargeError(f"a {len(value or b'')}-byte record does not fit a Kafka batch")
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
    """Topic administration: list, describe, create (idempotent).

    Keeps one admin client and one metadata consumer open (deploys ask for metadata every time, and
    a fresh connection per question would dominate a deploy); a failed call drops them so the next
    call reconnects.
    """

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._admin_client: AIOKafkaAdminClient | None = None
        self._meta: AIOKafkaConsumer | None = None
        self._connect_lock = asyncio.Lock()

    def _unreachable(self, exc: BaseException) -> ConnectorError:
        return ConnectorError(f"Kafka at {self.bootstrap_servers} is unreachable: {exc}")

    async def _admin(self) -> AIOKafkaAdminClient:
        async with self._connect_lock:
            if self._admin_client is None:
                admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
                try:
                    await admin.start()
                except KafkaError as exc:
                    with contextlib.suppress(Exception):
                        await admin.close()
                    raise self._unreachable(exc) from exc
                self._admin_client = admin
            return self._admin_client

    async def _metadata(self) -> AIOKafkaConsumer:
        async with self._connect_lock:
            if self._meta is None:
                consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False)
                try:
                    await consumer.start()
                except KafkaError as exc:
                    with contextlib.suppress(Exception):
                        await consumer.stop()
                    raise self._unreachable(exc) from exc
                self._meta = consumer
            return self._meta

    async def close(self) -> None:
        """Close the kept connections (they reopen on the next call)."""
        admin, meta, self._admin_client, self._meta = self._admin_client, self._meta, None, None
        with contextlib.suppress(Exception):
            if admin is not None:
                await admin.close()
        with contextlib.suppress(Exception):
            if meta is not None:
                await meta.stop()

    async def list_topics(self) -> list[str]:
        """Names of the user topics on the broker."""
        try:
            topics = await (await self._metadata()).topics()
        except KafkaError as exc:
            await self.close()
            raise self._unreachable(exc) from exc
        return sorted(t for t in topics if not t.startswith("__"))

    async def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has, or None when it does not exist."""
        consumer = await self._metadata()
        deadline = time.monotonic() + 5.0
        try:
            while True:
                # A fresh metadata request; read the partitions from *its* answer: consumer.topics()
                # does not update the consumer's own cluster view, so partitions_for_topic() stays
                # empty for a topic created after this consumer started (a 5 s wait per deploy).
                cluster = await consumer._client.fetch_all_metadata()
                if topic not in cluster.topics():
                    return None
                count = len(cluster.partitions_for_topic(topic) or ())
                # A topic auto-created a moment ago can be listed before its partitions are.
                if count or time.monotonic() > deadline:
                    return count
                await asyncio.sleep(0.05)
        except KafkaError as exc:
            await self.close()
            raise self._unreachable(exc) from exc

    async def ensure_topic(self, topic: str, partitions: int) -> None:
        """Create ``topic`` with ``partitions`` partitions unless it exists."""
        admin = await self._admin()
        try:
            await admin.create_topics([NewTopic(topic, max(1, partitions), 1)])
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            await self.close()
            raise ConnectorError(f"cannot create topic '{topic}': {exc}") from exc

    async def reachable(self) -> bool:
        """Whether the broker answers a metadata request."""
        try:
            await self.list_topics()
        except ConnectorError:
            return False
        return True

    async def describe_topics(self, timeout_ms: int = 1500) -> dict[str, dict[int, int | None]]:
        """Every user topic with, per partition, its end offset (the next offset to be written).

        End offsets come from the fetch high watermark, not ``end_offsets()`` (ListOffsets(latest)
        under-reports on the embedded broker, architecture.md): the consumer seeks to ListOffsets'
        answer — at or just before the true end, so the fetch returns at most the last batch — and
        one fetch per partition reports its high watermark. ``None`` when no fetch answered in time.
        """
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False,
                                    fetch_max_wait_ms=50, max_partition_fetch_bytes=1)
        try:
            await consumer.start()
            names = sorted(t for t in await consumer.topics() if not t.startswith("__"))
            tps = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
            if tps:
                consumer.assign(tps)
                await consumer.seek_to_end(*tps)
                deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
                while any(consumer.highwater(tp) is None for tp in tps):
                    if asyncio.get_running_loop().time() >= deadline:
                        break
                    await consumer.getmany(timeout_ms=100)
            topics: dict[str, dict[int, int | None]] = {t: {} for t in names}
            for tp in tps:
                topics[tp.topic][tp.partition] = consumer.highwater(tp)
            return topics
        except KafkaError as exc:
            raise ConnectorError(f"Kafka at {self.bootstrap_servers} is unreachable: {exc}") from exc
        finally:
            await consumer.stop()


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
