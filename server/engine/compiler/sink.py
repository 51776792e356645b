"""A job's sink: the format its values are written in and, for Avro, the schema and the encoder.

The sink's keys are ``'<sink>.<key>'`` (``<sink>`` being the job's name) or, as a ksqlDB
``CREATE STREAM|TABLE … AS SELECT`` gives them, job-level: ``VALUE_FORMAT`` / ``FORMAT`` and
``'avro.schema'`` / ``'avro.schema.file'`` (validate.sink_keys folds them together). JSON is the
default and the operators' own path (operators/output.py, codegen.encode_output); an Avro sink
hands them a ``RowEncoder`` that writes the engine's values with fastavro, the schema parsed once
per query.

The schema is the one given, against which the SELECT is checked when the job is compiled (every
output column must be a field; a field the SELECT does not produce must be nullable or have a
default; each error names the column), or else derived from the SELECT's output columns and types
(avro.record_schema, the record named after the sink): a column of unknown type is then an error at
its select item. A row that does not fit the schema is a record error for the job's failure strategy.

Where the values go is the sink's too (``SinkSpec``): a Kafka topic — on the server's cluster or
``'<sink>.bootstrap.servers'``, compressed as ``'<sink>.compression'`` says, with the producer settings
of the ``kafka.*`` keys — or, with ``'<sink>.type' = 'file_sink'``, a JSON-lines or CSV file under the
data directory (``'<sink>.path'``; CSV needs the output columns known, for its header).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from velo.grammar import ast

from ...connectors.formats import avro_encoder, avro_field_types
from ..avro import (
    AVRO_NAME,
    check_avro_keys,
    confluent_flag,
    field_names,
    is_optional,
    parse_schema_text,
    read_schema_file,
    record_schema,
)
from ..catalog import CatalogEntry
from ..expressions import error
from ..operators.output import RowEncoder
from ..plan import OutputColumn
from ..types import format_date, format_timestamp, parse_type
from ..validate import (
    SINK_FORMATS,
    check_path,
    check_sink_path,
    file_sink_format,
    load_config_file,
    relation_client_options,
    sink_keys,
    unknown,
)
from .model import SinkSpec
from .relations import Relation
from .sqlutil import output_name


@dataclass(frozen=True)
class SinkFormat:
    """How a job's output values are written: ``json``, or ``avro`` with the schema given (None: derive it)."""

    name: str
    format: str = "json"
    schema: dict[str, Any] | None = None
    target: SinkSpec | None = None  # where the values go (None: a Kafka topic, the server's defaults)


def resolve_sink(sink: str, props: dict[str, Any], data_dir: Any, select: ast.Select) -> SinkFormat:
    """The sink's format, given schema and target, from its keys (a ``config_file``'s under them).

    Errors are placed at ``select``: validation placed those it could see at their properties.
    """
    own, _ = sink_keys(sink, props)
    if "config_file" in own:
        own = {**load_config_file(str(own["config_file"]), data_dir, sink), **own}
    if str(own.get("type", "kafka_sink")).lower() == "file_sink":
        return SinkFormat(sink, "json", None, _file_target(sink, own, data_dir, select))
    fmt = str(own.get("format", "json")).lower()
    if fmt not in SINK_FORMATS:  # a config_file's format, which validation did not see
        raise error(f"'{sink}.format' must be {' or '.join(SINK_FORMATS)}, got {own['format']!r}", select)
    check_avro_keys(sink, own, {}, select)
    servers = own.get("bootstrap.servers")
    codec = str(own.get("compression", "none")).lower()
    target = SinkSpec(sink, "kafka", fmt, compression=None if codec == "none" else codec,
                      bootstrap_servers=None if servers is None else str(servers).strip(),
                      client_options=relation_client_options([props, own], "producer", select))
    if fmt != "avro":
        return SinkFormat(sink, target=target)
    if confluent_flag(own.get("avro.confluent", "false"), f"{sink}.avro.confluent", select):
        raise error(f"'{sink}.avro.confluent' applies to sources: a sink writes plain Avro values "
                    "(there is no schema registry to give a schema id)", select)
    schema = None
    if "avro.schema" in own:
        schema = parse_schema_text(own["avro.schema"], sink, select)
    elif "avro.schema.file" in own:
        raw = str(own["avro.schema.file"])
        schema = read_schema_file(check_path(raw, data_dir, select), raw, sink, select)
    return SinkFormat(sink, "avro", schema, target)


