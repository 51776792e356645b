"""Analytic ``fn(...) OVER (PARTITION BY … ORDER BY … ROWS BETWEEN …)``, evaluated per arriving record.

Each record is evaluated against the records of its partition seen before it (arrival order), so
state is bounded by the frame: LAG keeps its last n values, ROWS BETWEEN n PRECEDING keeps n + 1
values, an unbounded frame keeps a running accumulator, ROW_NUMBER/RANK/DENSE_RANK keep counters.
Partitions idle (in event time) longer than ``over.state.ttl`` are evicted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..functions.aggregates import Accumulator
from ..processor import Emitted, RecordErrors

Scan = Callable[[Sequence[Any]], tuple[list[tuple[Any, ...]], RecordErrors | None]]
Inputs = Callable[[Any], tuple[Any, Any, tuple[Any, ...]]]  # row → (partition key, order, args)
Post = Callable[[list[tuple[Any, list[Any], Any]]], Emitted]


@dataclass(frozen=True)
class OverCall:
    """One analytic call: its function, frame and constant parameters."""

    name: str
    acc: type[Accumulator] | None  # aggregates
    params: tuple[Any, ...]
    preceding: int | None  # None: unbounded
    end_preceding: int  # 0: CURRENT ROW
    lag: int = 1
    default: Any = None


class _Rank:
    __slots__ = ("count", "dense", "last", "rank")

    def __init__(self) -> None:
        self.count = 0
        self.rank = 0
        self.dense = 0
        self.last: Any = object()


class OverProcessor:
    """The Processor of a query with analytic functions (one input)."""

    def __init__(self, scan: Scan | None, inputs: Inputs, calls: Sequence[OverCall], post: Post,
                 ttl_ms: int) -> None:
        self._scan = scan
        self._inputs = inputs
        self._calls = list(calls)
        self._post = post
        self._ttl = ttl_ms
        self._parts: dict[Any, list[Any]] = {}  # partition key → per-call state
        self._last: dict[Any, int] = {}  # partition key → last event time
        self._max_et = 0
        self._batches = 0

    def _new_state(self) -> list[Any]:
        states: list[Any] = []
        for c in self._calls:
            if c.name == "LAG":
                states.append(deque(maxlen=c.lag))
            elif c.name in ("ROW_NUMBER", "RANK", "DENSE_RANK"):
                states.append(_Rank())
            elif c.preceding is None and c.end_preceding == 0:
                assert c.acc is not None
                states.append(c.acc(*c.params))
            elif c.preceding is None:
                assert c.acc is not None
                states.append((c.acc(*c.params), deque()))
            else:
                states.append(deque(maxlen=c.preceding + 1))
        return states

    def process(self, records: Sequence[Any], input_index: int = 0) -> Emitted:
        assert self._scan is not None
        rows, errors = self._scan(records)
        emitted = self.consume([(row, et, m) for row, et, _part, _key, m in rows])
        if errors:
            emitted.errors = errors + (emitted.errors or [])
        return emitted

    def consume(self, rows: list[tuple[Any, int, Any]]) -> Emitted:
        """Evaluate the analytic calls for ``(row, event time, record)`` triples, in order."""
        errors: RecordErrors | None = None
        out: list[tuple[Any, list[Any], Any]] = []
        calls = self._calls
        parts, last = self._parts, self._last
        for row, et, m in rows:
            try:
                pk, order, args = self._inputs(row)
            except Exception as exc:
                errors = (errors or []) + [(m, exc)]
                continue
            state = parts.get(pk)
            if state is None:
                state = parts[pk] = self._new_state()
            last[pk] = et
            if et > self._max_et:
                self._max_et = et
            values: list[Any] = []
            for c, s, a in zip(calls, state, args, strict=True):
                values.append(self._eval(c, s, a, order, et))
            out.append((row, values, m))
        emitted = self._post(out)
        if errors:
            emitted.errors = errors + (emitted.errors or [])
        self._batches += 1
        if self._batches % 64 == 0:
            self._evict()
        return emitted

    @staticmethod
    def _eval(c: OverCall, s: Any, a: tuple[Any, ...], order: Any, et: int) -> Any:
        name = c.name
        if name == "LAG":
            v = s[0] if len(s) == c.lag else c.default
            s.append(a[0] if a else None)
            return v
        if name in ("ROW_NUMBER", "RANK", "DENSE_RANK"):
            s.count += 1
            if order != s.last:
                s.rank = s.count
                s.dense += 1
                s.last = order
            return s.count if name == "ROW_NUMBER" else s.rank if name == "RANK" else s.dense
        v = a[0] if a else 1  # COUNT(*) counts rows
        if c.preceding is None and c.end_preceding == 0:
            s.add(v, et)
            return s.result()
        if c.preceding is None:
            acc, pending = s
            pending.append((v, et))
            if len(pending) > c.end_preceding:
                pv, pet = pending.popleft()
                acc.add(pv, pet)
            return acc.result()
        s.append((v, et))
        assert c.acc is not None
        acc = c.acc(*c.params)
        frame = list(s)
        if c.end_preceding:
            frame = frame[: len(frame) - c.end_preceding]
        for fv, fet in frame:
            acc.add(fv, fet)
        return acc.result()

    def _evict(self) -> None:
        limit = self._max_et - self._ttl
        stale = [pk for pk, t in self._last.items() if t < limit]
        for pk in stale:
            del self._last[pk]
            self._parts.pop(pk, None)

    def tick(self, now_ms: int) -> Emitted:
        return Emitted()

    def finish(self) -> Emitted:
        return Emitted()

    def state_bytes(self) -> int:
        return len(self._parts) * (100 + 80 * len(self._calls))
