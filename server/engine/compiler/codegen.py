"""Code generation: the namespace and source of one query's functions, and the lines they share.

Generated functions take a batch and return ``(out, errors)``: ``loop`` wraps a per-record body so
that a bad record is collected with its exception instead of stopping the batch; ``decode_lines``
turns record ``m`` into the typed dict ``r`` (and event time ``et``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from velo.grammar import ast

from ...connectors.formats import avro_decoder, avro_schema, csv_decoder
from ..expressions import RUNTIME, ExprCompiler, SubqueryCompiler, error
from ..operators.output import RowEncoder, dumps, key_bytes
from ..processor import RowEvent
from ..time import event_time_parser, is_epoch_millis
from ..types import caster, format_timestamp, type_name
from .relations import SYSTEM_COLUMNS, Relation

# How generated code reads each system column straight from record ``m`` (``et``: the event time).
SYSTEM_CODE = {"_key": "_dkey(m.key)", "_timestamp": "m.timestamp", "_event_time": "et",
               "_partition": "m.partition", "_offset": "m.offset", "_topic": "m.topic"}


def loop(body: list[str], name: str, item: str = "m", record: str = "m") -> list[str]:
    """The batch loop around ``body`` (which reads ``item`` and appends to ``out``)."""
    return [
        f"def {name}(batch):",
        "    out = []",
        "    append = out.append",
        "    errors = None",
        f"    for {item} in batch:",
        "        try:",
        *("            " + line for line in body),
        "        except Exception as exc:",
        "            if errors is None:",
        "                errors = []",
        f"            errors.append(({record}, exc))",
        "    return out, errors",
    ]


def _decode_key(key: bytes | None) -> str | None:
    return None if key is None else key.decode("utf-8", "replace")


class Codegen:
    """Shared state while generating one query's source: namespace and function texts."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {**RUNTIME, "loads": orjson.loads, "dumps": orjson.dumps,
                                          "_dumps": dumps, "_dkey": _decode_key, "RowEvent": RowEvent}
        self.parts: list[str] = []
        self._n = 0

    def bind(self, value: Any, prefix: str) -> str:
        self._n += 1
        name = f"{prefix}{self._n}"
        self.namespace[name] = value
        return name

    def add(self, lines: list[str]) -> None:
        self.parts.append("\n".join(lines))

    subquery: SubqueryCompiler | None = None
    column_type: Callable[[ast.Column], str] | None = None

    def compiler(self, column_source: Callable[[ast.Column], str],
                 substitute: Callable[[ast.Expr], str | None] | None = None,
                 record_var: str | None = "m") -> ExprCompiler:
        ec = ExprCompiler(column_source, substitute, self.namespace, record_var, self.subquery,
                          self.column_type)
        ec._consts = self._n + 1000 * (len(self.parts) + 1)
        return ec

    def build(self, label: str) -> dict[str, Any]:
        source = self.source
        exec(compile(source, f"<velo query {label}>", "exec"), self.namespace)
        return self.namespace

    @property
    def source(self) -> str:
        return "\n\n".join(self.parts)


def decode_lines(cg: Codegen, rel: Relation, need_et: bool, store: set[str]) -> list[str]:
    """Lines decoding record ``m`` into dict ``r`` (typed), plus ``et`` when the query needs it.

    ``store`` lists system columns to keep in ``r`` (rows that outlive the record: joins, OVER).
    """
    fmt = rel.spec.format
    if rel.spec.kind == "file" or fmt == "json":
        lines = ["r = loads(m.value)"]
    elif fmt == "csv":
        if not rel.columns:
            raise error(f"a CSV stream needs declared columns: CREATE STREAM {rel.name} (...)")
        dec = cg.bind(csv_decoder(rel.columns, rel.delimiter), "_csv")
        lines = [f"r = {dec}(m.value)"]
    else:
        schema = rel.avro_schema
        if schema is None:
            if not rel.columns:
                raise error(f"an Avro stream needs declared columns or a schema: CREATE STREAM {rel.name} (...), "
                            f"'{rel.name}.avro.schema' or '{rel.name}.avro.schema.file'")
            schema = avro_schema(rel.name, [(c, type_name(rel.types[c]) if c in rel.types else "STRING")
                                            for c in rel.columns])
        dec = cg.bind(avro_decoder(schema, confluent=rel.avro_confluent), "_avro")
        lines = [f"r = {dec}(m.value)"]
    # Columns an Avro schema already types need no cast: a cast per value would only copy it.
    casts = {name: caster(t) for name, t in rel.types.items() if name not in rel.exact}
    key_col = rel.key_column
    if casts or (rel.types and key_col is not None):

        def cast_row(r: dict[str, Any], m: Any) -> dict[str, Any]:
            if key_col is not None:
                k = m.key
                r[key_col] = None if k is None else k.decode("utf-8", "replace")
            for name, cast in casts.items():
                v = r.get(name)
                if v is not None:
                    try:
                        r[name] = cast(v)
                    except Exception as exc:
                        raise ValueError(f"column {name}: {exc}") from exc
            return r

        lines.append(f"r = {cg.bind(cast_row, '_typed')}(r, m)")
    if need_et or "_event_time" in store:
        if rel.ts_field is not None:
            parse = cg.bind(event_time_parser(rel.ts_format), "_et")
            if is_epoch_millis(rel.ts_format):
                # The parser returns an int as it is: only other values (None, text) need the call.
                lines += [f"et = r.get({rel.ts_field!r})", f"if type(et) is not int: et = {parse}(et)"]
            else:
                lines.append(f"et = {parse}(r.get({rel.ts_field!r}))")
        else:
            lines.append("et = m.timestamp")
    for col in SYSTEM_COLUMNS:
        if col in store:
            lines.append(f"r[{col!r}] = {SYSTEM_CODE[col]}")
    return lines


def iso_or_none(v: Any) -> Any:
    """Timestamps leave as ISO-8601 text in JSON output; anything else passes through."""
    return format_timestamp(v) if isinstance(v, int) and not isinstance(v, bool) else v


def encode_output(cg: Codegen, names: list[str], timestamps: list[str], pk: list[int],
                  encoder: RowEncoder | None = None) -> list[str]:
    """The tail of an ``encode`` body: dict ``o`` (built before) to a (key, value) pair.

    ``timestamps`` are the output columns to format as ISO text; ``pk`` the positions in ``names``
    of the PRIMARY KEY columns (the Kafka key; without one the input record's key is kept).
    ``encoder`` is the sink's (Avro): it takes ``o`` with the engine's values as they are, and a row
    it refuses fails inside the batch loop, as the record's error. None: JSON.
    """
    key = (f"{cg.bind(key_bytes, '_key')}([{', '.join(f'o[{names[i]!r}]' for i in pk)}])" if pk
           else "m.key")
    if encoder is not None:
        return [f"append(({key}, {cg.bind(encoder, '_venc')}(o)))"]
    lines = [f"o[{n!r}] = {cg.bind(iso_or_none, '_iso')}(o[{n!r}])" for n in timestamps]
    lines.append(f"append(({key}, _dumps(o)))")
    return lines
