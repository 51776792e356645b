"""The HTTP endpoints (http-api.md). Handlers translate requests into manager calls and views back.

``ENDPOINTS`` is the API: routing, validation and ``/openapi.json`` are all made from it (table.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from velo.grammar import ast
from velo.grammar.apps import substitute
from velo.grammar.parser import parse_statement

from .. import __version__
from ..connectors.base import ConnectorError
from ..engine.catalog import Catalog
from ..engine.functions import all_functions
from ..errors import BadRequestError, KafkaUnavailableError, VeloError
from ..jobs.apps import AppDeployer, AppInfo
from ..jobs.statements import StatementError
from ..jobs.views import job_view, query_view
from . import schemas as s
from .errors import NotImplementedYetError, error_response, sql_error_body
from .state import AppState
from .streaming import NDJSONStream
from .table import Endpoint, QueryParam

# Property keys that name files: their values must stay inside --data-dir (http-api.md, "Security").
_PATH_KEYS = ("path", "file", "file.path", "dir", "directory", "location")


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.velo
    return state


def _uptime(st: AppState) -> float:
    return round(time.monotonic() - st.started, 3)


def confine_paths(data_dir: Path, properties: dict[str, Any]) -> None:
    """Refuse (400) a file property that points outside the data directory.

    The engine validates paths in SQL text; this guards what arrives as request properties, so the
    API never accepts a path outside ``--data-dir``.
    """
    root = data_dir.resolve()
    for key, value in properties.items():
        k = str(key).lower()
        if not (k in _PATH_KEYS or k.endswith((".path", ".file", ".dir"))) or not isinstance(value, str):
            continue
        try:
            candidate = Path(value)
            resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
        except (ValueError, OSError):  # NUL bytes, loops: not a usable path either way
            raise BadRequestError(f"property '{key}' is not a valid path") from None
        if ".." in candidate.parts or not resolved.is_relative_to(root):
            raise BadRequestError(f"property '{key}' names a path outside the data directory")


# ---------------------------------------------------------------------------------------------- server


async def health(request: Request, _: None) -> s.HealthResponse:
    st = _state(request)
    counts: dict[str, int] = {}
    for job in st.manager.list_jobs():
        counts[job.state.value.lower()] = counts.get(job.state.value.lower(), 0) + 1
    reachable = await st.kafka_reachable()
    return s.HealthResponse(
        status="ok" if reachable else "degraded", version=__version__, uptime_s=_uptime(st),
        jobs=counts, kafka=s.KafkaStatus(brokers=st.settings.brokers, reachable=reachable))


async def ready(request: Request, _: None) -> Response | s.ReadyResponse:
    st = _state(request)
    loaded = st.registry_loaded
    reachable = await st.kafka_reachable()
    if not reachable:
        return error_response(503, "kafka_unavailable", f"Kafka at {st.settings.brokers} is unreachable")
    if not loaded:
        return error_response(503, "internal", "the job registry is still loading")
    return s.ReadyResponse(ready=True, registry_loaded=loaded, kafka_reachable=reachable)


async def info(request: Request, _: None) -> s.InfoResponse:
    st = _state(request)
    cfg = st.settings
    return s.InfoResponse(
        version=__version__, brokers=cfg.brokers, embedded_kafka=cfg.embedded_kafka, max_jobs=cfg.max_jobs,
        live_jobs=st.manager.live_count(), data_dir=str(cfg.data_dir), auth=cfg.auth_token is not None,
        tls=cfg.tls_cert is not None, max_body=cfg.max_body, uptime_s=_uptime(st))


async def metrics(request: Request, _: None) -> Response:
    return Response(generate_latest(_state(request).prometheus), media_type=CONTENT_TYPE_LATEST)


# ---------------------------------------------------------------------------------------------- jobs


async def list_jobs(request: Request, _: None) -> dict[str, Any]:
    return {"jobs": [job_view(j) for j in _state(request).manager.list_jobs()]}


async def create_job(request: Request, body: Any) -> dict[str, Any]:
    assert isinstance(body, s.JobRequest)
    st = _state(request)
    confine_paths(st.settings.data_dir, body.properties)
    job = await st.manager.deploy_job(body.sql, body.name, body.properties, version=body.version)
    return job_view(job)


async def get_job(request: Request, _: None) -> dict[str, Any]:
    return job_view(_state(request).manager.get_job(request.path_params["name"]), detail=True)


async def delete_job(request: Request, _: None) -> dict[str, Any]:
    force = request.query_params.get("force", "false").lower() in ("1", "true", "yes")
    job = await _state(request).manager.stop_job(request.path_params["name"], force=force)
    return job_view(job)


async def pause_job(request: Request, _: None) -> dict[str, Any]:
    return job_view(await _state(request).manager.pause_job(request.path_params["name"]))


async def resume_job(request: Request, _: None) -> dict[str, Any]:
    return job_view(await _state(request).manager.resume_job(request.path_params["name"]))


# ---------------------------------------------------------------------------------------------- statements


async def statements(request: Request, body: Any) -> Response | dict[str, Any]:
    assert isinstance(body, s.StatementsRequest)
    st = _state(request)
    confine_paths(st.settings.data_dir, body.properties)
    sql = body.sql
    if body.variables:
        # ${VAR} from the request only: unlike an app deploy, an ad-hoc statement does not read
        # the server's environment (it would let any client print the server's secrets).
        sql = substitute(sql, body.variables, environ={})
    try:
        results = await st.executor.execute_script(sql, body.properties)
    except StatementError as failed:
        cause = failed.cause
        if isinstance(cause, VeloError):
            error, status = cause.to_dict(), cause.status
        else:
            error, status = sql_error_body(cause), 400
        error["statement"] = failed.index
        return error_response(status, error.pop("code"), error.pop("message"), **error)
    return {"results": results}


# ---------------------------------------------------------------------------------------------- queries


def _print_as_select(stmt: ast.Print) -> ast.Select:
    """``PRINT topic`` is ``SELECT * FROM topic`` (from the beginning when asked)."""
    props = (ast.Property("auto.offset.reset", "earliest"),) if stmt.from_beginning else ()
    return ast.Select(items=(ast.SelectItem(ast.Star()),), from_=ast.TableRef(stmt.topic), limit=stmt.limit,
                      properties=props)


async def query(request: Request, body: Any) -> NDJSONStream:
    assert isinstance(body, s.QueryRequest)
    st = _state(request)
    confine_paths(st.settings.data_dir, body.properties)
    stmt = parse_statement(body.sql)
    if isinstance(stmt, ast.Print):
        stmt = _print_as_select(stmt)
    if not isinstance(stmt, ast.Select):
        raise BadRequestError("POST /query takes a SELECT or PRINT; send other statements to /statements")
    client = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
    opened, events = await st.queries.open(stmt, body.sql, body.properties, body.limit, client)
    if st.closing:  # opened while the server shuts down: it ends at once, like every other stream
        opened.cancel(shutdown=True)
    return NDJSONStream(events)


async def list_queries(request: Request, _: None) -> dict[str, Any]:
    return {"queries": [query_view(q) for q in _state(request).queries.list()]}


async def cancel_query(request: Request, _: None) -> Response:
    _state(request).queries.cancel(request.path_params["query_id"])
    return Response(status_code=204)


# ---------------------------------------------------------------------------------------------- apps


def _app_view(app: AppInfo) -> dict[str, Any]:
    return {"name": app.name, "version": app.version, "description": app.description,
            "jobs": [job_view(j) for j in app.jobs]}


def _apps(st: AppState) -> AppDeployer:
    if st.apps is None:
        raise NotImplementedYetError("application deploys are not available in this build")
    return st.apps


async def deploy_app(request: Request, body: Any) -> dict[str, Any]:
    assert isinstance(body, s.AppRequest)
    # All-or-nothing; an error names the statement and its line in the file (jobs/apps.py).
    return _app_view(await _apps(_state(request)).deploy(body.sql, body.name, body.variables))


async def list_apps(request: Request, _: None) -> dict[str, Any]:
    return {"apps": [_app_view(app) for app in _apps(_state(request)).list()]}


async def get_app(request: Request, _: None) -> dict[str, Any]:
    return _app_view(_apps(_state(request)).get(request.path_params["name"]))


async def delete_app(request: Request, _: None) -> dict[str, Any]:
    force = request.query_params.get("force", "false").lower() in ("1", "true", "yes")
    return _app_view(await _apps(_state(request)).stop(request.path_params["name"], force=force))


# ---------------------------------------------------------------------------------------------- catalog


async def topics(request: Request, _: None) -> dict[str, Any]:
    st = _state(request)
    try:
        described = await st.manager.admin.describe_topics()
    except ConnectorError as exc:
        raise KafkaUnavailableError(str(exc)) from exc
    return {"topics": [
        {"name": name,
         "partitions": [{"partition": p, "end_offset": end} for p, end in sorted(parts.items())],
         "end_offset": sum(end or 0 for end in parts.values())}
        for name, parts in described.items()]}


async def catalog(request: Request, _: None) -> dict[str, Any]:
    st = _state(request)
    try:
        topic_names = await st.manager.admin.list_topics()
    except ConnectorError:
        topic_names = []  # the catalog still serves jobs and functions while Kafka is down
    jobs = st.manager.list_jobs()
    declared = st.manager.catalog
    entries = list(declared.entries.values()) if isinstance(declared, Catalog) else []
    relations: dict[str, list[dict[str, Any]]] = {"stream": [], "table": []}
    for e in entries:
        relations.setdefault(e.kind, []).append({
            "name": e.name, "topic": e.topic or e.path or e.name, "job": e.job, "kind": e.kind,
            "format": e.format, "key": e.key_column, "timestamp": e.timestamp,
            "columns": [{"name": c.name, "type": c.type} for c in e.columns]})
    named = {r["name"] for r in relations["stream"]} | {r["name"] for r in relations["table"]}
    # A job's output is a stream the shell can complete even when the catalog has no entry for it.
    for j in jobs:
        if j.name not in named:
            relations["stream"].append({
                "name": j.name, "topic": j.spec.sink_topic, "job": j.name, "kind": "stream",
                "columns": [{"name": c.name, "type": c.type} for c in j.spec.query.plan.columns]})
    return {
        "streams": sorted(relations["stream"], key=lambda r: str(r["name"])),
        "tables": sorted(relations["table"], key=lambda r: str(r["name"])),
        "topics": topic_names,
        "jobs": [j.name for j in jobs],
        "functions": [{"name": f.name, "signature": f.signature, "description": f.description,
                       "example": f.example, "return_type": f.return_type} for f in all_functions()],
    }


async def openapi(request: Request, _: None) -> Response:
    return Response(_state(request).openapi, media_type="application/json")


# ---------------------------------------------------------------------------------------------- the table

_NF, _BAD = 404, 400
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/health", health, "Liveness and a summary (200 also when degraded)", s.HealthResponse,
             public=True, tags=("server",)),
    Endpoint("GET", "/ready", ready, "Ready to take work: registry loaded and broker reachable",
             s.ReadyResponse, errors=(503,), public=True, tags=("server",)),
    Endpoint("GET", "/info", info, "Version and configuration", s.InfoResponse, tags=("server",)),
    Endpoint("GET", "/metrics", metrics, "Prometheus exposition", None, media_type=CONTENT_TYPE_LATEST,
             tags=("server",)),
    Endpoint("GET", "/openapi.json", openapi, "This document", None, tags=("server",)),
    Endpoint("POST", "/statements", statements, "Run statements in order; one result each",
             s.StatementsResponse, body=s.StatementsRequest, errors=(_BAD, _NF, 409, 413, 429, 503),
             tags=("sql",)),
    Endpoint("POST", "/query", query, "Run a transient SELECT/PRINT; rows stream back as NDJSON", None,
             body=s.QueryRequest, errors=(_BAD, 413, 503), media_type="application/x-ndjson",
             stream_item=s.QueryEvent, tags=("sql",)),
    Endpoint("GET", "/queries", list_queries, "Running transient queries", s.QueriesResponse,
             tags=("sql",)),
    Endpoint("DELETE", "/queries/{query_id}", cancel_query, "Cancel a running transient query", None,
             status=204, errors=(_NF,), tags=("sql",)),
    Endpoint("GET", "/jobs", list_jobs, "Every job", s.JobsResponse, tags=("jobs",)),
    Endpoint("POST", "/jobs", create_job, "Deploy one job", s.JobView, status=201, body=s.JobRequest,
             errors=(_BAD, 409, 413, 429, 503), tags=("jobs",)),
    Endpoint("GET", "/jobs/{name}", get_job, "One job in full", s.JobView, errors=(_NF,), tags=("jobs",)),
    Endpoint("DELETE", "/jobs/{name}", delete_job, "Stop a job (drain, commit, release)", s.JobView,
             errors=(_NF,), tags=("jobs",),
             query=(QueryParam("force", "boolean", "Skip the drain of the batch in flight."),)),
    Endpoint("POST", "/jobs/{name}/pause", pause_job, "Pause a running job", s.JobView, errors=(_NF, 409),
             tags=("jobs",)),
    Endpoint("POST", "/jobs/{name}/resume", resume_job, "Resume a paused job", s.JobView,
             errors=(_NF, 409), tags=("jobs",)),
    Endpoint("POST", "/apps", deploy_app, "Deploy a SQL application file (all-or-nothing)", s.AppView,
             status=201, body=s.AppRequest, text_body=True, errors=(_BAD, 409, 413, 429, 501, 503),
             tags=("apps",),
             query=(QueryParam("name", "string", "The app's name (with a text/plain body)."),)),
    Endpoint("GET", "/apps", list_apps, "Deployed applications", s.AppsResponse, tags=("apps",)),
    Endpoint("GET", "/apps/{name}", get_app, "One application with its jobs", s.AppView, errors=(_NF,),
             tags=("apps",)),
    Endpoint("DELETE", "/apps/{name}", delete_app, "Stop every job of an application", s.AppView,
             errors=(_NF,), tags=("apps",),
             query=(QueryParam("force", "boolean", "Skip the drain of each job's batch in flight."),)),
    Endpoint("GET", "/catalog", catalog, "Streams, tables, topics, jobs and functions (for completion)",
             s.CatalogResponse, tags=("catalog",)),
    Endpoint("GET", "/topics", topics, "Kafka topics with partitions and end offsets", s.TopicsResponse,
             errors=(503,), tags=("catalog",)),
)

ROUTES = [endpoint.route() for endpoint in ENDPOINTS]
