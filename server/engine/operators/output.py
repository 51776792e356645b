"""Result rows leave the engine here: as ``RowEvent``s for clients or ``(key, value)`` bytes for sinks.

JSON values are encoded with orjson; DECIMAL becomes a JSON number, TIMESTAMP columns ISO-8601
strings (dialect.md §4). The Kafka key is the PRIMARY KEY columns (several joined with ``|``), else
the operator's key (group key [+ window start]), else the source record's key. A retracted row
(``delete``) is written as a tombstone under the key its last upsert went out with (so a PRIMARY KEY
that differs from the operator's key is retracted under the PRIMARY KEY).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

import orjson

from ..processor import Mode, RowEvent
from ..types import format_timestamp


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


class Output:
    """Builds one mode's output rows from result values."""

    def __init__(self, mode: Mode, names: Sequence[str], types: Sequence[str],
                 primary_key: Sequence[int] = ()) -> None:
        self.mode = mode
        self.names = list(names)
        self.timestamps = [i for i, t in enumerate(types) if t == "TIMESTAMP"]
        self.primary_key = list(primary_key)
        # Operator key → the Kafka key of its last upsert; kept only when a PRIMARY KEY names the
        # Kafka key, since a retraction no longer has the values the PRIMARY KEY is made of.
        self.sent_keys: dict[bytes | None, bytes | None] = {}

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
        out = values
        if self.timestamps:
            out = list(values)
            for i in self.timestamps:
                if isinstance(out[i], int):
                    out[i] = format_timestamp(out[i])
        return (kb, dumps(dict(zip(self.names, out, strict=True))))
