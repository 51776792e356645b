"""The web console at ``/ui``: static files shipped in this package, served by velo-server itself.

No build step and no CDN: ``static/`` holds plain HTML, CSS and framework-free JavaScript, read once
from the installed package (they are package data). Everything the console shows comes from the
HTTP API, called from the browser with the same bearer token as any other client.

Auth (docs/console.md): a browser cannot put a bearer token on a page navigation, so the *login
page* is public — ``/ui`` (the shell), ``boot.js`` (asks for the token, keeps it in sessionStorage)
and the stylesheet and icon. It carries no data and no console code. The console itself
(``/ui/app.js``) and every API call it makes require the token: ``boot.js`` fetches ``app.js`` with
``Authorization: Bearer`` and runs it from a blob URL, so an unauthenticated client gets the login
page and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from velo.grammar.keywords import FUNCTION_NAMES, KEYWORDS, TIME_UNITS, TYPE_NAMES

from ..errors import error_response

PREFIX = "/ui"

# Served without the token (the login page and what it needs to draw itself); auth.py adds these to
# its public paths. app.js is deliberately not here.
PUBLIC_PATHS = frozenset({PREFIX, f"{PREFIX}/", f"{PREFIX}/boot.js", f"{PREFIX}/console.css",
                          f"{PREFIX}/favicon.svg"})

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}

# blob: for app.js, which boot.js runs from a blob URL after fetching it with the token; no inline
# script or style anywhere, no other origin (the console must work offline).
_CSP = ("default-src 'none'; script-src 'self' blob:; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


def _words() -> bytes:
    """The SQL words the console's highlighter colours, from the grammar itself (never out of date)."""
    words = {"keywords": sorted(KEYWORDS), "types": sorted(TYPE_NAMES), "units": sorted(TIME_UNITS),
             "functions": sorted(FUNCTION_NAMES)}
    # Inside a <script type="application/json">: "</" must not end the element early.
    return orjson.dumps(words).replace(b"</", b"<\\/")


def _asset(body: bytes, name: str) -> _Asset:
    suffix = name[name.rfind("."):]
    return _Asset(body, _TYPES.get(suffix, "application/octet-stream"),
                  '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def load_assets(auth: bool) -> dict[str, _Asset]:
    """Every file of ``static/`` by name; ``index.html`` says whether the server asks for a token."""
    assets: dict[str, _Asset] = {}
    for entry in (resources.files(__name__) / "static").iterdir():
        if entry.is_file() and not entry.name.startswith("."):
            body = entry.read_bytes()
            if entry.name == "index.html":
                body = body.replace(b"__VELO_AUTH__", b"1" if auth else b"0")
                body = body.replace(b"__VELO_WORDS__", _words())
            assets[entry.name] = _asset(body, entry.name)
    return assets


class Console:
    """The ``/ui`` routes over the assets loaded at start."""

    def __init__(self, auth: bool) -> None:
        self.assets = load_assets(auth)

    def _serve(self, request: Request, name: str) -> Response:
        asset = self.assets.get(name)
        if asset is None:
            return error_response(404, "not_found", f"no console file {name!r}")
        headers = {
            # Revalidate every time (cheap: 304 on a matching ETag), so an upgraded server never
            # runs a stale console against a newer API.
            "cache-control": "no-cache",
            "etag": asset.etag,
            "x-content-type-options": "nosniff",
            "content-security-policy": _CSP,
            "referrer-policy": "no-referrer",
        }
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    async def index(self, request: Request) -> Response:
        return self._serve(request, "index.html")

    async def file(self, request: Request) -> Response:
        return self._serve(request, str(request.path_params["file"]))

    def routes(self) -> list[Route]:
        """``/ui`` and ``/ui/`` (the page), ``/ui/{file}`` (one flat folder: no paths, no traversal)."""
        return [
            Route(PREFIX, self.index, methods=["GET", "HEAD"], name="console"),
            Route(f"{PREFIX}/", self.index, methods=["GET", "HEAD"], name="console/"),
            Route(PREFIX + "/{file}", self.file, methods=["GET", "HEAD"], name="console file"),
        ]
