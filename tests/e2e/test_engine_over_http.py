"""End to end over HTTP: catalog statements, validation errors, and a windowed aggregate query."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson

from tests.kafka_helpers import create_topic, produce


async def test_catalog_validation_and_windowed_query(
    broker: str, server_url: str, topic_name: Callable[[str], str]
) -> None:
    source = topic_name("ticks")
    await create_topic(broker, source, 1)
    rows = [{"symbol": "A" if i % 2 else "B", "price": float(i), "ts": 1_000 * i} for i in range(40)]
    await produce(broker, source, rows)
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        resp = await client.post("/statements", json={"sql": "SHOW FUNCTIONS; DESCRIBE FUNCTION lag"})
        assert resp.status_code == 200, resp.text
        functions, lag = resp.json()["results"] if "results" in resp.json() else resp.json()
        assert any(r[0] == "PERCENTILE_CONT" for r in functions["rows"])
        assert ["kind", "analytic"] in lag["rows"]

        bad = await client.post("/query", json={"sql": f"SELECT UPPPER(symbol) FROM {source}"})
        assert bad.status_code == 400
        body = bad.json()["error"]
        assert body["code"] == "sql_validation" and "UPPER" in body["suggestions"]
        assert (body["line"], body["column"]) == (1, 8)

        sql = (f"SELECT symbol, COUNT(*) AS n, AVG(price) AS avg FROM {source} GROUP BY symbol "
               "WINDOW TUMBLING(10s) EMIT FINAL WITH ('event.time.field' = 'ts', "
               "'watermark.idle_timeout' = '0s', 'auto.offset.reset' = 'earliest')")
        events = []
        async with client.stream("POST", "/query", json={"sql": sql, "limit": 6}) as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                if line.strip():
                    events.append(orjson.loads(line))
        header = events[0]["header"]
        assert [c["name"] for c in header["columns"]] == ["symbol", "n", "avg", "window_start", "window_end"]
        got = sorted(tuple(e["row"]) for e in events if "row" in e)
        # Windows [0,10s), [10s,20s), [20s,30s) are closed by the watermark (39 s); [30s,40s) is open.
        expected = sorted((s, 5, sum(float(i) for i in range(w, w + 10) if (i % 2 == 1) == (s == "A")) / 5,
                           w * 1000, w * 1000 + 10_000) for w in (0, 10, 20) for s in ("A", "B"))
        assert got == expected
        assert events[-1]["done"]["reason"] == "limit"
