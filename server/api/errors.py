"""One error shape for every 4xx/5xx body; no stack trace ever leaves the server.

    {"error": {"code": "...", "message": "...", "line"?, "column"?, "expected"?, "statement"?}}

The HTTP-only errors (401, 413, 501) live here; everything the server raises on purpose is a
``VeloError`` (server/errors.py) or a grammar ``SqlError``. Anything else is a 500 whose body carries
an error id that the log line also carries — the traceback stays in the log.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from velo.grammar.errors import SqlError, SqlSyntaxError

from ..errors import VeloError

log = logging.getLogger("velo.api")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "bad_request",
               413: "payload_too_large", 501: "not_implemented"}


class UnauthorizedError(VeloError):
    code, status = "unauthorized", 401


class PayloadTooLargeError(VeloError):
    code, status = "payload_too_large", 413


class NotImplementedYetError(VeloError):
    """A documented endpoint whose backing feature is not in this build yet."""

    code, status = "not_implemented", 501


def error_body(status: int, code: str, message: str, **details: Any) -> bytes:
    """The JSON bytes of an error body (also used by the ASGI middlewares, which have no Response)."""
    error: dict[str, Any] = {"code": code, "message": message}
    error.update({k: v for k, v in details.items() if v is not None})
    return orjson.dumps({"error": error}, default=str)


def error_response(status: int, code: str, message: str, **details: Any) -> Response:
    """A JSON error response of the API's one shape."""
    return Response(error_body(status, code, message, **details), status_code=status,
                    media_type="application/json")


def sql_error_body(exc: SqlError) -> dict[str, Any]:
    """The ``error`` object for a grammar error (syntax or validation)."""
    body = exc.to_dict()
    body["code"] = "sql_syntax" if isinstance(exc, SqlSyntaxError) else "sql_validation"
    return body


def velo_error_response(exc: VeloError) -> Response:
    error = exc.to_dict()
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return Response(orjson.dumps({"error": error}, default=str), status_code=exc.status,
                    media_type="application/json", headers=headers)


async def on_velo_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VeloError)
    return velo_error_response(exc)


async def on_sql_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SqlError)
    return Response(orjson.dumps({"error": sql_error_body(exc)}, default=str), status_code=400,
                    media_type="application/json")


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal")
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, code, message)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    error_id = secrets.token_hex(6)
    log.error("internal error %s on %s %s", error_id, request.method, request.url.path,
              exc_info=exc, extra={"error_id": error_id})
    return error_response(500, "internal", f"internal error (id {error_id}); see the server log",
                          error_id=error_id)


HANDLERS = {
    VeloError: on_velo_error,
    SqlError: on_sql_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
