"""``make demo``: the trading demo end to end on the embedded broker.

Starts ``velo-server --embedded-kafka``, backfills ten minutes of trade history into ``trades`` and
keeps live trades flowing, copies the reference data into the server's data directory, deploys every
SQL application in ``demo/apps`` (``POST /apps``, all-or-nothing) and opens the Velo shell on the
server. Quitting the shell stops everything. Without a terminal (or with ``--no-shell``) it runs a
scripted session instead (SHOW JOBS and a few rows of every analytics output) and exits.

Every run starts from an empty data directory: the embedded broker keeps nothing between runs, so
nothing the server kept about the previous run may stay (see ``prepare_data_dir``). However the
driver ends — the shell quit, Ctrl-C, SIGTERM, the terminal closed (SIGHUP), even SIGKILL — it
leaves nothing running: it stops its children on the way out, and each child is also set to get
SIGTERM from Linux when the driver dies (``PR_SET_PDEATHSIG``), as velo-server's broker is.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
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
# spikes have rows to show at once instead of after the first minute boundary (--backfill-minutes).
BACKFILL_MINUTES = 10

# The server's data directory unless $VELO_DEMO_DATA names another (gitignored).
DEFAULT_DATA_DIR = HERE / ".data"

# Marks a data directory as the demo's own (only such a directory, or an empty one, is emptied at
# start) and is the lock that keeps two demos off one directory.
MARKER = ".velo-demo"

# What stops the demo: the terminal closed, Ctrl-C (outside the shell), `kill`.
STOP_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True) if sys.platform.startswith("linux") else None

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


class Stopped(BaseException):
    """A stop signal arrived; unwinds the demo through its cleanup.

    A BaseException, like KeyboardInterrupt: no ``except Exception`` on the way may swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """Turns the first SIGHUP, SIGINT or SIGTERM into ``Stopped``; later ones are ignored.

    Ignored, not queued: the cleanup they would interrupt is what stops the processes, and it is
    bounded (``_stop``). ``stopping`` is also set once the demo ends on its own (the shell quit).
    """

    def __init__(self) -> None:
        self.stopping = False

    def install(self) -> None:
        """Handle every stop signal in this process (the children get the defaults back at exec)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            self.stopping = True
            raise Stopped(signum)


def prepare_data_dir(data_dir: Path) -> int:
    """Empty ``data_dir`` for a new run and lock it; returns the lock's descriptor (held until exit).

    The embedded broker keeps nothing between runs, so nothing the server kept about the previous
    one may stay: the registry would bring back its jobs, ``state/`` its operator snapshots — whose
    positions lie past the end of the fresh, shorter topics, so the restored jobs would read nothing
    — and files its sinks and dead-letter queues wrote would mix two runs. Everything but the marker
    goes, rather than a list of known files that a new kind of server data would slip past.

    Only the demo's own directory is emptied: the default one, one holding ``MARKER`` (the demo
    made it) or an empty one. $VELO_DEMO_DATA pointed at anything else is refused, not wiped. A
    second demo on the same directory is refused too: it would empty it under the first.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    marker = data_dir / MARKER
    if data_dir != DEFAULT_DATA_DIR and not marker.exists() and any(data_dir.iterdir()):
        sys.exit(f"{data_dir} is not empty and is no demo data directory (it has no {MARKER}); the demo "
                 "empties its data directory at every start, so point VELO_DEMO_DATA at a new or empty one")
    lock = os.open(marker, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by the children (O_CLOEXEC)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        sys.exit(f"another demo is running on {data_dir}: stop it, or set VELO_DEMO_DATA to another directory")
    for entry in data_dir.iterdir():
        if entry.name == MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return lock


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


def _say(text: str) -> None:
    """Print, unless the terminal is gone (a hangup): stopping must not fail on a message."""
    with contextlib.suppress(OSError, ValueError):
        print(text, flush=True)


def _die_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: in the child, ask Linux to SIGTERM it when the driver ``parent`` dies.

    This covers what no cleanup code can: a driver killed by SIGKILL, or one that dies between
    starting a child and registering it for the stop. (Linux ties it to the thread that forks: the
    driver starts every child from its main thread.)
    """
    def setup() -> None:
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the driver died before the call: nobody would ever signal us
            os.kill(os.getpid(), signal.SIGTERM)
    return setup


def _spawn(argv: list[str], *, background: bool, stdout: int | None = None) -> subprocess.Popen[bytes]:
    """Start a child that dies with the driver.

    Background processes (the server, the generator) get their own session and no terminal input:
    a Ctrl-C typed in the shell (which cancels a query) must not reach them through the terminal's
    process group, nor may a closing terminal kill them before the driver stops them in order.
    """
    return subprocess.Popen(argv, start_new_session=background, stdout=stdout,
                            stdin=subprocess.DEVNULL if background else None,
                            preexec_fn=_die_with(os.getpid()))


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; returns once the process is reaped."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _restore_terminal(fd: int, attrs: list[Any]) -> None:
    """Put the terminal back as it was before the shell (a shell stopped by a signal leaves it raw)."""
    with contextlib.suppress(termios.error, OSError):  # a hung-up terminal has nothing to restore
        termios.tcsetattr(fd, termios.TCSADRAIN, attrs)


def _detach_from_terminal() -> None:
    """After a hangup: send our output (and Python's last flush at exit) nowhere, since writing to
    the closed terminal fails."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _run(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> int:
    """The demo itself; every process it starts is pushed on ``cleanup`` (stopped last to first)."""
    port = args.port or (DEFAULT_PORT if _port_free(DEFAULT_PORT) else free_port())
    url = f"http://127.0.0.1:{port}"
    data_dir = Path(os.environ.get("VELO_DEMO_DATA", DEFAULT_DATA_DIR)).resolve()
    cleanup.callback(os.close, prepare_data_dir(data_dir))
    install_reference_data(data_dir)
    print(f"Starting velo-server with the embedded Kafka broker on {url} (data in {data_dir}) …", flush=True)
    server = _spawn(
        [str(BIN / "velo-server"), "--embedded-kafka", "--port", str(port), "--data-dir", str(data_dir),
         "--log-format", "text", "--log-level", "warning"],
        background=True)
    # The server stops its broker as it shuts down (and the broker dies with the server regardless).
    cleanup.callback(_stop, server)
    health = _wait_health(url, server)
    brokers = str(health["kafka"]["brokers"])
    # History first (event times over the last minutes, as fast as the broker takes it), then the
    # same random walk carries on live; the topic exists before any job reads it.
    generator = _spawn(
        [sys.executable, "-m", "demo.generator", "--brokers", brokers, "--rate", str(args.rate),
         "--backfill-minutes", str(args.backfill_minutes)],
        background=True, stdout=subprocess.PIPE)
    cleanup.callback(_stop, generator)
    assert generator.stdout is not None
    # The generator prints one line once the backfill is acknowledged: the topic exists and holds
    # history from then on. An empty read means it died (its error is on stderr above).
    line = generator.stdout.readline().decode().strip()
    if not line:
        sys.exit("the trade generator exited at start")
    print(f"Trade generator: {line}", flush=True)
    print("Deploying the SQL apps in demo/apps (each job joins its Kafka consumer group) …", flush=True)
    try:
        apps = deploy_apps(url)
    except (RuntimeError, httpx.HTTPError) as exc:
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
          f"The web console: {url}/ui (jobs, plans, live SQL). See docs/demo.md for more.\n", flush=True)
    cli = [str(BIN / "velo-cli"), url]
    if args.no_shell or not sys.stdin.isatty():
        try:
            _wait_outputs(url)
        except (httpx.HTTPError, ValueError) as exc:
            sys.exit(f"velo-server stopped answering: {exc}")
        script = _spawn([*cli, "--output", "table", "--timeout", "30",
                         *(arg for stmt in SCRIPT for arg in ("-e", stmt))], background=False)
        cleanup.callback(_stop, script)
        return script.wait()
    # Ctrl-C belongs to the shell while it runs: it cancels a query, and at the prompt does nothing.
    # A no-op handler, not SIG_IGN: an ignored signal would stay ignored in the shell too (exec
    # keeps SIG_IGN), and its Ctrl-C would do nothing. SIGHUP and SIGTERM still stop the demo.
    signal.signal(signal.SIGINT, lambda *_: None)
    tty = sys.stdin.fileno()
    cleanup.callback(_restore_terminal, tty, termios.tcgetattr(tty))
    shell = _spawn(cli, background=False)
    cleanup.callback(_stop, shell)
    return shell.wait()


def _exit_status(code: int) -> int:
    """A child's return code as a shell's exit status (killed by signal N: 128 + N)."""
    return 128 - code if code < 0 else code


def _demo(args: argparse.Namespace) -> int:
    """Run the demo and stop everything it started, however it ends; the exit status."""
    signals = StopSignals()
    signals.install()
    with contextlib.ExitStack() as cleanup:
        try:
            code = _exit_status(_run(args, cleanup))
        except Stopped as stop:
            if stop.signum == signal.SIGHUP:
                _detach_from_terminal()
            _say(f"\n{signal.Signals(stop.signum).name}: stopping the demo …")
            code = 128 + stop.signum
        finally:
            signals.stopping = True  # from here on a signal would only cut the cleanup short
    return code


def main() -> None:
    """Run the demo: server, generator, apps, then the shell (or the scripted session)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=None,
                        help=f"HTTP port (default: {DEFAULT_PORT} when free, else any free port)")
    parser.add_argument("--rate", type=float, default=100.0, help="trades per second")
    parser.add_argument("--backfill-minutes", type=float, default=BACKFILL_MINUTES,
                        help=f"minutes of trade history produced before live trading (default {BACKFILL_MINUTES})")
    parser.add_argument("--no-shell", action="store_true", help="run a scripted session and exit")
    args = parser.parse_args()
    try:
        code = _demo(args)
    except Stopped as stop:  # a signal in the instant before the cleanup began: it has run all the same
        code = 128 + stop.signum
    sys.exit(code)


if __name__ == "__main__":
    main()
