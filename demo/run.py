"""``make demo``: the trading demo end to end on the embedded broker.

Starts ``velo-server --embedded-kafka``, feeds random-walk trades into ``trades``, deploys the demo's
SQL apps and opens the Velo shell on the server. Quitting the shell stops everything. Without a
terminal (or with ``--no-shell``) it runs a scripted session instead and exits.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from velo.server.connectors.embedded_kafka import free_port

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _wait_health(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("velo-server exited at start; see its log above")
        try:
            resp = httpx.get(f"{url}/health", timeout=1)
            if resp.status_code == 200 and resp.json()["kafka"]["reachable"]:
                body: dict[str, object] = resp.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    sys.exit(f"velo-server did not answer at {url} within {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: a free one)")
    parser.add_argument("--rate", type=float, default=100.0, help="trades per second")
    parser.add_argument("--no-shell", action="store_true", help="run a scripted session and exit")
    args = parser.parse_args()

    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = Path(os.environ.get("VELO_DEMO_DATA", HERE / ".data"))
    data_dir.mkdir(parents=True, exist_ok=True)
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
        brokers = str(health["kafka"]["brokers"])  # type: ignore[index]
        subprocess.run([sys.executable, "-m", "demo.generator", "--brokers", brokers, "--count", "1"],
                       check=True)  # creates the topic before jobs read it
        generator = subprocess.Popen([sys.executable, "-m", "demo.generator", "--brokers", brokers,
                                      "--rate", str(args.rate)], start_new_session=True)
        procs.append(generator)
        for app in sorted((HERE / "apps").glob("*.sql")):
            resp = httpx.post(f"{url}/statements", json={"sql": app.read_text()}, timeout=30)
            if resp.status_code != 200:
                sys.exit(f"deploying {app.name} failed: {resp.json()['error']['message']}")
            print(f"Deployed {app.name}", flush=True)
        print(f"Trades are flowing into 'trades' (Kafka at {brokers}). Try:\n"
              "  SHOW JOBS;\n"
              "  SELECT symbol, price, quantity FROM trades WHERE price > 200 LIMIT 10;\n"
              "  SELECT * FROM big_buys LIMIT 5;\n", flush=True)
        cli = [str(BIN / "velo-cli"), url]
        if args.no_shell or not sys.stdin.isatty():
            script = ["-e", "SHOW JOBS;", "-e",
                      "SELECT symbol, price, quantity FROM trades LIMIT 5;"]
            sys.exit(subprocess.call([*cli, *script]))
        # Ctrl-C belongs to the shell while it runs. A no-op handler, not SIG_IGN: an ignored signal
        # would stay ignored in the shell too (exec keeps SIG_IGN), and its Ctrl-C would do nothing.
        signal.signal(signal.SIGINT, lambda *_: None)
        subprocess.call(cli)
    finally:
        for proc in reversed(procs):
            _stop(proc)


if __name__ == "__main__":
    main()
