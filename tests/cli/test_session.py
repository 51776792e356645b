"""Statement dispatch: which endpoint each statement reaches, what is printed, how failures end a run.

Most tests run against the scripted fake server (real HTTP on loopback); the Ctrl-C path uses a stub
stream so the interrupt lands at an exact point.
"""

from __future__ import annotations

import io
import json
from typing import Any

from velo.cli.client import ColumnInfo, Done, Header, Row, VeloClient
from velo.cli.session import OutputSettings, Session
from velo.cli.statements import Statement

from tests.cli.fakeserver import FakeServer


def make(server: FakeServer, **settings: Any) -> tuple[Session, io.StringIO, io.StringIO, VeloClient]:
    client = VeloClient(server.url)
    out, err = io.StringIO(), io.StringIO()
    s = Session(client, OutputSettings(**settings), out=out, console=out, err=err)
    return s, out, err, client


def test_show_goes_to_statements_and_prints_a_table(fake_server: FakeServer) -> None:
    s, out, _, _ = make(fake_server, interactive=True)
    before = len(fake_server.state.requests)
    result = s.run_text("SHOW JOBS;")
    assert result.ok
    assert fake_server.state.requests[before][1] == "/statements"
    assert "| name | state |" in out.getvalue()
    assert "0 rows in" in out.getvalue()


def test_select_streams_from_query_with_header_and_summary(fake_server: FakeServer) -> None:
    s, out, _, _ = make(fake_server, interactive=True)
    result = s.run_text("SELECT * FROM finite;")
    assert result.ok and result.outcomes[0].rows == 3
    text = out.getvalue()
    assert text.index("| symbol") < text.index("AAPL") < text.index("BRK.A")
    assert "| MSFT       |       NULL |" in text
    assert "3 rows in" in text


def test_batch_stream_defaults_to_jsonl_and_no_summary(fake_server: FakeServer) -> None:
    s, out, err, _ = make(fake_server, fmt="tsv", stream_fmt="jsonl")
    assert s.run_text("SELECT * FROM finite; SHOW JOBS;").ok
    lines = out.getvalue().splitlines()
    assert json.loads(lines[0]) == {"symbol": "AAPL", "price": 187.25}
    assert lines[3] == "name\tstate"
    assert err.getvalue() == ""


def test_set_properties_are_sent_with_later_requests_but_cli_keys_are_not(fake_server: FakeServer) -> None:
    s, out, _, _ = make(fake_server, interactive=True)
    s.run_text("SET 'auto.offset.reset' = 'earliest'; SET 'cli.live' = 'false'; SELECT * FROM finite;")
    sent = fake_server.state.requests[-1][2]
    assert sent["properties"] == {"auto.offset.reset": "earliest"}
    assert s.settings.live is False
    assert "Set 'auto.offset.reset' = 'earliest'" in out.getvalue()
    s.run_text("UNSET 'auto.offset.reset'; SHOW JOBS;")
    assert fake_server.state.requests[-1][2]["properties"] == {}


def test_variables_go_with_statements(fake_server: FakeServer) -> None:
    client = VeloClient(fake_server.url)
    s = Session(client, OutputSettings(), out=io.StringIO(), err=io.StringIO(), variables={"ENV": "dev"})
    s.run_text("SHOW JOBS;")
    assert fake_server.state.requests[-1][2]["variables"] == {"ENV": "dev"}


def test_job_and_message_results_and_catalog_refresh_hook(fake_server: FakeServer) -> None:
    s, out, _, _ = make(fake_server, interactive=True)
    calls: list[int] = []
    s.on_catalog_change = lambda: calls.append(1)
    assert s.run_text("CREATE STREAM hook_job AS SELECT * FROM trades; STOP JOB hook_job;").ok
    assert "Job hook_job started" in out.getvalue()
    assert "Job hook_job stopped" in out.getvalue()
    assert calls == [1, 1]


def test_error_shows_caret_in_the_statement_and_stops(fake_server: FakeServer) -> None:
    s, out, err, _ = make(fake_server, interactive=True)
    result = s.run_text("SHOW JOBS;\nCREATE STREAM x AS\nSELECT a BAD FROM t;\nSHOW JOBS;")
    assert [o.ok for o in result.outcomes] == [True, False]  # the last statement did not run
    lines = err.getvalue().splitlines()
    assert lines[0] == "ERROR sql_syntax: Unexpected token BAD"
    # The statement starts on line 2 of the text; the error is on its second line → line 3.
    assert lines[1] == "3 | SELECT a BAD FROM t"
    assert lines[2] == "  |          ^"
    assert "Traceback" not in err.getvalue() + out.getvalue()


def test_on_error_continue_runs_the_rest(fake_server: FakeServer) -> None:
    s, _, _, _ = make(fake_server)
    result = s.run_text("STOP JOB missing; SHOW JOBS;", on_error="continue")
    assert [o.ok for o in result.outcomes] == [False, True]
    assert not result.ok


