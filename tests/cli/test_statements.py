"""Statement splitting, the Enter rule and routing (which server door a statement goes through)."""

from __future__ import annotations

import pytest
from velo.cli import statements
from velo.cli.statements import Route, classify, is_complete, parse_set, parse_unset, split_statements


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("SELECT 1;", True),
        ("SELECT 1", False),
        ("SELECT 1;  \n", True),
        ("SELECT ';'", False),
        ("SELECT ';';", True),
        ("SELECT 'it''s;'", False),
        ("SELECT 1 -- done;", False),
        ("SELECT 1; -- trailing comment", True),
        ("SELECT /* ; */ 1", False),
        ("SELECT /* open ;", False),
        ('SELECT "a;b"', False),
        ("", False),
        ("-- only a comment;", False),
    ],
)
def test_enter_rule(text: str, complete: bool) -> None:
    assert is_complete(text) is complete


def test_split_keeps_statement_lines_and_drops_empty_parts() -> None:
    text = "SHOW JOBS;\n\n-- comment\nSELECT a,\n  b FROM t;\n;;\nSET 'x' = 'y'"
    parts = split_statements(text)
    assert [p.text for p in parts] == ["SHOW JOBS", "-- comment\nSELECT a,\n  b FROM t", "SET 'x' = 'y'"]
    assert [p.line for p in parts] == [1, 3, 7]


def test_split_ignores_semicolons_in_strings_and_comments() -> None:
    parts = split_statements("SELECT ';' FROM t /* ; */; PRINT 'a;b'")
    assert [p.text for p in parts] == ["SELECT ';' FROM t /* ; */", "PRINT 'a;b'"]


def test_local_scanner_matches_the_public_functions() -> None:
    # The fallback used without velo.grammar must agree with whichever implementation is active.
    for text in ("SELECT 1;", "SELECT ';'", "A; B; C", "x -- ;\n; y", "a;\n\n  b /* ; */ c"):
        assert statements._local_is_complete(text) == is_complete(text)
        assert statements._local_split(text) == split_statements(text)


@pytest.mark.parametrize(
    ("sql", "route"),
    [
        ("SELECT * FROM trades", Route.QUERY),
        ("  select 1", Route.QUERY),
        ("-- hi\nSELECT 1", Route.QUERY),
        ("/* c */ PRINT 'trades' FROM BEGINNING", Route.QUERY),
        ("SHOW JOBS", Route.STATEMENTS),
        ("CREATE STREAM x AS SELECT * FROM t", Route.STATEMENTS),
        ("START JOB j AS SELECT 1 FROM t", Route.STATEMENTS),
        ("INSERT INTO t VALUES (1)", Route.STATEMENTS),
        ("EXPLAIN SELECT * FROM t", Route.STATEMENTS),
        ("STOP JOB j", Route.STATEMENTS),
        ("DESCRIBE trades", Route.STATEMENTS),
        ("SET 'auto.offset.reset' = 'earliest'", Route.SET),
        ("UNSET 'auto.offset.reset'", Route.UNSET),
        ("-- nothing", Route.EMPTY),
    ],
)
def test_classify(sql: str, route: Route) -> None:
    assert classify(sql) is route


def test_parse_set_forms() -> None:
    assert parse_set("SET 'auto.offset.reset' = 'earliest'") == ("auto.offset.reset", "earliest")
    assert parse_set("set 'cli.live'='false';") == ("cli.live", "false")
    assert parse_set("SET batch.size = 100") == ("batch.size", "100")
    assert parse_set("SET 'k' = 'it''s'") == ("k", "it's")
    assert parse_set("SET 'k'") is None


def test_parse_unset() -> None:
    assert parse_unset("UNSET 'auto.offset.reset'") == "auto.offset.reset"
    assert parse_unset("UNSET batch.size;") == "batch.size"
    assert parse_unset("UNSET") is None


def test_changes_catalog() -> None:
    assert statements.changes_catalog("CREATE STREAM x AS SELECT 1")
    assert statements.changes_catalog("stop job x")
    assert not statements.changes_catalog("SHOW JOBS")
