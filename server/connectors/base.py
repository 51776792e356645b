"""Sources and sinks behind two small base classes (the Quix Streams / Bytewax shape).

A source hands out *batches*: a list of records plus the offsets to commit once the batch's output is
acknowledged. A sink takes a list of ``(key, value)`` pairs and returns only when they are durable.
Nothing here awaits per record.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class RecordLike(Protocol):
    """What operators read from a source record (aiokafka's ConsumerRecord has these attributes)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(slots=True)
class Record:
    """A record made by an in-memory or file source (same attributes as a Kafka record)."""

    value: bytes | None
    key: bytes | None = None
    timestamp: int = 0
    partition: int = 0
    offset: int = 0
    topic: str = ""
    headers: Sequence[tuple[str, bytes]] = ()


OutputRow = tuple[bytes | None, bytes | None]
"""One output record: (message key, encoded value); a None value is a tombstone (a retracted key)."""

Headers = Sequence[tuple[str, bytes]]

Positions = dict[tuple[int, str, int], int]
"""Next offsets to read, by (input index, topic, partition): what a state snapshot covers."""


@dataclass(slots=True)
class Batch:
    """Records read together, and for each (topic, partition) the next offset to commit after them."""

    records: list[Any]
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceProgress:
    """Where a source stands in its partitions, as of its last read: what watermarks wait for.

    ``partitions`` are the stream partitions it reads, by (input index, partition); ``behind`` are
    those with records not handed out yet — their position is below the high watermark, or their
    end is not known yet. A partition that is behind is never idle, however long it is silent (it
    is only waiting for its turn in a backlog), and one not seen yet that is behind holds the
    watermark back until its first records arrive. Tables are in neither: their records never move
    a watermark.
    """

    partitions: frozenset[tuple[int, int]]
    behind: frozenset[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class PositionReset:
    """A source found saved positions that do not fit its topic, and reads on from ``auto.offset.reset``.

    ``cause`` says what did not fit, for the job's history ("partition 0: saved position 8602 is past
    the topic's end 8241"). ``recreated``: the signs say the topic is a new one (deleted and created
    again, a new broker), so operator state built from the old one's records no longer matches its
    positions; otherwise only records were lost (retention) and the state stands. ``reset`` is where
    reading goes on (``earliest`` or ``latest``); ``input`` is the input's index in a merged source.
    """

    topic: str
    cause: str
    recreated: bool
    reset: str
    input: int = 0


class ConnectorError(Exception):
    """A source or sink cannot reach its system (broker down, topic missing); the job retries."""


class Source(ABC):
    """Where a job's records come from."""

    #: True for sources that end (files); a bounded source returns an empty batch with ``at_end``.
    bounded: bool = False

    @abstractmethod
    async def start(self) -> None:
        """Connect; raise ConnectorError when the system cannot be reached."""

    @abstractmethod
    async def read(self, timeout_ms: int, max_records: int) -> Batch:
        """The next batch (possibly empty after ``timeout_ms``)."""

    async def commit(self, offsets: dict[tuple[str, int], int]) -> None:  # noqa: B027 - optional
        """Record that everything before ``offsets`` is done (no-op for sources without offsets)."""

    @property
    def at_end(self) -> bool:
        """Whether a bounded source has nothing more to give."""
        return False

    async def loaded(self) -> bool:
        """Whether a table's source has read everything its topic held when it started (True otherwise)."""
        return True

    async def positions(self) -> Positions | None:
        """Where reading would go on: the next offset per (input index, topic, partition).

        For a job's state snapshot, taken between batches. None when the source cannot be read again
        from given positions (a file); an input that is read whole at every start (a table) has none.
        """
        return None

    def seek(self, positions: Positions) -> None:  # noqa: B027 - optional
        """Read from ``positions`` (as ``positions()`` gave them) instead of the committed offsets.

        Called before ``start()``; partitions it does not name start as they would have.
        """

    def take_resets(self) -> list[PositionReset]:
        """Saved positions found not to fit the topic since the last call (at start or while reading).

        The source has already moved those partitions to ``auto.offset.reset``; the caller records why
        and drops operator state that the positions no longer match.
        """
        return []

    def progress(self) -> SourceProgress | None:
        """Which partitions are behind, as of the last ``read`` (None: the source cannot tell, so a
        watermark goes by silence alone)."""
        return None

    def pause(self) -> None:  # noqa: B027 - optional
        """Stop fetching without leaving the consumer group."""

    def resume(self) -> None:  # noqa: B027 - optional
        """Fetch again after pause()."""

    async def refresh_ends(self) -> None:  # noqa: B027 - optional
        """Learn where the partitions end now without reading them (a paused job's lag keeps growing)."""

    @abstractmethod
    async def stop(self) -> None:
        """Release every resource (connections, group membership)."""


class Sink(ABC):
    """Where a job's output goes."""

    @abstractmethod
    async def start(self) -> None:
        """Connect; raise ConnectorError when the system cannot be reached."""

    @abstractmethod
    async def write(self, rows: list[OutputRow], headers: list[Headers] | None = None) -> None:
        """Write ``rows`` and return once they are acknowledged (durable).

        ``headers``, when given, holds one header list per row (used for dead letters).
        """

    @abstractmethod
    async def stop(self) -> None:
        """Flush and release every resource."""
