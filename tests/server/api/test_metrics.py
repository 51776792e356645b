"""``/metrics``: Prometheus text that prometheus_client's own parser reads, with every name of the spec."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerProcess
from tests.kafka_helpers import create_topic, produce

# http-api.md "Metrics" (families: a counter's samples carry the _total suffix).
SPEC_NAMES = {
    "velo_jobs": "gauge",
    "velo_job_records_in": "counter",
    "velo_job_records_out": "counter",
    "velo_job_records_failed": "counter",
    "velo_job_late_records": "counter",
    "velo_job_dlq_records": "counter",
    "velo_job_lag_records": "gauge",
    "velo_job_watermark_ms": "gauge",
    "velo_job_processing_seconds": "histogram",
    "velo_job_state_bytes": "gauge",
    "velo_queries_active": "gauge",
    "velo_http_requests": "counter",
    "velo_http_request_seconds": "histogram",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds": "counter",
    "process_open_fds": "gauge",
}


async def test_metrics_parse_and_name_every_spec_metric(start_server: Callable[..., ServerProcess], broker: str,
                                                         topic_name: Callable[[str], str]) -> None:
    server = start_server()
    source = topic_name("m")
    await create_topic(broker, source, 1)
    await produce(broker, source, [{"id": i} for i in range(5)] + ["not json"], raw=False)
    sql = f"START JOB mj AS SELECT id FROM {source} WHERE id > 1 WITH ('output.topic' = '{source}_out', " \
          "'auto.offset.reset' = 'earliest');"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await client.post("/jobs", json={"sql": sql})).status_code == 201
        await client.get("/jobs/nope")  # a 404 to count
        resp = await client.get("/metrics", follow_redirects=False)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(resp.text)}
    for name, kind in SPEC_NAMES.items():
        assert name in families, name
        assert families[name].type == kind, name

    def samples(name: str) -> list[tuple[str, dict[str, str], float]]:
        return [(s.name, s.labels, s.value) for s in families[name].samples]

    assert ("velo_jobs", {"state": "RUNNING"}, 1.0) in samples("velo_jobs")
    for name in ("velo_job_records_in", "velo_job_lag_records", "velo_job_watermark_ms",
                 "velo_job_state_bytes", "velo_job_late_records", "velo_job_dlq_records"):
        assert any(labels == {"job": "mj"} for _, labels, _ in samples(name)), name
    assert all({"job", "reason"} <= set(labels) for _, labels, _ in samples("velo_job_records_failed"))
    assert any(n == "velo_job_processing_seconds_bucket" and labels.get("le") == "+Inf"
               for n, labels, _ in samples("velo_job_processing_seconds"))
    http = samples("velo_http_requests")
    assert any(labels == {"method": "GET", "route": "/jobs/{name}", "status": "404"} for _, labels, _ in http)
    assert any(labels == {"method": "POST", "route": "/jobs", "status": "201"} for _, labels, _ in http)
    assert any(labels.get("route") == "/jobs" for _, labels, _ in samples("velo_http_request_seconds"))
