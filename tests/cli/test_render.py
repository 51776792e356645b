"""Renderers as plain functions: rows in, text out."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from velo.cli import render
from velo.cli.client import VeloError

COLS = ["symbol", "price", "qty"]
ROWS = [["AAPL", 187.25, 10], ["MSFT", None, 2000], ["BRK.A", 612000.5, 1]]


def test_table_aligns_and_right_aligns_numbers() -> None:
    out = render.render_table(COLS, ROWS)
    assert out.splitlines() == [
        "+--------+----------+------+",
        "| symbol | price    | qty  |",
        "+--------+----------+------+",
        "| AAPL   |   187.25 |   10 |",
        "| MSFT   |     NULL | 2000 |",
        "| BRK.A  | 612000.5 |    1 |",
        "+--------+----------+------+",
    ]


def test_table_with_no_rows_shows_header_only() -> None:
    assert render.render_table(["a"], []).splitlines() == ["+---+", "| a |", "+---+"]


def test_table_counts_wide_characters_by_display_width() -> None:
    lines = render.render_table(["n"], [["株価"], ["ab"]]).splitlines()
    assert len({render.display_width(line) for line in lines}) == 1


def test_table_escapes_newlines_and_tolerates_short_rows() -> None:
    out = render.render_table(["a", "b"], [["x\ny"]])
    assert "x↵y" in out and "NULL" in out


def test_vertical() -> None:
    out = render.render_vertical(COLS, ROWS[:2])
    lines = out.splitlines()
    assert lines[0].startswith("-[ RECORD 1 ]")
    assert lines[1] == "symbol | AAPL"
    assert lines[2] == "price  | 187.25"
    assert lines[4].startswith("-[ RECORD 2 ]")
    assert "price  | NULL" in lines


def test_json_and_jsonl_are_objects_keyed_by_column() -> None:
    assert json.loads(render.render_json(COLS, ROWS))[1] == {"symbol": "MSFT", "price": None, "qty": 2000}
    lines = render.render_jsonl(COLS, ROWS).splitlines()
    assert [json.loads(x)["symbol"] for x in lines] == ["AAPL", "MSFT", "BRK.A"]


def test_json_handles_decimal_nested_and_bool() -> None:
    out = render.render_jsonl(["d", "m", "b"], [[Decimal("1.10"), {"k": [1, 2]}, True]])
    assert json.loads(out) == {"d": "1.10", "m": {"k": [1, 2]}, "b": True}


def test_csv_quotes_and_null_is_empty() -> None:
    out = render.render_csv(["a", "b"], [["x,y", None], ['say "hi"', 1.5]])
    assert out.splitlines() == ["a,b", '"x,y",', '"say ""hi""",1.5']


def test_tsv_escapes_tabs_and_newlines() -> None:
    out = render.render_tsv(["a", "b"], [["x\ty", "l1\nl2"], [None, True]])
    assert out.splitlines() == ["a\tb", "x\\ty\tl1\\nl2", "\ttrue"]


def test_render_rejects_unknown_format() -> None:
    with pytest.raises(ValueError):
        render.render("xml", ["a"], [])


def test_format_cell_keeps_float_precision() -> None:
    assert render.format_cell(0.1 + 0.2) == "0.30000000000000004"
    assert render.format_cell(False) == "false"
    assert render.format_cell(None, "csv") == ""


def test_rows_summary() -> None:
    assert render.rows_summary(1, 0.04) == "1 row in 0.0s"
    assert render.rows_summary(42, 3.27) == "42 rows in 3.3s"


def test_stream_table_printer_prints_header_at_once_and_widens() -> None:
    p = render.stream_printer("table", ["symbol", "price"], ["STRING", "DOUBLE"])
    head = p.header().splitlines()
    assert head[1].startswith("| symbol")
    assert len(head) == 3
    first = p.row(["AAPL", 1.5])
    assert first.endswith(" |\n") and "1.5" in first
    assert len(first.rstrip("\n")) == len(head[0])  # sized from types: fits under the header
    long = p.row(["A" * 30, 2.0])
    assert "A" * 30 in long  # never truncated
    reprinted = long.splitlines()
    assert len(reprinted) == 4 and reprinted[1].startswith("| symbol")  # a fresh header at the new widths
    assert len({len(line) for line in reprinted}) == 1  # header and the long row line up
    assert p.row(["MSFT", 3.0]).count("\n") == 1  # no header again while the widths hold
    assert p.footer().startswith("+")


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_stream_json_is_one_object_per_line_with_op(fmt: str) -> None:
    p = render.stream_printer(fmt, ["k", "n"])
    assert p.header() == ""
    line = p.row(["a", 1], op="upsert")
    assert json.loads(line) == {"k": "a", "n": 1, "_op": "upsert"}


