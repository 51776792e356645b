"""Event time and watermarks (dialect.md §5).

The watermark is tracked per (input, partition): each keeps the maximum event time seen; the job's
watermark is the minimum over the partitions that are not idle, minus the allowed out-of-orderness.

Idleness comes from being caught up, not from a pause between fetches: the driver passes the
source's progress (which partitions are behind their end) with each batch and tick, and only a
partition that is caught up and has sent nothing for ``idle_timeout`` (on the driver's clock) stops
holding the watermark back. A partition that is behind is never idle — in a backlog read in chunks
it is only waiting for its turn — and one not seen yet that is behind holds the watermark until its
first records come. A caught-up partition not seen yet (nothing written to it so far) holds it for
``idle_timeout`` after the first record: it may be about to start. Without progress (a driver that
cannot tell) silence alone decides, and every partition not seen yet gets that warm-up.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from typing import Any

from ..connectors.base import SourceProgress
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
    """Per-partition maximum event times and the resulting watermark.

    Idleness is measured on the driver's clock, never read here: ``at(now_ms)`` (called by the
    operator with the ``now_ms`` its driver passed to ``process`` or ``tick``) moves it forward, and
    every mark (a partition last seen, the first record) is a reading of it. A driver that passes no
    time (a test feeding batches) keeps the clock where it is, so nothing goes idle by itself.
    ``follow(progress)`` (once per batch or tick, from the driver's source) says which partitions
    there are and which still have records to come.
    """

    __slots__ = ("_behind", "_open", "_parts", "_rebase", "current", "idle_timeout", "last_seen", "maxes",
                 "now", "out_of_orderness", "started")

    def __init__(self, out_of_orderness_ms: int, idle_timeout_ms: int) -> None:
        self.out_of_orderness = out_of_orderness_ms
        self.idle_timeout = idle_timeout_ms
        self.maxes: dict[Any, int] = {}
        self.last_seen: dict[Any, int] = {}  # partition -> the clock when a batch last held it
        self.current = NO_WATERMARK
        self.started: int | None = None  # the clock at the first record
        self.now = 0  # the driver's clock (ms), as last given
        self._rebase = False  # restored marks count from the next clock reading (load_state)
        self._parts: frozenset[Any] | None = None  # every partition of the source (None: not told)
        self._behind: frozenset[Any] = frozenset()  # those with records still to come
        # Whether a record may move the watermark: no partition not seen yet holds it (see _reopen).
        # Kept up to date per batch and per new partition, so observe() tests one flag per record.
        self._open = not idle_timeout_ms

    def at(self, now_ms: int | None) -> None:
        """Move the clock to the driver's ``now_ms`` (None: time does not advance; never backwards)."""
        if now_ms is None:
            return
        if self._rebase:
            # A restored state's marks were ages before this processor saw any time: shift them so
            # the ages count from this first reading (the driver's clock is its own, not the old one's).
            self._rebase = False
            shift = now_ms - self.now
            self.last_seen = {p: t + shift for p, t in self.last_seen.items()}
            if self.started is not None:
                self.started += shift
            self.now = now_ms
        elif now_ms > self.now:
            self.now = now_ms
        self._reopen()

    def follow(self, progress: SourceProgress | None) -> None:
        """The source's progress (once per batch or tick), for a watermark keyed by partition id.

        An aggregate's records carry their partition only, whichever input they came from (after a
        join, either side's): a partition id is behind when it is behind in any input.
        """
        if progress is not None:
            self._follow({p for _, p in progress.partitions}, {p for _, p in progress.behind})

    def follow_sides(self, progress: SourceProgress | None, self_join: bool) -> None:
        """The source's progress, for a watermark keyed by (side, partition): a stream-stream join's,
        whose side is its input (a self-join reads input 0 for both sides)."""
        if progress is None:
            return
        if self_join:
            self._follow({(s, p) for s in (0, 1) for _, p in progress.partitions},
                         {(s, p) for s in (0, 1) for _, p in progress.behind})
        else:
            self._follow(progress.partitions, progress.behind)

    def _follow(self, partitions: AbstractSet[Any], behind: AbstractSet[Any]) -> None:
        self._parts = frozenset(partitions)
        self._behind = frozenset(behind)
        self._reopen()

    def observe(self, partition: Any, et: int) -> int:
        """Record an event time; returns the (possibly advanced) watermark."""
        maxes = self.maxes
        old = maxes.get(partition)
        if old is None or et > old:
            maxes[partition] = et
            if old is None:  # a partition's first record: the warm-up starts, a hold may end
                if self.started is None:
                    self.started = self.now
                self._reopen()
            # _recompute() without idle partitions, inlined: operators call this for every record, and
            # in an in-order stream nearly every record raises its partition's maximum.
            if self._open:
                wm = (et if len(maxes) == 1 else min(maxes.values())) - self.out_of_orderness
                if wm > self.current:  # watermarks never go back
                    self.current = wm
        return self.current

    def touch(self, partitions: Any) -> None:
        """Mark partitions as active at the current clock (once per batch, not per record).

        With the source's progress known, idle partitions then leave the minimum at once: a caught-up
        partition that fell silent must not hold the watermark while the others stream on (without
        progress that waits for a tick, when the driver reads nothing).
        """
        now = self.now
        for p in partitions:
            self.last_seen[p] = now
        if self._parts is not None:
            self._recompute(now)

    def idle(self, now_ms: int | None = None) -> int:
        """Advance the clock to ``now_ms``, drop idle partitions from the minimum; returns the watermark."""
        self.at(now_ms)
        self._recompute(self.now)
        return self.current

    def state(self) -> dict[str, Any]:
        """The watermark state as plain data, for a snapshot.

        Clock marks mean nothing to another process's clock, so they are kept as ages; ``load_state``
        counts them from its processor's first clock reading: time while the job was stopped is not
        silence of a partition (nothing was reading it). The source's progress is not kept: the
        driver gives it again with its first batch.
        """
        now = self.now
        return {
            "current": self.current,
            "maxes": list(self.maxes.items()),
            "seen_ages_ms": [(p, now - t) for p, t in self.last_seen.items()],
            "started_age_ms": None if self.started is None else now - self.started,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Take over a ``state()`` (same out-of-orderness and idle timeout: they come from the query)."""
        now = self.now
        self.current = int(state["current"])
        self.maxes = {_key(p): m for p, m in state["maxes"]}
        if "seen_ages_ms" in state:
            seen, age = state["seen_ages_ms"], state["started_age_ms"]
        else:  # a snapshot written before the clock was passed in: ages in seconds
            seen = [(p, a * 1000) for p, a in state["seen_ages"]]
            age = None if state["started_age"] is None else state["started_age"] * 1000
        self.last_seen = {_key(p): now - int(a) for p, a in seen}
        self.started = None if age is None else now - int(age)
        self._rebase = True
        self._reopen()

    def _reopen(self) -> None:
        """Work out whether a record may move the watermark now (``_open``).

        It may not while a partition not seen yet holds it: one that is behind (its records are on
        the way), or one within the warm-up (``idle_timeout`` after the first record: it may start
        any moment). Without the source's progress every partition not seen yet is within the warm-up.
        """
        warm = bool(self.idle_timeout) and (self.started is None or self.now - self.started < self.idle_timeout)
        parts = self._parts
        if parts is None:
            self._open = not warm
        else:
            maxes, behind = self.maxes, self._behind
            self._open = not any(p not in maxes and (warm or p in behind) for p in parts)

    def _recompute(self, now: int) -> None:
        maxes = self.maxes
        if not maxes or not self._open:
            return  # nothing seen yet, or a partition not seen yet holds the watermark
        values = maxes.values()
        if len(maxes) > 1 or self._parts is not None:
            # Idle: silent for longer than idle_timeout and (when the source says) caught up.
            limit, seen, behind = now - self.idle_timeout, self.last_seen, self._behind
            active = [m for p, m in maxes.items() if p in behind or seen.get(p, now) >= limit]
            values = active or [max(maxes.values())]  # type: ignore[assignment]
        wm = min(values) - self.out_of_orderness
        if wm > self.current:  # watermarks never go back
            self.current = wm


def _key(partition: Any) -> Any:
    """A partition key as it was before encoding (a join's ``(side, partition)`` may come back a list)."""
    return tuple(partition) if isinstance(partition, list) else partition
