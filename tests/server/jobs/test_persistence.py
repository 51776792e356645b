"""The registry: jobs survive a restart and a SIGKILL, in their states, with no input record lost."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import ServerProcess
from tests.kafka_helpers import consume, create_topic, produce, wait_until


def job_sql(name: str, source: str) -> str:
    return f"START JOB {name} AS SELECT n FROM {source} WITH ('output.topic' = '{source}_{name}');"


async def test_sigkill_mid_stream_then_restart(broker: str, tmp_path: Path, topic_name: Callable[[str], str]) -> None:
    source = topic_name("crash")
    await create_topic(broker, source, 2)
    server = ServerProcess(broker, tmp_path)
    try:
        for name in ("keep", "held"):
            assert httpx.post(f"{server.url}/jobs", json={"sql": job_sql(name, source)}).status_code == 201
        assert httpx.post(f"{server.url}/jobs/held/pause").json()["state"] == "PAUSED"
        await produce(broker, source, [{"n": i} for i in range(2000)])
        await wait_until(lambda: httpx.get(f"{server.url}/jobs/keep").json()["metrics"]["records_in"] > 0,
                         message="keep is processing")
        server.proc.send_signal(signal.SIGKILL)  # mid-stream, no goodbye
        server.proc.wait()
        await produce(broker, source, [{"n": i} for i in range(2000, 3000)])  # arrives while the server is down
    finally:
        server.stop()

    server = ServerProcess(broker, tmp_path)  # same data dir: the registry is read back
    try:
        jobs = {j["name"]: j for j in httpx.get(f"{server.url}/jobs").json()["jobs"]}
        assert {n: j["state"] for n, j in jobs.items()} == {"keep": "RUNNING", "held": "PAUSED"}
        out = await consume(broker, f"{source}_keep", 3000, timeout=60)
        assert set(r["n"] for r in out) == set(range(3000))  # every input record; repeats allowed
        assert httpx.post(f"{server.url}/jobs/held/resume").json()["state"] == "RUNNING"
        held = await consume(broker, f"{source}_held", 3000, timeout=60)
        assert set(r["n"] for r in held) == set(range(3000))
    finally:
        server.stop()


async def test_stopped_jobs_are_forgotten_and_no_auto_deploy_starts_nothing(
    broker: str, tmp_path: Path, topic_name: Callable[[str], str]
) -> None:
    source = topic_name("reg")
    await create_topic(broker, source, 1)
    server = ServerProcess(broker, tmp_path)
    try:
        for name in ("a", "b"):
            httpx.post(f"{server.url}/jobs", json={"sql": job_sql(name, source)}).raise_for_status()
        httpx.delete(f"{server.url}/jobs/b").raise_for_status()
    finally:
        server.stop()  # a clean stop (SIGTERM) keeps the jobs' desired states

    server = ServerProcess(broker, tmp_path, "--no-auto-deploy")
    try:
        jobs = httpx.get(f"{server.url}/jobs").json()["jobs"]
        assert [(j["name"], j["state"]) for j in jobs] == [("a", "STOPPED")]
        assert httpx.post(f"{server.url}/jobs/a/resume").json()["state"] == "RUNNING"
    finally:
        server.stop()


async def test_the_catalog_survives_a_restart(broker: str, tmp_path: Path, topic_name: Callable[[str], str]) -> None:
    topic = topic_name("cat")
    await create_topic(broker, topic, 1)
    declare = f"CREATE STREAM quotes (symbol STRING, bid DOUBLE) WITH (KAFKA_TOPIC = '{topic}', VALUE_FORMAT = 'JSON');"
    server = ServerProcess(broker, tmp_path)
    try:
        httpx.post(f"{server.url}/statements", json={"sql": declare}).raise_for_status()
    finally:
        server.stop()
    server = ServerProcess(broker, tmp_path)
    try:
        resp = httpx.post(f"{server.url}/statements", json={"sql": "DESCRIBE quotes;"})
        assert resp.status_code == 200, resp.text
        described = {row[0]: row[1] for row in resp.json()["results"][0]["rows"]}
        assert described["symbol"] == "STRING" and described["bid"] == "DOUBLE"
    finally:
        server.stop()
