"""Semantic checks run before a query is deployed: everything that parses but cannot mean anything.

Each failure is a ``SqlValidationError`` with the offending node's line and column and, where a
likely fix exists, ``suggestions`` (nearest names by difflib). Column and relation resolution
happen while the compiler builds its scopes (compile.py) and use ``unknown()`` from here; this
module holds the rest: WITH keys (dialect.md §6), durations, file paths, aggregate placement,
window and EMIT rules, join keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velo.grammar import ast
from velo.grammar.errors import SqlValidationError

from ..connectors.kafka_options import CODECS, OptionError, Side, check_option, client_options
from .avro import check_avro_keys, read_schema_file
from .expressions import error
from .functions import lookup

RELATION_KEYS = frozenset({
    "type", "topic", "topic.name", "bootstrap.servers", "format", "group.id", "auto.offset.reset",
    "path", "has_headers", "delimiter", "watch", "config_file",
    "avro.schema", "avro.schema.file", "avro.confluent", "compression",
})
"""The ``'<name>.<key>'`` keys of dialect.md §6 (and ``compression``, a sink's)."""

SOURCE_ONLY_KEYS = ("group.id", "auto.offset.reset", "watch", "has_headers")
"""Relation keys that only mean something for what a job reads."""
SINK_ONLY_KEYS = ("compression",)
"""Relation keys that only mean something for what a job writes."""

JOB_KEYS = frozenset({
    "output.topic", "event.time.field", "event.time.format", "watermark.max_out_of_orderness",
    "watermark.idle_timeout", "late.data.strategy", "failure_strategy", "max_retries",
    "retry_backoff", "dlq.topic", "batch.size", "batch.timeout", "delivery.guarantee", "state.snapshot.interval",
    "join.state.ttl", "join.state.max_rows", "over.state.ttl", "auto.offset.reset", "kafka_topic",
    "value_format", "partitions", "key", "timestamp", "timestamp_format", "format",
    "avro.schema", "avro.schema.file", "avro.confluent",
})
"""Job-level keys (§6) plus the ksqlDB keys a CREATE … AS SELECT accepts (``sink_keys``: the sink's)."""

SINK_FORMATS = ("json", "avro")
"""What a job's Kafka sink writes: ``'<sink>.format'``, or VALUE_FORMAT / FORMAT in the job's WITH."""
FILE_SINK_FORMATS = ("json", "csv")
"""What a ``file_sink`` writes: JSON lines or CSV (``'<sink>.format'``, else the path's extension)."""

# Job-level keys that are the sink's, and the sink key each stands for.
_JOB_SINK_KEYS = (("value_format", "format"), ("format", "format"), ("avro.schema", "avro.schema"),
                  ("avro.schema.file", "avro.schema.file"), ("avro.confluent", "avro.confluent"))

RELATION_TYPES = ("kafka_source", "kafka_sink", "file_source", "file_sink")
DURATION_KEYS = ("watermark.max_out_of_orderness", "watermark.idle_timeout", "join.state.ttl",
                 "over.state.ttl", "retry_backoff", "batch.timeout", "state.snapshot.interval")

_UNITS = {"ms": 1, "millisecond": 1, "milliseconds": 1, "s": 1000, "sec": 1000, "second": 1000,
          "seconds": 1000, "m": 60_000, "min": 60_000, "minute": 60_000, "minutes": 60_000,
          "h": 3_600_000, "hour": 3_600_000, "hours": 3_600_000, "d": 86_400_000,
          "day": 86_400_000, "days": 86_400_000}


def unknown(kind: str, name: str, known: Iterable[str], node: ast.Node | None) -> SqlValidationError:
    """``unknown column 'pirce'`` with the nearest known names as suggestions.

    A kind ``'column of t'`` reads ``unknown column 'x' of t``.
    """
    kind, _, owner = kind.partition(" of ")
    where = f" of {owner}" if owner else ""
    names = sorted(set(known))
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        hint = f"; did you mean {', '.join(close)}?"
    elif names and len(names) <= 8:
        close, hint = names, f" (known: {', '.join(names)})"
    else:
        hint = ""
    return error(f"unknown {kind} '{name}'{where}{hint}", node, close)


def parse_duration(value: Any, key: str = "duration") -> int:
    """Milliseconds from ``'5s'``, ``'100 ms'``, ``'1 minute'`` or a bare number of ms."""
    if isinstance(value, bool):
        raise error(f"'{key}' must be a duration such as '5s', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise error(f"'{key}' must not be negative")
        return int(value)
    text = str(value).strip().lower()
    num = text.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = text[len(num):].strip() if num else ""
    try:
        amount = float(num)
    except ValueError:
        raise error(f"'{key}' must be a duration such as '5s' or '1 minute', got {value!r}") from None
    if unit and unit not in _UNITS:
        close = difflib.get_close_matches(unit, list(_UNITS), n=1)
        hint = f"; did you mean '{amount:g} {close[0]}'?" if close else ""
        raise error(f"'{key}': unknown duration unit '{unit}' (use ms, s, m, h or d){hint}", None, close)
    if amount < 0:
        raise error(f"'{key}' must not be negative")
    return int(amount * _UNITS.get(unit, 1))


@dataclass(frozen=True)
class JobOptions:
    """The validated job-level WITH properties the engine uses."""

    event_time_field: str | None = None
    event_time_format: str = "epoch_millis"
    out_of_orderness_ms: int = 0
    idle_timeout_ms: int = 10_000
    late_strategy: str = "drop"
    join_ttl_ms: int = 3_600_000
    join_max_rows: int = 1_000_000
    over_ttl_ms: int = 3_600_000
    kafka: tuple[tuple[str, Any], ...] = ()  # the job-level 'kafka.*' keys, without the prefix, as written


def check_properties(props: dict[str, Any], relations: Iterable[str],
                     nodes: dict[str, ast.Node] | None = None, *,
                     sink: str | None = None) -> tuple[JobOptions, dict[str, dict[str, Any]]]:
    """Validate WITH keys; the job options and the inline per-relation properties by name.

    ``relations`` are the names a ``'<name>.<key>'`` key may refer to (the query's sources and
    the job's sink). Unknown keys are errors; ``kafka.*`` keys must be client settings Velo passes
    on (connectors/kafka_options.py), and each relation's keys must fit its role
    (``_check_connection``). ``nodes`` (lower-case key → its ``ast.Property``) place an error at the
    property that causes it. The ``sink``'s keys
    are checked with the job-level ones that stand for them (``sink_keys``); the inline properties
    returned are as written.
    """
    at = nodes or {}
    names = set(relations)
    inline: dict[str, dict[str, Any]] = {}
    for raw, value in props.items():
        key = raw.lower()
        if key.startswith("kafka."):
            _check_kafka_key(key[len("kafka."):], value, None, raw, at.get(key))
            continue
        if key in JOB_KEYS:
            continue
        head, _, rest = key.partition(".")
        if rest and (head in names or rest in RELATION_KEYS or rest.startswith("kafka.")):
            if rest not in RELATION_KEYS and not rest.startswith("kafka."):
                raise unknown("property", raw, [f"{head}.{k}" for k in RELATION_KEYS], at.get(key))
            inline.setdefault(head, {})[rest] = value
            continue
        candidates = [*JOB_KEYS, *(f"{n}.{k}" for n in names for k in RELATION_KEYS)]
        raise unknown("property", raw, candidates, at.get(key))
    checks, check_at = dict(inline), at
    if sink is not None:
        own, own_at = sink_keys(sink, props, at)
        if own:
            checks[sink], check_at = own, {**at, **own_at}
    for name, rel in checks.items():
        t = rel.get("type")
        if t is not None and str(t).lower() not in RELATION_TYPES:
            raise _choice(f"{name}.type", t, RELATION_TYPES, check_at)
        fmt = rel.get("format")
        if fmt is not None and str(fmt).lower() not in ("json", "csv", "avro"):
            raise _choice(f"{name}.format", fmt, ("json", "csv", "avro"), check_at)
        check_avro_keys(name, rel, check_at)
        _check_connection(name, rel, sink, check_at)
    p = {k.lower(): v for k, v in props.items()}
    for key in DURATION_KEYS:
        if key in p:
            try:
                parse_duration(p[key], key)
            except SqlValidationError as exc:
                raise error(exc.message, at.get(key), exc.suggestions) from None
    late = str(p.get("late.data.strategy", "drop")).lower()
    if late not in ("drop", "dead_letter"):
        raise _choice("late.data.strategy", p["late.data.strategy"], ("drop", "dead_letter"), at)
    reset = p.get("auto.offset.reset")
    if reset is not None and str(reset).lower() not in ("earliest", "latest"):
        raise _choice("auto.offset.reset", reset, ("earliest", "latest"), at)
    fmt = str(p.get("event.time.format", "epoch_millis"))
    opts = JobOptions(
        event_time_field=None if p.get("event.time.field") is None else str(p["event.time.field"]).lower(),
        event_time_format=fmt,
        out_of_orderness_ms=parse_duration(p.get("watermark.max_out_of_orderness", 0)),
        idle_timeout_ms=parse_duration(p.get("watermark.idle_timeout", 10_000)),
        late_strategy=late,
        join_ttl_ms=parse_duration(p.get("join.state.ttl", 3_600_000)),
        join_max_rows=_int(p.get("join.state.max_rows", 1_000_000), "join.state.max_rows",
                           at.get("join.state.max_rows")),
        over_ttl_ms=parse_duration(p.get("over.state.ttl", 3_600_000)),
        kafka=tuple((k[len("kafka."):], v) for k, v in p.items() if k.startswith("kafka.")),
    )
    return opts, inline


def _check_kafka_key(name: str, value: Any, side: Side | None, written: str, node: ast.Node | None) -> None:
    """A ``kafka.*`` key must be a Kafka client setting Velo passes on (connectors/kafka_options.py)."""
    try:
        check_option(name, value, side, written)
    except OptionError as exc:
        raise error(exc.message, node, exc.suggestions) from None


def _check_connection(name: str, rel: dict[str, Any], sink: str | None, at: dict[str, ast.Node]) -> None:
    """Where a relation connects and what it is: each key must mean something for a source or for the sink.

    ``name`` is the job's sink when it equals ``sink``, else a source of the query (a query without a
    sink has only sources). Checked: the relation's type against its role, ``'<name>.kafka.*'`` against
    its client (a source's consumer, the sink's producer), ``compression`` (the sink's; the codec must be
    installed), ``group.id`` (a job's source), ``bootstrap.servers``, and a ``file_sink``'s path and format.
    """
    is_sink = sink is not None and name == sink
    role = "the job's sink" if is_sink else "a source of the query"
    kind = str(rel.get("type", "kafka_sink" if is_sink else "kafka_source")).lower()
    wanted = ("kafka_sink", "file_sink") if is_sink else ("kafka_source", "file_source")
    if kind not in wanted:
        raise error(f"'{name}.type' = '{rel['type']}' cannot be used for '{name}', {role}: "
                    f"use {' or '.join(wanted)}", at.get(f"{name}.type"), list(wanted))
    for key, value in rel.items():
        written = f"{name}.{key}"
        if key.startswith("kafka."):
            _check_kafka_key(key[len("kafka."):], value, "producer" if is_sink else "consumer", written,
                             at.get(written))
        elif is_sink and key in SOURCE_ONLY_KEYS:
            raise error(f"'{written}' applies to a source; '{name}' is the job's sink", at.get(written))
        elif not is_sink and key in SINK_ONLY_KEYS:
            raise error(f"'{written}' applies to a job's sink; '{name}' is {role}", at.get(written))
        elif key in ("bootstrap.servers", "group.id", "path") and not str(value).strip():
            raise error(f"'{written}' must not be empty", at.get(written))
    if "group.id" in rel and sink is None:
        raise error(f"'{name}.group.id': a query commits no offsets, so it has no consumer group "
                    "(a job's source commits to it)", at.get(f"{name}.group.id"))
    if "compression" in rel:
        codec = str(rel["compression"]).lower()
        if codec not in CODECS:
            raise _choice(f"{name}.compression", rel["compression"], CODECS, at)
        if kind == "file_sink":
            raise error(f"'{name}.compression' applies to a kafka_sink; a file_sink writes plain text",
                        at.get(f"{name}.compression"))
        from ..connectors.kafka import CODEC_FIX, codec_available  # imports aiokafka: only when asked

        if not codec_available(codec):
            raise error(f"'{name}.compression' = '{codec}': this server lacks the {codec} codec: {CODEC_FIX}",
                        at.get(f"{name}.compression"))
    if kind == "file_sink":
        if not rel.get("path"):
            raise error(f"'{name}.path' is required for a file_sink (a file under the data directory)",
                        at.get(f"{name}.type"), [f"{name}.path"])
        bad = [k for k in ("bootstrap.servers", "topic", "topic.name") if k in rel] + \
            [k for k in rel if k.startswith("kafka.") or k.startswith("avro.")]
        if bad:
            raise error(f"'{name}.{bad[0]}' applies to a kafka_sink; '{name}' is a file_sink",
                        at.get(f"{name}.{bad[0]}"))
        file_sink_format(name, rel, at)
        if len(str(rel.get("delimiter", ","))) != 1:
            raise error(f"'{name}.delimiter' must be one character, got {rel['delimiter']!r}",
                        at.get(f"{name}.delimiter"))


def file_sink_format(name: str, rel: Mapping[str, Any], at: Mapping[str, ast.Node] | None = None) -> str:
    """A file sink's format: ``'<name>.format'``, else its path's extension (``.csv``), else JSON lines."""
    if "format" in rel:
        fmt = str(rel["format"]).lower()
        if fmt not in FILE_SINK_FORMATS:
            raise error(f"'{name}.format' must be json or csv for a file_sink (JSON lines or CSV), "
                        f"got {rel['format']!r}", (at or {}).get(f"{name}.format"), list(FILE_SINK_FORMATS))
        return fmt
    return "csv" if str(rel.get("path", "")).lower().endswith(".csv") else "json"


def relation_client_options(layers: Iterable[Mapping[str, Any]], side: Side,
                            node: ast.Node | None) -> tuple[tuple[str, Any], ...]:
    """The aiokafka keywords of one client: the ``kafka.*`` keys of each layer (later ones win), translated.

    A layer is a dict whose ``kafka.*`` keys apply (a relation's inline keys, its declaration's
    options) or the job-level keys without the prefix (``JobOptions.kafka``, given as ``{"kafka." + k: v}``).
    Errors (a key from a ``config_file``, which validation did not see) are placed at ``node``.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k.lower()[len("kafka."):]: v for k, v in layer.items() if k.lower().startswith("kafka.")})
    try:
        return tuple(sorted(client_options(merged, side).items()))
    except OptionError as exc:
        raise error(exc.message, node, exc.suggestions) from None


def sink_keys(sink: str, props: dict[str, Any],
              at: dict[str, ast.Node] | None = None) -> tuple[dict[str, Any], dict[str, ast.Node]]:
    """The sink's keys (``'<sink>.<key>'``, lower-case, without the prefix), the job-level ones folded in.

    A job's WITH may give the sink's format as a ksqlDB ``CREATE STREAM … AS SELECT`` does
    (``VALUE_FORMAT`` or ``FORMAT``) and its Avro keys without the prefix (``'avro.schema'``,
    ``'avro.schema.file'``). A key given both ways with different values, a format the sink does not
    write (SINK_FORMATS) and a job-level Avro key without the avro format are errors, named as written.
    Also returns ``'<sink>.<key>'`` → the node of the property it came from (``at``: lower-case key →
    node), so that later errors about a folded key are placed where it was written.
    """
    at = at or {}
    p = {k.lower(): v for k, v in props.items()}
    prefix = f"{sink}."
    own = {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}
    written = {k: f"{prefix}{k}" for k in own}
    nodes: dict[str, ast.Node] = {}
    for job_key, key in _JOB_SINK_KEYS:
        if job_key not in p:
            continue
        value = p[job_key]
        if key in own and (str(value).lower() != str(own[key]).lower() if key == "format"
                           else str(value) != str(own[key])):
            raise error(f"'{job_key}' and '{written[key]}' both give the sink's {key.replace('.', ' ')}: "
                        "give it once", at.get(job_key))
        own[key] = value
        written.setdefault(key, job_key)
        if job_key in at:
            nodes.setdefault(f"{prefix}{key}", at[job_key])
    fmt = own.get("format")
    file_sink = str(own.get("type", "")).lower() == "file_sink"  # its formats: file_sink_format
    if fmt is not None and not file_sink and str(fmt).lower() not in SINK_FORMATS:
        raise _choice(written["format"], fmt, SINK_FORMATS, at)
    for job_key in ("avro.schema", "avro.schema.file", "avro.confluent"):
        if written.get(job_key) == job_key and "config_file" not in own and str(fmt or "json").lower() != "avro":
            raise error(f"'{job_key}' needs VALUE_FORMAT = 'AVRO' (or '{prefix}format' = 'avro')", at.get(job_key))
    return own, nodes


def _choice(key: str, value: Any, allowed: Iterable[str], at: dict[str, ast.Node]) -> SqlValidationError:
    """``'key' must be a or b, got 'x'; did you mean b?`` placed at the property."""
    options = list(allowed)
    listed = f"{', '.join(options[:-1])} or {options[-1]}" if len(options) > 1 else options[0]
    close = difflib.get_close_matches(str(value).lower(), [o.lower() for o in options], n=1, cutoff=0.6)
    close = [o for o in options if o.lower() in close]
    hint = f"; did you mean {close[0]}?" if close else ""
    return error(f"'{key}' must be {listed}, got {value!r}{hint}", at.get(key.lower()), close)


FAILURE_STRATEGIES = ("LogAndContinue", "SendToDLQ", "FailBatch", "RetryWithBackoff")
"""dialect.md §7 (server/jobs/failures.py implements them; matching ignores case and ``_``)."""


def check_job_properties(select: ast.Select, props: dict[str, Any], nodes: dict[str, ast.Node],
                         *, sink_name: str | None = None, catalog: Any = None,
                         data_dir: str | os.PathLike[str] | None = None) -> None:
    """The job-level WITH checks of a job statement, each placed at the property that fails.

    Run by the job manager before compiling (``compile_select`` repeats the key checks without
    positions, as it only sees a dict): keys, durations, strategies, the delivery guarantee, inline
    file paths (under ``data_dir``; a file source's must exist), and an ``event.time.field`` or
    window time column that names no column of the declared streams it would apply to.
    """
    refs = [select.from_, *(j.table for j in select.joins)]
    names = [r.name for r in refs] + [r.alias for r in refs if r.alias]
    if sink_name:
        names.append(sink_name)
    _, inline = check_properties(props, names, nodes, sink=sink_name)
    for rel, rel_props in inline.items():
        if "path" in rel_props and str(rel_props.get("type", "")).lower() in ("file_source", "file_sink"):
            node = nodes.get(f"{rel}.path")
            full = check_path(str(rel_props["path"]), data_dir, node)
            if str(rel_props["type"]).lower() == "file_source" and not full.exists():
                raise error(f"file '{rel_props['path']}' of '{rel}' does not exist", node)
            if str(rel_props["type"]).lower() == "file_sink":
                check_sink_path(full, str(rel_props["path"]), rel, data_dir, node)
        if "avro.schema.file" in rel_props:
            node = nodes.get(f"{rel}.avro.schema.file")
            raw = str(rel_props["avro.schema.file"])
            read_schema_file(check_path(raw, data_dir, node), raw, rel, node)
    p = {k.lower(): v for k, v in props.items()}
    if sink_name and "avro.schema.file" in p:  # the sink's schema file, given at job level
        node, raw = nodes.get("avro.schema.file"), str(p["avro.schema.file"])
        read_schema_file(check_path(raw, data_dir, node), raw, sink_name, node)
    if "failure_strategy" in p:
        raw = str(p["failure_strategy"])
        if raw.replace("_", "").lower() not in {s.lower() for s in FAILURE_STRATEGIES}:
            close = difflib.get_close_matches(raw.replace("_", "").lower(),
                                              [s.lower() for s in FAILURE_STRATEGIES], n=1, cutoff=0.6)
            hint = [s for s in FAILURE_STRATEGIES if s.lower() in close]
            raise error(f"unknown failure_strategy '{raw}'"
                        + (f"; did you mean {hint[0]}?" if hint else "")
                        + f" (one of {', '.join(FAILURE_STRATEGIES)})", nodes.get("failure_strategy"), hint)
    guarantee = str(p.get("delivery.guarantee", "at_least_once")).lower()
    if guarantee == "exactly_once":
        raise error("'delivery.guarantee' = 'exactly_once' needs Kafka transactions, which this broker "
                    "does not support; use 'at_least_once' (the default)", nodes.get("delivery.guarantee"),
                    ["at_least_once"])
    if guarantee != "at_least_once":
        raise _choice("delivery.guarantee", p["delivery.guarantee"], ("at_least_once",), nodes)
    if "batch.size" in p:
        _int(p["batch.size"], "batch.size", nodes.get("batch.size"))
    if "max_retries" in p:
        _int_or_zero(p["max_retries"], "max_retries", nodes)
    _check_time_columns(select, p, nodes, catalog)


def _int_or_zero(value: Any, key: str, nodes: dict[str, ast.Node]) -> None:
    try:
        ok = int(value) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise error(f"'{key}' must be a whole number (0 or more), got {value!r}", nodes.get(key))


def _check_time_columns(select: ast.Select, p: dict[str, Any], nodes: dict[str, ast.Node],
                        catalog: Any) -> None:
    """``event.time.field`` and a window's time column must name a column of the declared sources.

    Checked only when every source is declared with columns (an undeclared topic may have any);
    system columns (``_timestamp``, ...) are the compiler's business.
    """
    if catalog is None:
        return
    refs = [select.from_, *(j.table for j in select.joins)]
    entries = [catalog.get(r.name) for r in refs]
    if any(e is None or not e.columns for e in entries) or any(
            n.startswith(f"{r.name}.") or (r.alias and n.startswith(f"{r.alias}.")) for n in p for r in refs):
        return
    columns = sorted({c for e in entries for c in e.column_names()})
    field = p.get("event.time.field")
    if field is not None and str(field).lower() not in columns and not str(field).startswith("_"):
        raise unknown("column", str(field), columns, nodes.get("event.time.field"))
    col = select.window.time_column if select.window is not None else None
    if col is not None and not col.name.startswith("_"):
        own = columns
        if col.qualifier is not None:
            by_alias = {(r.alias or r.name): e for r, e in zip(refs, entries, strict=True)}
            by_alias.update({r.name: e for r, e in zip(refs, entries, strict=True)})
            entry = by_alias.get(col.qualifier)
            if entry is None:
                raise unknown("relation", col.qualifier, list(by_alias), col)
            own = entry.column_names()
        if col.name not in own:
            raise unknown("column", col.name, own, col)


def _int(value: Any, key: str, node: ast.Node | None = None) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise error(f"'{key}' must be an integer, got {value!r}", node) from None
    if out <= 0:
        raise error(f"'{key}' must be positive", node)
    return out


def check_path(path: str, data_dir: str | os.PathLike[str] | None, node: ast.Node | None = None) -> Path:
    """The resolved file path, which must lie under the data directory (no ``..`` escapes)."""
    base = Path(data_dir if data_dir is not None else ".").resolve()  # the server always passes its --data-dir
    candidate = Path(path)
    full = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if full != base and base not in full.parents:
        raise error(f"file path '{path}' lies outside the server's data directory", node)
    return full


SERVER_FILES = ("registry.sqlite3", "state")
"""What the server keeps in its data directory (the job registry, operator state): no sink writes there."""


def check_sink_path(full: Path, path: str, relation: str, data_dir: str | os.PathLike[str] | None,
                    node: ast.Node | None = None) -> None:
    """A file sink's path (already confined by ``check_path``) must be a file, not one of the server's own."""
    base = Path(data_dir if data_dir is not None else ".").resolve()
    top = full.relative_to(base).parts[:1] if full != base else ()
    if not top or full.is_dir():
        raise error(f"file sink path '{path}' of '{relation}' is a directory: name a file", node)
    if any(top[0] == f or top[0].startswith(f"{f}-") for f in SERVER_FILES):
        raise error(f"file sink path '{path}' of '{relation}' is one of the server's own files "
                    "(the job registry, operator state): choose another name", node)


def check_interval(interval: ast.Interval, what: str, allow_zero: bool = False) -> int:
    """A duration's milliseconds; zero (unless allowed) or negative durations are errors."""
    ms = interval.millis
    if ms < 0 and allow_zero:
        raise error(f"{what} must not be negative", interval)
    if ms < 0 or (ms == 0 and not allow_zero):
        raise error(f"{what} must be a positive duration", interval)
    return ms


def walk(node: Any) -> Iterator[ast.Node]:
    """Every AST node under ``node`` (not descending into subqueries)."""
    if isinstance(node, ast.Node):
        yield node
        if isinstance(node, ast.InSubquery | ast.Exists):
            if isinstance(node, ast.InSubquery):
                yield from walk(node.operand)
            return
        for name in getattr(node, "__dataclass_fields__", {}):
            if name == "span":
                continue
            yield from walk(getattr(node, name))
    elif isinstance(node, tuple):
        for item in node:
            yield from walk(item)


def is_aggregate_call(node: ast.Node) -> bool:
    """An aggregate function call (not used as an analytic OVER call)."""
    if not isinstance(node, ast.FunctionCall) or node.over is not None:
        return False
    fn = lookup(node.name)
    return fn is not None and fn.kind == "aggregate"


def aggregates_in(expr: Any) -> list[ast.FunctionCall]:
    """The aggregate calls in ``expr`` (outermost only)."""
    found: list[ast.FunctionCall] = []

    def visit(node: Any) -> None:
        if isinstance(node, ast.FunctionCall) and is_aggregate_call(node):
            for arg in node.args:
                inner = [n for n in walk(arg) if is_aggregate_call(n)]
                if inner:
                    raise error("aggregates cannot be nested", inner[0])
            found.append(node)
            return
        if isinstance(node, ast.InSubquery | ast.Exists):
            # A subquery's aggregates are its own (its compiler checks them), not the enclosing query's.
            if isinstance(node, ast.InSubquery):
                visit(node.operand)
            return
        if isinstance(node, ast.Node):
            if isinstance(node, ast.FunctionCall) and node.over is not None:
                return
            for name in getattr(node, "__dataclass_fields__", {}):
                if name != "span":
                    visit(getattr(node, name))
        elif isinstance(node, tuple):
            for item in node:
                visit(item)

    visit(expr)
    return found


def analytic_calls(expr: Any) -> list[ast.FunctionCall]:
    """The ``fn(...) OVER (...)`` calls in ``expr``."""
    return [n for n in walk(expr) if isinstance(n, ast.FunctionCall) and n.over is not None]


def check_functions(expr: Any) -> None:
    """Unknown functions and wrong argument counts anywhere in ``expr`` (with the signature)."""
    for node in walk(expr):
        if isinstance(node, ast.FunctionCall):
            fn = lookup(node.name)
            if fn is None:
                raise unknown_function(node)
            n = len(node.args)
            if node.star and fn.name != "COUNT":
                raise error(f"{node.name}(*) is not valid; only COUNT(*) takes *", node)
            if not node.star and not fn.accepts(n):
                raise error(f"wrong number of arguments to {node.name}: got {n}, expected {fn.signature}",
                            node)
            if fn.name == "COUNT" and not node.star and n != 1:
                raise error(f"wrong number of arguments to COUNT: got {n}, expected {fn.signature}", node)
            if node.over is not None and fn.kind not in ("aggregate", "analytic"):
                raise error(f"{node.name} cannot be used with OVER", node)
            if fn.kind == "analytic" and node.over is None:
                raise error(f"{node.name} needs an OVER (...) clause", node)
            if fn.kind == "aggregate" and n > 1 and node.over is None:
                from .functions.aggregates import parameter_problem

                problem = parameter_problem(fn.name, node.args)  # TOPK(x, 0): at compile time
                if problem is not None:
                    raise error(f"{fn.name}: {problem}", node)


def unknown_function(node: ast.FunctionCall) -> SqlValidationError:
    """``unknown function UPPPER; did you mean UPPER?`` at the call."""
    from .expressions import suggest_functions

    close = suggest_functions(node.name)
    hint = f"; did you mean {', '.join(close)}?" if close else " (SHOW FUNCTIONS lists them)"
    return error(f"unknown function {node.name}{hint}", node, close)


def check_select_rules(select: ast.Select) -> None:
    """Placement rules: aggregates not in WHERE/GROUP BY, HAVING/EMIT need aggregation, windows."""
    check_functions((select.items, select.where, select.group_by, select.having,
                     tuple(j.on for j in select.joins)))
    if select.where is not None:
        bad = aggregates_in(select.where)
        if bad:
            raise error(f"aggregate {bad[0].name} is not allowed in WHERE (use HAVING)", bad[0])
    for g in select.group_by:
        if aggregates_in(g):
            raise error("aggregates are not allowed in GROUP BY", g)
        if analytic_calls(g):
            raise error("OVER is not allowed in GROUP BY", g)
    for j in select.joins:
        if aggregates_in(j.on):
            raise error("aggregates are not allowed in a join condition", j.on)
    has_agg = bool(select.group_by) or any(aggregates_in(i.expr) for i in select.items) \
        or select.having is not None
    if select.having is not None and analytic_calls(select.having):
        raise error("OVER is not allowed in HAVING", select.having)
    if select.having is not None and not select.group_by and not aggregates_in(select.having) \
            and not any(aggregates_in(i.expr) for i in select.items):
        raise error("HAVING needs an aggregation (GROUP BY or an aggregate function); "
                    "filter rows with WHERE", select.having, ["WHERE"])
    if select.window is not None and not has_agg:
        raise error("a WINDOW needs an aggregation (GROUP BY or an aggregate function)", select.window)
    if has_agg and any(analytic_calls(i.expr) for i in select.items):
        raise error("analytic OVER functions cannot be combined with GROUP BY/aggregates",
                    analytic_calls(select.items)[0])
    w = select.window
    if w is not None:
        size = check_interval(w.size, "the session gap" if w.kind == "session" else "the window size")
        if w.kind == "hopping":
            if w.advance is None:
                raise error("a HOPPING window needs an advance", w)
            adv = check_interval(w.advance, "the hop advance")
            if adv > size:
                raise error("the hop advance must not exceed the window size", w.advance)
        elif w.advance is not None:
            raise error(f"a {w.kind.upper()} window takes no advance", w.advance)
        if w.grace is not None:
            check_interval(w.grace, "GRACE PERIOD", allow_zero=True)
    if select.emit == "final" and not has_agg:
        raise error("EMIT FINAL needs an aggregation (GROUP BY or a window)", select.emit_span or select)
    for j in select.joins:
        if j.within is not None:
            if j.within_after is None:
                check_interval(j.within, "WITHIN")
            else:  # WITHIN (before, after): either side may be 0, not both
                before = check_interval(j.within, "WITHIN's before", allow_zero=True)
                if before + check_interval(j.within_after, "WITHIN's after", allow_zero=True) == 0:
                    raise error("WITHIN (before, after) needs a positive before or after", j.within)
        if j.grace is not None:
            check_interval(j.grace, "GRACE PERIOD", allow_zero=True)
    if select.limit is not None and select.limit < 0:
        raise error("LIMIT must not be negative", select)


def load_config_file(path: str, data_dir: Any, relation: str) -> dict[str, Any]:
    """The keys of a relation's ``config_file`` (YAML under the data dir, ``${VAR:default}`` expanded)."""
    import re

    import yaml

    full = check_path(path, data_dir)
    try:
        text = full.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read config_file '{path}' of '{relation}': {exc.strerror}") from None

    def expand(m: re.Match[str]) -> str:
        return os.environ.get(m.group(1), m.group(2) if m.group(2) is not None else "")

    text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}", expand, text)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise error(f"config_file '{path}' is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"config_file '{path}' must hold a mapping of keys")
    out: dict[str, Any] = {}
    for key, value in data.items():
        k = str(key).lower()
        if k.startswith(f"{relation}."):
            k = k[len(relation) + 1:]
        if k not in RELATION_KEYS and not k.startswith("kafka."):
            raise unknown(f"key in config_file '{path}'", k, RELATION_KEYS, None)
        out[k] = value
    return out


# ksqlDB's pseudo columns, as the system columns Velo has under its own names
PSEUDO_COLUMNS = {"rowtime": "_timestamp", "rowpartition": "_partition", "rowoffset": "_offset"}


def check_query_shape(select: ast.Select) -> ast.Select:
    """Refuse the query shapes the grammar accepts but the engine does not run yet, at the form's
    position (``FROM (SELECT …)``, ``WITH … AS``, ``UNION ALL``, ``PARTITION BY``), in the query
    and in its IN / EXISTS subqueries; return the query with ksqlDB's ``ROWTIME``,
    ``ROWPARTITION`` and ``ROWOFFSET`` read as ``_timestamp``, ``_partition``, ``_offset`` (a bare
    one as a select item keeps its name: ``SELECT rowtime`` gives a column ``rowtime``).

    Called once, where compiling starts (compile.py ``compile_select``).
    """
    _refuse_shapes(select)
    if not any(isinstance(n, ast.Column) and n.name in PSEUDO_COLUMNS for n in _deep_walk(select)):
        return select  # the common case: nothing to rewrite
    items = tuple(
        dataclasses.replace(i, alias=i.expr.name)
        if i.alias is None and isinstance(i.expr, ast.Column) and i.expr.name in PSEUDO_COLUMNS else i
        for i in select.items
    )
    rewritten: ast.Select = _pseudo(dataclasses.replace(select, items=items))
    return rewritten


def _refuse_shapes(select: ast.Select) -> None:
    if select.ctes:
        raise error("WITH … AS (SELECT …) is not supported yet", select.ctes[0])
    if select.union_all:
        raise error("UNION ALL is not supported yet", select.union_all[0])
    if select.from_.query is not None:
        raise error("FROM (SELECT …) is not supported yet", select.from_)
    for j in select.joins:
        if j.table.query is not None:
            raise error("JOIN (SELECT …) is not supported yet", j.table)
    if select.partition_by:
        raise error("PARTITION BY is not supported yet", select.partition_by[0])
    for n in walk((select.items, select.where, select.group_by, select.having,
                   tuple(j.on for j in select.joins))):
        if isinstance(n, ast.InSubquery | ast.Exists):
            _refuse_shapes(n.query)


def _deep_walk(node: Any) -> Iterator[ast.Node]:
    """Every node under ``node``, subqueries included."""
    for n in walk(node):
        yield n
        if isinstance(n, ast.InSubquery | ast.Exists):
            yield from _deep_walk(n.query)


def _pseudo(node: Any) -> Any:
    """``node`` with every pseudo column replaced (the same object where nothing changes)."""
    if isinstance(node, ast.Column):
        name = PSEUDO_COLUMNS.get(node.name)
        return node if name is None else dataclasses.replace(node, name=name)
    if isinstance(node, tuple):
        items = tuple(_pseudo(x) for x in node)
        return node if all(x is y for x, y in zip(items, node, strict=True)) else items
    if not isinstance(node, ast.Node):
        return node
    changes = {}
    for f in dataclasses.fields(node):
        if f.name == "span":
            continue
        old = getattr(node, f.name)
        new = _pseudo(old)
        if new is not old:
            changes[f.name] = new
    return dataclasses.replace(node, **changes) if changes else node
