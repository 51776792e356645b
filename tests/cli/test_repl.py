"""The interactive shell driven through prompt_toolkit's pipe input (no terminal needed)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput
from velo.cli.config import Config, Connection
from velo.cli.repl import Repl, SecretFilteringHistory, should_submit

from tests.cli.fakeserver import FakeServer


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp:
        yield inp


def make_repl(
    url: str, pipe: PipeInput, *, token: str | None = None, config: Config | None = None
) -> tuple[Repl, io.StringIO]:
    out = io.StringIO()
    repl = Repl(
        Connection(url, token),
        config or Config(),
        input=pipe,
        output=DummyOutput(),
        out=out,
        history_file=False,
        background_refresh=False,
        color=False,
    )
    return repl, out


def drive(repl: Repl, pipe: PipeInput, keys: str) -> int:
    pipe.send_text(keys)
    with create_app_session(input=pipe, output=DummyOutput()):
        return repl.run()


@pytest.mark.parametrize(
    ("text", "submit"),
    [
        ("SELECT 1;", True),
        ("SELECT 1", False),
        ("", True),
        ("\\q", True),
        ("  \\T csv", True),
        ("help", True),
        ("exit;", True),
        ("quit", True),
        ("SELECT ';'", False),
    ],
)
def test_enter_rule(text: str, submit: bool) -> None:
    assert should_submit(text) is submit


def test_statement_spanning_lines_runs_once_complete(fake_server: FakeServer, pipe: PipeInput) -> None:
    repl, out = make_repl(fake_server.url, pipe)
    before = len(fake_server.state.requests)
    code = drive(repl, pipe, "SELECT *\rFROM finite;\r\x04")
    assert code == 0
    text = out.getvalue()
    assert "Connected to" in text and "BRK.A" in text and "3 rows in" in text
    sent = fake_server.state.requests[before:]
    assert [r[1] for r in sent] == ["/query"]
    assert sent[0][2]["sql"] == "SELECT *\nFROM finite"


def test_meta_commands(fake_server: FakeServer, pipe: PipeInput, tmp_path: Path) -> None:
    script = tmp_path / "s.sql"
    script.write_text("SHOW JOBS;\nSELECT * FROM finite;\n")
    target = tmp_path / "out.txt"
    repl, out = make_repl(fake_server.url, pipe)
    keys = "\r".join(
        [
            "\\T csv",
            "SELECT * FROM finite;",
            "\\x",
            "SELECT * FROM finite;",
            "\\x",
            "\\timing",
            f"\\i {script}",
            f"\\o {target}",
            "SHOW JOBS;",
            "\\o",
            "\\jobs",
            "\\T nonsense",
            "\\?",
            "\\bogus",
            "\\q",
            "",
        ]
    )
    drive(repl, pipe, keys)
    text = out.getvalue()
    assert "output format is csv" in text and "AAPL,187.25" in text
    assert "-[ RECORD 1 ]" in text and "symbol | AAPL" in text
    assert "timing is off" in text
    assert "name,state" in text  # \i ran the file's SHOW JOBS in csv
    assert target.read_text().startswith("name,state")
    assert "results go to the terminal" in text
    assert "name,state,app,source,sink" in text  # \jobs
    assert "(one of table, vertical" in text
    assert "Meta commands" in text
    assert "unknown command \\bogus" in text
    assert repl.done


def test_ctrl_c_at_the_prompt_does_not_exit(fake_server: FakeServer, pipe: PipeInput) -> None:
    repl, out = make_repl(fake_server.url, pipe)
    drive(repl, pipe, "SELECT half\x03SHOW JOBS;\r\x04")
    assert "| name | state |" in out.getvalue()


def test_connect_to_a_profile_and_back(fake_server: FakeServer, pipe: PipeInput) -> None:
    other = FakeServer().start()
    try:
        config = Config(profiles={"other": {"url": other.url}})
        repl, out = make_repl(fake_server.url, pipe, config=config)
        drive(repl, pipe, "\\c other\rSHOW JOBS;\r\\c " + fake_server.url + "\r\x04")
        assert any(r[1] == "/statements" for r in other.state.requests)
        assert out.getvalue().count("Connected to") == 3
        assert repl.client.url == fake_server.url
    finally:
        other.stop()


def test_unreachable_at_start_is_said_once(pipe: PipeInput) -> None:
    repl, out = make_repl("http://127.0.0.1:1", pipe)
    drive(repl, pipe, "\x04")
    assert out.getvalue().count("is not reachable") == 1
    assert repl.session.connected is False
    assert "unreachable" in repl._toolbar()


def test_toolbar_shows_server_jobs_format_and_sets(fake_server: FakeServer, pipe: PipeInput) -> None:
    repl, _ = make_repl(fake_server.url, pipe, token="hidden-token")
    drive(repl, pipe, "SET 'auto.offset.reset' = 'earliest';\r\x04")
    bar = repl._toolbar()
    assert fake_server.url in bar and "connected" in bar and "running" in bar
    assert "output table" in bar and "SET auto.offset.reset=earliest" in bar
    assert "hidden-token" not in bar
    assert repl._message() == f"velo@127.0.0.1:{fake_server.port}> "


def test_history_never_keeps_the_token() -> None:
    inner = InMemoryHistory()
    hist = SecretFilteringHistory(inner, lambda: ["s3cr3t"])
    hist.append_string("SHOW JOBS;")
    hist.append_string("\\c http://x --token s3cr3t")
    assert list(inner.load_history_strings()) == ["SHOW JOBS;"]
    assert hist.get_strings() == ["SHOW JOBS;"]


def test_edit_puts_the_edited_statement_back_in_the_prompt(
    fake_server: FakeServer, pipe: PipeInput, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "SELECT * FROM finite;\\n" > "$1"\n')
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    repl, out = make_repl(fake_server.url, pipe)
    before = len(fake_server.state.requests)
    drive(repl, pipe, "SHOW JOBS;\r\\e\r\r\x04")  # the second Enter runs what the editor wrote
    sent = [r[2]["sql"] for r in fake_server.state.requests[before:]]
    assert sent == ["SHOW JOBS", "SELECT * FROM finite"]
    assert "BRK.A" in out.getvalue()
