"""Event time and watermarks (dialect.md §5).

The watermark is tracked per (input, partition): each keeps the maximum event time seen; the job's
watermark is the minimum over the partitions that are not idle, minus the allowed out-of-orderness.
A partition that has sent nothing for ``idle_timeout`` (wall-clock) stops holding the watermark back;
partitions not seen yet hold it for ``idle_timeout`` after the first record (they may be late to
start), so the watermark only advances once that warm-up has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .types import CastError, parse_timestamp

NO_WATERMARK = -(2**62)


def is_epoch_millis(fmt: str) -> bool:
    """Whether ``'event.time.format'`` is epoch milliseconds (an int field is then the event time as is)."""
    return fmt.strip().lower() in ("epoch_millis", "millis", "ms")


def event_time_parser(fmt: str) -> Callable[[Any], int]:
    """A function from a field's value to event-time ms, for ``'event.time.format'``."""
    f = fmt.strip()
    lowered = f.lower()
    if is_epoch_millis(f):
        def millis(v: Any) -> int:
            if v is None:
                raise CastError("the event-time field is missing")
            return v if type(v) is int else parse_timestamp(v)
        return millis
    if lowered in ("epoch_seconds", "seconds", "s"):
        def seconds(v: Any) -> int:
            if v is None:
                raise CastError("the event-time field is missing")
            return int(float(v) * 1000)
        return seconds
    if lowered in ("iso8601", "iso", "iso-8601"):
        def iso(v: Any) -> int:
            if v is None:
                raise CastError("the event-time field is missing")
            return parse_timestamp(str(v))
        return iso

    def pattern(v: Any) -> int:
        if v is None:
            raise CastError("the event-time field is missing")
        dt = datetime.strptime(str(v), f)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)

    return pattern


class Watermarks:
    """Per-partition maximum event times and the resulting watermark."""

    __slots__ = ("current", "idle_timeout", "last_seen", "maxes", "out_of_orderness", "started")

    def __init__(self, out_of_orderness_ms: int, idle_timeout_ms: int) -> None:
        self.out_of_orderness = out_of_orderness_ms
        self.idle_timeout = idle_timeout_ms
        self.maxes: dict[Any, int] = {}
        self.last_seen: dict[Any, float] = {}
        self.current = NO_WATERMARK
        self.started: float | None = None

    def observe(self, partition: Any, et: int) -> int:
        """Record an event time; returns the (possibly advanced) watermark."""
        maxes = self.maxes
        old = maxes.get(partition)
        if old is None or et > old:
            maxes[partition] = et
            if self.started is None:
                self.started = time.monotonic()
            # _recompute() without idle partitions, inlined: operators call this for every record, and
            # in an in-order stream nearly every record raises its partition's maximum.
            if not self.idle_timeout or time.monotonic() - self.started >= self.idle_timeout / 1000:
                wm = (et if len(maxes) == 1 else min(maxes.values())) - self.out_of_orderness
                if wm > self.current:  # watermarks never go back
                    self.current = wm
        return self.current

    def touch(self, partitions: Any) -> None:
        """Mark partitions as active now (once per batch, not per record)."""
        now = time.monotonic()
        for p in partitions:
            self.last_seen[p] = now

    def idle(self, now: float | None = None) -> int:
        """Drop idle partitions from the minimum; returns the watermark."""
        self._recompute(time.monotonic() if now is None else now)
        return self.current

    def state(self) -> dict[str, Any]:
        """The watermark state as plain data, for a snapshot.

        Wall-clock marks (``time.monotonic()``) mean nothing in another process, so they are kept as
        ages; ``load_state`` counts them from its own now: time while the job was stopped is not
        silence of a partition (nothing was reading it).
        """
        now = time.monotonic()
        return {
            "current": self.current,
            "maxes": list(self.maxes.items()),
            "seen_ages": [(p, now - t) for p, t in self.last_seen.items()],
            "started_age": None if self.started is None else now - self.started,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Take over a ``state()`` (same out-of-orderness and idle timeout: they come from the query)."""
        now = time.monotonic()
        self.current = int(state["current"])
        self.maxes = {_key(p): m for p, m in state["maxes"]}
        self.last_seen = {_key(p): now - age for p, age in state["seen_ages"]}
        age = state["started_age"]
        self.started = None if age is None else now - age

    def _recompute(self, now: float | None = None) -> None:
        if not self.maxes:
            return
        # Partitions not heard from yet are not idle until idle_timeout has passed since the first
        # record: until then they may still bring older records, so the watermark waits.
        if self.idle_timeout and self.started is not None and \
                (time.monotonic() if now is None else now) - self.started < self.idle_timeout / 1000:
            return
        values = self.maxes.values()
        if now is not None and len(self.maxes) > 1:
            limit = now - self.idle_timeout / 1000
            active = [m for p, m in self.maxes.items() if self.last_seen.get(p, now) >= limit]
            values = active or [max(self.maxes.values())]  # type: ignore[assignment]
        wm = min(values) - self.out_of_orderness
        if wm > self.current:  # watermarks never go back
            self.current = wm


def _key(partition: Any) -> Any:
    """A partition key as it was before encoding (a join's ``(side, partition)`` may come back a list)."""
    return tuple(partition) if isinstance(partition, list) else partition
