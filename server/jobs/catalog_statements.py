"""Catalog and inspection statements: CREATE/DROP STREAM|TABLE, SHOW …, DESCRIBE, EXPLAIN.

Called by the statement executor for every statement that does not start or control a job.
Results follow the executor's shapes: ``{"type": "rows", "columns", "rows", "message"}`` or
``{"type": "message", "message"}``. The catalog lives on the job manager (``manager.catalog``) so the
lead can persist it with ``Catalog.to_dict()`` / ``from_dict()``.
"""

from __future__ import annotations

from typing import Any

from velo.grammar import ast
from velo.grammar.errors import SqlValidationError

from ..connectors.base import ConnectorError
from ..connectors.kafka import sample_columns
from ..engine.avro import field_names, schema_text
from ..engine.catalog import CatalogEntry, ColumnSpec, entry_from_statement
from ..engine.compile import compile_select
from ..engine.functions import all_functions, lookup
from ..engine.validate import JOB_KEYS, RELATION_KEYS, check_job_properties, unknown
from ..errors import KafkaUnavailableError, NotFoundError
from .manager import MultiJobSqlServer

Result = dict[str, Any]
CATALOG_STATEMENTS = (ast.CreateSource, ast.Drop, ast.Show, ast.Describe, ast.DescribeFunction,
                      ast.Explain)


def _rows(columns: list[str], rows: list[list[Any]], message: str) -> Result:
    return {"type": "rows", "columns": columns, "rows": rows, "message": message}


def register_job_output(manager: MultiJobSqlServer, stmt: ast.Statement, sink_topic: str,
                        columns: list[tuple[str, str]], avro_schema: dict[str, Any] | None = None) -> None:
    """Make a ``CREATE STREAM|TABLE … AS SELECT`` output queryable by later statements (§2, item 3).

    An output written as Avro (``avro_schema``) is declared with that schema, so readers decode it.
    """
    if not isinstance(stmt, ast.CreateStreamAs):
        return
    specs = tuple(ColumnSpec(n, t) for n, t in columns) if all(t != "ANY" for _, t in columns) else ()
    if avro_schema is not None:
        specs = tuple(c for c in specs if c.name in field_names(avro_schema))  # a star may bring more
    entry = CatalogEntry(name=stmt.name, kind=stmt.kind, columns=specs, topic=sink_topic, job=stmt.name,
                         format="json" if avro_schema is None else "avro",
                         options={} if avro_schema is None else {"avro.schema": schema_text(avro_schema)})
    manager.catalog.put(entry, replace=True)
    manager.save_catalog()


async def execute_catalog(manager: MultiJobSqlServer, stmt: ast.Statement,
                          properties: dict[str, Any]) -> Result | None:
    """Run a catalog/inspection statement; None when ``stmt`` is not one."""
    catalog = manager.catalog
    if isinstance(stmt, ast.CreateSource):
        entry = entry_from_statement(stmt, getattr(manager.config, "data_dir", None))
        existing = catalog.get(entry.name)
        if existing is not None and not stmt.or_replace:
            raise SqlValidationError(
                f"{existing.kind} '{entry.name}' already exists; use CREATE OR REPLACE",
                line=stmt.span.line if stmt.span else None, column=stmt.span.column if stmt.span else None)
        if entry.source_type == "kafka_source" and entry.partitions is not None and entry.topic:
            try:
                await manager.admin.ensure_topic(entry.topic, entry.partitions)
            except ConnectorError as exc:
                raise KafkaUnavailableError(str(exc)) from exc
        catalog.put(entry, replace=True)
        manager.save_catalog()
        verb = "replaced" if existing is not None else "created"
        return {"type": "message", "message": f"{entry.kind.capitalize()} '{entry.name}' {verb}"}
    if isinstance(stmt, ast.Drop):
        dropped = catalog.get(stmt.name)
        if dropped is None or dropped.kind != stmt.kind:
            if stmt.if_exists:
                return {"type": "message", "message": f"{stmt.kind.capitalize()} '{stmt.name}' does not exist"}
            raise NotFoundError(f"no {stmt.kind} named '{stmt.name}'")
        catalog.drop(stmt.name)
        manager.save_catalog()
        note = " (the topic is kept: delete it with the Kafka tools)" if stmt.delete_topic else ""
        return {"type": "message", "message": f"{stmt.kind.capitalize()} '{stmt.name}' dropped{note}"}
    if isinstance(stmt, ast.Show):
        return await _show(manager, stmt.what, properties)
    if isinstance(stmt, ast.DescribeFunction):
        fn = lookup(stmt.name)
        if fn is None:
            raise unknown("function", stmt.name, [f.name for f in all_functions()], stmt)
        return _rows(["field", "value"], [["name", fn.name], ["kind", fn.kind], ["signature", fn.signature],
                                           ["description", fn.description], ["example", fn.example]],
                     f"function {fn.name}")
    if isinstance(stmt, ast.Describe):
        return await _describe(manager, stmt.name)
    if isinstance(stmt, ast.Explain):
        return _explain(manager, stmt, properties)
    return None


