"""The ``velo-cli`` command: batch mode, admin subcommands and exit codes, run as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.fakeserver import FakeServer

CLI = [sys.executable, "-m", "velo.cli.main"]


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        # stdin is a pipe unless given: batch mode even without -e
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def test_execute_many_outputs_tsv_and_jsonl(fake_server: FakeServer) -> None:
    p = run(fake_server.url, "-e", "SHOW JOBS;", "-e", "SELECT * FROM finite;")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "name\tstate"
    assert json.loads(lines[-1]) == {"symbol": "BRK.A", "price": 612000.5}
    assert "\x1b[" not in p.stdout + p.stderr  # no colour in batch mode


def test_output_flag_applies_to_streams_too(fake_server: FakeServer) -> None:
    p = run("--server", fake_server.url, "-o", "csv", "-e", "SELECT * FROM finite")
    assert p.stdout.splitlines() == ["symbol,price", "AAPL,187.25", "MSFT,", "BRK.A,612000.5"]


def test_file_and_stdin(fake_server: FakeServer, tmp_path: Path) -> None:
    f = tmp_path / "s.sql"
    f.write_text("-- setup\nSHOW JOBS;\nSELECT * FROM finite;\n")
    assert run(fake_server.url, "-f", str(f)).returncode == 0
    p = run(fake_server.url, "-f", "-", stdin="SELECT * FROM finite;")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 3
    piped = run(fake_server.url, stdin="SELECT * FROM finite;")  # piped stdin alone is batch mode
    assert piped.returncode == 0 and len(piped.stdout.splitlines()) == 3


def test_exit_1_on_failure_and_error_names_file_line(fake_server: FakeServer, tmp_path: Path) -> None:
    f = tmp_path / "bad.sql"
    f.write_text("SHOW JOBS;\n\nCREATE STREAM x AS\n  SELECT BAD FROM t;\nSHOW JOBS;\n")
    p = run(fake_server.url, "-f", str(f))
    assert p.returncode == 1
    assert "4 |   SELECT BAD FROM t" in p.stderr
    assert p.stdout.count("name\tstate") == 1  # stopped at the failure
    cont = run(fake_server.url, "-f", str(f), "--on-error", "continue")
    assert cont.returncode == 1 and cont.stdout.count("name\tstate") == 2
    assert "Traceback" not in p.stderr + cont.stderr


def test_exit_2_on_usage_errors(fake_server: FakeServer) -> None:
    assert run("--output", "xml").returncode == 2
    assert run(fake_server.url, "-f", "/nonexistent/file.sql").returncode == 2
    assert run("--var", "novalue", "-e", "SHOW JOBS").returncode == 2
    p = run("--profile", "nope", "-e", "SHOW JOBS")
    assert p.returncode == 2 and "no profile 'nope'" in p.stderr


def test_exit_3_when_unreachable() -> None:
    p = run("http://127.0.0.1:1", "-e", "SHOW JOBS;")
    assert p.returncode == 3
    assert "cannot reach the server" in p.stderr and "Traceback" not in p.stderr
    assert run("--server", "http://127.0.0.1:1", "jobs").returncode == 3


def test_limit_and_timeout(fake_server: FakeServer) -> None:
    p = run(fake_server.url, "--limit", "5", "-e", "SELECT * FROM endless;")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 5
    t = run(fake_server.url, "--timeout", "0.3", "-e", "SELECT * FROM endless;")
    assert t.returncode == 0 and len(t.stdout.splitlines()) >= 1


def test_server_resolution_env_and_profile(fake_server: FakeServer, tmp_path: Path) -> None:
    assert run("-e", "SHOW JOBS", env={"VELO_SERVER": fake_server.url}).returncode == 0
    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "velo" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f'[profiles.fake]\nurl = "{fake_server.url}"\n')
    assert run("--profile", "fake", "-e", "SHOW JOBS").returncode == 0


def test_default_config_is_written_on_first_run(fake_server: FakeServer) -> None:
    run(fake_server.url, "-e", "SHOW JOBS")
    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "velo" / "config.toml"
    assert cfg.exists() and "[profiles.prod]" in cfg.read_text()
    assert cfg.stat().st_mode & 0o077 == 0


def test_admin_subcommands(fake_server: FakeServer, tmp_path: Path) -> None:
    app = tmp_path / "app.sql"
    app.write_text("-- @app: a\nCREATE STREAM adm_one AS SELECT * FROM trades;\n")
    p = run("deploy-app", str(app), "--var", "X=1", "--server", fake_server.url)
    assert p.returncode == 0 and "adm_one\tRUNNING" in p.stdout
    assert fake_server.state.requests[-1][2]["variables"] == {"X": "1"}
    jobs = run(fake_server.url, "jobs")  # URL before the subcommand works like --server
    assert jobs.returncode == 0 and "adm_one" in jobs.stdout
    # ... also with connection flags between the URL and the subcommand (a flag's value is no subcommand).
    flagged = run(fake_server.url, "--token", "jobs", "-o", "csv", "--insecure", "jobs")
    assert flagged.returncode == 0 and flagged.stdout.startswith("name,state") and "adm_one" in flagged.stdout
    status = run("status", "adm_one", "--server", fake_server.url, "-o", "table")
    assert "| state          | RUNNING" in status.stdout and "deployed" in status.stdout
    assert run("--server", fake_server.url, "pause", "adm_one").stdout.strip() == "adm_one\tPAUSED"
    assert run("--server", fake_server.url, "resume", "adm_one").stdout.strip() == "adm_one\tRUNNING"
    assert run("--server", fake_server.url, "stop", "adm_one").stdout.strip() == "adm_one\tSTOPPED"
    missing = run("--server", fake_server.url, "stop", "adm_one")
    assert missing.returncode == 1 and "not_found" in missing.stderr
    health = run("--server", fake_server.url, "health")
    assert health.returncode == 0 and "status\tok" in health.stdout
    assert "trades\t4\t12" in run("--server", fake_server.url, "topics").stdout


def test_deploy_app_rejected_shows_the_file_line(fake_server: FakeServer, tmp_path: Path) -> None:
    app = tmp_path / "bad.sql"
    app.write_text("CREATE STREAM ok1 AS SELECT * FROM t;\nCREATE STREAM b AS SELECT BAD FROM t;\n")
    p = run("deploy-app", str(app), "--server", fake_server.url)
    assert p.returncode == 1
    assert "2 | CREATE STREAM b AS SELECT BAD FROM t;" in p.stderr


def test_print_subcommand(fake_server: FakeServer) -> None:
    p = run("--server", fake_server.url, "print", "trades", "--from-beginning", "--limit", "2")
    assert p.returncode == 0
    assert fake_server.state.requests[-1][2]["sql"] == "PRINT 'trades' FROM BEGINNING LIMIT 2"


# What `velo-cli --help` must offer (docs/cli.md lists the same): spelled out, so that a command or flag
# that disappears fails here rather than silently vanishing from the help together with the code.
COMMANDS = {"deploy-app", "health", "jobs", "pause", "print", "resume", "status", "stop", "topics"}
CONNECTION_OPTIONS = ["--server", "--profile", "--token", "--ca-cert", "--insecure", "--output"]
SHELL_OPTIONS = ["--execute", "--file", "--var", "--on-error", "--limit", "--timeout", "--local", "--vi"]


def test_help_and_version() -> None:
    from importlib.metadata import distribution

    from velo.cli.main import cli

    dist = distribution("velo")
    (entry,) = [e for e in dist.entry_points if e.group == "console_scripts" and e.name == "velo-cli"]
    assert entry.value == "velo.cli.main:main"
    script = Path(sys.executable).with_name("velo-cli")  # the console script pip installed for that entry
    assert script.is_file()

    def velo_cli(*args: str) -> str:
        p = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert p.returncode == 0 and p.stderr == "", (args, p.stderr)
        return p.stdout

    assert velo_cli("--version").strip() == f"velo-cli, version {dist.version}"

    help_text = velo_cli("--help")
    assert help_text.startswith("Usage: velo-cli [OPTIONS] [COMMAND] [ARGS]...")
    listed = {line.split()[0] for line in help_text.split("\nCommands:\n", 1)[1].splitlines() if line.strip()}
    assert listed == COMMANDS
    assert listed == {name for name, cmd in cli.commands.items() if not cmd.hidden}  # and nothing unlisted
    options = re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", help_text, re.MULTILINE)
    assert options == [*CONNECTION_OPTIONS, *SHELL_OPTIONS, "--version", "--help"]
    for name in sorted(COMMANDS):  # the connection flags also work after each subcommand
        sub = velo_cli(name, "--help")
        assert sub.startswith(f"Usage: velo-cli {name} [OPTIONS]")
        assert all(opt in sub for opt in CONNECTION_OPTIONS), (name, sub)


def test_reader_leaving_a_pipe_ends_the_stream_quietly(fake_server: FakeServer) -> None:
    fake_server.state.disconnect_event.clear()
    proc = subprocess.Popen(
        [*CLI, fake_server.url, "-e", "SELECT * FROM endless;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    for _ in range(3):
        assert json.loads(proc.stdout.readline())["symbol"].startswith("S")
    proc.stdout.close()  # like `| head -3`
    assert proc.wait(timeout=30) == 0
    assert "Traceback" not in proc.stderr.read()
    assert fake_server.state.disconnect_event.wait(10)


def test_local_starts_and_stops_a_private_server(tmp_path: Path) -> None:
    p = run("--local", "-e", "SHOW JOBS;")
    assert p.returncode == 0, p.stderr
    m = re.search(r"starting a local velo-server on (http://127\.0\.0\.1:(\d+))", p.stderr)
    assert m, p.stderr
    assert (Path(os.environ["XDG_STATE_HOME"]) / "velo" / "local-server.log").stat().st_size > 0
    # Stopped on exit: nothing listens on its port any more.
    with socket.socket() as s, pytest.raises(OSError):
        s.connect(("127.0.0.1", int(m.group(2))))
