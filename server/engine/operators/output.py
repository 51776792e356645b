"""Result rows leave the engine here: as ``RowEvent``s for clients or ``(key, value)`` bytes for sinks.

JSON values are encoded with orjson; DECIMAL becomes a JSON number, TIMESTAMP columns ISO-8601
strings (dialect.md §4). A sink with another value format (Avro) hands in its own ``RowEncoder``,
which takes the engine's values as they are (TIMESTAMP epoch ms, DECIMAL ``Decimal``); a row it
cannot encode is a record error (``UnencodableRow``), moved into ``Emitted.errors`` by
``with_encode_errors`` around the operator. The Kafka key is the PRIMARY KEY columns (several joined with ``|``), else
the operator's key (group key [+ window start]), else the source record's key. A retracted row
(``delete``) is written as a tombstone under the key its last upsert went out with (so a PRIMARY KEY
that differs from the operator's key is retracted under the PRIMARY KEY).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import orjson

from ...connectors.base import Record
from ..processor import Emitted, Mode, Processor, RowEvent, SourceProgress
from ..types import format_timestamp

RowEncoder = Callable[[dict[str, Any]], bytes]
"""A sink's value encoder: one output row (column → engine value) to its bytes; raises when it does not fit."""


def json_default(v: Any) -> Any:
    """orjson's fallback: Decimals as numbers, sets as lists, bytes as text."""
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, set | frozenset | tuple):
        return list(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    raise TypeError(f"cannot encode {type(v).__name__} as JSON")


dumps: Callable[[Any], bytes] = partial(orjson.dumps, default=json_default)
"""orjson.dumps with the engine's fallback (a partial: no Python frame per call)."""


def key_bytes(values: Sequence[Any]) -> bytes | None:
    """The Kafka key of several key values (``a|b``); None when there are none."""
    if not values:
        return None
    if len(values) == 1:
        v = values[0]
        return None if v is None else str(v).encode()
    return "|".join("" if v is None else str(v) for v in values).encode()


@dataclass(slots=True)
class UnencodableRow(Record):
    """An output row the sink's encoder refused: its JSON value (for the DLQ) and the row, to encode again.

    A stateful operator's row comes from many records, so the row itself is the failed "record".
    """

    row: dict[str, Any] = field(default_factory=dict)


_FAILED = (None, b"")
"""Stands in the operator's rows for a row that failed to encode; ``with_encode_errors`` drops it."""


class Output:
    """Builds one mode's output rows from result values."""

    def __init__(self, mode: Mode, names: Sequence[str], types: Sequence[str],
                 primary_key: Sequence[int] = (), encoder: RowEncoder | None = None) -> None:
        self.mode = mode
        self.names = list(names)
        self.timestamps = [i for i, t in enumerate(types) if t == "TIMESTAMP"]
        self.primary_key = list(primary_key)
        # Operator key → the Kafka key of its last upsert; kept only when a PRIMARY KEY names the
        # Kafka key, since a retraction no longer has the values the PRIMARY KEY is made of.
        self.sent_keys: dict[bytes | None, bytes | None] = {}
        self.encoder = encoder  # None: JSON
        self.failed: list[tuple[Any, Exception]] = []  # rows the encoder refused since the last drain

    def row(self, values: list[Any], key: list[Any] | None = None, op: str = "insert",
            record_key: bytes | None = None) -> Any:
        """One output row; ``key`` is the operator's key, ``record_key`` the source record's."""
        if self.mode == "rows":
            return RowEvent(values, op, key)
        if op == "delete":
            # A retraction becomes a tombstone (null value) under the row's key: consumers of an upsert
            # topic (a compacted topic, a table) then drop the key.
            kb = key_bytes(key or ())
            if self.primary_key:
                kb = self.sent_keys.pop(kb, kb)
            return (kb, None)
        if self.primary_key:
            kb = key_bytes([values[i] for i in self.primary_key])
            if op == "upsert":
                self.sent_keys[key_bytes(key or ())] = kb
        elif key is not None:
            kb = key_bytes(key)
        else:
            kb = record_key
        if self.encoder is not None:
            return self.encode(kb, dict(zip(self.names, values, strict=True)))
        out = values
        if self.timestamps:
            out = list(values)
            for i in self.timestamps:
                if isinstance(out[i], int):
                    out[i] = format_timestamp(out[i])
        return (kb, dumps(dict(zip(self.names, out, strict=True))))

    def encode(self, kb: bytes | None, row: dict[str, Any]) -> Any:
        """``(key, value)`` by the sink's encoder; a row it refuses is noted in ``failed``."""
        assert self.encoder is not None
        try:
            return (kb, self.encoder(row))
        except Exception as exc:
            return self.refuse(kb, row, exc)

    def refuse(self, kb: bytes | None, row: dict[str, Any], exc: Exception) -> Any:
        """A row the sink's encoder refused (here or in generated code): noted in ``failed``; its stand-in."""
        self.failed.append((UnencodableRow(_as_json(row), kb, row=row), exc))
        return _FAILED


def _as_json(row: dict[str, Any]) -> bytes:
    """A refused row as the DLQ gets it: JSON, else its repr (orjson refuses some values too)."""
    try:
        return dumps(row)
    except TypeError:
        return repr(row).encode()


class EncodeErrors:
    """An operator whose Output encodes with a sink encoder that may refuse a row (Avro).

    After each call the rows the encoder refused leave ``Emitted.rows`` for ``Emitted.errors`` (the
    job's failure strategy); nothing is done per row unless one failed. A retry of such a row
    (``process([UnencodableRow])``) encodes it again rather than running it through the query.
    """

    def __init__(self, inner: Processor, output: Output) -> None:
        self._inner = inner
        self._out = output

    def process(self, records: Sequence[Any], input_index: int = 0, now_ms: int | None = None,
                progress: SourceProgress | None = None) -> Emitted:
        if records and all(isinstance(r, UnencodableRow) for r in records):
            return self._drain(Emitted([self._out.encode(r.key, r.row) for r in records]))
        return self._drain(self._inner.process(records, input_index, now_ms, progress))

    def tick(self, now_ms: int, progress: SourceProgress | None = None) -> Emitted:
        return self._drain(self._inner.tick(now_ms, progress))

    def finish(self) -> Emitted:
        return self._drain(self._inner.finish())

    def state_bytes(self) -> int:
        return self._inner.state_bytes()

    def snapshot(self) -> bytes | None:
        return self._inner.snapshot()

    def restore(self, data: bytes) -> None:
        self._inner.restore(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # watermark_ms, late_count and whatever else a driver asks

    def _drain(self, emitted: Emitted) -> Emitted:
        failed = self._out.failed
        if failed:
            emitted.rows = [r for r in emitted.rows if r is not _FAILED]
            emitted.errors = [*(emitted.errors or ()), *failed]
            self._out.failed = []
        return emitted


def with_encode_errors(processor: Processor, output: Output) -> Processor:
    """``processor`` itself for JSON output (orjson does not refuse engine values); else ``EncodeErrors``."""
    if output.encoder is None or output.mode == "rows":
        return processor
    return EncodeErrors(processor, output)
