"""``make demo``: the trading demo end to end on the embedded broker.

Starts ``velo-server --embedded-kafka``, backfills ten minutes of trade history into ``trades`` and
keeps live trades flowing, copies the reference data into the server's data directory, deploys every
SQL application in ``demo/apps`` (``POST /apps``, all-or-nothing) and opens the Velo shell on the
server. Quitting the shell stops everything. Without a terminal (or with ``--no-shell``) it runs a
scripted session instead (SHOW JOBS and a few rows of every analytics output) and exits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from velo.server.connectors.embedded_kafka import free_port

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
DATA = HERE / "data"
BIN = Path(sys.executable).parent

# The port demo/prometheus.yml scrapes; the demo falls back to any free port when it is taken.
DEFAULT_PORT = 8080

# Minutes of trade history produced before live trading starts, so candles, VWAP windows and
# spikes have rows to show at once instead of after the first minute boundary.
BACKFILL_MINUTES = 10

# What the scripted session shows of each analytics output: a statement per job of the app.
SCRIPT = [
    "SHOW JOBS;",
    "SET 'auto.offset.reset' = 'earliest';",
    "SELECT symbol, DATE_FORMAT(FROM_UNIXTIME(window_start / 1000), '%H:%M') AS minute, open, high, low, close,"
    " volume, trades FROM ohlc_1m LIMIT 4;",
    "SELECT symbol, DATE_FORMAT(FROM_UNIXTIME(window_start / 1000), '%H:%M') AS from_utc,"
    " DATE_FORMAT(FROM_UNIXTIME(window_end / 1000), '%H:%M') AS to_utc, vwap, volume FROM vwap_5m LIMIT 4;",
    "SELECT symbol, trades, volume, buy_volume, sell_volume, notional FROM symbol_volume LIMIT 4;",
    "SELECT symbol, name, sector, exchange, side, price, quantity, notional FROM enriched_trades LIMIT 4;",
    "SELECT sector, exchange, trades, notional FROM sector_volume LIMIT 4;",
    "SELECT symbol, price, avg20, move_pct, ts FROM price_spikes LIMIT 4;",
    "SELECT symbol, price, quantity, notional FROM big_buys LIMIT 4;",
]


def install_reference_data(data_dir: Path) -> list[Path]:
    """Copy the demo's reference files (``demo/data/*.csv``) into the server's data directory.

    File tables may only name paths under the server's data directory, so the CSVs must live there.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(src, data_dir / src.name)) for src in sorted(DATA.glob("*.csv"))]


