"""The HTTP client: error decoding, NDJSON events, bearer token, and cancelling a live stream."""

from __future__ import annotations

import time

import httpx
import pytest
from velo.cli.client import (
    Done,
    Header,
    Heartbeat,
    Row,
    ServerUnreachable,
    StreamFailed,
    VeloClient,
    VeloError,
    host_port,
    normalize_url,
    parse_event,
)

from tests.cli.fakeserver import FakeServer


def test_parse_events() -> None:
    h = parse_event(b'{"header": {"query_id": "q-1", "columns": [{"name": "a", "type": "INT"}], "emit": "changes"}}')
    assert isinstance(h, Header) and h.query_id == "q-1" and h.columns[0].type == "INT" and h.emit == "changes"
    r = parse_event('{"row": [1, "x"], "op": "upsert", "key": ["x"]}')
    assert r == Row([1, "x"], "upsert", ["x"])
    assert parse_event('{"heartbeat": 5}') == Heartbeat(5)
    assert parse_event('{"done": {"rows": 3, "reason": "limit"}}') == Done(3, "limit")
    failed = parse_event('{"error": {"code": "internal", "message": "boom"}}')
    assert isinstance(failed, StreamFailed) and failed.error.code == "internal"
    assert parse_event("") is None
    assert parse_event('{"future": 1}') is None  # unknown lines are skipped, not fatal
    bad = parse_event("{not json")
    assert isinstance(bad, StreamFailed) and bad.error.code == "bad_response"


def test_error_body_decoding() -> None:
    body = {
        "error": {"code": "sql_syntax", "message": "m", "line": 2, "column": 5, "expected": ["FROM"], "statement": 1}
    }
    err = VeloError.from_body(body, 400)
    assert (err.code, err.line, err.column, err.expected, err.statement, err.status) == (
        "sql_syntax", 2, 5, ["FROM"], 1, 400,
    )  # fmt: skip
    odd = VeloError.from_body({"detail": "nope"}, 502)
    assert odd.code == "http_502" and "nope" in odd.message


def test_urls() -> None:
    assert normalize_url("localhost:8080/") == "http://localhost:8080"
    assert host_port("http://127.0.0.1:8080") == "127.0.0.1:8080"
    assert host_port("https://velo.example.com") == "velo.example.com:443"


def test_non_json_error_pages_become_velo_errors() -> None:
    transport = httpx.MockTransport(lambda req: httpx.Response(502, text="<html>Bad gateway</html>"))
    with VeloClient("http://x", transport=transport) as c, pytest.raises(VeloError) as info:
        c.jobs()
    assert info.value.code == "http_502" and info.value.status == 502


def test_unreachable_is_typed() -> None:
    with VeloClient("http://127.0.0.1:1") as c, pytest.raises(ServerUnreachable):
        c.health()


def test_bearer_token_is_sent() -> None:
    server = FakeServer(token="s3cret").start()
    try:
        with VeloClient(server.url) as anon, pytest.raises(VeloError) as info:
            anon.jobs()
        assert info.value.code == "unauthorized"
        with VeloClient(server.url, token="s3cret") as c:
            assert c.jobs() == []
        assert server.state.seen_headers[-1]["authorization"] == "Bearer s3cret"
    finally:
        server.stop()


def test_admin_endpoints(fake_server: FakeServer) -> None:
    with VeloClient(fake_server.url) as c:
        app = c.deploy_app("CREATE STREAM app_a AS SELECT 1 FROM t;", variables={"X": "1"})
        assert [j["name"] for j in app["jobs"]] == ["app_a"]
        assert c.job("app_a")["state"] == "RUNNING"
        assert c.pause_job("app_a")["state"] == "PAUSED"
        assert c.resume_job("app_a")["state"] == "RUNNING"
        assert c.stop_job("app_a")["state"] == "STOPPED"
        with pytest.raises(VeloError) as info:
            c.job("app_a")
        assert info.value.code == "not_found"
        assert c.topics()[0]["name"] == "trades"
        assert "trades" in c.catalog()["topics"]
        assert c.health()["status"] == "ok"


def test_cancel_deletes_the_query_and_drops_the_connection(fake_server: FakeServer) -> None:
    state = fake_server.state
    state.disconnect_event.clear()
    with VeloClient(fake_server.url) as c:
        stream = c.open_query("SELECT * FROM endless", {}, None)
        first = stream.get(timeout=5)
        assert isinstance(first, Header)
        assert isinstance(stream.get(timeout=5), Row)
        started = time.monotonic()
        stream.cancel()
        stream.wait_closed(5)
        assert time.monotonic() - started < 3
        assert ("DELETE", f"/queries/{first.query_id}", None) in state.requests
        # Either signal reaches the server; the connection drop must be noticed promptly.
        assert state.disconnect_event.wait(5) or first.query_id in state.cancelled
        # Whatever was queued drains, then the stream reports it is over.
        while stream.get(timeout=1) is not None:
            pass
        assert stream.finished


def test_stream_of_unreachable_server_fails_typed() -> None:
    with VeloClient("http://127.0.0.1:1") as c:
        stream = c.open_query("SELECT 1", {}, None)
        event = stream.get(timeout=10)
        assert isinstance(event, StreamFailed) and isinstance(event.error, ServerUnreachable)
