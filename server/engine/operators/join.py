"""Joins: stream–table lookups and stream–stream joins bounded by time (or by a TTL and a row cap).

Both sides arrive as ``(row, event_time, partition, key, record)`` tuples from generated scan
functions (decode + cast + join key). Pairs ``(left_row, right_row, record)`` go to the generated
``post`` function (WHERE + projection, or the extraction of an aggregate after the join); a missing
side is an empty dict, so its columns read as NULL.

* Stream–table: the table (tables.KeyedTable) is the latest row per message key, looked up by join
  key, filled from a file at start or from a (compacted) topic as its records arrive (a tombstone
  deletes its key); each stream record is looked up once. ``ON true`` joins every stream record with
  the table's single row (key ``()``).
* Stream–stream: rows wait in per-key buffers. With a time bound (``WITHIN d`` or
  ``b._event_time BETWEEN a._event_time - x AND a._event_time + y``) a row is evicted once the
  watermark shows no partner can still arrive; without one, after ``join.state.ttl`` of event time
  or when ``join.state.max_rows`` is exceeded (oldest first). Outer rows that never matched are
  emitted (with NULLs) when they are evicted, and by ``finish()`` at the end of bounded input.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..processor import Emitted, RecordErrors, SourceProgress
from ..snapshot import decode, encode, restore_into, state_of
from ..time import NO_WATERMARK, Watermarks
from .tables import KeyedTable

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
        # A topic table keeps the latest row per message key (a tombstone deletes it); lookups go by join key.
        self._table = KeyedTable()
        if table_rows:
            self._table.apply(table_rows)
        # ``'watch' = 'true'``: the file is re-read when its modification time changes.
        self._watch = watch
        self._mtime = _mtime(watch[0]) if watch else None
        # The driver's clock (ms) when the file was last looked at: None until the first reading.
        self._checked: int | None = None

    def _maybe_reload(self, now_ms: int | None) -> None:
        """Re-read a watched file whose modification time changed, at most once per interval.

        Time comes from the driver (``process``/``tick``); without it (None) the file is not looked at.
        """
        if self._watch is None or now_ms is None:
            return
        if self._checked is None:
            self._checked = now_ms  # just loaded, when the query started
            return
        if now_ms - self._checked < WATCH_INTERVAL_MS:
            return
        self._checked = now_ms
        mtime = _mtime(self._watch[0])
        if mtime is not None and mtime != self._mtime:
            self._mtime = mtime
            try:
                rows = self._watch[1]()
            except Exception:  # a half-written file: keep the old table, retry later
                return
            self._table.clear()
            self._table.apply(rows)

    def process(self, records: Sequence[Any], input_index: int = 0, now_ms: int | None = None,
                progress: SourceProgress | None = None) -> Emitted:
        _clock(self._post, now_ms, progress)
        if input_index == 1:
            assert self._scan_table is not None
            rows, errors = self._scan_table(records)
            self._table.apply(rows)
            return Emitted([], errors)
        self._maybe_reload(now_ms)
        rows, errors = self._scan_stream(records)
        table = self._table.rows
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

    def tick(self, now_ms: int, progress: SourceProgress | None = None) -> Emitted:
        _clock(self._post, now_ms, progress)
        self._maybe_reload(now_ms)
        return Emitted()

    def finish(self) -> Emitted:
        return Emitted()

    def state_bytes(self) -> int:
        return len(self._table) * 200

    def snapshot(self) -> bytes | None:
        """The state of what follows the join (an aggregate, OVER); None when that keeps none.

        The table itself is not kept: every run rebuilds it, from its file or from the whole topic
        (read to its end before any stream record), so a snapshot would only repeat it.
        """
        post = state_of(self._post)
        return None if post is None else encode("stream-table join", {"post": post})

    def restore(self, data: bytes) -> None:
        """Take over ``snapshot()``'s state."""
        restore_into(self._post, decode("stream-table join", data)["post"])


