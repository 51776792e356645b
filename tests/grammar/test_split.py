"""Statement splitting and the shell's Enter rule: quotes, '' escapes and comments hide ';'."""

from __future__ import annotations

import pytest
from velo.grammar import Piece, is_complete, split_statements
from velo.grammar.split import open_construct


def test_split_keeps_text_and_positions() -> None:
    text = "SELECT 1;\n  SELECT 'a;b' FROM t ;\n\nSHOW JOBS"
    assert split_statements(text) == [
        Piece("SELECT 1", 1, 1, 0),
        Piece("SELECT 'a;b' FROM t", 2, 3, 12),
        Piece("SHOW JOBS", 4, 1, 35),
    ]
    for piece in split_statements(text):
        assert text[piece.offset : piece.offset + len(piece.text)] == piece.text
        assert str(piece) == piece.text


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("SELECT 'it''s; here' FROM t; SHOW JOBS", ["SELECT 'it''s; here' FROM t", "SHOW JOBS"]),
        ("SELECT \"a;b\", `c;d` FROM t;", ['SELECT "a;b", `c;d` FROM t']),
        ("SELECT 1 -- no; split here\n FROM t; X", ["SELECT 1 -- no; split here\n FROM t", "X"]),
        ("SELECT /* ; */ 1; /* only a comment; */ ;", ["SELECT /* ; */ 1"]),
        ("-- @name: x\nSELECT 1; -- trailing", ["-- @name: x\nSELECT 1"]),
        (";;;", []),
        ("", []),
        ("SELECT 'unclosed; still one", ["SELECT 'unclosed; still one"]),
        ("SELECT a-b/c FROM t", ["SELECT a-b/c FROM t"]),
    ],
)
def test_split_ignores_semicolons_in_quotes_and_comments(text: str, pieces: list[str]) -> None:
    assert [p.text for p in split_statements(text)] == pieces


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("SELECT 1;", True),
        ("SELECT 1;  \n", True),
        ("SELECT 1; -- a comment", True),
        ("SELECT 1; /* c */", True),
        ("SELECT 1", False),
        ("", False),
        ("   ", False),
        ("SELECT ';'", False),
        ("SELECT 'a'';'", False),
        ("SELECT 'a'';';", True),
        ("SELECT 1 -- ;", False),
        ("SELECT 1 /* ; */", False),
        ("SELECT 1 /* ; ", False),
        ('SELECT "a;', False),
        ("SELECT `a;`;", True),
        ("SHOW JOBS;\nSELECT 1", False),
    ],
)
def test_is_complete(text: str, complete: bool) -> None:
    assert is_complete(text) is complete


@pytest.mark.parametrize(
    ("text", "construct"),
    [("SELECT 'a", "'"), ('SELECT "a', '"'), ("SELECT `a", "`"), ("SELECT /* a", "/*"),
     ("SELECT 'a''", "'"), ("SELECT 'a'", None), ("SELECT 1 -- '", None)],
)  # fmt: skip
def test_open_construct(text: str, construct: str | None) -> None:
    assert open_construct(text) == construct
