"""NDJSON streaming of query events, released promptly when the client goes away.

Starlette's StreamingResponse depends on the ASGI server's spec version to notice a disconnect; this
small response watches ``http.disconnect`` itself, so a query that sends nothing is still released
within a poll interval of the client leaving.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


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
        async for event in self.events:
            await send({"type": "http.response.body", "body": ndjson_line(event), "more_body": True})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