def _clock(post: object, now_ms: int | None, progress: SourceProgress | None) -> None:
    """Pass the driver's time and its source's progress on to what follows a join (an aggregate has a
    watermark of its own)."""
    at = getattr(post, "at", None)
    if callable(at):
        at(now_ms, progress)


WATCH_INTERVAL_MS = 1000
"""How often (on the driver's clock) a watched file table's modification time is looked at."""


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


def _event_time(item: tuple[Any, ...]) -> Any:
    return item[1]  # a scanned row: (row, et, partition, key, meta)


def _by_event_time(pairs: list[tuple[Any, Any]]) -> list[Any]:
    """A self-join's (left, right) rows of each record in event-time order, flattened left, right."""
    pairs.sort(key=lambda two: two[0][1])
    return [row for two in pairs for row in two]


class StreamStreamJoin:
    """Two streams joined on equal keys within ``right.et - left.et ∈ [-before, after]``.

    ``before``/``after`` are None for an unbounded join (state kept for ``ttl`` ms of event time).
    ``self_join`` feeds every record of input 0 to both sides (the topic is read once); with
    ``scan_both`` (both sides decode alike) each record is decoded once, into a left and a right row
    that share the decoded dict.
    """

    def __init__(self, scan_left: Scan, scan_right: Scan, post: Post, kind: str,
                 before: int | None, after: int | None, grace: int, ttl: int, max_rows: int,
                 watermarks: Watermarks, self_join: bool = False, scan_both: Scan | None = None) -> None:
        self._scan = (scan_left, scan_right)
        self._scan_both = scan_both
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

    def process(self, records: Sequence[Any], input_index: int = 0, now_ms: int | None = None,
                progress: SourceProgress | None = None) -> Emitted:
        self._wm.at(now_ms)
        self._wm.follow_sides(progress, self._self_join)
        _clock(self._post, now_ms, progress)
        pairs: list[tuple[Any, Any, Any]] = []
        # A batch holds each partition's records one partition after the other. Joined in that order,
        # the watermark (held by the partitions not reached yet) cannot evict anything until the last
        # partition's first row, so a backlog would be buffered — and scanned for partners — whole.
        # Taken in event-time order instead (a stable sort of a few sorted runs: near linear, in C),
        # every partition is seen at once and the buffers stay as short as the join's bounds.
        partitions = {r.partition for r in records}
        by_time = len(partitions) > 1
        if self._scan_both is not None:
            # Rows alternate left, right: each record joins as a left row and as a right row, so
            # eviction (which follows the watermark record by record) never runs ahead of a partner.
            both, errors = self._scan_both(records)
            if by_time:
                both = _by_event_time(list(zip(both[0::2], both[1::2], strict=True)))
            self._add(both, None, pairs)
        elif self._self_join:
            left, e1 = self._scan[0](records)
            right, e2 = self._scan[1](records)
            errors = _merge_errors(e1, e2)
            two = list(zip(left, right, strict=False))
            self._add(_by_event_time(two) if by_time else [row for t in two for row in t], None, pairs)
        else:
            rows, errors = self._scan[input_index](records)
            if by_time:
                rows.sort(key=_event_time)
            self._add(rows, input_index, pairs)
        sides = (0, 1) if self._self_join else (input_index,)
        self._wm.touch({(s, p) for s in sides for p in partitions})
        if self._rows > self._max_rows:
            pairs += self._evict(None, self._rows - self._max_rows)
        out = self._post(pairs)
        out.errors = _merge_errors(errors, out.errors)
        return out

    def _add(self, items: list[tuple[Any, ...]], side: int | None, pairs: list[tuple[Any, Any, Any]]) -> None:
        """Join scanned rows with the other side's buffer and buffer them, in order.

        ``side`` is the side of every row, or None when the rows alternate left, right (a
        self-join). One loop with everything inline: this runs for every row of both inputs.
        """
        observe = self._wm.observe
        heap = self._expiry
        buffers = self._buffers
        push = heapq.heappush
        outer = (self._left_outer, self._right_outer)
        before, after = self._before, self._after
        bounded = before is not None and after is not None
        lowest = -before if before is not None else 0
        highest = after if after is not None else 0
        # How long a partner may still arrive, in event time, after a row of each side.
        if before is None or after is None:
            wait = (self._ttl, self._ttl)
        else:
            wait = (after + self._grace, before + self._grace)
        sides = itertools.cycle((0, 1)) if side is None else itertools.repeat(side)
        for s, (row, et, part, key, m) in zip(sides, items, strict=False):  # ``sides`` is endless
            wm = observe((s, part), et)
            if heap and heap[0][0] < wm:
                pairs += self._evict(wm)
            if key is None:  # a NULL key never matches; outer rows still come out
                if outer[s]:
                    empty: dict[str, Any] = {}
                    pairs.append((row, empty, m) if s == 0 else (empty, row, m))
                continue
            matched = False
            partners = buffers[1 - s].get(key)
            if partners:
                for o in partners:
                    if not o.alive:
                        continue
                    if bounded:
                        d = (o.et - et) if s == 0 else (et - o.et)  # right.et - left.et
                        if not lowest <= d <= highest:
                            continue
                    o.matched = matched = True
                    pairs.append((row, o.row, m) if s == 0 else (o.row, row, m))
            horizon = et + wait[s]
            if horizon < wm and not outer[s]:
                # Already past its horizon: the next row's eviction would drop it before anything
                # could match it, and an inner side emits nothing then, so it is not buffered at all.
                continue
            entry = _Entry(row, et, m)
            entry.matched = matched
            bucket = buffers[s].get(key)
            if bucket is None:
                bucket = buffers[s][key] = deque()
            bucket.append(entry)
            self._rows += 1
            self._seq += 1
            push(heap, (horizon, self._seq, s, key, entry))

    def _evict(self, watermark: int | None, count: int | None = None) -> list[tuple[Any, Any, Any]]:
        """Drop rows whose horizon the watermark has passed (or the ``count`` oldest); unmatched outer
        rows come out with NULLs for the other side."""
        out: list[tuple[Any, Any, Any]] = []
        heap = self._expiry
        buffers = self._buffers
        pop = heapq.heappop
        outer = (self._left_outer, self._right_outer)
        while heap and ((count is not None and count > 0) or
                        (watermark is not None and count is None and heap[0][0] < watermark)):
            _, _, side, key, entry = pop(heap)
            if count is not None:
                count -= 1
            entry.alive = False
            self._rows -= 1
            bucket = buffers[side].get(key)
            if bucket is not None:
                # Rows mostly expire in arrival order: drop dead ones from the front (O(1)).
                while bucket and not bucket[0].alive:
                    bucket.popleft()
                if not bucket:
                    del buffers[side][key]
            if not entry.matched and outer[side]:
                empty: dict[str, Any] = {}
                out.append((entry.row, empty, entry.m) if side == 0 else (empty, entry.row, entry.m))
        return out

    def tick(self, now_ms: int, progress: SourceProgress | None = None) -> Emitted:
        self._wm.follow_sides(progress, self._self_join)
        self._wm.idle(now_ms)
        _clock(self._post, now_ms, progress)
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

    def snapshot(self) -> bytes:
        """Both sides' buffered rows (with their records), the expiry heap, the watermark and what follows."""
        # Rows are in a bucket and in the heap at once: one pickle keeps that sharing and the heap order.
        return encode("stream-stream join", {
            "buffers": self._buffers, "expiry": self._expiry, "seq": self._seq, "rows": self._rows,
            "wm": self._wm.state(), "post": state_of(self._post),
        }, plain=False)

    def restore(self, data: bytes) -> None:
        """Take over ``snapshot()``'s state."""
        state = decode("stream-stream join", data)
        self._buffers, self._expiry = state["buffers"], state["expiry"]
        self._seq, self._rows = state["seq"], state["rows"]
        self._wm.load_state(state["wm"])
        restore_into(self._post, state["post"])
