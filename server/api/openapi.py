"""``/openapi.json``, generated from the endpoint table and the pydantic models that validate requests.

Nothing here is written by hand per endpoint: paths, parameters, request bodies, responses and error
statuses all come from ``ENDPOINTS`` (routes.py), and the schemas from the models (schemas.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from .schemas import ErrorResponse
from .table import Endpoint

_REF = "#/components/schemas/{model}"
_STATUS_TEXT = {200: "OK", 201: "Created", 204: "No content", 400: "Bad request (error shape)",
                401: "Unauthorized", 404: "Not found", 409: "Conflict", 413: "Payload too large",
                429: "Job limit reached", 500: "Internal error (carries an error id)",
                501: "Not implemented in this build", 503: "Unavailable (Kafka down)"}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _operation(ep: Endpoint, auth: bool) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": ep.summary, "operationId": _operation_id(ep), "tags": list(ep.tags)}
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in ep.path_params]
    params += [{"name": q.name, "in": "query", "required": False, "description": q.description,
                "schema": {"type": q.type}} for q in ep.query]
    if params:
        op["parameters"] = params
    if ep.body is not None:
        content: dict[str, Any] = {"application/json": {"schema": _ref(ep.body)}}
        if ep.text_body:
            content["text/plain"] = {"schema": {"type": "string", "minLength": 1}}
        op["requestBody"] = {"required": True, "content": content}
    success: dict[str, Any] = {"description": _STATUS_TEXT.get(ep.status, "OK")}
    if ep.response is not None:
        success["content"] = {ep.media_type: {"schema": _ref(ep.response)}}
    elif ep.stream_item is not None:
        success["content"] = {ep.media_type: {
            "schema": {"type": "string", "description": "One JSON document per line, each a "
                       f"{ep.stream_item.__name__}; the last line is 'done' or 'error'."},
            "x-item-schema": _ref(ep.stream_item)}}
    elif ep.status != 204:
        kind = "string" if ep.media_type.startswith("text/") else "object"
        success["content"] = {ep.media_type: {"schema": {"type": kind}}}
    responses: dict[str, Any] = {str(ep.status): success}
    statuses = set(ep.errors) | {500}
    if ep.body is not None:
        statuses |= {400, 413}
    if ep.path_params:
        statuses.add(404)
    if auth and not ep.public:
        statuses.add(401)
    for status in sorted(statuses):
        responses[str(status)] = {"description": _STATUS_TEXT.get(status, "Error"),
                                  "content": {"application/json": {"schema": _ref(ErrorResponse)}}}
    op["responses"] = responses
    if not ep.public:
        op["security"] = [{"bearer": []}]
    else:
        op["security"] = []
    return op


def _operation_id(ep: Endpoint) -> str:
    handler = getattr(ep.handler, "__name__", "op")
    return f"{ep.method.lower()}_{handler}"


def _models(endpoints: Iterable[Endpoint]) -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {ErrorResponse.__name__: ErrorResponse}
    for ep in endpoints:
        for model in (ep.body, ep.response, ep.stream_item):
            if model is not None:
                seen[model.__name__] = model
    return list(seen.values())


def build_openapi(endpoints: Iterable[Endpoint], *, auth: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints``; ``auth`` adds the 401s when a token is required."""
    endpoints = list(endpoints)
    models = _models(endpoints)
    # Requests in "validation" mode (what a client may send), responses in "serialization" mode.
    requests = {ep.body for ep in endpoints if ep.body is not None}
    _, defs = models_json_schema(
        [(m, "validation" if m in requests else "serialization") for m in models], ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep, auth)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Velo streaming SQL server", "version": __version__,
                 "description": "See docs/http-api.md. Every 4xx/5xx body is an ErrorResponse."},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
