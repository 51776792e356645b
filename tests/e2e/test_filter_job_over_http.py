"""End to end: 10,000 JSON records, a filter job deployed over HTTP, the output topic checked exactly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx

from tests.kafka_helpers import consume, create_topic, produce


async def test_ten_thousand_records_through_a_filter_job(
    broker: str, server_url: str, topic_name: Callable[[str], str]
) -> None:
    source, sink = topic_name("trades"), topic_name("big")
    await create_topic(broker, source, 4)
    values = [{"id": i, "symbol": f"S{i % 7}", "price": (i * 37) % 1000 / 3, "qty": i % 13}
              for i in range(10_000)]
    await produce(broker, source, values)

    sql = (f"CREATE STREAM big AS SELECT id, symbol, price * qty AS notional FROM {source} "
           f"WHERE price > 150 AND qty >= 3 WITH ('output.topic' = '{sink}');")
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        resp = await client.post("/jobs", json={"sql": sql})
        assert resp.status_code == 201, resp.text
        assert resp.json()["state"] == "RUNNING"

        expected = [{"id": v["id"], "symbol": v["symbol"], "notional": v["price"] * v["qty"]}
                    for v in values if v["price"] > 150 and v["qty"] >= 3]
        out = await consume(broker, sink, len(expected), timeout=60, settle=1.0)

        # Exactly the expected records: same values, nothing missing, nothing extra, no duplicates.
        key = lambda r: (r["id"], r["symbol"], r["notional"])  # noqa: E731
        assert Counter(map(key, out)) == Counter(map(key, expected))

        job = (await client.get("/jobs/big")).json()
        assert job["metrics"]["records_in"] == 10_000
        assert job["metrics"]["records_out"] == len(expected)
        assert (await client.delete("/jobs/big")).json()["state"] == "STOPPED"
