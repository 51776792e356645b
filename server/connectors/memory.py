"""In-memory sources and sinks (tests, benchmarks) and the source that merges several inputs.

``MergedSource`` reads every input of a multi-input query (a join's two topics, the table topics of
later joins and subqueries) and tags each batch with the index of the input it came from, so the
driver can call ``process(records, index)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from .base import Batch, Headers, OutputRow, PositionReset, Positions, Record, Sink, Source, SourceProgress


class MemorySource(Source):
    """Hands out a fixed list of records in batches; bounded unless ``bounded=False``."""

    def __init__(self, records: Sequence[Record], bounded: bool = True) -> None:
        self.bounded = bounded
        self._records = list(records)
        self._pos = 0
        self._last: dict[int, int] | None = None
        self.committed: dict[tuple[str, int], int] = {}

    async def start(self) -> None:
        pass

    async def read(self, timeout_ms: int, max_records: int) -> Batch:
        chunk = self._records[self._pos : self._pos + max_records]
        self._pos += len(chunk)
        if not chunk and not self.bounded:
            await asyncio.sleep(timeout_ms / 1000)
        offsets = {}
        for r in chunk:
            offsets[(r.topic, r.partition)] = r.offset + 1
        return Batch(list(chunk), offsets)

    async def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        self.committed.update(offsets)

    def progress(self) -> SourceProgress:
        """Its records' partitions; those with records not handed out yet are behind."""
        if self._last is None:  # each partition's last record's index, once (records are fixed)
            self._last = {r.partition: i for i, r in enumerate(self._records)}
        return SourceProgress(frozenset((0, p) for p in self._last),
                              frozenset((0, p) for p, i in self._last.items() if i >= self._pos))

    @property
    def at_end(self) -> bool:
        return self.bounded and self._pos >= len(self._records)

    async def stop(self) -> None:
        pass


class MemorySink(Sink):
    """Keeps every row written."""

    def __init__(self) -> None:
        self.rows: list[OutputRow] = []

    async def start(self) -> None:
        pass

    async def write(self, rows: list[OutputRow], headers: list[Headers] | None = None) -> None:
        self.rows += rows

    async def stop(self) -> None:
        pass


class MergedSource(Source):
    """Several sources read as one: each batch comes from one of them, in turn.

    ``last_index`` is the index of the input the last non-empty batch came from. Bounded inputs
    that end drop out; the merged source is at its end when every input is. The inputs listed in
    ``tables`` are read alone until each has read what its topic held at start (``Source.loaded``),
    so no stream record is processed before the table rows it should meet; then all are read in
    turn. A table's batches carry no offsets: it is read whole at every start, nothing to commit.
    """

    def __init__(self, sources: Sequence[Source], tables: Sequence[int] = ()) -> None:
        self.sources = list(sources)
        self.bounded = all(s.bounded for s in self.sources)
        self.last_index = 0
        self._turn = 0
        self._tables = frozenset(tables)
        self._loading = sorted(self._tables)

    async def start(self) -> None:
        started: list[Source] = []
        try:
            for s in self.sources:
                await s.start()
                started.append(s)
        except BaseException:
            for s in started:
                await s.stop()
            raise

    async def read(self, timeout_ms: int, max_records: int) -> Batch:
        if self._loading:
            self._loading = [i for i in self._loading if not await self.sources[i].loaded()]
        order = self._loading or range(len(self.sources))
        n = len(order)
        # Poll each input without waiting first; wait (split timeout) only when all are empty.
        for wait in (0, max(timeout_ms // n, 1)):
            for step in range(n):
                i = order[(self._turn + step) % n]
                source = self.sources[i]
                if source.bounded and source.at_end:
                    continue
                batch = await source.read(wait, max_records)
                if batch.records:
                    self._turn = (self._turn + step + 1) % n
                    self.last_index = i
                    return Batch(batch.records) if i in self._tables else batch
        return Batch([])

    async def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        for s in self.sources:
            mine = {tp: o for tp, o in offsets.items() if _owns(s, tp[0])}
            if mine:
                await s.commit(mine)

    @property
    def at_end(self) -> bool:
        return all(s.bounded and s.at_end for s in self.sources)

    async def positions(self) -> Positions | None:
        """Every input's positions under its own index (None when one of them has none)."""
        out: Positions = {}
        for i, s in enumerate(self.sources):
            mine = await s.positions()
            if mine is None:
                return None
            out.update({(i, t, p): o for (_, t, p), o in mine.items()})
        return out

    def seek(self, positions: Positions) -> None:
        for i, s in enumerate(self.sources):
            s.seek({(0, t, p): o for (j, t, p), o in positions.items() if j == i})

    def take_resets(self) -> list[PositionReset]:
        """Every input's resets, each tagged with its input index."""
        return [dataclasses.replace(r, input=i) for i, s in enumerate(self.sources) for r in s.take_resets()]

    def progress(self) -> SourceProgress | None:
        """Every stream input's progress under its own index (tables move no watermark: left out)."""
        parts: set[tuple[int, int]] = set()
        behind: set[tuple[int, int]] = set()
        told = False
        for i, s in enumerate(self.sources):
            mine = None if i in self._tables else s.progress()
            if mine is not None:
                told = True
                parts.update((i, p) for _, p in mine.partitions)
                behind.update((i, p) for _, p in mine.behind)
        return SourceProgress(frozenset(parts), frozenset(behind)) if told else None

    def pause(self) -> None:
        for s in self.sources:
            s.pause()

    async def refresh_ends(self) -> None:
        for s in self.sources:
            await s.refresh_ends()

    def resume(self) -> None:
        for s in self.sources:
            s.resume()

    def lag(self) -> int:
        return sum(int(getattr(s, "lag", lambda: 0)()) for s in self.sources)

    async def stop(self) -> None:
        for s in self.sources:
            await s.stop()


def _owns(source: Any, topic: str) -> bool:
    own = getattr(source, "topic", None)
    return own is None or own == topic
