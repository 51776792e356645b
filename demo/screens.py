"""Screenshots of the web console, taken from the running trading demo: ``docs/screens/console-*.png``.

    .venv/bin/python -m demo.screens [--out docs/screens] [--warmup 45]

Starts the demo's pieces the way ``demo/run.py`` does (velo-server with the embedded broker, the
trade generator with ten minutes of history, the reference data, every app in ``demo/apps``), then
drives Debian's chromium with Playwright (``tests/e2e/ensure_chromium.sh`` installs it; no browser is
downloaded) through the jobs page, a job's page, the SQL box with a live ``EMIT CHANGES`` table and
the catalog. Everything it started is stopped at the end. The browser tests that check the same
pages are in tests/e2e/test_console.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright
from velo.server.connectors.embedded_kafka import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the demo package lives at the root

from demo.run import BACKFILL_MINUTES, deploy_apps, install_reference_data  # noqa: E402

CHROMIUM = os.environ.get("VELO_CHROMIUM", "/usr/bin/chromium")
# The same flags as the browser tests: the machine has no network, and chromium must not try it.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BIN = Path(sys.executable).parent
LIVE_TABLE = ("SELECT symbol, COUNT(*) AS trades, SUM(quantity) AS volume,\n"
              "       ROUND(SUM(price * quantity) / SUM(quantity), 2) AS vwap\n"
              "FROM trades\nGROUP BY symbol\nEMIT CHANGES;")


def wait_for(condition: str, check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check()`` until true; a clear exit at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"screens: timed out waiting for {condition}")


def start_demo(data_dir: Path, port: int, procs: list[subprocess.Popen[bytes]]) -> str:
    """The demo's server, generator and apps (started processes go into ``procs``); the server's URL."""
    install_reference_data(data_dir)
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(BIN / "velo-server"), "--embedded-kafka", "--port", str(port), "--data-dir",
                               str(data_dir), "--log-format", "text", "--log-level", "warning"])
    procs.append(server)
    wait_for("velo-server", lambda: httpx.get(f"{url}/health", timeout=1).json()["kafka"]["reachable"], 60)
    brokers = httpx.get(f"{url}/health", timeout=5).json()["kafka"]["brokers"]
    generator = subprocess.Popen(
        [sys.executable, "-m", "demo.generator", "--brokers", brokers, "--rate", "100",
         "--backfill-minutes", str(BACKFILL_MINUTES)], cwd=ROOT, stdout=subprocess.PIPE)
    procs.append(generator)
    assert generator.stdout is not None
    if not generator.stdout.readline():  # one line once the history is acknowledged
        sys.exit("screens: the trade generator exited at start")
    deploy_apps(url)

    def outputs() -> bool:
        jobs = httpx.get(f"{url}/jobs", timeout=5).json()["jobs"]
        return bool(jobs) and all(j["metrics"]["records_out"] > 0 and j["metrics"]["lag"] < 500 for j in jobs)

    wait_for("every job's first output, backlog read", outputs, 180)
    return url


def snap(page: Page, path: Path) -> None:
    """A screenshot of the page down to the end of its content (no empty viewport below it)."""
    height = page.evaluate("Math.ceil(document.getElementById('app').getBoundingClientRect().bottom + 18)")
    width = page.viewport_size["width"] if page.viewport_size else 1440
    page.screenshot(path=path, full_page=True, clip={"x": 0, "y": 0, "width": width, "height": max(360, height)})


def shoot(page: Page, url: str, out: Path, warmup: float) -> list[Path]:
    """Drive the console through its pages; one PNG each."""
    shots = []
    page.goto(f"{url}/ui#/jobs")
    expect(page.locator("#jobs-table tbody tr")).to_have_count(7, timeout=30_000)
    # The sparklines are drawn from GET /jobs polled once a second: let a few dozen samples in.
    page.wait_for_timeout(warmup * 1000)
    # One job paused from the page, as an operator would: its rate drops and its lag builds up.
    paused = page.locator("tr[data-job=vwap_5m]")
    paused.locator("button[data-action=pause]").click()
    expect(paused.locator(".state")).to_have_text("PAUSED")
    page.wait_for_timeout(8000)
    page.mouse.move(0, 0)
    shots.append(out / "console-jobs.png")
    snap(page, shots[-1])

    page.locator("tr[data-job=sector_volume] a.job-link").click()
    expect(page.locator("#output-table tbody tr").nth(7)).to_be_visible(timeout=30_000)
    shots.append(out / "console-job.png")
    snap(page, shots[-1])

    page.locator("#nav a[data-view=sql]").click()
    page.locator("#sql-input").fill(LIVE_TABLE)
    page.locator("#from-beginning").check()
    page.locator("#sql-input").press("Control+Enter")
    expect(page.locator("#result tbody tr")).to_have_count(8, timeout=30_000)
    page.wait_for_timeout(4000)  # a few rounds of in-place updates (the flashing cells)
    shots.append(out / "console-sql.png")
    snap(page, shots[-1])
    page.locator("#stop").click()

    page.locator("#nav a[data-view=catalog]").click()
    expect(page.locator("#topics-table tbody tr").first).to_be_visible(timeout=30_000)
    page.mouse.move(0, 0)
    shots.append(out / "console-catalog.png")
    page.screenshot(path=shots[-1])  # the viewport: the function list below it is long
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screens")
    parser.add_argument("--warmup", type=float, default=45.0, help="seconds of live metrics before the first shot")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="velo-screens-") as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            url = start_demo(Path(tmp), free_port(), procs)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                for path in shoot(page, url, args.out, args.warmup):
                    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
                browser.close()
        finally:
            for proc in reversed(procs):
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
