"""Security: the bearer-token matrix over every route, HTTPS, the body cap, data-dir confinement,
loopback binding, and no stack trace in any response (a 500 carries an id the log has)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.requests import Request
from starlette.routing import Route
from velo.server.api.app import create_app
from velo.server.api.routes import ENDPOINTS
from velo.server.connectors.embedded_kafka import free_port
from velo.server.settings import Settings

from tests.conftest import ServerProcess
from tests.server.api.conftest import TOKEN, TlsServerProcess, assert_error


def _concrete(path: str) -> str:
    return re.sub(r"{\w+}", "nope", path)


@pytest.mark.parametrize("auth", ["none", "wrong", "right"])
async def test_auth_matrix(token_server: ServerProcess, auth: str) -> None:
    headers = {"none": {}, "wrong": {"Authorization": "Bearer wrong"},
               "right": {"Authorization": f"Bearer {TOKEN}"}}[auth]
    async with httpx.AsyncClient(base_url=token_server.url, timeout=30, headers=headers) as client:
        for ep in ENDPOINTS:
            kwargs = {"json": {"sql": "SHOW JOBS;"}} if ep.body is not None else {}
            if ep.path == "/query":
                kwargs = {"json": {"sql": "SELECT x FROM no_such_topic_auth;"}}
            resp = await client.request(ep.method, _concrete(ep.path), **kwargs)  # type: ignore[arg-type]
            where = f"{ep.method} {ep.path} with {auth} token"
            if ep.public or auth == "right":
                assert resp.status_code != 401, where
                assert resp.status_code < 500 or resp.status_code in (501, 503), f"{where}: {resp.text}"
            else:
                error = assert_error(resp, 401, "unauthorized")
                assert resp.headers["www-authenticate"] == "Bearer", where
                assert TOKEN not in str(error)


async def test_token_is_not_accepted_in_other_forms(token_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=token_server.url) as client:
        for value in (TOKEN, f"bearer{TOKEN}", f"Basic {TOKEN}", f"Bearer  {TOKEN}", f"Bearer {TOKEN}x"):
            assert_error(await client.get("/jobs", headers={"Authorization": value}), 401, "unauthorized")
        assert (await client.get("/info", headers={"Authorization": f"Bearer {TOKEN}"})).json()["auth"] is True


async def test_https_with_a_self_signed_certificate(start_tls_server: Callable[..., TlsServerProcess]) -> None:
    server = start_tls_server("--auth-token", TOKEN)
    async with httpx.AsyncClient(base_url=server.url, verify=server.ssl_context, timeout=30) as client:
        health = await client.get("/health")
        assert health.status_code == 200 and health.url.scheme == "https"
        info = await client.get("/info", headers={"Authorization": f"Bearer {TOKEN}"})
        assert info.json()["tls"] is True
    with pytest.raises(httpx.TransportError):  # not trusted without the test CA
        httpx.get(f"{server.url}/health", timeout=5)
    with pytest.raises(httpx.TransportError):  # and no plain HTTP on that port
        httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=5)


async def test_body_cap(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--max-body", "1000")
    big = b'{"sql": "' + b"x" * 2000 + b'"}'
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert_error(await client.post("/statements", content=big), 413, "payload_too_large")

        async def chunks():  # no Content-Length: the cap holds while reading
            for _ in range(20):
                yield b"x" * 100

        assert_error(await client.post("/jobs", content=chunks()), 413, "payload_too_large")
        assert_error(await client.post("/query", content=big), 413, "payload_too_large")
        small = await client.post("/statements", json={"sql": "SHOW JOBS;"})
        assert small.status_code == 200


async def test_body_cap_refuses_before_reading(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--max-body", "1000")
    # Declare 100 MB and send none of it: the answer must come at once, not after a read.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /statements HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000000\r\n\r\n")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status.startswith(b"HTTP/1.1 413")


async def test_paths_outside_the_data_dir_are_refused(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        for value in ("/etc/passwd", "../outside.jsonl", "a/../../b.csv"):
            props = {"path": value}
            resp = await client.post("/statements", json={"sql": "SHOW JOBS;", "properties": props})
            assert "data directory" in str(assert_error(resp, 400, "bad_request")["message"])
            resp = await client.post("/query", json={"sql": "SELECT 1 FROM t;", "properties": {"file.path": value}})
            assert_error(resp, 400, "bad_request")
        ok = await client.post("/statements", json={"sql": "SHOW JOBS;", "properties": {"path": "in/data.jsonl"}})
        assert ok.status_code == 200


def test_loopback_only_without_a_token_and_says_so(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    first = server.log_path.read_text().splitlines()[0]
    assert "127.0.0.1 only" in first and "--auth-token" in first
    # Not reachable on another local address (only loopback is bound).
    other = _non_loopback_address()
    if other is not None:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://{other}:{server.port}/health", timeout=2)


def test_explicit_host_without_token_warns(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--host", "0.0.0.0")
    first = server.log_path.read_text().splitlines()[0]
    assert "WARNING" in first and "0.0.0.0" in first


def _non_loopback_address() -> str | None:
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))
        address: str = s.getsockname()[0]
        return None if address.startswith("127.") else address
    return None


async def test_a_500_carries_an_error_id_the_log_has(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected exception: the body has only an id; the log has the id and the traceback."""
    app = create_app(Settings(port=free_port(), data_dir=tmp_path, brokers="127.0.0.1:1"))

    async def boom(request: Request) -> None:
        raise RuntimeError("secret internals at /srv/velo/x.py")

    app.router.routes.append(Route("/boom", boom))
    from velo.server.api.table import Endpoint

    async def boom2(request: Request, body: object) -> None:
        raise KeyError("more internals")

    app.router.routes.append(Endpoint("GET", "/boom2", boom2, "test", None).route())
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        with caplog.at_level(logging.ERROR, logger="velo.api"):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{config.port}") as client:
                for path in ("/boom", "/boom2"):
                    resp = await client.get(path)
                    error = assert_error(resp, 500, "internal")
                    assert "internals" not in resp.text
                    error_id = str(error["error_id"])
                    assert error_id in str(error["message"])
                    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)
    finally:
        server.should_exit = True
        await task
