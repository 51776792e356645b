"""Joins: stream–table lookups and stream–stream joins bounded by time (or by a TTL and a row cap).

Both sides arrive as ``(row, event_time, partition, key, record)`` tuples from generated scan
functions (decode + cast + join key). Pairs ``(left_row, right_row, record)`` go to the generated
``post`` function (WHERE + projection, or the extraction of an aggregate after the join); a missing
side is an empty dict, so its columns read as NULL.

* Stream–table: the table is a dict join-key → latest row, filled from a file at start or from a
  (compacted) topic as its records arrive; each stream record is looked up once. ``ON true`` joins
  every stream record with the table's single row (key ``()``).
* Stream–stream: rows wait in per-key buffers. With a time bound (``WITHIN d`` or
  ``b._event_time BETWEEN a._event_time - x AND a._event_time + y``) a row is evicted once the
  watermark shows no partner can still arrive; without one, after ``join.state.ttl`` of event time
  or when ``join.state.max_rows`` is exceeded (oldest first). Outer rows that never matched are
  emitted (with NULLs) when they are evicted, and by ``finish()`` at the end of bounded input.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..processor import Emitted, RecordErrors
from ..time import NO_WATERMARK, Watermarks

Scan = Callable[[Sequence[Any]], tuple[list[tuple[Any, ...]], RecordErrors | None]]
Post = Callable[[list[tuple[Any, Any, Any]]], Emitted]


def _merge_errors(*lists: RecordErrors | None) -> RecordErrors | None:
    out: RecordErrors = []
    for e in lists:
        if e:
            out += e
    return out or None


class StreamTableJoin:
    """A stream (input 0) joined with a table (input 1, or rows loaded up front)."""

    def __init__(self, scan_stream: Scan, scan_table: Scan | None, post: Post, outer: bool,
                 table_rows: list[tuple[Any, ...]] | None = None,
                 watch: tuple[Path, Callable[[], list[tuple[Any, ...]]]] | None = None) -> None:
        self._scan_stream = scan_stream
        self._scan_table = scan_table
        self._post = post
        self._outer = outer
        self._table: dict[Any, Any] = {}
        if table_rows:
            self._upsert(table_rows)
        # ``'watch' = 'true'``: the file is re-read when its modification time changes.
        self._watch = watch
        self._mtime = _mtime(watch[0]) if watch else None
        self._checked = time.monotonic()

    def _maybe_reload(self) -> None:
        if self._watch is None or time.monotonic() - self._checked < _WATCH_INTERVAL_S:
            return
        self._checked = time.monotonic()
        mtime = _mtime(self._watch[0])
        if mtime is not None and mtime != self._mtime:
            self._mtime = mtime
            try:
                rows = self._watch[1]()
            except Exception:  # a half-written file: keep the old table, retry later
                return
            self._table = {}
            self._upsert(rows)

    def _upsert(self, rows: list[tuple[Any, ...]]) -> None:
        table = self._table
        for row, _et, _part, key, _m in rows:
            if key is not None:
                table[key] = row

    def process(self, records: Sequence[Any], input_index: int = 0) -> Emitted:
        if input_index == 1:
            assert self._scan_table is not None
            rows, errors = self._scan_table(records)
            self._upsert(rows)
            return Emitted([], errors)
        self._maybe_reload()
        rows, errors = self._scan_stream(records)
        table = self._table
        pairs: list[tuple[Any, Any, Any]] = []
        empty: dict[str, Any] = {}
        for row, _et, _part, key, m in rows:
            match = table.get(key) if key is not None else None
            if match is not None:
                pairs.append((row, match, m))
            elif self._outer:
                pairs.append((row, empty, m))
        out = self._post(pairs)
        out.errors = _merge_errors(errors, out.errors)
        return out

    def tick(self, now_ms: int) -> Emitted:
        self._maybe_reload()
        return Emitted()

    def finish(self) -> Emitted:
        return Emitted()

    def state_bytes(self) -> int:
        return len(self._table) * 200


_WATCH_INTERVAL_S = 1.0


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


class _Entry:
    __slots__ = ("alive", "et", "m", "matched", "row")

    def __init__(self, row: Any, et: int, m: Any) -> None:
        self.row = row
        self.et = et
        self.m = m
        self.matched = False
        self.alive = True


class StreamStreamJoin:
    """Two streams joined on equal keys within ``right.et - left.et ∈ [-before, after]``.

    ``before``/``after`` are None for an unbounded join (state kept for ``ttl`` ms of event time).
    ``self_join`` feeds every record of input 0 to both sides (the topic is read once).
    """

    def __init__(self, scan_left: Scan, scan_right: Scan, post: Post, kind: str,
                 before: int | None, after: int | None, grace: int, ttl: int, max_rows: int,
                 watermarks: Watermarks, self_join: bool = False) -> None:
        self._scan = (scan_left, scan_right)
        self._post = post
        self._left_outer = kind in ("left", "full")
        self._right_outer = kind in ("right", "full")
        self._before = before
        self._after = after
        self._grace = grace
        self._ttl = ttl
        self._max_rows = max_rows
        self._wm = watermarks
        self._self_join = self_join
        self._buffers: tuple[dict[Any, deque[_Entry]], dict[Any, deque[_Entry]]] = ({}, {})
        self._expiry: list[tuple[int, int, int, Any, _Entry]] = []
        self._seq = 0
        self._rows = 0
        self.warning = None if before is not None else "unbounded stream-stream join: state TTL applies"

    def process(self, records: Sequence[Any], input_index: int = 0) -> Emitted:
        pairs: list[tuple[Any, Any, Any]] = []
        if self._self_join:
            # Each record joins as a left row and as a right row, in arrival order, so eviction
            # (which follows the watermark record by record) never runs ahead of a partner.
            left, e1 = self._scan[0](records)
            right, e2 = self._scan[1](records)
            errors = _merge_errors(e1, e2)
            add = self._add_one
            for lrow, rrow in zip(left, right, strict=False):
                add(0, lrow, pairs)
                add(1, rrow, pairs)
        else:
            rows, errors = self._scan[input_index](records)
            for row in rows:
                self._add_one(input_index, row, pairs)
        sides = (0, 1) if self._self_join else (input_index,)
        self._wm.touch({(s, p) for s in sides for p in {r.partition for r in records}})
        if self._rows > self._max_rows:
            pairs += self._evict(None, self._rows - self._max_rows)
        out = self._post(pairs)
        out.errors = _merge_errors(errors, out.errors)
        return out

    def _add_one(self, side: int, item: tuple[Any, ...], pairs: list[tuple[Any, Any, Any]]) -> None:
        row, et, part, key, m = item
        wm = self._wm.observe((side, part), et)
        if self._expiry and self._expiry[0][0] < wm:
            pairs += self._evict(wm)
        if key is None:  # a NULL key never matches; outer rows still come out
            if (self._left_outer and side == 0) or (self._right_outer and side == 1):
                empty: dict[str, Any] = {}
                pairs.append((row, empty, m) if side == 0 else (empty, row, m))
            return
        before, after = self._before, self._after
        entry = _Entry(row, et, m)
        for o in self._buffers[1 - side].get(key, ()):
            if not o.alive:
                continue
            d = (o.et - et) if side == 0 else (et - o.et)  # right.et - left.et
            if before is not None and after is not None and not -before <= d <= after:
                continue
            o.matched = entry.matched = True
            pairs.append((row, o.row, m) if side == 0 else (o.row, row, m))
        bucket = self._buffers[side].get(key)
        if bucket is None:
            bucket = self._buffers[side][key] = deque()
        bucket.append(entry)
        self._rows += 1
        # How long a partner may still arrive, in event time, after this row.
        if before is None or after is None:
            horizon = et + self._ttl
        else:
            horizon = et + (after if side == 0 else before) + self._grace
        self._seq += 1
        heapq.heappush(self._expiry, (horizon, self._seq, side, key, entry))

    def _evict(self, watermark: int | None, count: int | None = None) -> list[tuple[Any, Any, Any]]:
        out: list[tuple[Any, Any, Any]] = []
        empty: dict[str, Any] = {}
        heap = self._expiry
        while heap and ((count is not None and count > 0) or
                        (watermark is not None and count is None and heap[0][0] < watermark)):
            _, _, side, key, entry = heapq.heappop(heap)
            if count is not None:
                count -= 1
            entry.alive = False
            self._rows -= 1
            bucket = self._buffers[side].get(key)
            if bucket is not None:
                # Rows mostly expire in arrival order: drop dead ones from the front (O(1)).
                while bucket and not bucket[0].alive:
                    bucket.popleft()
                if not bucket:
                    del self._buffers[side][key]
            if not entry.matched:
                if side == 0 and self._left_outer:
                    out.append((entry.row, empty, entry.m))
                elif side == 1 and self._right_outer:
                    out.append((empty, entry.row, entry.m))
        return out

    def tick(self, now_ms: int) -> Emitted:
        self._wm.idle()
        return self._post(self._evict(self._wm.current))

    def finish(self) -> Emitted:
        out: list[tuple[Any, Any, Any]] = []
        empty: dict[str, Any] = {}
        for side, outer in ((0, self._left_outer), (1, self._right_outer)):
            if not outer:
                continue
            for bucket in self._buffers[side].values():
                for e in bucket:
                    if e.alive and not e.matched:
                        out.append((e.row, empty, e.m) if side == 0 else (empty, e.row, e.m))
        self._buffers[0].clear()
        self._buffers[1].clear()
        self._expiry.clear()
        return self._post(out)

    def watermark_ms(self) -> int | None:
        """The current event-time watermark (None before the first record), for metrics."""
        wm = self._wm.current
        return None if wm == NO_WATERMARK else wm

    def state_bytes(self) -> int:
        return self._rows * 250
