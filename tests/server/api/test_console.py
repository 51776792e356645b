"""The console's files over HTTP (/ui), on real velo-server processes: what is public, what needs the
token, the headers that keep the page offline-safe, and that the files are the package's own.

The browser side is tests/e2e/test_console.py; here only the server's answers are checked.
"""

from __future__ import annotations

from importlib import resources

import httpx
import orjson
from velo.grammar.keywords import KEYWORDS
from velo.server.api.console import PUBLIC_PATHS

from tests.conftest import ServerProcess
from tests.server.api.conftest import TOKEN, assert_error

STATIC = resources.files("velo.server.api.console") / "static"


def test_the_page_and_its_assets_are_served_from_the_package(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=10) as client:
        for path in ("/ui", "/ui/"):
            page = client.get(path)
            assert page.status_code == 200
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert 'data-auth="0"' in page.text  # this server has no token
            assert "__VELO_" not in page.text  # every placeholder filled in
        for name, media in (("app.js", "text/javascript"), ("boot.js", "text/javascript"),
                            ("console.css", "text/css"), ("favicon.svg", "image/svg+xml")):
            resp = client.get(f"/ui/{name}")
            assert resp.status_code == 200, name
            assert resp.headers["content-type"].startswith(media)
            assert resp.content == (STATIC / name).read_bytes()


def test_the_highlighters_words_come_from_the_grammar(server_url: str) -> None:
    page = httpx.get(f"{server_url}/ui", timeout=10).text
    start = page.index('id="velo-words">') + len('id="velo-words">')
    words = orjson.loads(page[start:page.index("</script>", start)])
    assert set(words["keywords"]) == set(KEYWORDS)
    assert {"COUNT", "DATE_FORMAT"} <= set(words["functions"])


def test_console_responses_forbid_other_origins_and_revalidate(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=10) as client:
        resp = client.get("/ui/app.js")
        csp = resp.headers["content-security-policy"]
        # No CDN, no inline script: only this server's own files (and the blob boot.js makes of app.js).
        assert "script-src 'self' blob:" in csp and "default-src 'none'" in csp and "connect-src 'self'" in csp
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["cache-control"] == "no-cache"
        again = client.get("/ui/app.js", headers={"If-None-Match": resp.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_unknown_console_files_are_404_in_the_api_error_shape(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=10) as client:
        assert_error(client.get("/ui/nope.js"), 404, "not_found")
        assert_error(client.get("/ui/static/app.js"), 404, "not_found")  # one flat folder: no paths
        assert_error(client.get("/ui/..%2f..%2fpyproject.toml"), 404, "not_found")


def test_with_a_token_only_the_login_page_is_public(token_server: ServerProcess) -> None:
    with httpx.Client(base_url=token_server.url, timeout=10) as client:
        page = client.get("/ui")
        assert page.status_code == 200 and 'data-auth="1"' in page.text
        for path in sorted(PUBLIC_PATHS):
            assert client.get(path).status_code == 200, path
        # The console's code needs the token like every API route.
        assert_error(client.get("/ui/app.js"), 401, "unauthorized")
        assert_error(client.get("/ui/index.html"), 401, "unauthorized")
        ok = client.get("/ui/app.js", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.content == (STATIC / "app.js").read_bytes()
    # The public files carry no data and no console code: nothing of the API's views is in them.
    public = b"".join((STATIC / n).read_bytes() for n in ("index.html", "boot.js", "console.css"))
    assert b"/jobs/" not in public and b"POST" not in public
