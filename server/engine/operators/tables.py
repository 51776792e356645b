"""Tables kept live from a (compacted) Kafka topic: join lookups, IN/EXISTS sets, and the input router.

A table topic holds the latest value per message key; a tombstone (null value) deletes the key. Its
records arrive as an input of the query like any other, through a generated scan, and update one of:

* ``KeyedTable`` — the rows a join looks up, by join key (stream–table joins and later table joins);
* ``LiveSubquery`` — the rows of an uncorrelated ``IN (SELECT …)`` / ``EXISTS`` subquery, with a
  multiset of their first column, so a deleted or replaced row takes its value out of the IN set;
* ``CorrelatedSubquery`` — a correlated one's rows as a semi-join lookup: a ``LiveSubquery`` per
  correlation key (also for a file table, loaded once).

``TableInputs`` wraps a query's processor and routes the inputs that feed such tables (the tables of
later joins and of subqueries, numbered after the query's own inputs) to them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..processor import Emitted, Processor, RecordErrors, SourceProgress

_MISSING = object()


class TableState(Protocol):
    """Live table state: fed a generated scan's output, cleared when a processor is created."""

    def apply(self, items: list[Any]) -> None: ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...


class KeyedTable:
    """The latest row per message key, indexed by join key.

    ``rows`` (join key → row) is what lookups read; it is updated in place, so generated code may hold
    it. Items are a keyed scan's ``(row, event time, partition, join key, record)``; ``row`` None is a
    tombstone. A record without a message key (a file row) replaces the row of its join key. When
    several message keys share a join key, lookups see the most recently written one, and deleting it
    uncovers the one written before.
    """

    def __init__(self) -> None:
        self.rows: dict[Any, Any] = {}
        self._join_key: dict[Any, Any] = {}  # message key → its row's join key
        self._holders: dict[Any, dict[Any, Any]] = {}  # join key → {message key: row}, oldest first

    def apply(self, items: list[Any]) -> None:
        join_key_of, holders_of, rows = self._join_key, self._holders, self.rows
        for row, _et, _part, jk, m in items:
            ident = m.key
            if ident is None:
                if row is None or jk is None:
                    continue  # nothing to delete, nothing that can match
                ident = (None, jk)  # a tuple never equals a bytes message key
            old = join_key_of.pop(ident, _MISSING)
            if old is not _MISSING:
                self._drop(old, ident)
            if row is None or jk is None:
                continue  # a tombstone, or a row no key matches: the key's old row is gone either way
            join_key_of[ident] = jk
            holders = holders_of.get(jk)
            if holders is None:
                holders = holders_of[jk] = {}
            holders[ident] = row
            rows[jk] = row

    def _drop(self, jk: Any, ident: Any) -> None:
        holders = self._holders[jk]
        del holders[ident]
        if holders:
            self.rows[jk] = next(reversed(holders.values()))
        else:
            del self._holders[jk]
            del self.rows[jk]

    def clear(self) -> None:
        self.rows.clear()
        self._join_key.clear()
        self._holders.clear()

    def __len__(self) -> int:
        return len(self._join_key)


class LiveSubquery:
    """The rows of an ``IN (SELECT …)`` / ``EXISTS`` subquery over a table topic, kept up to date.

    Read by generated code exactly as ``expressions.SubqueryResult`` is: ``rows`` (truthy when the
    subquery has a row), ``values`` (membership of the first column's non-NULL values) and
    ``has_null``. Items are ``(row id, values or None)``: the row id is the message key (a record
    without one is a row of its own), None means the key has no row now (a tombstone, or a row the
    subquery's WHERE rejects).
    """

    __slots__ = ("_nulls", "has_null", "rows", "values")

    def __init__(self) -> None:
        self.rows: dict[Any, list[Any]] = {}
        self.values: dict[Any, int] = {}  # value → how many rows hold it (absent at zero)
        self.has_null = False
        self._nulls = 0

    def apply(self, items: list[Any]) -> None:
        for ident, new in items:
            self.put(ident, new)

    def put(self, ident: Any, new: list[Any] | None) -> None:
        """Row ``ident`` is ``new`` now (None: it has no row)."""
        rows, counts = self.rows, self.values
        old = rows.pop(ident, None)
        if old is not None:
            v = old[0]
            if v is None:
                self._nulls -= 1
            elif counts[v] == 1:
                del counts[v]
            else:
                counts[v] -= 1
        if new is not None:
            rows[ident] = new
            v = new[0]
            if v is None:
                self._nulls += 1
            else:
                counts[v] = counts.get(v, 0) + 1
        self.has_null = self._nulls > 0

    def clear(self) -> None:
        self.rows.clear()
        self.values.clear()
        self._nulls = 0
        self.has_null = False

    def __len__(self) -> int:
        return len(self.rows)


