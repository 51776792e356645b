"""The HTTP API against a real velo-server process on loopback (and the real broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import orjson
import pytest

from tests.conftest import ServerProcess
from tests.kafka_helpers import create_topic, produce


def job_sql(name: str, source: str) -> str:
    return f"START JOB {name} AS SELECT id FROM {source} WHERE id > 1 WITH ('output.topic' = '{name}_out');"


@pytest.fixture
async def source(broker: str, topic_name: Callable[[str], str]) -> str:
    name = topic_name("api")
    await create_topic(broker, name, 2)
    return name


def assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    error: dict[str, object] = resp.json()["error"]
    assert error["code"] == code
    assert "Traceback" not in resp.text
    return error


async def test_job_lifecycle_over_http(start_server: Callable[..., ServerProcess], source: str) -> None:
    server = start_server("--max-jobs", "2")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        created = await client.post("/jobs", json={"sql": job_sql("one", source)})
        assert created.status_code == 201
        assert created.json()["state"] == "RUNNING"
        assert [j["name"] for j in (await client.get("/jobs")).json()["jobs"]] == ["one"]

        detail = (await client.get("/jobs/one")).json()
        assert [h["state"] for h in detail["history"]] == ["STARTING", "RUNNING"]
        assert "def encode(batch):" in detail["generated_code"]

        assert_error(await client.post("/jobs", json={"sql": job_sql("one", source)}), 409, "duplicate_job")
        await client.post("/jobs", json={"sql": job_sql("two", source)})
        error = assert_error(await client.post("/jobs", json={"sql": job_sql("three", source)}), 429, "job_limit")
        assert "2" in str(error["message"])

        stopped = await client.delete("/jobs/one")
        assert stopped.status_code == 200 and stopped.json()["state"] == "STOPPED"
        assert_error(await client.get("/jobs/one"), 404, "not_found")
        assert (await client.post("/jobs", json={"sql": job_sql("three", source)})).status_code == 201


async def test_invalid_sql_gets_line_column_and_expected(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        resp = await client.post("/jobs", json={"sql": "START JOB x AS\nSELECT a,\n  FROM t;"})
        error = assert_error(resp, 400, "sql_syntax")
        assert (error["line"], error["column"]) == (3, 3)
        assert error["expected"]


async def test_ten_clients_deploy_concurrently(start_server: Callable[..., ServerProcess], source: str) -> None:
    server = start_server("--max-jobs", "6")

    async def deploy(i: int) -> int:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:  # one client each
            return (await client.post("/jobs", json={"sql": job_sql(f"c{i}", source)})).status_code

    codes = await asyncio.gather(*(deploy(i) for i in range(10)))
    assert sorted(codes) == [201] * 6 + [429] * 4
    jobs = httpx.get(f"{server.url}/jobs").json()["jobs"]
    assert len(jobs) == 6 and all(j["state"] == "RUNNING" for j in jobs)


async def test_statements_show_and_stop(server_url: str, source: str) -> None:
    sql = f"{job_sql('s1', source)}\nSHOW JOBS;\nSTOP JOB s1;\nSHOW JOBS;"
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        resp = await client.post("/statements", json={"sql": sql})
        assert resp.status_code == 200, resp.text
        results = resp.json()["results"]
        assert [r["type"] for r in results] == ["job", "rows", "message", "rows"]
        assert [r["statement"] for r in results] == [1, 2, 3, 4]
        assert results[1]["rows"][0][:2] == ["s1", "RUNNING"]
        assert results[3]["rows"] == []

        failed = await client.post("/statements", json={"sql": "SHOW JOBS; STOP JOB nope;"})
        error = assert_error(failed, 404, "not_found")
        assert error["statement"] == 2


async def test_query_streams_rows_then_done(server_url: str, source: str, broker: str) -> None:
    await produce(broker, source, [{"id": i, "sym": "A" if i % 2 else "B"} for i in range(20)])
    body = {"sql": f"SELECT id, sym FROM {source} WHERE sym = 'A' LIMIT 5;",
            "properties": {"auto.offset.reset": "earliest"}}
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client, \
            client.stream("POST", "/query", json=body) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        lines = [orjson.loads(line) async for line in resp.aiter_lines() if line]
    header = lines[0]["header"]
    assert [c["name"] for c in header["columns"]] == ["id", "sym"]
    rows = [line["row"] for line in lines[1:-1]]
    assert len(rows) == 5 and all(r[1] == "A" for r in rows)
    assert lines[-1] == {"done": {"rows": 5, "reason": "limit"}}


async def test_query_disconnect_releases_the_query(server_url: str, source: str) -> None:
    body = {"sql": f"SELECT * FROM {source};"}
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        async with client.stream("POST", "/query", json=body) as resp:
            assert resp.status_code == 200
            assert len((await client.get("/queries")).json()["queries"]) == 1
        # The client is gone: the server must release the query within a second.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while (await client.get("/queries")).json()["queries"]:
            assert loop.time() < deadline, "query still running 1 s after the client left"
            await asyncio.sleep(0.05)


async def test_query_errors_before_the_stream(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        assert_error(await client.post("/query", json={"sql": "SELECT * FROM no_such_topic_x;"}),
                     400, "sql_validation")
        assert_error(await client.post("/query", json={"sql": "SHOW JOBS;"}), 400, "bad_request")
        assert_error(await client.post("/query", content=b"{not json"), 400, "bad_request")
        assert_error(await client.post("/query", json={"sql": "SELEC 1"}), 400, "sql_syntax")


async def test_metrics_and_health(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        health = (await client.get("/health")).json()
        assert health["status"] == "ok" and health["kafka"]["reachable"] is True
        text = (await client.get("/metrics")).text
        for name in ("velo_jobs", "velo_queries_active", "velo_http_requests_total"):
            assert name in text
