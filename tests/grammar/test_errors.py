"""Syntax errors: the exact message, line and column of each wrong statement (docs/grammar.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from velo.grammar import SqlError, SqlSyntaxError, SqlValidationError, parse, parse_statement

# (statement, message, line, column) — the same table is in docs/grammar.md
ERRORS: list[tuple[str, str, int, int]] = [
    ('SELECT a FORM t',
     "Expected FROM or a comma after the select list, found 't'; did you mean FROM instead of 'FORM'?",
     1, 15),
    ('SELCT a FROM t',
     "Expected a statement (SELECT, CREATE, INSERT, START, SHOW, STOP, DROP, DESCRIBE, "
     "...), found 'SELCT'; did you mean SELECT?",
     1, 1),
    ('SELECT a, FROM t',
     "Expected an expression after ',', found 'FROM'",
     1, 11),
    ('SELECT a FROM',
     "Statement ended too early: expected an identifier or '(' after FROM",
     1, 14),
    ('SELECT a FROM t WHERE',
     'Statement ended too early: expected an expression after WHERE',
     1, 22),
    ('SELECT a FROM t WHRE x > 1',
     "Expected EMIT, FULL, GROUP, HAVING, INNER, JOIN, LEFT, LIMIT, PARTITION, RIGHT, UNION, "
     "WHERE, WINDOW or WITH after 'WHRE', found 'x'; did you mean WHERE instead of 'WHRE'?",
     1, 22),
    ("SELECT a FROM t WHERE x = 'abc",
     'Unclosed string literal: the quote at line 1, column 27 is never closed',
     1, 27),
    ('SELECT a FROM t /* never closed',
     'Unclosed comment: the /* at line 1, column 17 is never closed',
     1, 17),
    ('SELECT "Price FROM t',
     'Unclosed quoted identifier: the double quote at line 1, column 8 is never closed',
     1, 8),
    ('SELECT a FROM t GROUP x',
     "Expected BY after GROUP, found 'x'",
     1, 23),
    ('SELECT a FROM t EMIT CHANGE',
     "Expected CHANGES or FINAL after EMIT, found 'CHANGE'; did you mean CHANGES?",
     1, 22),
    ("SELECT a FROM t LIMIT 'ten'",
     'Expected a number after LIMIT, found "\'ten\'"',
     1, 23),
    ('SELECT a FROM t LIMIT 5 WHERE x > 1',
     "Expected WITH after '5', found 'WHERE'",
     1, 25),
    ('SELECT COUNT(* FROM t',
     "Expected ')' after '*', found 'FROM'",
     1, 16),
    ('SELECT (a + 1 FROM t',
     "Expected ')' after '1', found 'FROM'",
     1, 15),
    ('SELECT a b c FROM t',
     "Expected FROM or a comma after the select list, found 'c'",
     1, 12),
    ('SELECT a FROM t WHERE a BETWEEN 1',
     "Statement ended too early: expected AND after '1'",
     1, 34),
    ('SELECT CASE WHEN a THEN 1 FROM t',
     "Expected ELSE, END or WHEN after '1', found 'FROM'",
     1, 27),
    ('SELECT a FROM t WHERE a = = 1',
     "Expected an expression after '=', found '='",
     1, 27),
    ('SELECT CAST(a AS) FROM t',
     "Expected a type after AS, found ')'",
     1, 17),
    ('SELECT a FROM t WHERE x = ${VAR}',
     "Unexpected '${': variables are substituted only in application files",
     1, 27),
    ('SELECT a FROM t JOIN u t.k = u.k',
     "Expected AS, ON, WITHIN or an identifier after 'u', found 't.k'",
     1, 24),
    ("SELECT a FROM t WITH ('k' 'v')",
     'Expected \'=\' after "\'k\'", found "\'v\'"',
     1, 27),
    ('CREATE STRAEM s AS SELECT a FROM t',
     "Expected OR, STREAM or TABLE after CREATE, found 'STRAEM'; did you mean STREAM?",
     1, 8),
    ("CREATE STREAM s (a STRNG) WITH ('k' = 'v')",
     "Unknown type 'STRNG'; did you mean STRING?",
     1, 20),
    ('CREATE STREAM s (a INT)',
     "Statement ended too early: expected AS or WITH after ')'",
     1, 24),
    ('CREATE STREAM s AS SELECT a FROM t WINDOW TUMBLNG (5s)',
     "Expected HOPPING, SESSION, SLIDING or TUMBLING after WINDOW, found 'TUMBLNG'; did you "
     "mean TUMBLING?",
     1, 43),
    ('CREATE STREAM s AS SELECT a FROM t WINDOW TUMBLING (5 SECNDS)',
     "Expected a time unit after '5', found 'SECNDS'; did you mean SECONDS?",
     1, 55),
    ('CREATE STREAM s AS SELECT COUNT(*) FROM t WINDOW HOPPING (5s)',
     'Wrong HOPPING window arguments: expected HOPPING([time_column,] size, advance) or HOPPING(SIZE d, ADVANCE BY d)',
     1, 43),
    ('START JOB j SELECT a FROM t',
     "Expected AS after 'j', found 'SELECT'",
     1, 13),
    ('STOP JOBS j',
     "Expected APP or JOB after STOP, found 'JOBS'; did you mean JOB?",
     1, 6),
    ('SHOW JOB',
     "Expected FUNCTIONS, JOBS, METRICS, PROPERTIES, QUERIES, STATUS, STREAMS, TABLES or "
     "TOPICS after SHOW, found 'JOB'; did you mean JOBS?",
     1, 6),
    ('DROP STREAM IF EXIST s',
     "Expected EXISTS after IF, found 'EXIST'; did you mean EXISTS?",
     1, 16),
    ('INSERT INTO t VALUES (1, 2',
     "Statement ended too early: expected a comma or ')' after '2'",
     1, 27),
    ('SHOW JOBS;\nSELECT a\nFORM t;',
     "Expected FROM or a comma after the select list, found 't'; did you mean FROM instead of 'FORM'?",
     3, 6),
    ("SELECT a FROM t WHERE a LIKE 'x' ESCAPE '!!'",
     "ESCAPE takes one character, got '!!'",
     1, 41),
    ('SELECT a FROM t WHERE a LIKE b ESCAPE c',
     "Expected a string after ESCAPE, found 'c'",
     1, 39),
    ('SELECT a->1 FROM t',
     "Expected an identifier after '->', found '1'",
     1, 11),
    ('SELECT a FROM (SELECT a FROM t)',
     "Statement ended too early: expected AS or an identifier after ')'",
     1, 32),
    ('WITH a AS SELECT x FROM t SELECT x FROM a',
     "Expected '(' after AS, found 'SELECT'",
     1, 11),
    ('WITH a AS (SELECT x FROM t), a AS (SELECT y FROM t) SELECT x FROM a',
     "WITH defines 'a' twice",
     1, 30),
    ('SELECT a FROM t UNION SELECT b FROM u',
     "Expected ALL after UNION, found 'SELECT'",
     1, 23),
    ('SELECT a FROM t UNION ALL SELECT b FROM u LIMIT 1 UNION ALL SELECT c FROM v',
     "Expected WITH after '1', found 'UNION'",
     1, 51),
    ('SELECT a FROM t PARTITION x',
     "Expected BY after PARTITION, found 'x'",
     1, 27),
    ('SELECT a FROM t PARTITION BY a HAVING x',
     "Expected EMIT, LIMIT, UNION, WITH or a comma after 'a', found 'HAVING'",
     1, 32),
    ('SELECT a FROM t JOIN u ON t.k = u.k WITHIN (1m)',
     "Expected a comma after '1m', found ')'",
     1, 47),
    ('SELECT a FROM t JOIN u WITHIN 1m ON t.k = u.k WITHIN 1m',
     'A JOIN can have only one WITHIN',
     1, 54),
    ('SELECT a FROM t JOIN u ON t.k = u.k WITHIN 1m GRACE 1m',
     "Expected PERIOD after GRACE, found '1m'",
     1, 53),
    ('SELECT a FROM t;\nSELECT b\n  FROM u WHERE',
     'Statement ended too early: expected an expression after WHERE',
     3, 15),
]


@pytest.mark.parametrize(("sql", "message", "line", "column"), ERRORS)
def test_error_message_and_position(sql: str, message: str, line: int, column: int) -> None:
    with pytest.raises(SqlSyntaxError) as info:
        parse(sql)
    assert (info.value.message, info.value.line, info.value.column) == (message, line, column)


def test_the_docs_show_the_same_table() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "grammar.md").read_text(encoding="utf-8")
    for sql, message, line, column in ERRORS:
        row = f"| `{_cell(sql)}` | {_cell(message)} | {line}:{column} |"
        assert row in docs, row


def _cell(text: str) -> str:
    return text.replace("\n", "\\n").replace("|", "\\|")


def test_expected_and_token_are_in_words() -> None:
    with pytest.raises(SqlSyntaxError) as info:
        parse("SELECT a FORM t")
    assert info.value.expected == ["FROM", "a comma"] and info.value.token == "t"
    with pytest.raises(SqlSyntaxError) as info:
        parse("SELECT a FROM")
    assert info.value.expected == ["an identifier", "'('"] and info.value.token == ""


def test_positions_and_statement_index_are_relative_to_the_whole_text() -> None:
    text = "SHOW JOBS;\n-- a comment; with a semicolon\nSTOP JOB x;\n\n  SELECT 'a;b'\n  FROM t WHERE x >> 1;"
    with pytest.raises(SqlSyntaxError) as info:
        parse(text)
    err = info.value
    assert (err.line, err.column, err.statement) == (6, 19, 3)
    assert err.to_dict() == {
        "type": "SqlSyntaxError", "message": err.message, "line": 6, "column": 19,
        "statement": 3, "expected": ["an expression"], "token": ">",
    }  # fmt: skip


def test_errors_inside_the_transformer_carry_the_statement_index() -> None:
    with pytest.raises(SqlSyntaxError) as info:
        parse("SHOW JOBS; CREATE STREAM s (a STRNG) WITH ('k' = 'v')")
    assert (info.value.statement, info.value.line, info.value.column) == (2, 1, 31)


def test_parse_statement_wants_exactly_one() -> None:
    with pytest.raises(SqlSyntaxError, match="Expected a statement, found nothing"):
        parse_statement("  -- nothing\n")
    with pytest.raises(SqlSyntaxError, match="Expected one statement, found 2") as info:
        parse_statement("SHOW JOBS;\nSHOW STREAMS;")
    assert (info.value.line, info.value.column, info.value.statement) == (2, 1, 2)


@pytest.mark.parametrize("bad", [None, b"SELECT 1", 42])
def test_non_text_is_a_syntax_error_too(bad: object) -> None:
    with pytest.raises(SqlSyntaxError):
        parse(bad)  # type: ignore[arg-type]


def test_deep_nesting_is_refused_cleanly() -> None:
    with pytest.raises(SqlSyntaxError, match="nested more than"):
        parse("SELECT " + "(" * 5000 + "1" + ")" * 5000 + " FROM t")
    assert parse("SELECT " + "(" * 100 + "1" + ")" * 100 + " FROM t")


def test_long_flat_input_does_not_recurse() -> None:
    stmt = parse_statement("SELECT " + " + ".join(["a"] * 5000) + " FROM t")
    assert stmt is not None


def test_hierarchy_and_to_dict() -> None:
    assert issubclass(SqlSyntaxError, SqlError) and issubclass(SqlValidationError, SqlError)
    err = SqlValidationError("unknown source 'x'", line=1, column=15, statement=1,
                             suggestions=["trades"])  # fmt: skip
    assert err.to_dict()["suggestions"] == ["trades"]
    assert str(err) == "unknown source 'x' (line 1, column 15)"
    assert str(SqlError("no position")) == "no position"
    assert re.search("line 1", str(SqlSyntaxError("m", line=1, column=2)))
