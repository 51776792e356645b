"""The endpoint table: one entry per route, naming its handler, request model and response models.

Routing, request validation and ``/openapi.json`` are all derived from this table (openapi.py), so the
document cannot drift from what the server accepts: the model that validates a body is the model the
document shows.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pydantic
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from velo.grammar.errors import SqlError

from ..errors import BadRequestError, VeloError
from .errors import on_unexpected

Handler = Callable[[Request, Any], Awaitable[Any]]

_PATH_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class QueryParam:
    """A documented query-string parameter."""

    name: str
    type: str  # a JSON-schema type name
    description: str


@dataclass(frozen=True)
class Endpoint:
    """One route of the API.

    ``handler(request, body)`` gets the body already validated by ``body`` (None when the route takes
    none) and returns a pydantic model, a JSON-able value, or a ready Starlette ``Response``.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    response: type[BaseModel] | None
    status: int = 200
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    public: bool = False  # reachable without the bearer token (/health, /ready)
    media_type: str = "application/json"
    text_body: bool = False  # also accepts the body's main field as raw text/plain
    query: tuple[QueryParam, ...] = ()
    stream_item: type[BaseModel] | None = None  # for NDJSON responses: the model of one line
    tags: tuple[str, ...] = field(default=())

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)

    def route(self) -> Route:
        """The Starlette route running this endpoint."""
        return Route(self.path, self._call, methods=[self.method], name=f"{self.method} {self.path}")

    async def _call(self, request: Request) -> Response:
        try:
            body = await self._parse(request) if self.body is not None else None
            result = await self.handler(request, body)
        except (VeloError, SqlError, HTTPException):
            raise  # the app's handlers turn these into the error shape
        except Exception as exc:
            # Answered here rather than by Starlette's ServerErrorMiddleware, which re-raises and
            # makes uvicorn log a second, id-less traceback.
            return await on_unexpected(request, exc)
        if isinstance(result, Response):
            return result
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json", exclude_none=False)
        return Response(orjson.dumps(result, default=str), status_code=self.status,
                        media_type="application/json")

    async def _parse(self, request: Request) -> BaseModel:
        assert self.body is not None
        raw = await request.body()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if self.text_body and content_type == "text/plain":
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                raise BadRequestError("the request body is not valid UTF-8") from None
            data: Any = {"sql": text, **{k: v for k, v in request.query_params.items() if k == "name"}}
        else:
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise BadRequestError("the request body is not valid JSON") from None
        try:
            return self.body.model_validate(data)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise BadRequestError(f"invalid request body: {where}: {first['msg']}") from None