def _file_target(sink: str, own: dict[str, Any], data_dir: Any, select: ast.Select) -> SinkSpec:
    """A ``file_sink``: its resolved path under the data directory and its format (JSON lines or CSV)."""
    if not own.get("path"):
        raise error(f"'{sink}.path' is required for a file_sink (a file under the data directory)", select)
    raw = str(own["path"])
    full = check_path(raw, data_dir, select)
    check_sink_path(full, raw, sink, data_dir, select)
    fmt = file_sink_format(sink, own)
    delimiter = str(own.get("delimiter", ","))
    if len(delimiter) != 1:
        raise error(f"'{sink}.delimiter' must be one character, got {delimiter!r}", select)
    return SinkSpec(sink, "file", fmt, str(full), delimiter=delimiter)


def sink_target(sink: SinkFormat, columns: Sequence[OutputColumn], select: ast.Select) -> SinkSpec:
    """Where ``sink`` writes, with the query's output columns (a CSV file's header: they must be known)."""
    target = sink.target if sink.target is not None else SinkSpec(sink.name, format=sink.format)
    names = tuple(c.name for c in columns)
    if target.kind == "file" and target.format == "csv" and (not names or "*" in names):
        raise error(f"a CSV file_sink writes the SELECT's columns as its header, which are not known here "
                    f"(SELECT * over an undeclared topic): name the columns or declare the source, or write "
                    f"JSON lines ('{sink.name}.format' = 'json')", select)
    return replace(target, columns=names)


def sink_schema(sink: SinkFormat, columns: Sequence[tuple[str, str]] | None, select: ast.Select) -> dict[str, Any]:
    """The Avro schema of ``sink``: the one given, else derived from the output ``(column, SQL type)``s.

    ``columns`` is None when they are not known (``SELECT *`` over an undeclared topic).
    """
    if sink.schema is not None:
        return sink.schema
    if columns is None:
        raise error(f"an Avro sink without a schema takes it from the SELECT's columns, which are not known here "
                    f"(SELECT * over an undeclared topic): declare the source (CREATE STREAM … (cols)) or give "
                    f"'{sink.name}.avro.schema' or '{sink.name}.avro.schema.file'", select,
                    [f"{sink.name}.avro.schema", f"{sink.name}.avro.schema.file"])
    if not AVRO_NAME.fullmatch(sink.name):
        raise error(f"'{sink.name}' is not a valid Avro record name: give '{sink.name}.avro.schema'", select)
    typed: list[tuple[str, ast.DataType]] = []
    for name, type_text in columns:
        item = _item_of(select, name)
        if not AVRO_NAME.fullmatch(name):
            raise error(f"column '{name}' is not a valid Avro field name (letters, digits and _): give it an alias",
                        item)
        if type_text == "ANY":
            raise error(f"the Avro schema of '{sink.name}' is derived from the SELECT, but the type of column "
                        f"'{name}' is not known: CAST it, declare the source's columns (CREATE STREAM … (cols)) "
                        f"or give '{sink.name}.avro.schema'", item)
        try:
            typed.append((name, parse_type(type_text)))
        except Exception:
            raise error(f"column '{name}' has type {type_text}, which has no Avro type here", item) from None
    try:
        return record_schema(sink.name, typed)
    except (ValueError, KeyError) as exc:
        raise error(f"cannot derive the Avro schema of '{sink.name}': {exc}", select) from None


def row_encoder(sink: SinkFormat, schema: dict[str, Any], columns: Sequence[tuple[str, str]] | None) -> RowEncoder:
    """Encodes an output row (engine values) with ``schema``; a row that does not fit raises, naming the sink.

    A TIMESTAMP, DATE or DECIMAL column written to a ``string`` field leaves as text (as JSON has
    it); a DECIMAL to a ``double`` / ``float`` field as a float.
    """
    types = dict(columns or ())
    fields = avro_field_types(schema)
    converts: dict[str, Callable[[Any], Any]] = {}
    for name, sql_type in types.items():
        base = fields.get(name)
        if base == "string":
            convert = _TEXT.get(sql_type.split("(")[0])
            if convert is not None:
                converts[name] = convert
        elif base in ("double", "float") and sql_type.startswith("DECIMAL"):
            converts[name] = float
    encode = avro_encoder(schema, converts)
    label = sink.name

    def encode_row(row: dict[str, Any]) -> bytes:
        try:
            return encode(row)
        except Exception as exc:
            raise ValueError(f"the output row does not fit the Avro schema of '{label}': {exc}") from exc

    return encode_row