def test_stream_csv_tsv_vertical() -> None:
    csv_p = render.stream_printer("csv", ["a", "b"])
    assert csv_p.header() + csv_p.row([1, None]) == "a,b\n1,\n"
    tsv_p = render.stream_printer("tsv", ["a", "b"])
    assert tsv_p.header() + tsv_p.row(["x", 2]) == "a\tb\nx\t2\n"
    v = render.stream_printer("vertical", ["a"])
    v.row([1])
    assert v.row([2]).startswith("-[ RECORD 2 ]")


def test_live_table_upserts_and_deletes_by_key() -> None:
    live = render.LiveTable(["symbol", "n"])
    live.apply(["AAPL", 1], "insert", ["AAPL"])
    live.apply(["MSFT", 1], "insert", ["MSFT"])
    live.apply(["AAPL", 2], "upsert", ["AAPL"])
    assert list(live.rows.values()) == [["AAPL", 2], ["MSFT", 1]]  # first-seen order kept
    live.apply(["MSFT", 1], "delete", ["MSFT"])
    assert list(live.rows.values()) == [["AAPL", 2]]
    assert live.updates == 4
    frame = live.render()
    assert "| AAPL   | 2 |" in frame


def test_live_table_caps_rows_to_the_screen() -> None:
    live = render.LiveTable(["k"])
    for i in range(10):
        live.apply([i], "upsert", [i])
    frame = live.render(max_rows=3)
    assert frame[-1] == "… 7 more keys"
    assert sum(1 for line in frame if line.startswith("| ")) == 4  # header + 3 rows


def test_error_with_caret_under_the_column() -> None:
    err = VeloError("sql_syntax", "Expected FROM", line=2, column=8, expected=["FROM", ","])
    out = render.format_error(err, "SELECT a\nWHERE  b > 1")
    assert out.splitlines() == [
        "ERROR sql_syntax: Expected FROM",
        "2 | WHERE  b > 1",
        "  |        ^",
        "expected: FROM, ','",
    ]


def test_error_caret_with_line_offset_and_colour() -> None:
    err = VeloError("sql_validation", "unknown stream", line=1, column=15)
    out = render.format_error(err, "SELECT * FROM nowhere", line_offset=11, color=True)
    lines = out.splitlines()
    assert lines[0] == "\x1b[31mERROR sql_validation: unknown stream\x1b[0m"
    assert lines[1] == "12 | SELECT * FROM nowhere"
    assert lines[2] == "   | " + " " * 14 + "\x1b[31m^\x1b[0m"


def test_error_without_position_or_sql() -> None:
    err = VeloError("job_limit", "max_jobs (4) reached")
    assert render.format_error(err, "CREATE STREAM x AS SELECT 1") == "ERROR job_limit: max_jobs (4) reached"
    assert render.format_error(VeloError("x", "y", line=9, column=1), "one line") == "ERROR x: y"


def test_admin_views() -> None:
    job = {
        "name": "j",
        "state": "RUNNING",
        "metrics": {"records_in": 5, "records_out": 4, "records_failed": 1},
        "history": [{"state": "RUNNING", "at": "t", "reason": "started"}],
        "plan": "x",
    }
    assert render.job_row(job)[:2] == ["j", "RUNNING"]
    assert render.job_row(job)[5:8] == [5, 4, 1]
    cols, rows = render.job_detail(job)
    assert cols == ["field", "value"] and ["plan", "x"] in rows
    assert render.job_history(job)[1] == [["t", "RUNNING", "started"]]
    _, hrows = render.health_rows({"status": "ok", "jobs": {"running": 2}, "kafka": {"reachable": True}})
    assert ["jobs.running", 2] in hrows and ["kafka.reachable", True] in hrows
    _, trows = render.topic_rows([{"name": "t", "partitions": 2, "end_offsets": {"0": 3, "1": 4}}])
    assert trows == [["t", 2, 7]]
