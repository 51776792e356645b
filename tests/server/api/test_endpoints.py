"""Every endpoint of http-api.md and every error code, against a real velo-server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import ServerProcess
from tests.kafka_helpers import create_topic, produce
from tests.server.api.conftest import assert_error


def job_sql(name: str, source: str) -> str:
    return f"START JOB {name} AS SELECT id FROM {source} WHERE id > 1 WITH ('output.topic' = '{name}_out');"


@pytest.fixture
async def source(broker: str, topic_name: Callable[[str], str]) -> str:
    name = topic_name("api")
    await create_topic(broker, name, 2)
    return name


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
        info = (await client.get("/info")).json()
        assert (info["max_jobs"], info["live_jobs"]) == (2, 2)

        stopped = await client.delete("/jobs/one")
        assert stopped.status_code == 200 and stopped.json()["state"] == "STOPPED"
        assert "records_in" in stopped.json()["metrics"]  # the final metrics
        assert_error(await client.get("/jobs/one"), 404, "not_found")
        assert_error(await client.delete("/jobs/one"), 404, "not_found")
        assert (await client.post("/jobs", json={"sql": job_sql("three", source)})).status_code == 201
        forced = await client.delete("/jobs/three", params={"force": "true"})
        assert forced.status_code == 200 and forced.json()["state"] == "STOPPED"


async def test_pause_resume_and_wrong_state(server_url: str, source: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        assert (await client.post("/jobs", json={"sql": job_sql("pr", source)})).status_code == 201
        assert_error(await client.post("/jobs/pr/resume"), 409, "invalid_state")
        paused = await client.post("/jobs/pr/pause")
        assert paused.status_code == 200 and paused.json()["state"] == "PAUSED"
        assert_error(await client.post("/jobs/pr/pause"), 409, "invalid_state")
        resumed = await client.post("/jobs/pr/resume")
        assert resumed.status_code == 200 and resumed.json()["state"] == "RUNNING"
        for path in ("/jobs/nope/pause", "/jobs/nope/resume", "/jobs/nope"):
            assert_error(await client.post(path) if "/p" in path or "/r" in path else await client.get(path),
                         404, "not_found")
        await client.delete("/jobs/pr")


async def test_invalid_sql_gets_line_column_and_expected(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        resp = await client.post("/jobs", json={"sql": "START JOB x AS\nSELECT a,\n  FROM t;"})
        error = assert_error(resp, 400, "sql_syntax")
        assert (error["line"], error["column"]) == (3, 3)
        assert error["expected"]
        assert_error(await client.post("/jobs", json={"sql": "START JOB x AS SELECT a FROM no_such_src_q;"}),
                     400, "sql_validation")
        assert_error(await client.post("/jobs", json={"sql": "SHOW JOBS;"}), 400, "bad_request")


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
        assert not any(row[0] == "s1" for row in results[3]["rows"])

        failed = await client.post("/statements", json={"sql": "SHOW JOBS; STOP JOB nope;"})
        error = assert_error(failed, 404, "not_found")
        assert error["statement"] == 2
        error = assert_error(await client.post("/statements", json={"sql": "SHOW JOBS;\nSELEC x;"}), 400,
                             "sql_syntax")
        assert error["line"] == 2
        dup = f"{job_sql('s2', source)} {job_sql('s2', source)}"
        assert assert_error(await client.post("/statements", json={"sql": dup}), 409, "duplicate_job")[
            "statement"] == 2
        await client.delete("/jobs/s2")

        with_vars = await client.post("/statements", json={
            "sql": "START JOB v1 AS SELECT id FROM ${src} WITH ('output.topic' = '${out:v1_out}');",
            "variables": {"src": source}})
        assert with_vars.status_code == 200, with_vars.text
        assert with_vars.json()["results"][0]["job"]["sink"] == "v1_out"
        missing = await client.post("/statements", json={"sql": "STOP JOB ${nope};", "variables": {"x": "1"}})
        assert_error(missing, 400, "sql_validation")
        await client.delete("/jobs/v1")


async def test_statements_job_limit(start_server: Callable[..., ServerProcess], source: str) -> None:
    server = start_server("--max-jobs", "1")
    sql = f"{job_sql('l1', source)} {job_sql('l2', source)}"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        error = assert_error(await client.post("/statements", json={"sql": sql}), 429, "job_limit")
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
    assert header["query_id"].startswith("q-")
    rows = [line["row"] for line in lines[1:-1]]
    assert len(rows) == 5 and all(r[1] == "A" for r in rows)
    assert lines[-1] == {"done": {"rows": 5, "reason": "limit"}}


async def test_print_streams_a_topic(server_url: str, source: str, broker: str) -> None:
    await produce(broker, source, [{"id": i} for i in range(3)])
    body = {"sql": f"PRINT {source} FROM BEGINNING LIMIT 3;"}
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client, \
            client.stream("POST", "/query", json=body) as resp:
        assert resp.status_code == 200, await resp.aread()
        lines = [orjson.loads(line) async for line in resp.aiter_lines() if line]
    assert lines[-1]["done"] == {"rows": 3, "reason": "limit"}


async def test_query_errors_before_the_stream(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        assert_error(await client.post("/query", json={"sql": "SELECT * FROM no_such_topic_x;"}),
                     400, "sql_validation")
        assert_error(await client.post("/query", json={"sql": "SHOW JOBS;"}), 400, "bad_request")
        assert_error(await client.post("/query", content=b"{not json"), 400, "bad_request")
        assert_error(await client.post("/query", json={"sql": "SELEC 1"}), 400, "sql_syntax")
        assert_error(await client.post("/query", json={"sql": "SELECT 1", "limit": -1}), 400, "bad_request")
        assert_error(await client.post("/query", json={"sql": "x", "bogus": 1}), 400, "bad_request")
        assert_error(await client.post("/query", json=["not", "an", "object"]), 400, "bad_request")
        # The job checks run for queries too, placed at the WITH property.
        bad = "SELECT * FROM no_such_topic_x WITH ('auto.offset.reset' = 'earlist');"
        error = assert_error(await client.post("/query", json={"sql": bad}), 400, "sql_validation")
        assert error["column"] == 37 and error["suggestions"] == ["earliest"]


async def test_cancel_query(server_url: str, source: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        assert_error(await client.delete("/queries/q-nope"), 404, "not_found")
        async with client.stream("POST", "/query", json={"sql": f"SELECT id FROM {source};"}) as resp:
            lines = resp.aiter_lines()
            header = orjson.loads(await anext(lines))["header"]
            listed = (await client.get("/queries")).json()["queries"]
            assert [q["id"] for q in listed] == [header["query_id"]]
            assert {"id", "sql", "client", "started", "rows_sent"} <= set(listed[0])
            assert (await client.delete(f"/queries/{header['query_id']}")).status_code == 204
            rest = [orjson.loads(line) async for line in lines if line]
        assert rest[-1] == {"done": {"rows": 0, "reason": "cancelled"}}
        assert (await client.get("/queries")).json()["queries"] == []


async def test_health_ready_info(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        health = (await client.get("/health")).json()
        assert health["status"] == "ok" and health["kafka"]["reachable"] is True
        assert {"version", "uptime_s", "jobs"} <= set(health)
        ready = await client.get("/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        info = (await client.get("/info")).json()
        assert info["auth"] is False and info["tls"] is False and info["max_body"] == 1 << 20
        assert {"version", "brokers", "max_jobs", "data_dir", "uptime_s"} <= set(info)


async def test_topics_have_partitions_and_end_offsets(server_url: str, broker: str,
                                                      topic_name: Callable[[str], str]) -> None:
    name = topic_name("offs")
    await create_topic(broker, name, 3)
    await produce(broker, name, [{"i": i} for i in range(10)], keys=[f"k{i}".encode() for i in range(10)])
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        resp = await client.get("/topics")
    assert resp.status_code == 200
    topic = next(t for t in resp.json()["topics"] if t["name"] == name)
    assert [p["partition"] for p in topic["partitions"]] == [0, 1, 2]
    assert sum(p["end_offset"] for p in topic["partitions"]) == topic["end_offset"] == 10


async def test_catalog(server_url: str, source: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        assert (await client.post("/jobs", json={"sql": job_sql("cat", source)})).status_code == 201
        declare = ("CREATE STREAM decl_s (symbol STRING, price DOUBLE) WITH ('kafka_topic' = 'decl_topic'); "
                   "CREATE TABLE decl_t (symbol STRING PRIMARY KEY, name STRING) WITH ('kafka_topic' = 'decl_tt');")
        declared = await client.post("/statements", json={"sql": declare})
        assert declared.status_code == 200, declared.text
        catalog = (await client.get("/catalog")).json()
        await client.delete("/jobs/cat")
    assert source in catalog["topics"] and "cat" in catalog["jobs"]
    stream = next(s for s in catalog["streams"] if s["name"] == "cat")
    assert stream["topic"] == "cat_out" and [c["name"] for c in stream["columns"]] == ["id"]
    decl = next(s for s in catalog["streams"] if s["name"] == "decl_s")
    assert decl["topic"] == "decl_topic" and decl["columns"] == [{"name": "symbol", "type": "STRING"},
                                                                  {"name": "price", "type": "DOUBLE"}]
    table = next(t for t in catalog["tables"] if t["name"] == "decl_t")
    assert table["kind"] == "table" and [c["name"] for c in table["columns"]] == ["symbol", "name"]
    assert catalog["functions"] and all(f["signature"] for f in catalog["functions"])
    assert isinstance(catalog["tables"], list)


async def test_apps(server_url: str, source: str) -> None:
    app_text = f"-- @app: demo_app\n{job_sql('app_a', source)}\n{job_sql('app_b', source)}\n"
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        deployed = await client.post("/apps", json={"sql": app_text})
        assert deployed.status_code == 201, deployed.text
        assert deployed.json()["name"] == "demo_app"
        assert sorted(j["name"] for j in deployed.json()["jobs"]) == ["app_a", "app_b"]
        assert all(j["app"] == "demo_app" for j in deployed.json()["jobs"])
        assert_error(await client.post("/apps", json={"sql": app_text}), 409, "duplicate_job")
        shown = await client.get("/apps/demo_app")
        assert shown.status_code == 200 and len(shown.json()["jobs"]) == 2
        assert "demo_app" in [a["name"] for a in (await client.get("/apps")).json()["apps"]]
        stopped = await client.delete("/apps/demo_app")
        assert stopped.status_code == 200
        assert all(j["state"] == "STOPPED" for j in stopped.json()["jobs"])
        assert_error(await client.get("/apps/demo_app"), 404, "not_found")

        # Raw text/plain, the name from the query string.
        as_text = await client.post("/apps", params={"name": "text_app"}, content=job_sql("app_t", source),
                                    headers={"content-type": "text/plain"})
        assert as_text.status_code == 201, as_text.text
        assert as_text.json()["name"] == "text_app"
        await client.delete("/apps/text_app")

        # All-or-nothing: the second statement is wrong, so no job of the app runs; the error names it.
        broken = f"-- @app: broken_app\n{job_sql('ok_job', source)}\nSTART JOB bad AS SELECT FROM;\n"
        error = assert_error(await client.post("/apps", json={"sql": broken}), 400, "sql_syntax")
        assert error["line"] == 3
        assert "ok_job" not in [j["name"] for j in (await client.get("/jobs")).json()["jobs"]]

        assert_error(await client.post("/apps", json={}), 400, "bad_request")
        assert_error(await client.get("/apps/no_such_app"), 404, "not_found")
        assert_error(await client.delete("/apps/no_such_app"), 404, "not_found")


async def test_unknown_routes_and_methods(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        assert_error(await client.get("/nope"), 404, "not_found")
        assert_error(await client.put("/jobs"), 405, "bad_request")
        resp = await client.get("/metrics", follow_redirects=False)
        assert resp.status_code == 200  # a plain route, no redirect
        assert_error(await client.get("/metrics/"), 404, "not_found")


async def test_openapi_covers_every_endpoint(server_url: str) -> None:
    from velo.server.api.routes import ENDPOINTS

    doc = httpx.get(f"{server_url}/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for ep in ENDPOINTS:
        op = doc["paths"][ep.path][ep.method.lower()]
        assert str(ep.status) in op["responses"]
        if ep.body is not None:
            assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(ep.body.__name__)


async def test_kafka_unavailable(no_broker_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=no_broker_server.url, timeout=30) as client:
        health = await client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        assert_error(await client.get("/ready"), 503, "kafka_unavailable")
        assert_error(await client.get("/topics"), 503, "kafka_unavailable")
        assert_error(await client.post("/jobs", json={"sql": job_sql("k", "src")}), 503, "kafka_unavailable")
        assert_error(await client.post("/query", json={"sql": "SELECT id FROM src;"}), 503,
                     "kafka_unavailable")
        catalog = await client.get("/catalog")
        assert catalog.status_code == 200 and catalog.json()["topics"] == []


async def test_restart_restores_jobs_and_no_auto_deploy(broker: str, source: str, tmp_path: Path) -> None:
    first = ServerProcess(broker, tmp_path)
    try:
        assert httpx.post(f"{first.url}/jobs", json={"sql": job_sql("kept", source)}, timeout=30).status_code == 201
        assert httpx.post(f"{first.url}/jobs", json={"sql": job_sql("held", source)}, timeout=30).status_code == 201
        assert httpx.post(f"{first.url}/jobs/held/pause", timeout=30).json()["state"] == "PAUSED"
    finally:
        first.stop()
    second = ServerProcess(broker, tmp_path)
    try:
        states = {j["name"]: j["state"] for j in httpx.get(f"{second.url}/jobs").json()["jobs"]}
        assert states == {"kept": "RUNNING", "held": "PAUSED"}
        assert httpx.get(f"{second.url}/ready").status_code == 200
    finally:
        second.stop()
    third = ServerProcess(broker, tmp_path, "--no-auto-deploy")
    try:
        states = {j["name"]: j["state"] for j in httpx.get(f"{third.url}/jobs").json()["jobs"]}
        assert states == {"kept": "STOPPED", "held": "STOPPED"}
        assert httpx.post(f"{third.url}/jobs/kept/resume", timeout=30).json()["state"] == "RUNNING"
    finally:
        third.stop()
