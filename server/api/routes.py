"""The HTTP endpoints (http-api.md). Handlers translate requests into manager calls and views back."""

from __future__ import annotations

import time
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from velo.grammar import ast
from velo.grammar.parser import parse_statement

from .. import __version__
from ..connectors.base import ConnectorError
from ..engine.functions import all_functions
from ..errors import BadRequestError, VeloError
from ..jobs.statements import StatementError
from ..jobs.views import job_view, query_view
from .errors import sql_error_body
from .schemas import JobRequest, QueryRequest, StatementsRequest
from .state import AppState
from .streaming import NDJSONStream


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.velo
    return state


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except ValueError:
        raise BadRequestError("the request body is not valid JSON") from None


async def health(request: Request) -> Response:
    st = _state(request)
    counts: dict[str, int] = {}
    for job in st.manager.list_jobs():
        counts[job.state.value.lower()] = counts.get(job.state.value.lower(), 0) + 1
    reachable = await st.manager.admin.reachable()
    return JSONResponse({
        "status": "ok" if reachable else "degraded",
        "version": __version__,
        "uptime_s": round(time.monotonic() - st.started, 3),
        "jobs": counts,
        "kafka": {"brokers": st.settings.brokers, "reachable": reachable},
    })


async def list_jobs(request: Request) -> Response:
    return JSONResponse({"jobs": [job_view(j) for j in _state(request).manager.list_jobs()]})


async def get_job(request: Request) -> Response:
    job = _state(request).manager.get_job(request.path_params["name"])
    return JSONResponse(job_view(job, detail=True))


async def create_job(request: Request) -> Response:
    body = JobRequest.model_validate(await _body(request))
    job = await _state(request).manager.deploy_job(body.sql, body.name, body.properties)
    return JSONResponse(job_view(job), status_code=201)


async def delete_job(request: Request) -> Response:
    force = request.query_params.get("force", "false").lower() in ("1", "true", "yes")
    job = await _state(request).manager.stop_job(request.path_params["name"], force=force)
    return JSONResponse(job_view(job))


async def pause_job(request: Request) -> Response:
    job = await _state(request).manager.pause_job(request.path_params["name"])
    return JSONResponse(job_view(job))


async def resume_job(request: Request) -> Response:
    job = await _state(request).manager.resume_job(request.path_params["name"])
    return JSONResponse(job_view(job))


async def statements(request: Request) -> Response:
    body = StatementsRequest.model_validate(await _body(request))
    try:
        results = await _state(request).executor.execute_script(body.sql, body.properties)
    except StatementError as failed:
        cause = failed.cause
        if isinstance(cause, VeloError):
            error, status = cause.to_dict(), cause.status
        else:
            error, status = sql_error_body(cause), 400
        error["statement"] = failed.index
        return JSONResponse({"error": error}, status_code=status)
    return JSONResponse({"results": results})


async def query(request: Request) -> Response:
    body = QueryRequest.model_validate(await _body(request))
    stmt = parse_statement(body.sql)
    if not isinstance(stmt, ast.Select):
        raise BadRequestError("POST /query takes a SELECT; send other statements to /statements")
    client = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
    _, events = await _state(request).queries.open(stmt, body.sql, body.properties, body.limit, client)
    return NDJSONStream(events)  # type: ignore[return-value]


async def list_queries(request: Request) -> Response:
    return JSONResponse({"queries": [query_view(q) for q in _state(request).queries.list()]})


async def cancel_query(request: Request) -> Response:
    _state(request).queries.cancel(request.path_params["query_id"])
    return Response(status_code=204)


async def topics(request: Request) -> Response:
    names = await _state(request).manager.admin.list_topics()
    return JSONResponse({"topics": [{"name": n} for n in names]})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(_state(request).registry), media_type=CONTENT_TYPE_LATEST)


async def catalog(request: Request) -> Response:
    st = _state(request)
    try:
        topic_names = await st.manager.admin.list_topics()
    except ConnectorError:
        topic_names = []
    jobs = st.manager.list_jobs()
    return JSONResponse({
        "streams": [{"name": j.spec.sink_topic, "columns": [
            {"name": c.name, "type": c.type} for c in j.spec.query.plan.columns]} for j in jobs],
        "tables": [],
        "topics": topic_names,
        "jobs": [j.name for j in jobs],
        "functions": [{"name": f.name, "signature": f.signature, "description": f.description}
                      for f in all_functions()],
    })


ROUTES = [
    Route("/metrics", metrics, methods=["GET"]),
    Route("/catalog", catalog, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/jobs", list_jobs, methods=["GET"]),
    Route("/jobs", create_job, methods=["POST"]),
    Route("/jobs/{name}", get_job, methods=["GET"]),
    Route("/jobs/{name}", delete_job, methods=["DELETE"]),
    Route("/jobs/{name}/pause", pause_job, methods=["POST"]),
    Route("/jobs/{name}/resume", resume_job, methods=["POST"]),
    Route("/statements", statements, methods=["POST"]),
    Route("/query", query, methods=["POST"]),
    Route("/queries", list_queries, methods=["GET"]),
    Route("/queries/{query_id}", cancel_query, methods=["DELETE"]),
    Route("/topics", topics, methods=["GET"]),
]
