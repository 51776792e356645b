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
from aiokafka.codec import has_gzip, has_lz4, has_snappy, has_zstd
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, UnsupportedCodecError

from .base import Batch, ConnectorError, Headers, OutputRow, PositionReset, Positions, Sink, Source, SourceProgress
from .formats import json_columns
from .murmur import murmur2

# A group member is held for half the session timeout when it joins (Tansu); 6 s keeps that to ~3 s
# while still surviving a slow event loop.
_SESSION_TIMEOUT_MS = 6000
_HEARTBEAT_MS = 2000
_MAX_BATCH_BYTES = 1 << 20
_FETCH_PARTITION_BYTES = 4 << 20
_FETCH_MAX_WAIT_MS = 100
_FETCH_MIN_BYTES = 64 << 10
_PARTITION_MEMO = 100_000
_HEALTH_INTERVAL_S = 1.0
_HEALTH_TIMEOUT_S = 2.0
_NO_HEADERS: list[tuple[str, bytes]] = []  # shared, never mutated: aiokafka's C builder wants a list


def _client_options(defaults: dict[str, Any], options: dict[str, Any] | None) -> dict[str, Any]:
    """Velo's client settings with the job's ``'kafka.*'`` ones over them (aiokafka keywords, translated
    and checked by kafka_options.py): a key given both ways is the user's, not a duplicate keyword."""
    return {**defaults, **(options or {})}


_CODECS: dict[str, Any] = {"gzip": has_gzip, "snappy": has_snappy, "lz4": has_lz4, "zstd": has_zstd}
CODEC_FIX = "install the codecs with velo (pip install 'aiokafka[lz4,snappy,zstd]') and restart the server"
"""What to do when a codec is missing (velo's own dependencies bring them all)."""


def codec_available(codec: str) -> bool:
    """Whether this install can compress and decompress ``codec`` (gzip, snappy, lz4, zstd; none always)."""
    check = _CODECS.get(codec)
    return check is None or bool(check())


class RecordTooLargeError(ConnectorError):
    """One output record is larger than a producer batch may hold."""