def deploy_apps(url: str, variables: dict[str, str] | None = None, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Deploy every ``demo/apps/*.sql`` through ``POST /apps``; returns the deployed apps.

    Each file is one application: the server validates all of its jobs before starting any, so a
    broken file leaves nothing half-running. Raises ``RuntimeError`` with the server's message (which
    names the statement and its line) when an app is rejected.
    """
    deployed = []
    with httpx.Client(base_url=url, timeout=timeout) as client:
        for app in sorted(APPS.glob("*.sql")):
            resp = client.post("/apps", json={"sql": app.read_text(), "variables": variables or {}})
            if resp.status_code != 201:
                error = resp.json().get("error", {})
                raise RuntimeError(f"deploying {app.name} failed ({resp.status_code}): {error.get('message')}")
            deployed.append(resp.json())
    return deployed


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_health(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("velo-server exited at start; see its log above")
        try:
            resp = httpx.get(f"{url}/health", timeout=1)
            if resp.status_code == 200 and resp.json()["kafka"]["reachable"]:
                body: dict[str, Any] = resp.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    sys.exit(f"velo-server did not answer at {url} within {timeout:.0f}s")


def _wait_outputs(url: str, timeout: float = 60.0) -> None:
    """Wait until every job has read its backlog and written something (the scripted session's rows)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = httpx.get(f"{url}/jobs", timeout=5).json()
        jobs = jobs.get("jobs", jobs) if isinstance(jobs, dict) else jobs
        if jobs and all(j["metrics"]["records_out"] > 0 for j in jobs):
            return
        time.sleep(0.2)
    print("warning: some jobs have no output yet; their queries below may wait", flush=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    """Run the demo: server, generator, apps, then the shell (or the scripted session)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=None,
                        help=f"HTTP port (default: {DEFAULT_PORT} when free, else any free port)")
    parser.add_argument("--rate", type=float, default=100.0, help="trades per second")
    parser.add_argument("--no-shell", action="store_true", help="run a scripted session and exit")
    args = parser.parse_args()

    port = args.port or (DEFAULT_PORT if _port_free(DEFAULT_PORT) else free_port())
    url = f"http://127.0.0.1:{port}"
    data_dir = Path(os.environ.get("VELO_DEMO_DATA", HERE / ".data")).resolve()
    install_reference_data(data_dir)
    # The embedded broker keeps nothing between runs, so neither should the job registry: jobs restored
    # from a previous run would point at topics that no longer exist and block the fresh deploy.
    for stale in data_dir.glob("registry.sqlite3*"):
        stale.unlink()
    print(f"Starting velo-server with the embedded Kafka broker on {url} …", flush=True)
    # Background processes get their own session: a Ctrl-C typed in the shell (which cancels a query)
    # must not reach them through the terminal's process group.
    server = subprocess.Popen(
        [str(BIN / "velo-server"), "--embedded-kafka", "--port", str(port), "--data-dir", str(data_dir),
         "--log-format", "text", "--log-level", "warning"],
        start_new_session=True,
    )
    procs = [server]
    try:
        health = _wait_health(url, server)
        brokers = str(health["kafka"]["brokers"])
        # History first (event times over the last minutes, as fast as the broker takes it), then the
        # same random walk carries on live; the topic exists before any job reads it.
        generator = subprocess.Popen(
            [sys.executable, "-m", "demo.generator", "--brokers", brokers, "--rate", str(args.rate),
             "--backfill-minutes", str(BACKFILL_MINUTES)],
            start_new_session=True, stdout=subprocess.PIPE)
        procs.append(generator)
        assert generator.stdout is not None
        # The generator prints one line once the backfill is acknowledged: the topic exists and holds
        # history from then on. An empty read means it died (its error is on stderr above).
        if not generator.stdout.readline():
            sys.exit("the trade generator exited at start")
        print("Deploying the SQL apps in demo/apps (each job joins its Kafka consumer group) …", flush=True)
        try:
            apps = deploy_apps(url)
        except RuntimeError as exc:
            sys.exit(str(exc))
        for app in apps:
            jobs = ", ".join(j["name"] for j in app["jobs"])
            print(f"Deployed app {app['name']} {app.get('version') or ''} with {len(app['jobs'])} jobs:\n  {jobs}",
                  flush=True)
        print(f"Trades are flowing into 'trades' (Kafka at {brokers}). Try:\n"
              "  SHOW JOBS;\n"
              "  SELECT * FROM price_spikes;\n"
              "  SELECT symbol, COUNT(*) AS trades, SUM(quantity) AS volume FROM trades\n"
              "    GROUP BY symbol EMIT CHANGES;          -- a live table; Ctrl-C to stop\n"
              "See docs/demo.md for more.\n", flush=True)
        cli = [str(BIN / "velo-cli"), url]
        if args.no_shell or not sys.stdin.isatty():
            _wait_outputs(url)
            script = [arg for stmt in SCRIPT for arg in ("-e", stmt)]
            sys.exit(subprocess.call([*cli, "--output", "table", "--timeout", "30", *script]))
        # Ctrl-C belongs to the shell while it runs. A no-op handler, not SIG_IGN: an ignored signal
        # would stay ignored in the shell too (exec keeps SIG_IGN), and its Ctrl-C would do nothing.
        signal.signal(signal.SIGINT, lambda *_: None)
        subprocess.call(cli)
    finally:
        for proc in reversed(procs):
            _stop(proc)


if __name__ == "__main__":
    main()