class CorrelatedSubquery:
    """The rows of a correlated ``EXISTS`` / ``IN`` subquery over a table, grouped by correlation key.

    A semi-join's lookup side: ``groups`` maps the table's side of the correlation equalities (the
    value, or a tuple of them when there are several) to a ``LiveSubquery`` of the rows holding it;
    a key without rows is absent, so generated code tests ``key in groups`` for EXISTS and hands
    ``groups.get(key)`` to ``_in_rows`` for IN (the group's multiset of values and NULL count give
    the per-key three-valued answer). Items are ``(row id, key, values or None)``, as a scan makes
    them from a file's rows or a table topic's records: the row id is the message key (a record
    without one is a row of its own); values None says the row id has no row now (a tombstone, a row
    the subquery's WHERE rejects, or a key with a NULL part, which no outer row can equal). A row
    whose key changed leaves its old group, as ``KeyedTable`` re-keys a join row.
    """

    __slots__ = ("_key_of", "groups")

    def __init__(self) -> None:
        self.groups: dict[Any, LiveSubquery] = {}
        self._key_of: dict[Any, Any] = {}  # row id → the key of its group

    def apply(self, items: list[Any]) -> None:
        groups, key_of = self.groups, self._key_of
        for ident, key, new in items:
            old = key_of.pop(ident, _MISSING)
            if old is not _MISSING:
                left = groups[old]
                left.put(ident, None)
                if not left.rows:
                    del groups[old]
            if new is None:
                continue
            group = groups.get(key)
            if group is None:
                group = groups[key] = LiveSubquery()
            group.put(ident, new)
            key_of[ident] = key

    def clear(self) -> None:
        self.groups.clear()
        self._key_of.clear()

    def __len__(self) -> int:
        return len(self._key_of)


Scan = Callable[[Sequence[Any]], tuple[list[Any], RecordErrors | None]]


class TableInputs:
    """A query's processor plus the live tables it reads: inputs in ``tables`` feed a table, others the query.

    The tables are cleared when it is made: each run reads its table topics from their beginning.
    """

    def __init__(self, inner: Processor, tables: dict[int, tuple[Scan, TableState]]) -> None:
        self._inner = inner
        self._tables = tables
        for _, state in tables.values():
            state.clear()

    def process(self, records: Sequence[Any], input_index: int = 0, now_ms: int | None = None,
                progress: SourceProgress | None = None) -> Emitted:
        table = self._tables.get(input_index)
        if table is None:
            return self._inner.process(records, input_index, now_ms, progress)
        scan, state = table
        items, errors = scan(records)
        state.apply(items)
        return Emitted([], errors)

    def tick(self, now_ms: int, progress: SourceProgress | None = None) -> Emitted:
        return self._inner.tick(now_ms, progress)

    def finish(self) -> Emitted:
        return self._inner.finish()

    def state_bytes(self) -> int:
        return self._inner.state_bytes() + sum(len(state) for _, state in self._tables.values()) * 200

    def snapshot(self) -> bytes | None:
        """The query's state. The tables are not in it: every run reads them whole from their topics
        (to their end before any stream record), which a snapshot would only repeat."""
        return self._inner.snapshot()

    def restore(self, data: bytes) -> None:
        """Take over ``snapshot()``'s state."""
        self._inner.restore(data)

    def watermark_ms(self) -> int | None:
        """The query's watermark (for metrics), when its operator keeps one."""
        watermark = getattr(self._inner, "watermark_ms", None)
        return watermark() if callable(watermark) else None
