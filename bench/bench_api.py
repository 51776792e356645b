"""HTTP API benchmark: ``python -m bench.bench_api`` (not a test).

1. Latency of ``GET /jobs`` with 100 live jobs under 50 concurrent clients (p50/p99/max, req/s).
2. How many concurrent streaming queries one server holds with every stream still getting rows:
   open streams in steps, produce a marker record, and require every open stream to deliver it
   within a deadline; report the largest step that passed.

Everything runs on this machine (an embedded broker, one velo-server process, the clients), so the
numbers include the clients' own CPU use; compare runs on the same machine only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from velo.server.connectors.embedded_kafka import EmbeddedKafka, free_port

from tests.kafka_helpers import create_topic


def start_server(brokers: str, data_dir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "velo.server", "--port", str(port), "--brokers", brokers, "--data-dir",
         str(data_dir), "--log-level", "warning", *extra],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("velo-server did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_list_jobs(url: str, brokers: str, jobs: int, clients: int, requests_each: int,
                          settle_s: float) -> dict[str, Any]:
    await create_topic(brokers, "bench_src", 1)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        sem = asyncio.Semaphore(8)

        async def deploy(i: int) -> None:
            sql = (f"START JOB bench_{i} AS SELECT id FROM bench_src WHERE id < 0 "
                   f"WITH ('output.topic' = 'bench_out');")
            async with sem:
                resp = await client.post("/jobs", json={"sql": sql})
                resp.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(deploy(i) for i in range(jobs)))
        deploy_s = time.perf_counter() - started
        listed = (await client.get("/jobs")).json()["jobs"]
        assert len(listed) == jobs, len(listed)

    # Let the jobs finish joining their consumer groups (a few seconds each on Tansu) so the figure is
    # the steady state, then warm up once.
    await asyncio.sleep(settle_s)
    latencies: list[float] = []
    host, port = url.removeprefix("http://").split(":")

    async def one_client() -> None:
        # A minimal keep-alive HTTP/1.1 client: httpx would spend more CPU per request than the server
        # does, and both share this machine's cores.
        reader, writer = await asyncio.open_connection(host, int(port))
        request = f"GET /jobs HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        try:
            for _ in range(requests_each):
                t0 = time.perf_counter()
                writer.write(request)
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                assert status.startswith(b"HTTP/1.1 200"), status
        finally:
            writer.close()

    await one_client()
    latencies.clear()
    t0 = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    return {
        "jobs": jobs, "clients": clients, "requests": len(latencies), "deploy_s": round(deploy_s, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
        "req_per_s": round(len(latencies) / wall),
        "body_kb": round(len(orjson.dumps(listed)) / 1024),
    }


class Stream:
    """One open ``POST /query`` stream, counting the rows it received."""

    def __init__(self, client: httpx.AsyncClient, topic: str) -> None:
        self.client, self.topic = client, topic
        self.rows = 0
        self.opened = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        body = {"sql": f"SELECT id FROM {self.topic};"}
        async with self.client.stream("POST", "/query", json=body) as resp:
            if resp.status_code != 200:
                raise RuntimeError(f"query refused: {resp.status_code} {await resp.aread()!r}")
            async for line in resp.aiter_lines():
                if line.startswith('{"header"'):
                    self.opened.set()
                elif line.startswith('{"row"'):
                    self.rows += 1


async def bench_streams(url: str, brokers: str, steps: list[int], deadline_s: float) -> list[dict[str, Any]]:
    topic = "bench_stream"
    await create_topic(brokers, topic, 1)
    producer = AIOKafkaProducer(bootstrap_servers=brokers)
    await producer.start()
    limits = httpx.Limits(max_connections=max(steps) + 10, max_keepalive_connections=max(steps) + 10)
    results: list[dict[str, Any]] = []
    streams: list[Stream] = []
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(120, read=None), limits=limits) as client:
        try:
            for target in steps:
                t0 = time.perf_counter()
                while len(streams) < target:
                    streams.append(Stream(client, topic))
                try:
                    await asyncio.wait_for(asyncio.gather(*(s.opened.wait() for s in streams)), 120)
                except TimeoutError:
                    results.append({"streams": target, "ok": False, "why": "not all streams opened in 120 s"})
                    break
                open_s = time.perf_counter() - t0
                # A query resolves its 'latest' start offset at its first fetch, just after the header;
                # give every new stream that moment before the marker is produced.
                await asyncio.sleep(1.0)
                before = [s.rows for s in streams]
                t1 = time.perf_counter()
                await producer.send_and_wait(topic, orjson.dumps({"id": target}))
                while time.perf_counter() - t1 < deadline_s:
                    if all(s.rows > b for s, b in zip(streams, before, strict=True)):
                        break
                    await asyncio.sleep(0.02)
                got = sum(1 for s, b in zip(streams, before, strict=True) if s.rows > b)
                delivered_s = time.perf_counter() - t1
                failed = [s for s in streams if s.task.done() and s.task.exception() is not None]
                ok = got == len(streams) and not failed
                results.append({"streams": target, "ok": ok, "open_s": round(open_s, 1),
                                "all_rows_in_s": round(delivered_s, 2), "got_row": got})
                print(f"  {target:4d} streams: opened in {open_s:.1f}s, marker row reached {got}/{target} "
                      f"in {delivered_s:.2f}s", flush=True)
                if not ok:
                    break
        finally:
            for s in streams:
                s.task.cancel()
            await asyncio.gather(*(s.task for s in streams), return_exceptions=True)
            await producer.stop()
    return results


async def main_async(args: argparse.Namespace) -> None:
    with EmbeddedKafka() as kafka, tempfile.TemporaryDirectory() as tmp:
        brokers = kafka.bootstrap_servers
        proc, url = start_server(brokers, Path(tmp), "--max-jobs", str(args.jobs))
        try:
            print(f"GET /jobs with {args.jobs} jobs, {args.clients} concurrent clients …", flush=True)
            latency = await bench_list_jobs(url, brokers, args.jobs, args.clients, args.requests, args.settle)
            print(orjson.dumps(latency).decode(), flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
        streams_dir = Path(tmp) / "streams"
        streams_dir.mkdir()
        proc, url = start_server(brokers, streams_dir)
        try:
            print(f"concurrent streaming queries (steps {args.steps}) …", flush=True)
            steps = [int(s) for s in args.steps.split(",")]
            results = await bench_streams(url, brokers, steps, args.deadline)
            held = max((r["streams"] for r in results if r["ok"]), default=0)
            print(orjson.dumps({"max_streams_all_getting_rows": held, "steps": results}).decode(), flush=True)
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds between deploys and measuring")
    parser.add_argument("--steps", default="10,50,100,200,300,500,750,1000")
    parser.add_argument("--deadline", type=float, default=5.0, help="seconds for a row to reach every stream")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
