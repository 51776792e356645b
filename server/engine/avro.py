"""Avro schemas given in WITH (``'<name>.avro.schema'``) or in a file (``'<name>.avro.schema.file'``).

A schema is checked once, when the statement is validated: it must be JSON that fastavro parses,
and a record (its fields are the columns). For a source the schema is the writer's schema of every
value; its fields give the columns (and their types) when none are declared, and every declared
value column must be one of them. For a sink it is the schema every output value is written with
(the compiler checks the SELECT against it: compiler/sink.py); a sink without one gets a schema
derived from the SELECT's columns (``record_schema``). Errors are placed at the property (or the
column) that causes them.

This module reads no path itself: callers resolve file paths with ``validate.check_path`` (which
confines them to the data directory) and hand the result in, since validate.py imports this module.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fastavro
import orjson
from fastavro.schema import UnknownType
from velo.grammar import ast
from velo.grammar.errors import SqlValidationError

from .expressions import error

AVRO_KEYS = ("avro.schema", "avro.schema.file", "avro.confluent")
"""The per-relation keys (``'<name>.avro.schema'`` ...) and the CREATE STREAM|TABLE keys of Avro."""

_EXACT = ("BOOLEAN", "INT", "BIGINT", "DOUBLE", "STRING", "TIMESTAMP", "DATE")
_PRIMITIVES = {"boolean": "BOOLEAN", "int": "INT", "long": "BIGINT", "float": "DOUBLE", "double": "DOUBLE",
               "string": "STRING"}
_TIMESTAMPS = ("timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros")


def check_avro_keys(name: str, props: dict[str, Any], at: dict[str, ast.Node],
                    fallback: ast.Node | None = None) -> None:
    """The Avro keys of one relation's inline properties (no file is read here).

    Both a schema and a schema file, a schema without ``'<name>.format' = 'avro'``, a schema that does
    not parse and an ``avro.confluent`` that is not a boolean are errors, each at its property (``at``:
    lower-case key → node), else at ``fallback``.
    """
    given = [k for k in AVRO_KEYS if k in props]
    if not given:
        return

    def node(key: str) -> ast.Node | None:
        return at.get(f"{name}.{key}", fallback)

    if "avro.schema" in props and "avro.schema.file" in props:
        raise error(f"give '{name}.avro.schema' or '{name}.avro.schema.file', not both", node("avro.schema.file"))
    # A config_file may still set the format: the compiler repeats this check on the merged keys.
    if "config_file" not in props and str(props.get("format", "json")).lower() != "avro":
        raise error(f"'{name}.{given[0]}' needs '{name}.format' = 'avro'", node(given[0]))
    if "avro.confluent" in props:
        confluent_flag(props["avro.confluent"], f"{name}.avro.confluent", node("avro.confluent"))
    if "avro.schema" in props:
        parse_schema_text(props["avro.schema"], name, node("avro.schema"))


def confluent_flag(value: Any, key: str, node: ast.Node | None = None) -> bool:
    """The boolean of an ``avro.confluent`` key."""
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise error(f"'{key}' must be true or false, got {value!r}", node)
    return text == "true"


def parse_schema_text(text: Any, relation: str, node: ast.Node | None = None) -> dict[str, Any]:
    """The record schema in ``text`` (JSON), checked by fastavro; errors name the relation."""
    if isinstance(text, dict):
        schema: Any = text
    else:
        try:
            schema = orjson.loads(str(text))
        except orjson.JSONDecodeError as exc:
            raise error(f"the Avro schema of '{relation}' is not valid JSON: {exc}", node) from None
    try:
        fastavro.parse_schema(schema)
    except UnknownType as exc:
        raise error(f"the Avro schema of '{relation}' is not valid: unknown type '{exc.name}'", node) from None
    except Exception as exc:  # fastavro raises SchemaParseException, KeyError, TypeError... on bad input
        raise error(f"the Avro schema of '{relation}' is not valid: {exc}", node) from None
    if not isinstance(schema, dict) or schema.get("type") not in ("record", "error"):
        kind = schema.get("type") if isinstance(schema, dict) else schema
        raise error(f"the Avro schema of '{relation}' must be a record (its fields are the columns), "
                    f"got {kind!r}", node)
    return schema


def read_schema_file(full: Path, raw: str, relation: str, node: ast.Node | None = None) -> dict[str, Any]:
    """The record schema in the file ``full`` (already confined to the data directory)."""
    if not full.is_file():
        raise error(f"Avro schema file '{raw}' of '{relation}' does not exist", node)
    try:
        text = full.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read Avro schema file '{raw}' of '{relation}': {exc}", node) from None
    return parse_schema_text(text, relation, node)


def schema_text(schema: dict[str, Any]) -> str:
    """The schema as compact JSON (how catalog entries keep it)."""
    return orjson.dumps(schema).decode()


# ---------------------------------------------------------------- fields as columns


def field_names(schema: dict[str, Any]) -> list[str]:
    return [str(f["name"]) for f in schema.get("fields", ())]


def field_types(schema: dict[str, Any]) -> dict[str, ast.DataType | None]:
    """Each field's SQL type (None: no SQL type fits — bytes, fixed, a union of several types)."""
    named: dict[str, Any] = {}
    return {str(f["name"]): _sql_type(f["type"], named, schema.get("namespace"), set())
            for f in schema.get("fields", ())}


def is_exact(t: ast.DataType | None) -> bool:
    """Values of type ``t`` decode from Avro already in the engine's representation (no cast needed)."""
    return isinstance(t, ast.DecimalType) or (isinstance(t, ast.SimpleType) and t.name in _EXACT)


