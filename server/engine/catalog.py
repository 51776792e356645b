"""The catalog: streams and tables declared with ``CREATE STREAM|TABLE name (cols) WITH (...)``.

An entry says where a relation's records live (Kafka topic or file), how they are encoded, which
columns they have (with types: values are cast on read), which column is the message key and which
is the event time. Entries serialise to and from plain dicts so the job registry can persist them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from velo.grammar import ast

from ..connectors.kafka_options import OptionError, check_option
from . import avro
from .expressions import error
from .types import parse_type, type_name
from .validate import check_path

FORMATS = ("json", "csv", "avro")


@dataclass(frozen=True)
class ColumnSpec:
    """A declared column: ``key`` marks the column holding the Kafka message key."""

    name: str
    type: str
    key: bool = False

    @property
    def data_type(self) -> ast.DataType | None:
        """The parsed type; None for an untyped (``ANY``) column of a job's output."""
        if self.type.upper() in ("ANY", "ARRAY", "MAP", "STRUCT"):
            return None
        try:
            return parse_type(self.type)
        except Exception:  # an unparseable type means "untyped"
            return None


@dataclass(frozen=True)
class CatalogEntry:
    """A declared stream or table."""

    name: str
    kind: str  # "stream" | "table"
    columns: tuple[ColumnSpec, ...] = ()
    topic: str | None = None
    format: str = "json"
    source_type: str = "kafka_source"  # or "file_source"
    path: str | None = None
    timestamp: str | None = None
    timestamp_format: str | None = None
    partitions: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # delimiter, has_headers, watch, avro.schema...
    job: str | None = None  # set when a running job produces it (CREATE … AS SELECT)

    @property
    def key_column(self) -> str | None:
        for c in self.columns:
            if c.key:
                return c.name
        return None

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind,
            "columns": [{"name": c.name, "type": c.type, "key": c.key} for c in self.columns],
            "topic": self.topic, "format": self.format, "source_type": self.source_type,
            "path": self.path, "timestamp": self.timestamp,
            "timestamp_format": self.timestamp_format, "partitions": self.partitions,
            "options": dict(self.options), "job": self.job,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CatalogEntry:
        return cls(
            name=d["name"], kind=d.get("kind", "stream"),
            columns=tuple(ColumnSpec(c["name"], c["type"], bool(c.get("key"))) for c in d["columns"]),
            topic=d.get("topic"), format=d.get("format", "json"),
            source_type=d.get("source_type", "kafka_source"), path=d.get("path"),
            timestamp=d.get("timestamp"), timestamp_format=d.get("timestamp_format"),
            partitions=d.get("partitions"), options=dict(d.get("options") or {}), job=d.get("job"),
        )


_CREATE_KEYS = {"kafka_topic", "value_format", "format", "timestamp", "timestamp_format", "key",
                "partitions", "replicas", "type", "path", "topic", "has_headers", "delimiter",
                "watch", "key_format", "event.time.field", "event.time.format", *avro.AVRO_KEYS}


