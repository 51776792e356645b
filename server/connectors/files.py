"""File sources and sinks (JSON lines and CSV) under the server's data directory.

A file source is bounded: it hands out its records in batches (values re-encoded as JSON objects so
the engine decodes every file the same way) and then reports ``at_end``. ``read_table_rows`` loads
a whole file at once, for the table side of a stream–table join. A file sink (a job's
``'<sink>.type' = 'file_sink'``) appends JSON lines or CSV rows.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from .base import Batch, ConnectorError, Headers, OutputRow, Record, Sink, Source


def _scalar(text: str) -> Any:
    """A CSV field without a declared type: empty is NULL, numbers become numbers."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_rows(path: Path, fmt: str = "json", delimiter: str = ",",
              has_headers: bool = True, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Every row of a JSONL or CSV file as a dict (CSV fields are strings, empty → NULL)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConnectorError(f"cannot read '{path}': {exc}") from exc
    if fmt == "csv":
        reader = csv.reader(text.splitlines(), delimiter=delimiter)
        lines = [line for line in reader if line]
        if has_headers and lines:
            header = [h.strip().lower() for h in lines[0]]
            lines = lines[1:]
        else:
            header = list(columns or [])
        return [{h: _scalar(v) for h, v in zip(header, line, strict=False)} for line in lines]
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ConnectorError(f"{path}:{n}: invalid JSON ({exc})") from exc
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


def file_columns(path: Path, fmt: str = "json", delimiter: str = ",") -> list[str]:
    """The column names of a file: its CSV header, or the keys of its first JSON lines."""
    try:
        with path.open(encoding="utf-8") as f:
            head = [f.readline() for _ in range(20)]
    except OSError:
        return []
    if fmt == "csv":
        first = next(csv.reader([head[0]], delimiter=delimiter), []) if head and head[0] else []
        return [h.strip().lower() for h in first]
    seen: dict[str, None] = {}
    for line in head:
        if line.strip():
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                seen.update(dict.fromkeys(obj))
    return list(seen)


class FileSource(Source):
    """A bounded source over one file; every record gets the file's path as its topic."""

    bounded = True

    def __init__(self, path: Path, fmt: str = "json", delimiter: str = ",",
                 has_headers: bool = True) -> None:
        self.path = path
        self._fmt, self._delimiter, self._headers = fmt, delimiter, has_headers
        self._records: list[Record] = []
        self._pos = 0

    async def start(self) -> None:
        rows = read_rows(self.path, self._fmt, self._delimiter, self._headers)
        topic = str(self.path)
        self._records = [Record(orjson.dumps(r), offset=i, topic=topic) for i, r in enumerate(rows)]

    async def read(self, timeout_ms: int, max_records: int) -> Batch:
        chunk = self._records[self._pos : self._pos + max_records]
        self._pos += len(chunk)
        return Batch(list(chunk))

    @property
    def at_end(self) -> bool:
        return self._pos >= len(self._records)

    async def stop(self) -> None:
        self._records = []


def _csv_field(value: Any) -> Any:
    """A JSON value as a CSV field: NULL is empty, booleans lower-case, nested values their JSON text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


class FileSink(Sink):
    """Appends a job's output to a file: each value as a JSON line, or as a CSV row of ``columns``.

    The values arrive JSON-encoded (the engine's one output encoding); CSV decodes each and writes
    its ``columns`` in order, with a header line when the file is new or empty. A write returns once
    the rows are on disk (flushed and fsynced), so a committed offset never runs ahead of the file;
    a restart appends to it (at-least-once: the rows of the batch in flight may appear twice).
    """

    def __init__(self, path: Path, fmt: str = "json", columns: Sequence[str] = (), delimiter: str = ",") -> None:
        self.path = path
        self._fmt, self._columns, self._delimiter = fmt, list(columns), delimiter

    async def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
            if self._fmt == "csv" and self.path.stat().st_size == 0:
                self._append(self._csv([self._columns]))
        except OSError as exc:
            raise ConnectorError(f"cannot write '{self.path}': {exc}") from exc

    def _csv(self, lines: list[list[Any]]) -> bytes:
        out = io.StringIO()
        csv.writer(out, delimiter=self._delimiter, lineterminator="\n").writerows(lines)
        return out.getvalue().encode("utf-8")

    def _append(self, data: bytes) -> None:
        with self.path.open("ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    async def write(self, rows: list[OutputRow], headers: list[Headers] | None = None) -> None:
        # A file has no keys to retract: tombstones (None values) are not written.
        values = [value for _key, value in rows if value is not None]
        if not values:
            return
        if self._fmt == "csv":
            cols = self._columns
            data = self._csv([[_csv_field(obj.get(c)) for c in cols]
                              for obj in map(orjson.loads, values) if isinstance(obj, dict)])
        else:
            data = b"".join(value + b"\n" for value in values)
        try:
            self._append(data)
        except OSError as exc:
            raise ConnectorError(f"cannot write '{self.path}': {exc}") from exc

    async def stop(self) -> None:
        pass