async def _show(manager: MultiJobSqlServer, what: str, properties: dict[str, Any]) -> Result:
    catalog = manager.catalog
    if what in ("streams", "tables"):
        kind = what[:-1]
        rows = [[e.name, e.topic, e.format.upper(), e.source_type, e.job or "",
                 ", ".join(f"{c.name} {c.type}" for c in e.columns)]
                for e in (catalog.entries[n] for n in catalog.names(kind))]
        return _rows(["name", "topic", "format", "type", "job", "columns"], rows, f"{len(rows)} {what}")
    if what == "topics":
        try:
            topics = await manager.admin.list_topics()
        except ConnectorError as exc:
            raise KafkaUnavailableError(str(exc)) from exc
        return _rows(["topic"], [[t] for t in topics], f"{len(topics)} topic(s)")
    if what == "functions":
        fns = all_functions()
        return _rows(["name", "kind", "signature", "description"],
                     [[f.name, f.kind, f.signature, f.description] for f in fns], f"{len(fns)} function(s)")
    if what == "properties":
        keys = sorted(JOB_KEYS) + [f"<name>.{k}" for k in sorted(RELATION_KEYS)]
        rows = [[k, str(properties.get(k, ""))] for k in keys]
        rows += [[k, str(v)] for k, v in sorted(properties.items()) if k not in JOB_KEYS]
        return _rows(["property", "value"], rows, f"{len(rows)} propertie(s)")
    raise NotFoundError(f"SHOW {what.upper()} is not supported")


async def _describe(manager: MultiJobSqlServer, name: str) -> Result:
    entry = manager.catalog.get(name)
    if entry is not None:
        rows = [[c.name, c.type, "KEY" if c.key else ("TIMESTAMP" if c.name == entry.timestamp else "")]
                for c in entry.columns]
        message = (f"{entry.kind} {entry.name}: topic '{entry.topic}', {entry.format.upper()}"
                   + (f", job {entry.job}" if entry.job else ""))
        return _rows(["column", "type", "extra"], rows, message)
    try:
        job = manager.get_job(name)
    except NotFoundError:
        job = None
    if job is not None:
        rows = [[c.name, c.type, ""] for c in job.spec.query.plan.columns]
        return _rows(["column", "type", "extra"], rows, f"stream {job.name} (output of job {job.name})")
    try:
        columns = await sample_columns(manager.config.brokers, name)
    except ConnectorError as exc:
        if "does not exist" in str(exc):
            names = manager.catalog.names() + [j.name for j in manager.list_jobs()]
            raise unknown("stream, table or topic", name, names, None) from exc
        raise KafkaUnavailableError(str(exc)) from exc
    return _rows(["column", "type", "extra"], [[c, "ANY", ""] for c in columns],
                 f"topic {name} (schema inferred from its latest records)")


def _explain(manager: MultiJobSqlServer, stmt: ast.Explain, properties: dict[str, Any]) -> Result:
    if stmt.name is not None:
        query = manager.get_job(stmt.name).spec.query
    else:
        inner = stmt.statement
        own: tuple[ast.Property, ...] = ()
        if isinstance(inner, ast.Select):
            select, sink = inner, None
        elif isinstance(inner, ast.CreateStreamAs | ast.StartJob | ast.InsertSelect):
            select = inner.query
            sink = inner.target if isinstance(inner, ast.InsertSelect) else inner.name
            own = inner.properties
            properties = {**properties, **{p.key.lower(): p.value for p in inner.properties}}
        else:
            raise NotFoundError("EXPLAIN takes a SELECT, a job statement or a job name")
        # The checks a job or a query runs first, so a bad WITH key is placed at its property (with
        # its suggestions) as it is for them: compile_select sees only a dict, without positions.
        props = {**properties, **{p.key.lower(): p.value for p in select.properties}}
        nodes: dict[str, ast.Node] = {p.key.lower(): p for p in (*select.properties, *own)}
        check_job_properties(select, props, nodes, sink_name=sink, catalog=manager.catalog,
                             data_dir=getattr(manager.config, "data_dir", None))
        query = compile_select(select, catalog=manager.catalog, properties=properties,
                               data_dir=getattr(manager.config, "data_dir", None), sink_name=sink)
    text = query.explain()
    return {"type": "message", "message": text, "plan": query.plan.describe(),
            "generated_code": query.source_code}
