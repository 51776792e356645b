"""The real ``velo-cli`` in a pseudo-terminal (pexpect): type, see rows, Ctrl-C, get the prompt back.

Two servers: the scripted fake (fast, deterministic: an endless stream, keyed updates, errors) and, in
``test_e2e_*``, a real ``velo-server`` on a real broker (records produced with aiokafka). Every wait is
``expect`` on output with a timeout — no sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest

from tests.cli.fakeserver import FakeServer

VELO_CLI = str(Path(sys.executable).parent / "velo-cli")
PROMPT = r"velo@127\.0\.0\.1:\d+>"


def spawn(url: str, tmp_path: Path, *args: str) -> pexpect.spawn:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": "xterm",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
        "PAGER": "",
        # pexpect is no terminal emulator: without this, prompt_toolkit waits 1 s for each cursor-position
        # report that never comes.
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }
    child = pexpect.spawn(VELO_CLI, [url, *args], env=env, encoding="utf-8", timeout=20, dimensions=(40, 140))
    return child


@pytest.fixture
def shell(fake_server: FakeServer, tmp_path: Path) -> Iterator[pexpect.spawn]:
    child = spawn(fake_server.url, tmp_path)
    child.expect(PROMPT)
    yield child
    if child.isalive():
        child.terminate(force=True)


def test_show_and_multiline_select(shell: pexpect.spawn) -> None:
    shell.sendline("SHOW JOBS;")
    shell.expect(r"\| name \| state \|")
    shell.expect(r"rows? in \d+\.\ds")
    shell.expect(PROMPT)
    shell.send("SELECT *\r")  # not complete: a continuation line, nothing sent yet
    shell.expect("->")
    shell.send("FROM finite;\r")
    shell.expect("BRK.A")
    shell.expect(r"3 rows in \d+\.\ds")
    shell.expect(PROMPT)


def test_ctrl_c_cancels_a_streaming_select_and_returns_to_the_prompt(
    shell: pexpect.spawn, fake_server: FakeServer
) -> None:
    shell.sendline("SELECT * FROM endless;")
    shell.expect(r"\| symbol")  # header at once
    shell.expect(r"\| S3 ")  # rows as they arrive
    shell.sendintr()
    shell.expect(r"(\d+) rows in \d+\.\ds \(cancelled\)")
    shell.expect(PROMPT)
    # The shell is still alive and usable; the server saw the cancel.
    assert any(m == "DELETE" for m, _, _ in fake_server.state.requests)
    shell.sendintr()  # Ctrl-C at an empty prompt does not exit
    shell.expect(PROMPT)
    shell.sendline("SHOW JOBS;")
    shell.expect(r"\| name \| state \|")
    shell.expect(PROMPT)
    shell.sendeof()  # Ctrl-D does
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0


def test_error_caret_and_meta_commands(shell: pexpect.spawn, tmp_path: Path) -> None:
    shell.sendline("SELECT a BAD;")
    shell.expect("ERROR sql_syntax: Unexpected token BAD")
    shell.expect(r"1 \| SELECT a BAD;?\s+\|\s+\^")
    shell.expect(PROMPT)
    shell.sendline(r"\T csv")
    shell.expect("output format is csv")
    shell.sendline("SELECT * FROM finite;")
    shell.expect("AAPL,187.25")
    shell.expect(PROMPT)
    out = tmp_path / "out.csv"
    shell.sendline(rf"\o {out}")
    shell.expect("results go to")
    shell.sendline("SELECT * FROM finite;")
    shell.expect(PROMPT)
    shell.sendline(r"\o")
    shell.expect("results go to the terminal")
    assert "MSFT," in out.read_text()
    shell.sendline(r"\nope")
    shell.expect(r"unknown command \\nope")
    shell.sendline("help")
    shell.expect("Meta commands")
    shell.sendline(r"\q")
    shell.expect(pexpect.EOF)


def test_unreachable_server_still_starts(tmp_path: Path) -> None:
    child = spawn("http://127.0.0.1:1", tmp_path)
    child.expect("is not reachable")
    child.expect(PROMPT)
    child.sendline("SHOW JOBS;")
    child.expect("cannot reach the server")
    child.expect(PROMPT)
    child.sendline("exit")
    child.expect(pexpect.EOF)


def test_token_is_never_written_to_history(fake_server: FakeServer, tmp_path: Path) -> None:
    child = spawn(fake_server.url, tmp_path, "--token", "tok-123456")
    child.expect(PROMPT)
    child.sendline("SELECT 'tok-123456' FROM finite;")
    child.expect(PROMPT)
    child.sendline("SHOW JOBS;")
    child.expect(PROMPT)
    child.sendline(r"\q")
    child.expect(pexpect.EOF)
    history = (tmp_path / "state" / "velo" / "history").read_text()
    assert "SHOW JOBS;" in history
    assert "tok-123456" not in history


# --------------------------------------------------------------------------- against the real server


def _produce(broker: str, topic: str, n: int) -> None:
    from tests.kafka_helpers import create_topic, produce

    async def go() -> None:
        await create_topic(broker, topic, 1)
        await produce(broker, topic, [{"symbol": f"SYM{i}", "price": 100.0 + i} for i in range(n)])

    asyncio.run(go())


def test_e2e_select_rows_ctrl_c_prompt(
    server_url: str, broker: str, topic_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = topic_name("cli")
    _produce(broker, topic, 20)
    child = spawn(server_url, tmp_path)
    try:
        child.expect("Connected to")
        child.expect(PROMPT)
        child.sendline("SET 'auto.offset.reset' = 'earliest';")
        child.expect("Set 'auto.offset.reset'")
        child.expect(PROMPT)
        child.sendline(f"SELECT symbol, price FROM {topic};")
        child.expect(r"\| symbol")
        child.expect("SYM19")  # every produced record arrived; the query keeps running
        child.sendintr()
        child.expect(r"(\d+) rows? in \d+\.\ds")
        assert int(child.match.group(1)) == 20
        child.expect(PROMPT)
        child.sendline("SHOW JOBS;")
        # Wait for the result before the prompt: the accepted line is redrawn with the prompt in it, and a
        # Ctrl-D typed while a statement runs (terminal in cooked mode) would be lost.
        child.expect(r"rows? in \d+\.\ds")
        child.expect(PROMPT)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert re.search(r"ERROR", child.before or "") is None


def test_e2e_batch_and_live_aggregate(
    server_url: str, broker: str, topic_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = topic_name("cliagg")
    from tests.kafka_helpers import create_topic, produce

    async def go() -> None:
        await create_topic(broker, topic, 1)
        await produce(broker, topic, [{"symbol": s, "price": 1.0} for s in ["A", "B", "A", "A", "B"]])

    asyncio.run(go())

    sql = (
        "SET 'auto.offset.reset' = 'earliest';"
        # The server may fold several updates of one key into one change: stop at the first two.
        f"SELECT symbol, COUNT(*) AS n FROM {topic} GROUP BY symbol EMIT CHANGES LIMIT 2;"
    )
    p = subprocess.run(
        [VELO_CLI, server_url, "-e", sql], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(rows) == 2 and all(r["_op"] in ("insert", "upsert") for r in rows)
    assert {r["symbol"] for r in rows} == {"A", "B"}

    child = spawn(server_url, tmp_path)
    try:
        child.expect(PROMPT)
        child.sendline("SET 'auto.offset.reset' = 'earliest';")
        child.expect(PROMPT)
        child.sendline(f"SELECT symbol, COUNT(*) AS n FROM {topic} GROUP BY symbol EMIT CHANGES;")
        child.expect(r"\| A +\| 3 \|")  # one row per key, updated in place to the final counts
        child.expect(r"\| B +\| 2 \|")
        child.expect("2 keys")
        child.sendintr()
        child.expect(r"\d+ rows? in \d+\.\ds")
        child.expect(PROMPT)
    finally:
        child.terminate(force=True)
