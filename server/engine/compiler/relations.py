"""Relation resolution: a FROM/JOIN name becomes a ``Relation`` (inline WITH, catalog entry or topic).

dialect.md §2: an inline ``'<name>.*'`` definition (completed by a catalog entry of that name), else a
catalog entry, else a bare Kafka topic whose schema is inferred from its records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from velo.grammar import ast

from ...connectors.files import file_columns
from ..avro import (
    check_avro_keys,
    check_declared_columns,
    confluent_flag,
    field_types,
    is_exact,
    parse_schema_text,
    read_schema_file,
)
from ..catalog import Catalog, CatalogEntry
from ..expressions import error
from ..types import type_name
from ..validate import JobOptions, check_path, relation_client_options
from .model import InputSpec

SYSTEM_COLUMNS = ("_key", "_timestamp", "_event_time", "_partition", "_offset", "_topic")


@dataclass
class Relation:
    """A resolved FROM/JOIN relation."""

    name: str
    alias: str
    index: int  # input index (a self-join's two relations share one input)
    spec: InputSpec
    columns: list[str] | None  # None: unknown (schema inferred from records)
    types: dict[str, ast.DataType] = field(default_factory=dict)
    key_column: str | None = None
    ts_field: str | None = None
    ts_format: str = "epoch_millis"
    delimiter: str = ","
    has_headers: bool = True
    path: Path | None = None
    watch: bool = False
    avro_schema: dict[str, Any] | None = None  # the writers' schema of an Avro source, when one is given
    avro_confluent: bool = False  # values carry the Confluent header (magic byte, schema id)
    exact: set[str] = field(default_factory=set)  # typed columns that decode already typed: no cast
    inferred: bool = False  # a bare topic: no declaration, its columns are its records' fields

    def has(self, column: str) -> bool:
        return self.columns is None or column in self.columns or column in SYSTEM_COLUMNS


def resolve_relation(ref: ast.TableRef, inline: dict[str, dict[str, Any]], catalog: Catalog | None,
                      data_dir: Any, opts: JobOptions, index: int,
                      star_columns: Sequence[str] | None) -> Relation:
    rel = _resolve(ref, inline, catalog, data_dir, index, star_columns)
    if rel.spec.kind == "kafka":
        rel.spec = _connection(rel.spec, ref, inline, catalog, opts)
    # A table row has no event time. The query's 'event.time.field' is more specific than a
    # declaration's TIMESTAMP column, so it wins over it.
    if rel.spec.role != "table" and (rel.ts_field is None or opts.event_time_field is not None):
        rel.ts_field = opts.event_time_field  # checked against declared columns by check_job_properties
    return rel


def _resolve(ref: ast.TableRef, inline: dict[str, dict[str, Any]], catalog: Catalog | None,
             data_dir: Any, index: int, star_columns: Sequence[str] | None) -> Relation:
    alias = ref.alias or ref.name
    props = inline.get(ref.name) or inline.get(alias)
    entry = catalog.get(ref.name) if catalog is not None else None
    if props is not None and str(props.get("type", "kafka_source")).lower() in ("kafka_source",
                                                                              "file_source"):
        kind = "file" if str(props.get("type", "")).lower() == "file_source" else "kafka"
        fmt = str(props.get("format", "json")).lower()
        topic = str(props.get("topic") or props.get("topic.name") or ref.name)
        rel = Relation(ref.name, alias, index, InputSpec(alias, topic, kind, fmt), None)
        rel.delimiter = str(props.get("delimiter", ","))
        rel.has_headers = str(props.get("has_headers", "true")).lower() != "false"
        rel.watch = str(props.get("watch", "false")).lower() == "true"
        if kind == "file":
            if not props.get("path"):
                raise error(f"'{ref.name}.path' is required for a file_source", ref)
            rel.path = check_path(str(props["path"]), data_dir, ref)
            if not rel.path.exists():
                raise error(f"file '{props['path']}' of '{ref.name}' does not exist", ref)
            rel.columns = file_columns(rel.path, fmt, rel.delimiter) or None
            rel.spec = InputSpec(alias, topic, "file", fmt, str(rel.path), "table")
        if entry is not None:
            apply_entry(rel, entry)
        apply_avro(rel, props, entry, data_dir, ref)
        return rel
    if entry is not None:
        kind = "file" if entry.source_type == "file_source" else "kafka"
        role = "table" if entry.kind == "table" or kind == "file" else "stream"
        rel = Relation(ref.name, alias, index,
                       InputSpec(alias, entry.topic or ref.name, kind, entry.format, entry.path, role),
                       None)
        if kind == "file":
            assert entry.path is not None
            rel.path = check_path(entry.path, data_dir, ref)
            rel.spec = InputSpec(alias, entry.topic or ref.name, kind, entry.format, str(rel.path), role)
        apply_entry(rel, entry)
        apply_avro(rel, None, entry, data_dir, ref)
        return rel
    rel = Relation(ref.name, alias, index, InputSpec(alias, ref.name), None, inferred=True)
    if star_columns is not None and index == 0:
        rel.columns = list(star_columns)
    return rel


def _connection(spec: InputSpec, ref: ast.TableRef, inline: dict[str, dict[str, Any]], catalog: Catalog | None,
                opts: JobOptions) -> InputSpec:
    """A Kafka input with its own cluster and group (``'<name>.bootstrap.servers'``, ``'<name>.group.id'``)
    and its consumer's settings: the job-level ``kafka.*`` keys, its declaration's, then its own."""
    props = inline.get(ref.name) or inline.get(ref.alias or ref.name) or {}
    entry = catalog.get(ref.name) if catalog is not None else None
    layers = [{f"kafka.{k}": v for k, v in opts.kafka}, entry.options if entry is not None else {}, props]
    servers, group = props.get("bootstrap.servers"), props.get("group.id")
    reset = props.get("auto.offset.reset")
    return replace(spec, bootstrap_servers=None if servers is None else str(servers).strip(),
                   group_id=None if group is None else str(group).strip(),
                   client_options=relation_client_options(layers, "consumer", ref),
                   offset_reset=None if reset is None else str(reset).strip().lower())


def apply_entry(rel: Relation, entry: CatalogEntry) -> None:
    if entry.columns:
        rel.columns = entry.column_names()
        for c in entry.columns:
            t = c.data_type
            if t is not None:
                rel.types[c.name] = t
    rel.key_column = entry.key_column
    rel.ts_field = entry.timestamp
    rel.ts_format = entry.timestamp_format or "epoch_millis"
    rel.delimiter = str(entry.options.get("delimiter", ","))
    rel.has_headers = str(entry.options.get("has_headers", "true")).lower() != "false"
    rel.watch = str(entry.options.get("watch", "false")).lower() == "true"


def apply_avro(rel: Relation, props: dict[str, Any] | None, entry: CatalogEntry | None, data_dir: Any,
               ref: ast.TableRef) -> None:
    """The Avro schema of a Kafka source: inline (text or file), else its catalog entry's.

    Without declared columns the schema's fields are the columns, typed; declared columns must be
    fields. Columns whose declared type is the field's own decode already typed (``exact``).
    """
    if props is not None:
        check_avro_keys(rel.name, props, {}, ref)  # again: a config_file may have added keys
    if rel.spec.format != "avro" or rel.spec.kind != "kafka":
        return
    p = props or {}
    stored = entry.options if entry is not None else {}
    rel.avro_confluent = confluent_flag(p.get("avro.confluent", stored.get("avro.confluent", False)),
                                        f"{rel.name}.avro.confluent", ref)
    if "avro.schema" in p:
        schema = parse_schema_text(p["avro.schema"], rel.name, ref)
    elif "avro.schema.file" in p:
        raw = str(p["avro.schema.file"])
        schema = read_schema_file(check_path(raw, data_dir, ref), raw, rel.name, ref)
    elif "avro.schema" in stored:
        schema = parse_schema_text(stored["avro.schema"], rel.name, ref)
    else:
        return
    rel.avro_schema = schema
    types = field_types(schema)
    if entry is not None and entry.columns:
        check_declared_columns(rel.name, [(c.name, c.key, None) for c in entry.columns], schema, ref)
        rel.exact = set()
        for name, t in rel.types.items():
            own = types.get(name)
            if own is not None and is_exact(own) and type_name(t) == type_name(own):
                rel.exact.add(name)
    else:
        rel.columns = list(types)
        rel.types = {n: t for n, t in types.items() if t is not None}
        rel.exact = {n for n, t in rel.types.items() if is_exact(t)}