def _date_text(v: Any) -> Any:
    return format_date(v) if isinstance(v, int) else v


def _timestamp_text(v: Any) -> Any:
    return format_timestamp(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _decimal_text(v: Any) -> Any:
    return str(v) if isinstance(v, Decimal) else v


_TEXT: dict[str, Callable[[Any], Any]] = {"TIMESTAMP": _timestamp_text, "DATE": _date_text, "DECIMAL": _decimal_text}


def check_columns(sink: str, schema: dict[str, Any], columns: Sequence[str], select: ast.Select,
                  relations: Sequence[Relation]) -> None:
    """Each output column is a field of a given schema; each field the SELECT lacks may be left out."""
    fields = {str(f["name"]): f for f in schema.get("fields", ())}
    for name in columns:
        if name not in fields:
            raise error(f"column '{name}' is not a field of the Avro schema of '{sink}' "
                        f"(fields: {', '.join(fields)})", _item_of(select, name), None)
    # ``SELECT *`` over a relation of unknown columns may produce any field: nothing more to check.
    if any(isinstance(i.expr, ast.Star) for i in select.items) and any(r.columns is None for r in relations):
        return
    for name, f in fields.items():
        if name not in columns and not is_optional(f):
            raise error(f"the Avro schema of '{sink}' needs field '{name}', which the SELECT does not produce; "
                        "select it or make the field nullable or give it a default", select)


def describe(sink: SinkFormat, schema: dict[str, Any]) -> str:
    """The plan's step for an Avro sink."""
    how = "" if sink.schema is not None else ", derived from the SELECT"
    return f"Sink {sink.name}: Avro values, schema {schema.get('name')} ({len(field_names(schema))} fields{how})"


def _item_of(select: ast.Select, name: str) -> ast.Node:
    """The select item that produces output column ``name`` (a ``*`` when it came from one)."""
    for i, item in enumerate(select.items, start=1):
        if not isinstance(item.expr, ast.Star) and output_name(item, i) == name:
            return item
    return next((i for i in select.items if isinstance(i.expr, ast.Star)), select)


def describe_target(target: SinkSpec) -> str | None:
    """The plan's step for a sink that is not the server's Kafka with its defaults (None for that one)."""
    if target.kind == "file":
        return f"Sink {target.name}: file '{target.path}', {'CSV' if target.format == 'csv' else 'JSON lines'}"
    parts = [f"cluster {target.bootstrap_servers}"] if target.bootstrap_servers else []
    if target.compression:
        parts.append(f"{target.compression} compression")
    parts += [f"{k}={v}" for k, v in target.client_options]
    return f"Sink {target.name}: kafka, {', '.join(parts)}" if parts else None


def insert_target(target: str, entry: CatalogEntry | None, own: dict[str, Any], stmt: ast.Node) -> None:
    """Refuse an ``INSERT INTO`` whose target is not a JSON stream on Kafka (or an undeclared topic).

    The job writes into the target as it is declared, so its own sink keys cannot redirect or reformat it.
    """
    if entry is not None:
        if entry.kind == "table":
            raise error(f"INSERT INTO writes into a stream; '{target}' is a table (its rows are upserts by key)", stmt)
        if entry.source_type == "file_source":
            raise error(f"INSERT INTO writes into a Kafka stream; '{target}' is a file", stmt)
        if entry.format.lower() != "json":
            raise error(f"INSERT INTO a {entry.format.upper()} stream is not supported yet: '{target}' is read as "
                        f"{entry.format.upper()}; write into a JSON stream", stmt)
    for key in ("type", "format", "topic", "topic.name", "path"):
        if key in own:
            raise error(f"'{target}.{key}' cannot be given to INSERT INTO: the job writes into '{target}' as it is "
                        f"declared", stmt)


def insert_columns(target: str, declared: Sequence[str], output: Sequence[str], select: ast.Select) -> None:
    """Every output column of an ``INSERT INTO`` must be a declared column of its target stream."""
    for name in output:
        if name != "*" and name not in declared:
            raise unknown(f"column of {target}", name, list(declared), _item_of(select, name))
