"""One error shape for every 4xx/5xx body; no stack trace ever leaves the server.

    {"error": {"code": "...", "message": "...", "line"?, "column"?, "expected"?, "statement"?}}
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pydantic
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from velo.grammar.errors import SqlError, SqlSyntaxError

from ..errors import VeloError

log = logging.getLogger("velo.api")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "bad_request",
               413: "payload_too_large"}


def error_response(status: int, code: str, message: str, **details: Any) -> JSONResponse:
    """A JSON error body of the API's one shape."""
    body = {"code": code, "message": message}
    body.update({k: v for k, v in details.items() if v is not None})
    return JSONResponse({"error": body}, status_code=status)


def sql_error_body(exc: SqlError) -> dict[str, Any]:
    """The ``error`` object for a grammar error (syntax or validation)."""
    body = exc.to_dict()
    body["code"] = "sql_syntax" if isinstance(exc, SqlSyntaxError) else "sql_validation"
    return body


async def on_velo_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VeloError)
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.status)


async def on_sql_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SqlError)
    return JSONResponse({"error": sql_error_body(exc)}, status_code=400)


async def on_pydantic_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, pydantic.ValidationError)
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return error_response(400, "bad_request", f"invalid request body: {where}: {first['msg']}")


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal")
    return error_response(exc.status_code, code, str(exc.detail))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    error_id = secrets.token_hex(6)
    log.exception("internal error %s on %s %s", error_id, request.method, request.url.path)
    return error_response(500, "internal", f"internal error (id {error_id}); see the server log",
                          error_id=error_id)


HANDLERS = {
    VeloError: on_velo_error,
    SqlError: on_sql_error,
    pydantic.ValidationError: on_pydantic_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
