"""``INSERT INTO name SELECT …`` end to end: a job writing into an existing stream, through a real server.

Two jobs insert into one declared stream whose topic already holds records of another writer; what the
topic holds afterwards is compared with DuckDB's answer to the same SELECTs (a UNION ALL, plus the
records that were there). The refusals come back as HTTP 400 validation errors at their SQL.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import duckdb
import httpx

from tests.kafka_helpers import consume, create_topic, produce


def _rows(seed: int, n: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    return [{"symbol": rnd.choice(["AAPL", "MSFT", "TSLA", None]), "price": rnd.choice([None, rnd.uniform(1, 100)]),
             "qty": rnd.choice([None, rnd.randint(0, 9)]), "ts": 1_000 * i} for i in range(n)]


async def test_insert_into_an_existing_stream_appends_what_duckdb_selects(
    broker: str, server_url: str, topic_name: Callable[[str], str]
) -> None:
    trades, fills, target = topic_name("trades"), topic_name("fills"), topic_name("notional")
    for topic in (trades, fills, target):
        await create_topic(broker, topic, 2)
    a, b = _rows(1, 60), _rows(2, 40)
    before = [{"symbol": "OLD", "notional": 1.5}]
    await produce(broker, trades, a)
    await produce(broker, fills, b)
    await produce(broker, target, before)  # another writer's record: INSERT INTO appends after it
    select_a = "SELECT symbol, price * qty AS notional FROM {} WHERE qty > 2"
    select_b = "SELECT UPPER(symbol) AS symbol, price AS notional FROM {} WHERE price < 50 OR symbol IS NULL"
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        resp = await client.post("/statements", json={"sql": (
            f"CREATE STREAM {trades} (symbol STRING, price DOUBLE, qty INT, ts BIGINT) WITH (KAFKA_TOPIC='{trades}');"
            f"CREATE STREAM {fills} (symbol STRING, price DOUBLE, qty INT, ts BIGINT) WITH (KAFKA_TOPIC='{fills}');"
            f"CREATE STREAM tgt_{target} (symbol STRING, notional DOUBLE) WITH (KAFKA_TOPIC='{target}');"
            f"INSERT INTO tgt_{target} {select_a.format(trades)} WITH ('auto.offset.reset' = 'earliest');"
            f"INSERT INTO tgt_{target} {select_b.format(fills)} WITH ('auto.offset.reset' = 'earliest')")})
        assert resp.status_code == 200, resp.text
        results = resp.json()["results"]
        first, second = (r["job"]["name"] for r in results[3:])
        assert (first, second) == (f"insert_tgt_{target}", f"insert_tgt_{target}_2")
        job = (await client.get(f"/jobs/{first}")).json()
        assert job["plan_tree"]["kind"] == "Sink" and job["plan_tree"]["text"].startswith(f"tgt_{target}: kafka")

        con = duckdb.connect()
        for name, rows in ((trades, a), (fills, b)):
            con.execute(f"CREATE TABLE {name} (symbol VARCHAR, price DOUBLE, qty INTEGER, ts BIGINT)")
            con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?)",
                            [[r["symbol"], r["price"], r["qty"], r["ts"]] for r in rows])
        expected = con.execute(f"{select_a.format(trades)} UNION ALL {select_b.format(fills)}").fetchall()
        out = await consume(broker, target, len(expected) + 1, settle=1.0)

        def norm(rows: list[Any]) -> list[tuple[Any, Any]]:
            return sorted(((s, None if v is None else round(v, 9)) for s, v in rows), key=repr)

        assert norm([(r["symbol"], r["notional"]) for r in out]) == norm(
            [("OLD", 1.5), *((s, v) for s, v in expected)])
        # No topic was created and nothing was registered: the target is the stream that was there.
        streams = await client.post("/statements", json={"sql": "SHOW STREAMS"})
        names = [r[0] for r in streams.json()["results"][0]["rows"]]
        assert f"tgt_{target}" in names and first not in names


async def test_insert_into_refuses_what_it_cannot_write(
    broker: str, server_url: str, topic_name: Callable[[str], str]
) -> None:
    src = topic_name("src")
    await create_topic(broker, src, 1)
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        resp = await client.post("/statements", json={"sql": (
            f"CREATE STREAM s_{src} (symbol STRING, price DOUBLE) WITH (KAFKA_TOPIC='{src}');"
            f"CREATE TABLE tab_{src} (symbol STRING PRIMARY KEY, price DOUBLE) WITH (KAFKA_TOPIC='{src}')")})
        assert resp.status_code == 200, resp.text

        async def error(sql: str) -> dict[str, Any]:
            r = await client.post("/statements", json={"sql": sql})
            assert r.status_code == 400, r.text
            body: dict[str, Any] = r.json()["error"]
            return body

        col = await error(f"INSERT INTO s_{src} SELECT symbol, price AS prise FROM s_{src}")
        assert col["code"] == "sql_validation"
        assert col["message"] == f"unknown column 'prise' of s_{src}; did you mean price?"
        assert (col["line"], col["column"]) == (1, len(f"INSERT INTO s_{src} SELECT symbol, ") + 1)
        assert col["suggestions"][0] == "price"
        table = await error(f"INSERT INTO tab_{src} SELECT symbol, price FROM s_{src}")
        assert table["message"] == (f"INSERT INTO writes into a stream; 'tab_{src}' is a table (its rows are "
                                    f"upserts by key)")
        missing = await error(f"INSERT INTO nowhere_{src} SELECT symbol FROM s_{src}")
        assert missing["message"].startswith(f"unknown stream or topic to INSERT INTO 'nowhere_{src}'")
        jobs = (await client.get("/jobs")).json()
        listed = jobs["jobs"] if isinstance(jobs, dict) else jobs
        assert not [j for j in listed if src in j["name"]]  # nothing was deployed
