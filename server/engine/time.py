"""Event time and watermarks (dialect.md §5).

The watermark is tracked per (input, partition): each keeps the maximum event time seen; the job's
watermark is the minimum over the partitions that are not idle, minus the allowed out-of-orderness.
A partition that has sent nothing for ``idle_timeout`` (on the driver's clock, passed in with each
batch and tick) stops holding the watermark back;
partitions not seen yet hold it for ``idle_timeout`` after the first record (they may be late to
start), so the watermark only advances once that warm-up has passed.
"""

from __future__ import annotations

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
    """Per-partition maximum event times and the resulting watermark.

    Idleness is measured on the driver's clock, never read here: ``at(now_ms)`` (called by the
    operator with the ``now_ms`` its driver passed to ``process`` or ``tick``) moves it forward, and
    every mark (a partition last seen, the first record) is a reading of it. A driver that passes no
    time (a test feeding batches) keeps the clock where it is, so nothing goes idle by itself.
    """

    __slots__ = ("_rebase", "current", "idle_timeout", "last_seen", "maxes", "now", "out_of_orderness",
                 "started")

    def __init__(self, out_of_orderness_ms: int, idle_timeout_ms: int) -> None:
        self.out_of_orderness = out_of_orderness_ms
        self.idle_timeout = idle_timeout_ms
        self.maxes: dict[Any, int] = {}
        self.last_seen: dict[Any, int] = {}  # partition -> the clock when a batch last held it
        self.current = NO_WATERMARK
        self.started: int | None = None  # the clock at the first record
        self.now = 0  # the driver's clock (ms), as last given
        self._rebase = False  # restored marks count from the next clock reading (load_state)

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

    def observe(self, partition: Any, et: int) -> int:
        """Record an event time; returns the (possibly advanced) watermark."""
        maxes = self.maxes
        old = maxes.get(partition)
        if old is None or et > old:
            maxes[partition] = et
            if self.started is None:
                self.started = self.now
            # _recompute() without idle partitions, inlined: operators call this for every record, and
            # in an in-order stream nearly every record raises its partition's maximum.
            if not self.idle_timeout or self.now - self.started >= self.idle_timeout:
                wm = (et if len(maxes) == 1 else min(maxes.values())) - self.out_of_orderness
                if wm > self.current:  # watermarks never go back
                    self.current = wm
        return self.current

    def touch(self, partitions: Any) -> None:
        """Mark partitions as active at the current clock (once per batch, not per record)."""
        now = self.now
        for p in partitions:
            self.last_seen[p] = now

    def idle(self, now_ms: int | None = None) -> int:
        """Advance the clock to ``now_ms``, drop idle partitions from the minimum; returns the watermark."""
        self.at(now_ms)
        self._recompute(self.now)
        return self.current

    def state(self) -> dict[str, Any]:
        """The watermark state as plain data, for a snapshot.

        Clock marks mean nothing to another process's clock, so they are kept as ages; ``load_state``
        counts them from its processor's first clock reading: time while the job was stopped is not
        silence of a partition (nothing was reading it).
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

    def _recompute(self, now: int) -> None:
        if not self.maxes:
            return
        # Partitions not heard from yet are not idle until idle_timeout has passed since the first
        # record: until then they may still bring older records, so the watermark waits.
        if self.idle_timeout and self.started is not None and now - self.started < self.idle_timeout:
            return
        values = self.maxes.values()
        if len(self.maxes) > 1:
            limit = now - self.idle_timeout
            active = [m for p, m in self.maxes.items() if self.last_seen.get(p, now) >= limit]
            values = active or [max(self.maxes.values())]  # type: ignore[assignment]
        wm = min(values) - self.out_of_orderness
        if wm > self.current:  # watermarks never go back
            self.current = wm


def _key(partition: Any) -> Any:
    """A partition key as it was before encoding (a join's ``(side, partition)`` may come back a list)."""
    return tuple(partition) if isinstance(partition, list) else partition
