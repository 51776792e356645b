"""Value formats shared by sources and the engine: JSON (orjson), CSV, Avro (fastavro, schemaless)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import fastavro
import orjson


def json_columns(values: Iterable[bytes | None], limit: int = 50) -> list[str]:
    """Field names of the JSON objects among ``values``, in order of first appearance.

    Used to infer the columns of a topic without a declared schema; values that are not JSON
    objects are passed over.
    """
    seen: dict[str, None] = {}
    for i, value in enumerate(values):
        if i >= limit:
            break
        try:
            obj = orjson.loads(value) if value is not None else None
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            seen.update(dict.fromkeys(obj))
    return list(seen)


# ---------------------------------------------------------------- CSV and Avro values
# Decoders return a dict per value (the shape JSON objects decode to), so operators see one shape.


def _csv_value(text: str) -> Any:
    """A CSV field: empty is NULL; numbers stay strings (declared column types cast them)."""
    return None if text == "" else text


def csv_decoder(columns: Sequence[str], delimiter: str = ",") -> Callable[[bytes | None], dict[str, Any]]:
    """Decodes one CSV line (a record value) into a dict by the declared column order."""
    names = list(columns)

    def decode(value: bytes | None) -> dict[str, Any]:
        if value is None:
            raise ValueError("empty CSV record")
        fields = next(csv.reader([value.decode("utf-8")], delimiter=delimiter), [])
        return {n: _csv_value(f) for n, f in zip(names, fields, strict=False)}

    return decode


def csv_encode(values: Sequence[Any], delimiter: str = ",") -> bytes:
    """One CSV line of ``values`` (NULL as an empty field)."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="").writerow(
        ["" if v is None else v for v in values])
    return buf.getvalue().encode()


_AVRO_TYPES = {"BOOLEAN": "boolean", "INT": "int", "BIGINT": "long", "DOUBLE": "double",
               "STRING": "string", "TIMESTAMP": "long", "DATE": "int"}


def avro_schema(name: str, columns: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """An Avro record schema for declared ``(name, SQL type)`` columns, every field nullable."""
    fields = []
    for col, sql_type in columns:
        avro = _AVRO_TYPES.get(sql_type.split("(")[0].upper(), "string")
        fields.append({"name": col, "type": ["null", avro], "default": None})
    return {"type": "record", "name": name.replace(".", "_") or "record", "fields": fields}


def avro_decoder(schema: dict[str, Any]) -> Callable[[bytes | None], dict[str, Any]]:
    """Decodes a schemaless Avro value (no container, no registry header) into a dict."""
    parsed = fastavro.parse_schema(schema)

    def decode(value: bytes | None) -> dict[str, Any]:
        if value is None:
            raise ValueError("empty Avro record")
        out = fastavro.schemaless_reader(io.BytesIO(value), parsed, None)
        if not isinstance(out, dict):
            raise ValueError("an Avro value must be a record")
        return out

    return decode


def avro_encode(schema: dict[str, Any], row: dict[str, Any]) -> bytes:
    """A schemaless Avro value of ``row`` (for producers and tests)."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), row)
    return buf.getvalue()