def entry_from_statement(stmt: ast.CreateSource, data_dir: Any = None) -> CatalogEntry:
    """The catalog entry a ``CREATE STREAM|TABLE name (cols) WITH (...)`` declares.

    Errors are placed at the property or column that causes them, with the nearest valid word. An
    Avro schema (``'avro.schema'``, or ``'avro.schema.file'`` under ``data_dir``) is read now and kept
    in the entry, so the entry does not depend on the file later; without declared columns its
    fields are the columns.
    """
    props: dict[str, Any] = {}
    nodes: dict[str, ast.Node] = {}
    for p in stmt.properties:
        key = p.key.lower()
        if key not in _CREATE_KEYS and not key.startswith("kafka."):
            close = _close(key, sorted(_CREATE_KEYS))
            raise error(f"unknown property '{p.key}' for CREATE {stmt.kind.upper()}{_hint(close)}", p, close)
        if key.startswith("kafka."):  # the consumer settings of every job reading it (relations._connection)
            try:
                check_option(key[len("kafka."):], p.value, "consumer", p.key)
            except OptionError as exc:
                raise error(exc.message, p, exc.suggestions) from None
        props[key] = p.value
        nodes[key] = p
    key_col = props.get("key")
    columns = tuple(
        ColumnSpec(c.name, type_name(c.type), c.key or c.primary_key or c.name == key_col)
        for c in stmt.columns
    )
    seen: set[str] = set()
    for c in stmt.columns:
        if c.name in seen:
            raise error(f"duplicate column '{c.name}' in {stmt.name}", c)
        seen.add(c.name)
    fmt_key = "value_format" if props.get("value_format") else "format"
    fmt = str(props.get("value_format") or props.get("format") or "json").lower()
    if fmt not in FORMATS:
        close = _close(fmt, list(FORMATS))
        raise error(f"unknown format '{fmt}': use json, csv or avro{_hint(close)}", nodes.get(fmt_key, stmt),
                    close)
    schema = _avro_schema(stmt, props, nodes, fmt, data_dir)
    if schema is not None:
        if columns:
            avro.check_declared_columns(stmt.name, [(c.name, c.key or c.primary_key or c.name == key_col, c)
                                                    for c in stmt.columns], schema)
        else:
            columns = tuple(ColumnSpec(n, "ANY" if t is None else type_name(t), n == key_col)
                            for n, t in avro.field_types(schema).items())
    names = [c.name for c in columns]
    source_type = str(props.get("type") or "kafka_source").lower()
    if source_type not in ("kafka_source", "file_source"):
        close = _close(source_type, ["kafka_source", "file_source"])
        raise error(f"unknown source type '{source_type}': use kafka_source or file_source{_hint(close)}",
                    nodes.get("type", stmt), close)
    ts_key = "timestamp" if props.get("timestamp") else "event.time.field"
    ts = props.get("timestamp") or props.get("event.time.field")
    if ts is not None and names and str(ts).lower() not in names:
        close = _close(str(ts).lower(), names)
        raise error(f"TIMESTAMP column '{ts}' is not a column of {stmt.name}{_hint(close)}",
                    nodes.get(ts_key, stmt), close)
    if source_type == "file_source" and not props.get("path"):
        raise error(f"a file_source {stmt.kind} needs 'path'", nodes.get("type", stmt), ["path"])
    partitions = props.get("partitions")
    options = {k: v for k, v in props.items() if k in ("has_headers", "delimiter", "watch", "key_format")
               or k.startswith("kafka.")}
    if schema is not None:
        options["avro.schema"] = avro.schema_text(schema)
    if "avro.confluent" in props:
        options["avro.confluent"] = avro.confluent_flag(props["avro.confluent"], "avro.confluent",
                                                        nodes["avro.confluent"])
    return CatalogEntry(
        name=stmt.name, kind=stmt.kind, columns=columns,
        topic=str(props.get("kafka_topic") or props.get("topic") or stmt.name),
        format=fmt, source_type=source_type, path=None if props.get("path") is None else str(props["path"]),
        timestamp=None if ts is None else str(ts).lower(),
        timestamp_format=None if props.get("timestamp_format") is None and props.get("event.time.format") is None
        else str(props.get("timestamp_format") or props.get("event.time.format")),
        partitions=None if partitions is None else int(partitions), options=options,
    )


def _avro_schema(stmt: ast.CreateSource, props: dict[str, Any], nodes: dict[str, ast.Node], fmt: str,
                 data_dir: Any) -> dict[str, Any] | None:
    """The Avro schema the WITH clause gives (inline or from a file), checked; None without one."""
    given = [k for k in avro.AVRO_KEYS if k in props]
    if not given:
        return None
    if fmt != "avro":
        raise error(f"'{given[0]}' needs VALUE_FORMAT='AVRO'", nodes[given[0]])
    if "avro.schema" in props and "avro.schema.file" in props:
        raise error("give 'avro.schema' or 'avro.schema.file', not both", nodes["avro.schema.file"])
    if "avro.schema" in props:
        return avro.parse_schema_text(props["avro.schema"], stmt.name, nodes["avro.schema"])
    if "avro.schema.file" in props:
        node, raw = nodes["avro.schema.file"], str(props["avro.schema.file"])
        return avro.read_schema_file(check_path(raw, data_dir, node), raw, stmt.name, node)
    return None  # only 'avro.confluent': the schema is derived from the declared columns


def _close(word: str, options: list[str]) -> list[str]:
    """The nearest of ``options`` to ``word``."""
    import difflib

    return difflib.get_close_matches(word.lower(), options, n=1, cutoff=0.6)


def _hint(close: list[str]) -> str:
    return f"; did you mean {close[0]}?" if close else ""


class Catalog:
    """Declared streams and tables by name (lower case)."""

    def __init__(self) -> None:
        self.entries: dict[str, CatalogEntry] = {}

    def get(self, name: str) -> CatalogEntry | None:
        return self.entries.get(name.lower())

    def put(self, entry: CatalogEntry, replace: bool = False) -> None:
        """Add an entry; an existing one needs ``replace`` (CREATE OR REPLACE)."""
        if entry.name in self.entries and not replace:
            raise error(f"{entry.kind} '{entry.name}' already exists (use CREATE OR REPLACE)")
        self.entries[entry.name] = entry

    def drop(self, name: str) -> CatalogEntry | None:
        return self.entries.pop(name.lower(), None)

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for n, e in self.entries.items() if kind is None or e.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        return {"entries": [e.to_dict() for e in self.entries.values()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Catalog:
        cat = cls()
        for e in d.get("entries", ()):
            entry = CatalogEntry.from_dict(e)
            cat.entries[entry.name] = entry
        return cat