def test_query_error_before_stream_has_a_caret(fake_server: FakeServer) -> None:
    s, out, err, _ = make(fake_server, interactive=True)
    result = s.run_text("SELECT *\nFROM nowhere;")
    assert not result.ok
    assert "2 | FROM nowhere" in err.getvalue()
    assert "rows in" not in out.getvalue()  # no summary for a query that never started


def test_query_failing_midway_reports_the_error(fake_server: FakeServer) -> None:
    s, _out, err, _ = make(fake_server, interactive=True)
    result = s.run_text("SELECT * FROM fails;")
    assert not result.ok and result.outcomes[0].rows == 1
    assert "ERROR internal: boom" in err.getvalue()


def test_unreachable_server_stops_the_run() -> None:
    client = VeloClient("http://127.0.0.1:1")
    err = io.StringIO()
    s = Session(client, OutputSettings(), out=io.StringIO(), err=err)
    result = s.run_text("SHOW JOBS; SHOW JOBS;", on_error="continue")
    assert result.unreachable and len(result.outcomes) == 1
    assert s.connected is False
    assert err.getvalue().startswith("ERROR cannot reach the server at http://127.0.0.1:1")


def test_batch_limit_and_timeout_bound_streams(fake_server: FakeServer) -> None:
    s, _out, _, _ = make(fake_server, stream_fmt="jsonl", limit=4)
    assert s.run_text("SELECT * FROM endless;").outcomes[0].rows == 4
    s2, _out2, _, _ = make(fake_server, stream_fmt="jsonl", timeout=0.2)
    result = s2.run_text("SELECT * FROM endless;")
    assert result.ok and result.outcomes[0].rows >= 1


def test_live_table_for_keyed_changes(fake_server: FakeServer) -> None:
    s, out, _, _ = make(fake_server, interactive=True, live=True)
    # The live table only draws on a terminal; a StringIO console counts as one here.
    result = s.run_text("SELECT symbol, COUNT(*) AS n FROM agg GROUP BY symbol EMIT CHANGES;")
    assert result.ok
    text = out.getvalue()
    assert "\x1b[" in text  # redrawn in place
    final = text[text.rindex("\x1b[J") :]
    assert "| AAPL   | 3 |" in final and "| MSFT   | 2 |" in final
    assert "2 keys" in final


def test_without_live_changes_print_as_rows(fake_server: FakeServer) -> None:
    s, out, _, _ = make(fake_server, interactive=True, live=False)
    s.run_text("SELECT symbol, COUNT(*) AS n FROM agg GROUP BY symbol EMIT CHANGES;")
    assert out.getvalue().count("AAPL") == 3


class _InterruptingStream:
    """Yields a header and rows, then raises KeyboardInterrupt as Ctrl-C would."""

    def __init__(self, rows: int) -> None:
        self.events: list[Any] = [Header("q-9", [ColumnInfo("a", "INT")], "none")]
        self.events += [Row([i]) for i in range(rows)]
        self.cancel_calls = 0
        self.finished = False
        self.query_id = "q-9"

    def get(self, timeout: float | None = None) -> Any:
        if self.events:
            return self.events.pop(0)
        if self.cancel_calls:
            return Done(None, "cancelled")
        raise KeyboardInterrupt

    def cancel(self) -> None:
        self.cancel_calls += 1

    def wait_closed(self, timeout: float = 2.0) -> None:
        pass


class _StubClient:
    def __init__(self, stream: _InterruptingStream) -> None:
        self.stream = stream

    def open_query(self, sql: str, properties: Any, limit: Any) -> _InterruptingStream:
        return self.stream


def test_ctrl_c_cancels_the_query_and_reports_rows() -> None:
    stream = _InterruptingStream(rows=3)
    out = io.StringIO()
    s = Session(_StubClient(stream), OutputSettings(interactive=True), out=out, console=out)  # type: ignore[arg-type]
    outcome = s.run_statement(Statement("SELECT a FROM t"))
    assert outcome.interrupted and outcome.ok and outcome.rows == 3
    assert stream.cancel_calls == 1
    assert "3 rows in" in out.getvalue() and "(cancelled)" in out.getvalue()
    assert out.getvalue().rstrip().splitlines()[-2].startswith("+")  # the table is closed


def test_tall_results_go_through_the_pager_short_ones_do_not(fake_server: FakeServer) -> None:
    paged: list[tuple[str, str]] = []
    client = VeloClient(fake_server.url)
    out = io.StringIO()
    s = Session(
        client,
        OutputSettings(interactive=True, pager="less -SRXF"),
        out=out,
        console=out,
        size=lambda: (80, 6),
        pager=lambda cmd, text: paged.append((cmd, text)) is None,
    )
    s.run_text("SHOW JOBS;")  # 3 lines: fits
    assert paged == []
    s.run_text("CREATE STREAM pager_a AS SELECT 1 FROM t; CREATE STREAM pager_b AS SELECT 1 FROM t;")
    s.run_text("SHOW JOBS;")  # 6 lines: taller than 6 - 2
    assert len(paged) == 1 and paged[0][0] == "less -SRXF" and "pager_b" in paged[0][1]
    assert "pager_b" not in out.getvalue().split("Job pager_b started")[-1]
    s.run_text("STOP JOB pager_a; STOP JOB pager_b;")
