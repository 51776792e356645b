"""NDJSON streaming of query events, released promptly when the client goes away.

Starlette's StreamingResponse depends on the ASGI server's spec version to notice a disconnect; this
small response watches ``http.disconnect`` itself, so a query that sends nothing is still released
within a poll interval of the client leaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from velo.grammar.errors import SqlError

from ..errors import VeloError
from .errors import sql_error_body

log = logging.getLogger("velo.api")


def _default(value: Any) -> Any:
    # Decimals and other exact types travel as strings rather than lossy floats.
    return str(value)


def ndjson_line(event: dict[str, Any]) -> bytes:
    """One event as a line of NDJSON."""
    return orjson.dumps(event, default=_default, option=orjson.OPT_APPEND_NEWLINE)


class NDJSONStream(Response):
    """An ASGI response writing ``events`` as NDJSON until they end or the client disconnects."""

    media_type = "application/x-ndjson"

    def __init__(self, events: AsyncIterator[dict[str, Any]]) -> None:
        # A Response for the routing layer's sake; the body is written by __call__, not rendered.
        self.events = events
        self.status_code = 200
        self.background = None
        self.raw_headers = [(b"content-type", self.media_type.encode()), (b"cache-control", b"no-cache")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": self.raw_headers,
        })
        pump = asyncio.create_task(self._pump(send))
        watch = asyncio.create_task(_wait_disconnect(receive))
        try:
            await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                task.cancel()
            for task in (pump, watch):
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
            await self.events.aclose()  # type: ignore[attr-defined]
        if pump.done() and not pump.cancelled() and pump.exception() is None:
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Send) -> None:
        try:
            async for event in self.events:
                await send({"type": "http.response.body", "body": ndjson_line(event), "more_body": True})
        except OSError:
            raise  # the client is gone (uvicorn's ClientDisconnected is an OSError): nobody to tell
        except Exception as exc:
            # The status line is long sent: a failure after the first byte becomes the last line.
            await send({"type": "http.response.body", "body": ndjson_line({"error": stream_error(exc)}),
                        "more_body": True})


def stream_error(exc: Exception) -> dict[str, Any]:
    """The ``error`` object of a query that failed mid-stream (no stack trace; 'internal' gets an id)."""
    if isinstance(exc, VeloError):
        return exc.to_dict()
    if isinstance(exc, SqlError):
        return sql_error_body(exc)
    error_id = secrets.token_hex(6)
    log.error("internal error %s in a query stream", error_id, exc_info=exc, extra={"error_id": error_id})
    return {"code": "internal", "message": f"the query failed (id {error_id}); see the server log",
            "error_id": error_id}


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
