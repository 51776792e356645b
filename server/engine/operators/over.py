"""Analytic ``fn(...) OVER (PARTITION BY … ORDER BY … ROWS BETWEEN …)``, evaluated per arriving record.

Each record is evaluated against the records of its partition seen before it (arrival order), so
state is bounded by the frame: LAG keeps its last n values, ROWS BETWEEN n PRECEDING AND m PRECEDING
keeps the frame's n - m + 1 values and the m newest rows not in it yet, an unbounded frame keeps a
running accumulator, ROW_NUMBER/RANK/DENSE_RANK keep counters. Partitions idle (in event time) longer
than ``over.state.ttl`` are evicted.

The per-record work is one generated function per query and output mode (compiler/over.py,
``over_rows`` / ``over_encode``): decode (or unpack a joined row), partition key, arguments, each
call's update inlined for its kind, WHERE and the result row. This module owns the state those
functions update (``_new_state``) and the helpers they call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..functions.aggregates import Accumulator, Avg, Count, Max, Min, Sum
from ..processor import Emitted, RecordErrors, SourceProgress
from ..snapshot import decode, encode

# over_<mode>(batch, parts, last, new_state, max_et) → (output rows, errors, max_et): the generated
# per-batch function (batch: records, or (row, event time, record) after a join).
Evaluate = Callable[[Sequence[Any], dict[Any, list[Any]], dict[Any, int], Callable[[], list[Any]], int],
                    tuple[list[Any], RecordErrors | None, int]]

# Accumulators whose result over a frame of plain values the generated code computes with builtins
# (len, min, max, sum, functools.reduce) — the same operations, in the same order, as add() one by one.
# Their frames hold plain values; other aggregates' frames hold (value, event time).
PLAIN_FRAME: tuple[type[Accumulator], ...] = (Count, Sum, Avg, Min, Max)


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

    @property
    def plain_frame(self) -> bool:
        """A ``ROWS BETWEEN n PRECEDING`` frame kept as plain values (see PLAIN_FRAME)."""
        return self.preceding is not None and self.acc in PLAIN_FRAME


def frame_values(acc: type[Accumulator], params: tuple[Any, ...], frame: Iterable[Any]) -> Any:
    """The aggregate of a plain-value frame, one add() at a time.

    The generated code's builtin shortcut raises TypeError on a NULL in the frame (or on values the
    aggregate cannot combine); it then comes here, which skips NULLs or raises the same error.
    """
    a = acc(*params)
    for v in frame:
        a.add(v, 0)  # these aggregates ignore the event time
    return a.result()


def frame_pairs(acc: type[Accumulator], params: tuple[Any, ...], frame: Iterable[tuple[Any, int]]) -> Any:
    """The aggregate of a frame of (value, event time) pairs (FIRST_VALUE, STDDEV, …)."""
    a = acc(*params)
    for v, et in frame:
        a.add(v, et)
    return a.result()


class _Rank:
    __slots__ = ("count", "dense", "last", "rank")

    def __init__(self) -> None:
        self.count = 0
        self.rank = 0
        self.dense = 0
        self.last: Any = object()


class OverProcessor:
    """The Processor of a query with analytic functions (one input)."""

    def __init__(self, evaluate: Evaluate, calls: Sequence[OverCall], ttl_ms: int) -> None:
        self._evaluate = evaluate
        self._calls = list(calls)
        self._ttl = ttl_ms
        self._parts: dict[Any, list[Any]] = {}  # partition key → per-call state (see _new_state)
        self._last: dict[Any, int] = {}  # partition key → last event time
        self._max_et = 0
        self._batches = 0

    def _new_state(self) -> list[Any]:
        """A new partition's state, one entry per call, in the shape the generated code updates."""
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
                # (frame, pending): the frame's rows, oldest first, and the m newest rows that are
                # still too recent for it (m PRECEDING); a row moves over when it becomes m rows old.
                states.append((deque(maxlen=c.preceding - c.end_preceding + 1), deque()))
        return states

    def process(self, records: Sequence[Any], input_index: int = 0, now_ms: int | None = None,
                progress: SourceProgress | None = None) -> Emitted:
        """One batch of records (the generated function decodes them)."""
        return self.consume(records)

    def consume(self, rows: Sequence[Any]) -> Emitted:
        """Evaluate the analytic calls for a batch, in order: records, or (row, event time, record)
        triples when the rows come from a join."""
        out, errors, self._max_et = self._evaluate(rows, self._parts, self._last, self._new_state, self._max_et)
        emitted = Emitted(out, errors)
        self._batches += 1
        if self._batches % 64 == 0:
            self._evict()
        return emitted

    def _evict(self) -> None:
        limit = self._max_et - self._ttl
        stale = [pk for pk, t in self._last.items() if t < limit]
        for pk in stale:
            del self._last[pk]
            self._parts.pop(pk, None)

    def tick(self, now_ms: int, progress: SourceProgress | None = None) -> Emitted:
        return Emitted()

    def finish(self) -> Emitted:
        return Emitted()

    def state_bytes(self) -> int:
        return len(self._parts) * (100 + 80 * len(self._calls))

    def snapshot(self) -> bytes:
        """Every partition's per-call state, its last event time, and the eviction clock."""
        # Partition states hold deques, counters and accumulators: data only, pickled as they are.
        return encode("over", {"parts": self._parts, "last": self._last, "max_et": self._max_et,
                               "batches": self._batches}, plain=False)

    def restore(self, data: bytes) -> None:
        """Take over ``snapshot()``'s state."""
        state = decode("over", data)
        self._parts, self._last = state["parts"], state["last"]
        self._max_et, self._batches = state["max_et"], state["batches"]
