"""Streamed query results over a real socket: rows while the query runs, heartbeats, disconnects,
cancellation and a clean end of every stream on server shutdown."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ServerProcess
from tests.kafka_helpers import create_topic, produce, wait_until


@pytest.fixture
async def source(broker: str, topic_name: Callable[[str], str]) -> str:
    name = topic_name("stream")
    await create_topic(broker, name, 2)
    return name


async def _lines(resp: httpx.Response) -> Any:
    async for line in resp.aiter_lines():
        if line:
            yield orjson.loads(line)


async def test_rows_arrive_while_the_query_runs(server_url: str, source: str, broker: str) -> None:
    body = {"sql": f"SELECT id FROM {source} WHERE id >= 0;"}
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client, \
            client.stream("POST", "/query", json=body) as resp:
        events = _lines(resp)
        header = (await anext(events))["header"]
        assert header["columns"] == [{"name": "id", "type": header["columns"][0]["type"]}]
        # The header comes after the query pinned its 'latest' start: everything produced from now on
        # must arrive, with no settling time.
        seen: list[int] = []
        for wave in range(3):  # each wave is produced only after the previous one was read
            await produce(broker, source, [{"id": wave * 10 + i} for i in range(5)])
            while len(seen) < (wave + 1) * 5:
                event = await asyncio.wait_for(anext(events), 10)
                if "row" in event:
                    seen.append(event["row"][0])
        assert sorted(seen) == [w * 10 + i for w in range(3) for i in range(5)]
        await client.delete(f"/queries/{header['query_id']}")
        rest = [e async for e in events]
    assert rest[-1]["done"]["reason"] == "cancelled" and rest[-1]["done"]["rows"] == 15


async def test_aggregate_changes_carry_op_and_key(server_url: str, source: str, broker: str) -> None:
    await produce(broker, source, [{"sym": "A" if i % 2 else "B", "p": i} for i in range(6)])
    body = {"sql": f"SELECT sym, COUNT(*) AS n FROM {source} GROUP BY sym EMIT CHANGES;",
            "properties": {"auto.offset.reset": "earliest"}}
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client, \
            client.stream("POST", "/query", json=body) as resp:
        events = _lines(resp)
        header = (await anext(events))["header"]
        assert header["emit"] == "changes"
        latest: dict[str, int] = {}
        while latest != {"A": 3, "B": 3}:
            event = await asyncio.wait_for(anext(events), 10)
            assert event["op"] in ("insert", "upsert") and event["key"] == [event["row"][0]]
            latest[event["row"][0]] = event["row"][1]
        await client.delete(f"/queries/{header['query_id']}")
        assert [e async for e in events][-1]["done"]["reason"] == "cancelled"


async def test_heartbeat_after_five_seconds_of_silence(server_url: str, source: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client, \
            client.stream("POST", "/query", json={"sql": f"SELECT id FROM {source};"}) as resp:
        events = _lines(resp)
        assert "header" in await anext(events)
        started = time.monotonic()
        beat = await asyncio.wait_for(anext(events), 8)
        waited = time.monotonic() - started
    assert set(beat) == {"heartbeat"} and isinstance(beat["heartbeat"], int)
    assert abs(beat["heartbeat"] / 1000 - time.time()) < 10
    assert 4.0 <= waited <= 7.0


async def test_disconnect_releases_the_query_within_a_second(server_url: str, source: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        async with client.stream("POST", "/query", json={"sql": f"SELECT * FROM {source};"}) as resp:
            assert resp.status_code == 200
            assert len((await client.get("/queries")).json()["queries"]) == 1
        # The client is gone: the server must release the query within a second.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while (await client.get("/queries")).json()["queries"]:
            assert loop.time() < deadline, "query still running 1 s after the client left"
            await asyncio.sleep(0.05)


async def test_shutdown_ends_twenty_open_streams(start_server: Callable[..., ServerProcess], source: str,
                                                 broker: str) -> None:
    server = start_server()
    body = {"sql": f"SELECT id FROM {source};"}
    opened = asyncio.Event()
    ready: list[int] = []
    got_row: list[int] = []

    async def client(i: int) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http, \
                http.stream("POST", "/query", json=body) as resp:
            assert resp.status_code == 200
            out: list[dict[str, Any]] = []
            async for event in _lines(resp):
                out.append(event)
                if "header" in event:
                    ready.append(i)
                    if len(ready) == 20:
                        opened.set()
                if "row" in event:
                    got_row.append(i)
            return out

    tasks = [asyncio.create_task(client(i)) for i in range(20)]
    await asyncio.wait_for(opened.wait(), 30)
    await produce(broker, source, [{"id": 1}])  # a row on every stream before the shutdown
    await wait_until(lambda: len(got_row) == 20, message="the row on all 20 streams")
    server.proc.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    results = await asyncio.wait_for(asyncio.gather(*tasks), 15)
    exit_code = await asyncio.to_thread(server.proc.wait, 15)
    took = time.monotonic() - stopped_at
    for events in results:
        assert events[-1] == {"done": {"rows": events[-1]["done"]["rows"], "reason": "shutdown"}}
        assert events[-1]["done"]["rows"] == sum(1 for e in events if "row" in e)
    assert took < 10, f"server took {took:.1f}s to exit"  # the grace period
    assert exit_code in (0, -signal.SIGTERM)


async def test_a_failure_after_the_first_byte_is_the_last_line() -> None:
    """In-process uvicorn on loopback: an event stream that raises ends with an ``error`` line."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route
    from velo.server.api.streaming import NDJSONStream
    from velo.server.connectors.embedded_kafka import free_port
    from velo.server.errors import KafkaUnavailableError

    async def events(fail: Exception) -> Any:
        yield {"header": {"query_id": "q-x", "columns": [], "emit": "none"}}
        yield {"row": [1]}
        raise fail

    async def known(request: Request) -> NDJSONStream:
        return NDJSONStream(events(KafkaUnavailableError("broker went away")))

    async def bug(request: Request) -> NDJSONStream:
        return NDJSONStream(events(RuntimeError("secret internals")))

    import uvicorn

    app = Starlette(routes=[Route("/known", known), Route("/bug", bug)])
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{config.port}") as client:
            lines = [orjson.loads(x) for x in (await client.get("/known")).text.splitlines()]
            assert lines[-1] == {"error": {"code": "kafka_unavailable", "message": "broker went away"}}
            text = (await client.get("/bug")).text
            last = orjson.loads(text.splitlines()[-1])["error"]
            assert last["code"] == "internal" and last["error_id"] in last["message"]
            assert "secret" not in text
    finally:
        server.should_exit = True
        await task
