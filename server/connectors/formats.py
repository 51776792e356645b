"""Value formats shared by sources and the engine: JSON (orjson), CSV, Avro (fastavro, schemaless).

Avro values are read and written with a *plain* copy of the schema: logical types other than
``decimal`` are dropped, which leaves the binary layout unchanged but makes fastavro hand out (and
take) the engine's own representation — epoch milliseconds for timestamps, epoch days for dates —
instead of building a ``datetime`` per value only for the engine to take it apart again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Context, Decimal
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


def avro_plain_schema(schema: Any) -> Any:
    """``schema`` without logical types other than ``decimal`` (same bytes, engine-shaped values).

    fastavro's own bookkeeping keys (``__fastavro_parsed``...) are dropped too, so a parsed schema
    is parsed again from its plain form.
    """
    if isinstance(schema, list):
        return [avro_plain_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key.startswith("__") or (key == "logicalType" and value != "decimal"):
            continue
        out[key] = avro_plain_schema(value) if key in ("type", "fields", "items", "values") else value
    return out


def avro_field_logical(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The top-level fields of record ``schema`` whose (only non-null) type has a logical type.

    Maps the field name to that type (``{"type": "long", "logicalType": "timestamp-millis"}``);
    named types are looked up among the record's own definitions.
    """
    return {name: t for name, t in avro_field_types(schema).items() if isinstance(t, dict) and "logicalType" in t}


def avro_field_types(schema: dict[str, Any]) -> dict[str, Any]:
    """Each top-level field's only non-null type (a primitive's name or a type's dict; None for a
    union of several), named types looked up among the record's own definitions."""
    named: dict[str, Any] = {}
    _collect_named(schema, named, schema.get("namespace"))
    out: dict[str, Any] = {}
    for f in schema.get("fields", ()):
        t = f.get("type")
        if isinstance(t, list):
            branches = [b for b in t if b != "null"]
            t = branches[0] if len(branches) == 1 else None
        if isinstance(t, str):
            t = named.get(t) or named.get(f"{schema.get('namespace')}.{t}") or t
        out[f["name"]] = t
    return out


def _collect_named(schema: Any, named: dict[str, Any], namespace: str | None) -> None:
    """Every named type (record, enum, fixed) defined in ``schema``, by short and full name."""
    if isinstance(schema, list):
        for s in schema:
            _collect_named(s, named, namespace)
        return
    if not isinstance(schema, dict):
        return
    ns = schema.get("namespace", namespace)
    if "name" in schema and schema.get("type") in ("record", "error", "enum", "fixed"):
        name = str(schema["name"])
        named[name] = schema
        if ns and "." not in name:
            named[f"{ns}.{name}"] = schema
    for f in schema.get("fields", ()):
        _collect_named(f.get("type"), named, ns)
    for key in ("type", "items", "values"):
        if isinstance(schema.get(key), dict | list):
            _collect_named(schema[key], named, ns)


_MICROS = ("timestamp-micros", "local-timestamp-micros")
_MILLIS = ("timestamp-millis", "local-timestamp-millis")
CONFLUENT_MAGIC = 0
"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro value."""


def avro_decoder(schema: dict[str, Any], *, confluent: bool = False) -> Callable[[bytes | None], dict[str, Any]]:
    """Decodes a schemaless Avro value (written with ``schema``) into a dict of engine values.

    Timestamps come out as epoch milliseconds (``timestamp-micros`` fields are divided down),
    dates as epoch days, decimals as ``Decimal``. With ``confluent`` each value must start with the
    Confluent header (magic byte 0 and a schema id), which is skipped: the schema is the one given.
    """
    parsed = fastavro.parse_schema(avro_plain_schema(schema))
    micros = [name for name, t in avro_field_logical(schema).items() if t.get("logicalType") in _MICROS]
    read = fastavro.schemaless_reader

    def decode(value: bytes | None) -> dict[str, Any]:
        if value is None:
            raise ValueError("empty Avro record")
        buf = io.BytesIO(value)
        if confluent:
            if len(value) < 5 or value[0] != CONFLUENT_MAGIC:
                raise ValueError("not in the Confluent wire format (magic byte 0, then a 4-byte schema id)")
            buf.seek(5)
        out = read(buf, parsed, None)
        if not isinstance(out, dict):
            raise ValueError("an Avro value must be a record")
        for name in micros:
            v = out.get(name)
            if v is not None:
                out[name] = v // 1000
        return out

    return decode