class KafkaSource(Source):
    """Reads one topic by assigning its partitions, or as a member of a consumer group.

    Jobs assign every partition and commit offsets to their group (``velo-<job>``, or the source's
    ``'<name>.group.id'``) without joining it: no join delay (3 s on Tansu) at deploy, no rebalance
    pause, and a restart still resumes from the committed offsets. ``membership=True`` subscribes
    through the group protocol instead, so several servers running the same job share its partitions
    (the scale-out path). Offsets are
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
            **_client_options({
                "session_timeout_ms": _SESSION_TIMEOUT_MS,
                "heartbeat_interval_ms": _HEARTBEAT_MS,
                # The long poll a fetch of partitions without new records waits out. aiokafka has one fetch
                # in flight per broker and leaves partitions whose records are still buffered out of it, so
                # while a busy partition's backlog is processed, the fetch for the partitions at their end
                # blocks its next one: at 500 ms a 4-partition backlog with one heavy partition was often read
                # at 50-100 k records/s on 0.15-0.35 cores (docs/jobs.md). 100 ms bounds that stall (an idle job
                # pays ten empty fetches a second for it), and 4 MB per partition makes it rarer: a busy
                # partition comes back for more a quarter as often. A query's first rows wait no longer.
                "max_partition_fetch_bytes": _FETCH_PARTITION_BYTES,
                "fetch_max_wait_ms": _FETCH_MAX_WAIT_MS,
                # Under a steady load the broker answers once this much has come (or the wait is over):
                # batches stay big although the wait is short. Queries take what is there at once.
                "fetch_min_bytes": 1 if group_id is None else _FETCH_MIN_BYTES,
            }, client_options),
        )
        self._partitions: list[TopicPartition] = []
        self._positions: dict[tuple[str, int], int] = {}
        self._last_ok = time.monotonic()
        self._load_end: dict[TopicPartition, int] = {}  # a table's partitions not yet read to their start end
        self._start_at: dict[tuple[str, int], int] = {}  # seek(): where to start instead of the committed offsets
        # Each partition's end as known at start (ListOffsets, or the high watermark when it mattered): the lag
        # until the first fetch reports the high watermark.
        self._ends: dict[tuple[str, int], int] = {}
        self._resets: list[PositionReset] = []  # saved positions that did not fit the topic (take_resets)
        self._progress: SourceProgress | None = None  # as of the last read (progress)

    async def start(self) -> None:
        try:
            await self._consumer.start()
            if self.membership:
                self._consumer.subscribe([self.topic])
            else:
                partitions = await _partitions_of(self._consumer, self.topic)
                self._partitions = [TopicPartition(self.topic, p) for p in partitions]
                self._consumer.assign(self._partitions)
                if self.table:
                    await self._mark_load_end()
                elif self.group_id is not None:
                    await self._place()
                elif self._offset_reset == "latest":
                    await self._pin_to_end()
        except KafkaError as exc:
            await self._close_quietly()
            raise ConnectorError(f"cannot read topic '{self.topic}': {exc}") from exc

    async def _place(self, timeout: float = 2.0) -> None:
        """Start each partition of a job's source, after checking that the saved positions fit the topic.

        A partition starts at its snapshot position (``seek``), else at the offset committed to the
        job's group, else at ``auto.offset.reset`` (``earliest``: the partition's first offset;
        ``latest``: its high watermark, pinned now so that records written before the first fetch are
        not skipped). Saved positions are checked against the topic as it is now, because a topic
        deleted and created again — or a new broker under the same data dir — keeps the name but
        not the records, and a consumer seeking past a partition's end just reads nothing, forever,
        on Tansu (no OffsetOutOfRange). The signs that the topic is a new one: a saved position past
        a partition's end (its fetch high watermark: ListOffsets under-reports), a snapshot naming a
        partition the topic does not have, and a snapshot whose group has no committed offset at all
        (deleting a topic drops its committed offsets; a new broker has none). Metadata carries no topic
        id to compare (aiokafka asks for Metadata v5 at most). On any sign, every partition of the topic
        reads on from ``auto.offset.reset`` and a recreated PositionReset says why. A position before a
        partition's first offset only means records were deleted (retention): that partition alone
        moves, as any Kafka consumer's would, and the state stands. Start positions that did not come
        from the group are committed to it at once, so a restart before the first record resumes there
        (``latest`` is not resolved again, later) and the group's offsets exist whenever a snapshot does.
        """
        consumer, tps, latest = self._consumer, self._partitions, self._offset_reset == "latest"
        self._resets = []  # a start that failed half-way and is tried again reports once
        # One OffsetFetch per partition (aiokafka asks for one at a time), concurrently.
        committed: dict[TopicPartition, int | None] = dict(
            zip(tps, await asyncio.gather(*(consumer.committed(tp) for tp in tps)), strict=True))
        saved: dict[TopicPartition, tuple[int, str]] = {}
        for tp in tps:
            snapped, offset = self._start_at.get((tp.topic, tp.partition)), committed[tp]
            if snapped is not None:
                saved[tp] = (snapped, "saved position")
            elif offset is not None:
                saved[tp] = (offset, f"committed offset (group {self.group_id})")
        begins: dict[TopicPartition, int] = dict(await consumer.beginning_offsets(tps))
        ends: dict[TopicPartition, int] = dict(await consumer.end_offsets(tps))  # at or below the true end
        exact: set[TopicPartition] = set()  # partitions whose end is the high watermark
        asked: list[bool] = []

        async def learn_ends() -> None:  # once: a partition that did not answer keeps ListOffsets' answer
            if not asked:
                asked.append(True)
                highs = await self._high_watermarks(timeout)
                ends.update(highs)
                exact.update(highs)

        if any(o > ends[tp] for tp, (o, _) in saved.items()):
            await learn_ends()  # past ListOffsets' answer, maybe not past the true end
        signs = [f"partition {tp.partition}: {what} {offset} is past the topic's end {ends[tp]}"
                 for tp, (offset, what) in sorted(saved.items()) if offset > ends[tp] and tp in exact]
        have = {tp.partition for tp in tps}
        missing = sorted({p for (_, p) in self._start_at} - have)
        if missing:
            signs.append(f"the snapshot has partition(s) {', '.join(map(str, missing))}, which the topic "
                         f"({len(tps)} partition(s)) does not")
        if (not signs and any(o > 0 for o in self._start_at.values())
                and all(o is None for o in committed.values())):
            signs.append(f"the snapshot's positions have no committed offsets in group {self.group_id}")
        start: dict[TopicPartition, int] = {}
        moved: list[str] = []
        for tp in tps:
            offset = saved[tp][0] if tp in saved and not signs else None
            if offset is not None and offset < begins[tp]:
                moved.append(f"partition {tp.partition}: {saved[tp][1]} {offset} is before the partition's "
                             f"first offset {begins[tp]} (records deleted)")
                offset = None
            if offset is None and latest:
                await learn_ends()
            start[tp] = offset if offset is not None else ends[tp] if latest else begins[tp]
        if signs:
            self._resets.append(PositionReset(self.topic, "; ".join(signs), True, self._offset_reset))
        elif moved:
            self._resets.append(PositionReset(self.topic, "; ".join(moved), False, self._offset_reset))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
            self._positions[(tp.topic, tp.partition)] = offset
            if tp in exact or ends[tp] >= offset:  # ListOffsets' answer below the start tells nothing
                self._ends[(tp.topic, tp.partition)] = ends[tp]
        fresh = {tp: o for tp, o in start.items() if tp not in saved or o != saved[tp][0]}
        if fresh:
            await consumer.commit(fresh)

    def take_resets(self) -> list[PositionReset]:
        resets, self._resets = self._resets, []
        return resets

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

        ``start()`` seeks there right after the partitions are assigned, before any fetch, so the
        committed offsets are never used for them — unless the positions do not fit the topic as it is
        now (``_place``). A table ignores it: it is read whole at every start.
        """
        if self.table or self.membership:
            return
        self._start_at = {(t, p): o for (i, t, p), o in positions.items() if i == 0 and t == self.topic}

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
        try:
            fetched = await self._take_round_robin(max_records)
            if not fetched:
                # Nothing buffered: wait for the next fetch (the long poll). With several partitions
                # only one record is taken by the wait (getmany would drain the first partition), the
                # rest in turn as above.
                several = len(self._reading()) > 1
                fetched = await self._consumer.getmany(timeout_ms=timeout_ms,
                                                       max_records=1 if several else max_records)
                if fetched and several:
                    for tp, records in (await self._take_round_robin(max_records - 1)).items():
                        fetched.setdefault(tp, []).extend(records)
        except UnsupportedCodecError as exc:
            # Records compressed with a codec this install lacks. aiokafka leaves the position before
            # them, so the job waits DEGRADED (ConnectorError) and re-reads them once the server runs
            # with the codec; nothing is skipped and the job is not lost.
            raise ConnectorError(f"topic '{self.topic}' holds records this server cannot decompress "
                                 f"({exc}): {CODEC_FIX}") from exc
        if not fetched:
            await self._check_connection()
            await self._check_range()
            await self._settle_positions()
            self._note_progress()
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
        self._note_progress()
        return Batch(merged, offsets)

    def _reading(self) -> list[TopicPartition]:
        """The partitions this source reads: its group's assignment, or the ones it assigned itself."""
        return list(self._consumer.assignment()) if self.membership else self._partitions

    async def _take_round_robin(self, max_records: int) -> dict[TopicPartition, list[Any]]:
        """What is buffered, a share of the batch from each partition in turn.

        aiokafka's getmany drains the partitions one after the other, so a backlog would come as all
        of partition 0, then all of partition 1…: the watermark (held by partitions not reached yet)
        could not move, and windows and join buffers would hold the whole backlog. Taking shares in
        turn keeps every partition's event time moving together. Per batch, never per record.
        """
        consumer = self._consumer
        tps = self._reading()
        if len(tps) < 2 or max_records < 1:
            return {}
        share = max(1, max_records // len(tps))
        fetched: dict[TopicPartition, list[Any]] = {}
        left = max_records
        while left > 0:
            took = 0
            for tp in tps:
                got = await consumer.getmany(tp, timeout_ms=0, max_records=min(share, left))
                for records in got.values():
                    fetched.setdefault(tp, []).extend(records)
                    took += len(records)
                    left -= len(records)
                if left <= 0:
                    break
            if not took:
                break
        return fetched

    def progress(self) -> SourceProgress | None:
        """Which partitions are behind (records not handed out yet), as of the last read; None for a table."""
        return self._progress

    def _note_progress(self) -> None:
        """Work out ``progress()`` once per read: a partition is behind until its position reaches the fetch
        high watermark (ListOffsets under-reports, so only a fetch's answer says where a partition ends;
        none yet: behind)."""
        if self.table:
            return
        consumer, positions = self._consumer, self._positions
        tps = self._reading()
        behind = []
        for tp in tps:
            high, position = consumer.highwater(tp), positions.get((tp.topic, tp.partition))
            if high is None or position is None or position < high:
                behind.append((0, tp.partition))
        self._progress = SourceProgress(frozenset((0, tp.partition) for tp in tps), frozenset(behind))

    async def _settle_positions(self) -> None:
        """On an empty fetch, take the consumer's own position for partitions that still look behind.

        A batch's last offset + 1 stops short of offsets without a record (transaction markers,
        compacted gaps), and a partition that has handed out nothing yet (a group member's, a query
        reading from the earliest offset) has no position here at all: either would look behind
        forever. The consumer's position steps over those; it is only asked here, where nothing is
        buffered, and only for partitions a fetch has answered for (their position is then known, so
        the call does not wait on the broker).
        """
        if self.table:
            return
        consumer = self._consumer
        for tp in self._reading():
            key = (tp.topic, tp.partition)
            high, position = consumer.highwater(tp), self._positions.get(key)
            if high is None or (position is not None and position >= high):
                continue
            with contextlib.suppress(KafkaError, TimeoutError):
                now = await asyncio.wait_for(consumer.position(tp), _HEALTH_TIMEOUT_S)
                if position is None or now > position:
                    self._positions[key] = now

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

    async def _check_range(self) -> None:
        """Notice a job's topic deleted and created again while it runs (on an empty fetch only).

        The fetch at the old position answers no records (no OffsetOutOfRange on Tansu) but a fresh
        high watermark: a position past it means the partition now holds fewer records than were
        read, so the topic is a new one. Every partition then moves to ``auto.offset.reset``, as at
        start, and a recreated PositionReset tells the job to drop the state built from the old one.
        """
        if self.group_id is None or self.table or self.membership:
            return
        signs = []
        for tp in self._partitions:
            high, position = self._consumer.highwater(tp), self._positions.get((tp.topic, tp.partition))
            if high is not None and position is not None and position > high:
                signs.append(f"partition {tp.partition}: position {position} is past the topic's end {high}")
        if not signs:
            return
        try:
            if self._offset_reset == "latest":
                start = await self._high_watermarks(_HEALTH_TIMEOUT_S)
            else:
                start = dict(await self._consumer.beginning_offsets(self._partitions))
        except KafkaError as exc:  # nothing moved: the next empty fetch tries again
            raise ConnectorError(f"cannot find the start of recreated topic '{self.topic}': {exc}") from exc
        self._ends.clear()  # the old topic's ends say nothing of the new one's
        for tp, offset in start.items():
            self._consumer.seek(tp, offset)
            self._positions[(tp.topic, tp.partition)] = offset
        self._resets.append(PositionReset(self.topic, "; ".join(signs), True, self._offset_reset))
        # The old topic's offsets must not stay committed (a restart would find them past the end
        # again); if this commit fails, the next batch's commits carry the new positions.
        with contextlib.suppress(KafkaError):
            await self._consumer.commit(start)

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

    async def refresh_ends(self) -> None:
        # ListOffsets answers while fetching is paused; it may under-report (Tansu answers the last
        # batch's base offset + 1), never over-report, so it only ever raises what _end says.
        with contextlib.suppress(Exception):
            ends = await self._consumer.end_offsets(self._partitions)
            for tp, end in ends.items():
                key = (tp.topic, tp.partition)
                self._ends[key] = max(end, self._ends.get(key, 0))

    def _end(self, topic: str, partition: int) -> int | None:
        """A partition's end: the larger of the last fetch's high watermark and what was learnt without one."""
        high: int | None = self._consumer.highwater(TopicPartition(topic, partition))
        known = self._ends.get((topic, partition))
        if high is None or known is None:
            return high if high is not None else known
        return max(high, known)

    def partitions(self) -> list[dict[str, Any]]:
        """Per partition: the next offset to read, the high watermark and the lag between them."""
        out = []
        for tp in sorted(self._consumer.assignment(), key=lambda t: (t.topic, t.partition)):
            position = self._positions.get((tp.topic, tp.partition))
            high = self._end(tp.topic, tp.partition)
            lag = _lag(position, high) if high is not None and position is not None else None
            out.append({"topic": tp.topic, "partition": tp.partition, "position": position,
                        "high_watermark": high, "lag": lag})
        return out

    def lag(self) -> int:
        """Records not yet read, summed over partitions (from the fetch high watermark)."""
        total = 0
        for (topic, part), position in self._positions.items():
            high = self._end(topic, part)
            if high is not None:
                total += _lag(position, high)
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
        compression: str | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        codec = None if compression in (None, "none") else compression
        if codec is not None and not codec_available(codec):
            raise ConnectorError(f"cannot write topic '{topic}' with {codec} compression: {CODEC_FIX}")
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            compression_type=codec,
            **_client_options({"max_batch_size": _MAX_BATCH_BYTES, "linger_ms": 0}, client_options),
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


_SAMPLE_PER_PARTITION = 20
"""How many of each partition's latest records infer a schemaless topic's columns."""


def _lag(position: int, high: int) -> int:
    """Records a partition holds that the reader has not read.

    A position past the end (a topic created again under the reader, before it noticed) reads
    nothing: every record the partition holds is unread, never a lag of 0.
    """
    return high - position if position <= high else high


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
    """Infer a schemaless topic's columns from its latest records in each partition.

    Returns ``[]`` for an empty topic; raises ConnectorError when the topic does not exist.
    """
    columns, _ = await sample_topic_columns(bootstrap_servers, topic, timeout_ms)
    return columns


async def sample_topic_columns(bootstrap_servers: str, topic: str, timeout_ms: int = 500,
                               per_partition: int = _SAMPLE_PER_PARTITION) -> tuple[list[str], bool]:
    """The field names of the JSON objects among the last ``per_partition`` records of every partition.

    Returns the names in order of first appearance and whether the sample is complete: every
    partition that holds records gave some (or was read to its end) before ``timeout_ms``. A record
    may leave out a field that others carry, so a few records of each partition are read, not one.
    Raises ConnectorError when the topic does not exist or Kafka cannot be reached.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in await _partitions_of(consumer, topic)]
        consumer.assign(tps)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        pending: set[TopicPartition] = set()
        for tp in tps:
            if ends[tp] > begins[tp]:
                consumer.seek(tp, max(begins[tp], ends[tp] - per_partition))
                pending.add(tp)
            else:
                consumer.pause(tp)  # empty: nothing to wait for
        values: list[bytes | None] = []
        deadline = time.monotonic() + timeout_ms / 1000
        while pending and (left := deadline - time.monotonic()) > 0:
            fetched = await consumer.getmany(*pending, timeout_ms=max(1, int(left * 1000)),
                                             max_records=per_partition * len(pending))
            for tp, records in fetched.items():
                values += [r.value for r in records]
                if records:
                    pending.discard(tp)
                    consumer.pause(tp)
            for tp in list(pending):  # read to its end without a record (transaction markers only)
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return json_columns(values, limit=len(values)), not pending
    except KafkaError as exc:
        raise ConnectorError(f"Kafka at {bootstrap_servers} is unreachable: {exc}") from exc
    finally:
        await consumer.stop()
