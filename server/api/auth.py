"""Request guards as ASGI middleware: the bearer token and the request body cap.

Both sit in front of routing, so they hold for every route — including ones added later — and answer
in the API's one error shape. The body cap is enforced while the body is read (a lying or absent
Content-Length cannot get more than ``max_body`` bytes into memory).
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .console import PUBLIC_PATHS as CONSOLE_PUBLIC_PATHS
from .errors import PayloadTooLargeError, error_body

# Routes a load balancer or orchestrator probes without credentials (http-api.md, "Security"), and
# the console's login page (its code and data need the token: console/__init__.py).
PUBLIC_PATHS = frozenset({"/health", "/ready"}) | CONSOLE_PUBLIC_PATHS


async def _send_error(send: Send, status: int, code: str, message: str,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = error_body(status, code, message)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """Requires ``Authorization: Bearer TOKEN`` on every path but the public ones (constant-time)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.expected is None or scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        # compare_digest on bytes of different lengths still takes time independent of the content.
        if not hmac.compare_digest(given, self.expected):
            message = "a bearer token is required" if not given else "the bearer token is not valid"
            await _send_error(send, 401, "unauthorized", message, [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Caps request bodies at ``max_body`` bytes → 413 ``payload_too_large``."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body
        message = f"the request body exceeds the limit of {limit} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    # Refuse before reading a byte; uvicorn discards the unread body.
                    await _send_error(send, 413, "payload_too_large", message)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    # Raised inside the handler's body read; the app's error handler answers 413.
                    raise PayloadTooLargeError(message)
            return msg

        await self.app(scope, limited_receive, send)
