"""Shell benchmark: ``python -m bench.bench_cli [--rows N] [--e2e]`` (not a test).

1. Streamed-result rendering: N NDJSON result lines through the shell's path (``parse_event`` → stream
   printer) for the table and jsonl formats, against the floor of ``orjson.loads`` + writing the line back
   out. The ratio says what the shell costs per row on top of merely decoding.
2. Completion latency: ``suggest`` + ``candidates`` for typical cursor positions over a large catalog
   (1,000 streams × 20 columns, 300 topics, 100 jobs); p50/p99 per keystroke must stay far below the ~50 ms
   at which typing feels sluggish.
3. ``velo-cli --help`` start-up time (interpreter start and imports).
4. ``--e2e``: an embedded broker and a real velo-server; N records read back by
   ``velo-cli -e "SELECT …" --limit N`` (a subprocess, jsonl to /dev/null) against a raw httpx read of the
   same ``POST /query`` — the ratio is the shell's whole overhead, process start included.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson
from velo.cli import render
from velo.cli.client import Row, parse_event
from velo.cli.completion.catalog import Catalog
from velo.cli.completion.completer import candidates
from velo.cli.completion.suggest import context_at, suggest


def _lines(n: int) -> list[bytes]:
    return [
        orjson.dumps({"row": [f"SYM{i % 500}", 100.0 + (i % 977) / 7, i % 1000, "BUY" if i % 2 else "SELL", i]})
        for i in range(n)
    ]


def bench_render(n: int) -> None:
    lines = _lines(n)
    cols = ["symbol", "price", "quantity", "side", "ts"]
    types = ["STRING", "DOUBLE", "INT", "STRING", "BIGINT"]

    def floor() -> float:
        out = io.StringIO()
        t = time.perf_counter()
        for line in lines:
            orjson.loads(line)
            out.write(line.decode() + "\n")
        return time.perf_counter() - t

    def shell(fmt: str) -> float:
        out = io.StringIO()
        printer = render.stream_printer(fmt, cols, types)
        t = time.perf_counter()
        out.write(printer.header())
        for line in lines:
            event = parse_event(line)
            assert isinstance(event, Row)
            out.write(printer.row(event.values, event.op))
        return time.perf_counter() - t

    base = min(floor() for _ in range(3))
    print(f"render {n:,} rows: floor (decode+write) {n / base:,.0f} rows/s")
    for fmt in ("jsonl", "table", "csv"):
        took = min(shell(fmt) for _ in range(3))
        print(f"  {fmt:6s} {n / took:,.0f} rows/s   ratio to floor {took / base:.2f}x")


STREAMS = 1_000


def bench_completion() -> None:
    catalog = Catalog.from_json(
        {
            "streams": [
                {"name": f"stream_{i}", "columns": [{"name": f"col_{j}", "type": "DOUBLE"} for j in range(20)]}
                for i in range(STREAMS)
            ],
            "topics": [f"topic_{i}" for i in range(300)],
            "jobs": [f"job_{i}" for i in range(100)],
        }
    )
    cases = [
        "SELECT ",
        "SELECT col_1, co",
        "SELECT * FROM str",
        "SELECT * FROM stream_7 s JOIN stream_9 t ON s.",
        "SELECT * FROM stream_7 WHERE col_3 > 1 AND c",
        "STOP JOB jo",
        "CREATE STREAM x AS SELECT * FROM stream_1 WITH ('",
        "SELECT AVG(col_1) OVER (PARTITION BY ",
    ]
    timings: list[float] = []
    for _ in range(30):
        for text in cases:
            t = time.perf_counter()
            ctx = context_at(text, text)
            assert ctx is not None
            candidates(suggest(text), catalog, ctx.word)
            timings.append((time.perf_counter() - t) * 1000)
    timings.sort()
    p99 = timings[int(len(timings) * 0.99) - 1]
    print(
        f"completion over {STREAMS} streams x 20 columns: p50 {statistics.median(timings):.2f} ms, "
        f"p99 {p99:.2f} ms, max {timings[-1]:.2f} ms"
    )


def bench_e2e(n: int) -> None:
    from velo.server.connectors.embedded_kafka import EmbeddedKafka, free_port

    from tests.kafka_helpers import create_topic, produce

    with EmbeddedKafka() as kafka, tempfile.TemporaryDirectory() as tmp:
        brokers = kafka.bootstrap_servers
        topic = f"bench_cli_{uuid.uuid4().hex[:8]}"

        async def fill() -> None:
            await create_topic(brokers, topic, 1)
            await produce(brokers, topic, [{"symbol": f"S{i % 50}", "price": float(i)} for i in range(n)])

        asyncio.run(fill())
        port = free_port()
        log = (Path(tmp) / "server.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "velo.server", "--port", str(port), "--brokers", brokers,
             "--data-dir", tmp, "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.1)  # polling a readiness condition
            sql = f"SELECT symbol, price FROM {topic}"
            props = {"auto.offset.reset": "earliest"}

            t = time.perf_counter()
            rows = 0
            body = {"sql": sql, "properties": props, "limit": n}
            with httpx.stream("POST", f"{url}/query", json=body, timeout=60) as resp:
                for line in resp.iter_lines():
                    if line.startswith('{"row"'):
                        rows += 1
            raw = time.perf_counter() - t

            t = time.perf_counter()
            p = subprocess.run(
                [sys.executable, "-m", "velo.cli.main", url, "--limit", str(n), "-e",
                 f"SET 'auto.offset.reset' = 'earliest'; {sql};"],
                capture_output=True, stdin=subprocess.DEVNULL, timeout=120,
            )  # fmt: skip
            cli = time.perf_counter() - t
            got = p.stdout.count(b"\n")
            print(f"e2e {n:,} records: raw httpx {rows / raw:,.0f} rows/s ({raw:.2f}s); "
                  f"velo-cli {got / cli:,.0f} rows/s ({cli:.2f}s, process start included); "
                  f"ratio {cli / raw:.2f}x")  # fmt: skip
        finally:
            server.terminate()
            server.wait(15)
            log.close()


def bench_startup() -> None:
    """Wall time of ``velo-cli --help`` (interpreter start + imports), best and median of 10."""
    exe = str(Path(sys.executable).parent / "velo-cli")
    times = []
    for _ in range(10):
        t = time.perf_counter()
        subprocess.run([exe, "--help"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    print(f"velo-cli --help: best {min(times):.3f} s, median {statistics.median(times):.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--e2e", action="store_true", help="also run against a real server and broker")
    args = ap.parse_args()
    bench_render(args.rows)
    bench_completion()
    bench_startup()
    if args.e2e:
        bench_e2e(min(args.rows, 50_000))


if __name__ == "__main__":
    main()
