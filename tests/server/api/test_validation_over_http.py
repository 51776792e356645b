"""Errors a new user meets over HTTP, with their line and column: a real velo-server and broker.

A job over an undeclared topic has its columns checked against the topic's records (every
partition's latest ones) when it is deployed, through ``POST /statements`` and ``POST /apps``, and so
does a transient query (``POST /query``); an empty topic defers the check. ``EXPLAIN`` of a query
places an unknown WITH key as a job does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import ServerProcess
from tests.kafka_helpers import create_topic
from tests.server.api.conftest import assert_error


async def produce_to(brokers: str, topic: str, by_partition: dict[int, list[dict[str, Any]]]) -> None:
    """Produce JSON values to the given partitions, in order, and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=brokers)
    await producer.start()
    try:
        for partition, values in by_partition.items():
            for value in values:
                await producer.send_and_wait(topic, orjson.dumps(value), partition=partition)
    finally:
        await producer.stop()


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server()


async def job_names(client: httpx.AsyncClient) -> list[str]:
    return [j["name"] for j in (await client.get("/jobs")).json()["jobs"]]


async def test_a_job_over_an_undeclared_topic_has_its_columns_checked_against_the_records(
        server: ServerProcess, broker: str, topic_name: Callable[[str], str]) -> None:
    topic = topic_name("undeclared")
    await create_topic(broker, topic, 3)
    # Partition 0's latest record lacks `note` (an earlier one has it); only partition 2 has `venue`.
    await produce_to(broker, topic, {
        0: [{"symbol": "A", "price": 1.5, "note": "first"}, {"symbol": "B", "price": 2.5}],
        2: [{"symbol": "C", "price": 3.5, "venue": "X"}],
    })
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        sql = f"CREATE STREAM typo_out AS\nSELECT symbol,\n  no_such_column FROM {topic};"
        error = assert_error(await client.post("/statements", json={"sql": sql}), 400, "sql_validation")
        assert "unknown column 'no_such_column'" in str(error["message"])
        assert (error["line"], error["column"]) == (3, 3)
        assert error["statement"] == 1

        close = f"START JOB close_out AS SELECT symbol, pirce FROM {topic} WHERE price > 1;"
        error = assert_error(await client.post("/statements", json={"sql": close}), 400, "sql_validation")
        assert (error["line"], error["column"]) == (1, 39)
        assert error["suggestions"] == ["price"]
        assert "did you mean price?" in str(error["message"])

        qualified = f"START JOB qual_out AS SELECT t.symbol, t.venu FROM {topic} t;"
        error = assert_error(await client.post("/statements", json={"sql": qualified}), 400, "sql_validation")
        assert error["suggestions"] == ["venue"]
        assert await job_names(client) == []  # nothing was deployed

        # Fields that only some records (another partition, an older record) carry are columns too.
        fine = f"START JOB fine_out AS SELECT symbol, venue, note FROM {topic} WHERE price > 1;"
        deployed = await client.post("/statements", json={"sql": fine})
        assert deployed.status_code == 200, deployed.text
        assert deployed.json()["results"][0]["job"]["state"] == "RUNNING"
        assert await job_names(client) == ["fine_out"]


async def test_a_transient_query_over_an_undeclared_topic_has_its_columns_checked_too(
        server: ServerProcess, broker: str, topic_name: Callable[[str], str]) -> None:
    topic = topic_name("undeclared_query")
    await create_topic(broker, topic, 2)
    await produce_to(broker, topic, {0: [{"symbol": "A", "price": 1.5}], 1: [{"symbol": "B", "side": "BUY"}]})
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        # From the start and with a limit: without the check it would answer rows (NULLs), not hang.
        sql = f"SELECT symbol, sied FROM {topic} WITH ('auto.offset.reset' = 'earliest')"
        error = assert_error(await client.post("/query", json={"sql": sql, "limit": 1}), 400, "sql_validation")
        assert (error["line"], error["column"], error["suggestions"]) == (1, 16, ["side"])
        ok = await client.post("/query", json={
            "sql": f"SELECT symbol, side, price FROM {topic} WITH ('auto.offset.reset' = 'earliest')", "limit": 2})
        assert ok.status_code == 200, ok.text
        events = [orjson.loads(line) for line in ok.text.splitlines() if line]
        assert sorted(e["row"] for e in events if "row" in e) == [["A", None, 1.5], ["B", "BUY", None]]


async def test_an_app_over_an_undeclared_topic_is_refused_at_the_column(
        server: ServerProcess, broker: str, topic_name: Callable[[str], str]) -> None:
    topic = topic_name("undeclared_app")
    await create_topic(broker, topic, 2)
    await produce_to(broker, topic, {1: [{"symbol": "A", "qty": 3}]})
    app = (f"-- @app: typo_app\nSTART JOB app_ok AS SELECT symbol FROM {topic};\n"
           f"START JOB app_bad AS SELECT symbol, qyt FROM {topic};\n")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        error = assert_error(await client.post("/apps", json={"sql": app}), 400, "sql_validation")
        assert (error["line"], error["column"]) == (3, 37)
        assert error["statement"] == 2
        assert error["suggestions"] == ["qty"]
        assert await job_names(client) == []  # all or nothing


async def test_an_empty_undeclared_topic_defers_the_column_check(
        server: ServerProcess, broker: str, topic_name: Callable[[str], str]) -> None:
    topic = topic_name("undeclared_empty")
    await create_topic(broker, topic, 2)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        sql = f"START JOB later_out AS SELECT symbol, anything FROM {topic};"
        deployed = await client.post("/statements", json={"sql": sql})
        assert deployed.status_code == 200, deployed.text
        assert deployed.json()["results"][0]["job"]["state"] == "RUNNING"


async def test_explain_places_an_unknown_with_key_at_its_property(
        server: ServerProcess, broker: str, topic_name: Callable[[str], str]) -> None:
    topic = topic_name("explained")
    await create_topic(broker, topic, 1)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for sql in (f"EXPLAIN SELECT symbol FROM {topic}\nWITH ('watermark.max_out_of_ordrness' = '5s');",
                    f"EXPLAIN CREATE STREAM e_out AS SELECT symbol FROM {topic}\n"
                    "WITH ('watermark.max_out_of_ordrness' = '5s');"):
            error = assert_error(await client.post("/statements", json={"sql": sql}), 400, "sql_validation")
            assert "unknown property 'watermark.max_out_of_ordrness'" in str(error["message"])
            assert (error["line"], error["column"]) == (2, 7), sql
            assert error["suggestions"] and error["suggestions"][0] == "watermark.max_out_of_orderness"  # type: ignore[index]
        # The same query without the typo is explained.
        ok = await client.post("/statements", json={
            "sql": f"EXPLAIN SELECT symbol FROM {topic}\nWITH ('watermark.max_out_of_orderness' = '5s');"})
        assert ok.status_code == 200, ok.text
        assert "def rows(batch):" in ok.json()["results"][0]["generated_code"]