def avro_encoder(schema: dict[str, Any],
                 converts: Mapping[str, Callable[[Any], Any]] | None = None) -> Callable[[dict[str, Any]], bytes]:
    """Encodes a row of engine values (a dict, changed in place) as a schemaless Avro value of ``schema``.

    The schema is parsed once, in its plain form, so the engine's values go in as they are: a
    TIMESTAMP's epoch milliseconds into a ``timestamp-millis`` field, a DATE's epoch days into a
    ``date`` field, a ``Decimal`` into a ``decimal`` field (rounded to its scale, then exact).
    Top-level logical fields also take what an untyped column may hold (ISO-8601 or ``YYYY-MM-DD``
    text, a float for a decimal, through its shortest repr). ``converts`` (field → function) are
    applied to non-NULL values first (the caller's: a TIMESTAMP column into a ``string`` field...).
    A field the row lacks gets the schema's default; a row that does not fit raises.
    """
    parsed = fastavro.parse_schema(avro_plain_schema(schema))
    converts = dict(converts or {})
    for name, t in avro_field_logical(schema).items():
        logical = t.get("logicalType")
        if name in converts:
            continue
        if logical in _MILLIS:
            converts[name] = epoch_millis
        elif logical in _MICROS:
            converts[name] = _epoch_micros
        elif logical == "date":
            converts[name] = epoch_days
        elif logical == "decimal":
            converts[name] = _decimal_of_scale(int(t.get("scale", 0)))
    steps = list(converts.items())
    write = fastavro.schemaless_writer

    def encode(row: dict[str, Any]) -> bytes:
        for name, convert in steps:
            v = row.get(name)
            if v is not None:
                row[name] = convert(v)
        buf = io.BytesIO()
        write(buf, parsed, row)
        return buf.getvalue()

    return encode


def _epoch_micros(v: Any) -> int:
    return epoch_millis(v) * 1000


def epoch_millis(v: Any) -> int:
    """Epoch milliseconds from a number, digits or ISO-8601 text (UTC when it has no zone)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float | Decimal):
        return int(v)
    if isinstance(v, datetime):
        dt = v
    else:
        text = str(v).strip()
        if text.lstrip("-").isdigit():
            return int(text)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


_EPOCH = date(1970, 1, 1)


def epoch_days(v: Any) -> int:
    """Epoch days from a number or ``YYYY-MM-DD`` text (the engine's DATE)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, date):
        return (v - _EPOCH).days
    return (date.fromisoformat(str(v).strip()[:10]) - _EPOCH).days


# Room for any DECIMAL(38, s) and more: the default context's 28 digits would refuse to quantize a wider value.
_WIDE = Context(prec=100)


def _decimal_of_scale(scale: int) -> Callable[[Any], Decimal]:
    quantum = Decimal(1).scaleb(-scale)

    def convert(v: Any) -> Decimal:
        # A float (an untyped column's number) goes through its shortest repr, not its binary value.
        d = v if isinstance(v, Decimal) else Decimal(repr(v) if isinstance(v, float) else str(v))
        return d.quantize(quantum, context=_WIDE)

    return convert


def avro_encode(schema: dict[str, Any], row: dict[str, Any]) -> bytes:
    """A schemaless Avro value of ``row`` (for producers and tests)."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), row)
    return buf.getvalue()