def is_optional(f: dict[str, Any]) -> bool:
    """A field a writer may leave out: it has a default or its type admits null."""
    t = f.get("type")
    return "default" in f or t == "null" or (isinstance(t, list) and "null" in t)


def _sql_type(t: Any, named: dict[str, Any], namespace: str | None, seen: set[str]) -> ast.DataType | None:
    if isinstance(t, list):
        branches = [b for b in t if b != "null"]
        return _sql_type(branches[0], named, namespace, seen) if len(branches) == 1 else None
    if isinstance(t, str):
        if t in _PRIMITIVES:
            return ast.SimpleType(_PRIMITIVES[t])
        ref = named.get(t) or named.get(f"{namespace}.{t}")
        if ref is None or t in seen:  # unknown here, or a recursive type: no SQL type fits
            return None
        return _sql_type(ref, named, namespace, {*seen, t})
    if not isinstance(t, dict):
        return None
    base, logical = t.get("type"), t.get("logicalType")
    ns = t.get("namespace", namespace)
    if "name" in t and base in ("record", "error", "enum", "fixed"):
        name = str(t["name"])
        named[name] = t
        if ns and "." not in name:
            named[f"{ns}.{name}"] = t
        seen = {*seen, name}
    if logical == "decimal":
        return ast.DecimalType(int(t.get("precision", 38)), int(t.get("scale", 0)))
    if logical in _TIMESTAMPS and base == "long":
        return ast.SimpleType("TIMESTAMP")
    if logical == "date" and base == "int":
        return ast.SimpleType("DATE")
    if base in ("enum",) or (logical == "uuid" and base == "string"):
        return ast.SimpleType("STRING")
    if base == "array":
        item = _sql_type(t.get("items"), named, ns, seen)
        return None if item is None else ast.ArrayType(item)
    if base == "map":
        value = _sql_type(t.get("values"), named, ns, seen)
        return None if value is None else ast.MapType(ast.SimpleType("STRING"), value)
    if base in ("record", "error"):
        fields = []
        for f in t.get("fields", ()):
            ft = _sql_type(f.get("type"), named, ns, seen)
            if ft is None:
                return None
            fields.append(ast.StructField(str(f["name"]), ft))
        return ast.StructType(tuple(fields))
    if isinstance(base, str | list | dict) and base not in ("fixed", "bytes"):
        return _sql_type(base, named, ns, seen)
    return None


def missing_field(column: str, relation: str, schema: dict[str, Any], node: ast.Node | None) -> SqlValidationError:
    """``column 'x' of quotes is not a field of its Avro schema; did you mean y?``."""
    fields = field_names(schema)
    close = difflib.get_close_matches(column, fields, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f" (fields: {', '.join(fields)})"
    return error(f"column '{column}' of {relation} is not a field of its Avro schema{hint}", node, close)


def check_declared_columns(relation: str, columns: list[tuple[str, bool, ast.Node | None]],
                           schema: dict[str, Any], fallback: ast.Node | None = None) -> None:
    """Every declared value column ``(name, is_key, node)`` must be a field of the schema.

    The KEY column comes from the Kafka message key, not the value, so it need not be a field.
    """
    fields = set(field_names(schema))
    for name, is_key, node in columns:
        if not is_key and name not in fields:
            raise missing_field(name, relation, schema, node or fallback)


# ---------------------------------------------------------------- columns as fields (a sink without a schema)

AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""What the Avro specification allows as a record or field name."""

_AVRO_OF: dict[str, Any] = {
    "BOOLEAN": "boolean", "INT": "int", "BIGINT": "long", "DOUBLE": "double", "STRING": "string",
    # The engine's own representations: epoch milliseconds and epoch days.
    "TIMESTAMP": {"type": "long", "logicalType": "timestamp-millis"},
    "DATE": {"type": "int", "logicalType": "date"},
}


def avro_type(t: ast.DataType, path: str) -> Any:
    """The Avro type of SQL type ``t``, nullable (``["null", T]``: any value may be NULL).

    DECIMAL(p, s) is ``bytes`` with the ``decimal`` logical type (exact); a STRUCT is a record named
    ``path`` (its fields nullable, default null); a field name Avro does not allow raises ValueError.
    """
    inner: Any
    if isinstance(t, ast.DecimalType):
        inner = {"type": "bytes", "logicalType": "decimal", "precision": t.precision, "scale": t.scale}
    elif isinstance(t, ast.ArrayType):
        inner = {"type": "array", "items": avro_type(t.element, path)}
    elif isinstance(t, ast.MapType):  # Avro map keys are strings, as the engine's MAP casts them
        inner = {"type": "map", "values": avro_type(t.value, path)}
    elif isinstance(t, ast.StructType):
        for f in t.fields:
            if not AVRO_NAME.fullmatch(f.name):
                raise ValueError(f"struct field '{f.name}' is not a valid Avro name")
        inner = {"type": "record", "name": path, "fields": [
            {"name": f.name, "type": avro_type(f.type, f"{path}_{f.name}"), "default": None} for f in t.fields]}
    else:
        inner = _AVRO_OF[t.name]
    return ["null", inner]


def record_schema(name: str, columns: Sequence[tuple[str, ast.DataType]]) -> dict[str, Any]:
    """A record schema named ``name`` with a nullable field per ``(column, SQL type)``, default null."""
    return {"type": "record", "name": name, "fields": [
        {"name": col, "type": avro_type(t, f"{name}_{col}"), "default": None} for col, t in columns]}
