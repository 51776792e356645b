"""Splitting a SQL text into statements, and the shell's Enter rule, without parsing.

Both only need to know where quotes and comments are: a ``;`` inside ``'it''s; fine'``, ``"a;b"``,
`` `a;b` ``, ``-- x; y`` or ``/* ; */`` separates nothing. Neither raises: an unclosed quote or
comment simply runs to the end of the text (``open_construct`` says which one is open).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCAN = re.compile(
    r"""
     (?P<str>'(?:[^']|'')*')   | (?P<open_str>'.*)
    |(?P<qid>"(?:[^"]|"")*")   | (?P<open_qid>".*)
    |(?P<bid>`(?:[^`]|``)*`)   | (?P<open_bid>`.*)
    |(?P<line>--[^\n]*)
    |(?P<block>/\*.*?\*/)      | (?P<open_block>/\*.*)
    |(?P<semi>;)
    |(?P<ws>\s+)
    |(?P<code>[^'"`;/\s-]+|[/-])
    """,
    re.S | re.X,
)

_OPEN = {"open_str": "'", "open_qid": '"', "open_bid": "`", "open_block": "/*"}


@dataclass(frozen=True)
class Piece:
    """One statement of a text: its source (without the ``;``) and where it starts.

    ``text`` runs from the statement's first character that is not white space (comments
    before it, such as ``-- @name:`` annotations, belong to it) to its last; ``line`` and
    ``column`` are 1-based, ``offset`` 0-based, all relative to the whole text.
    """

    text: str
    line: int
    column: int
    offset: int

    def __str__(self) -> str:
        return self.text


def split_statements(text: str) -> list[Piece]:
    """The ``;``-separated statements of ``text``; pieces with no code (only comments) are dropped."""
    pieces: list[Piece] = []
    begin: int | None = None  # offset of the current piece's first non-blank character
    end = 0
    has_code = False
    for m in _SCAN.finditer(text):
        kind = m.lastgroup
        if kind == "semi":
            if begin is not None and has_code:
                pieces.append(_piece(text, begin, end))
            begin, has_code = None, False
            continue
        if kind == "ws":
            continue
        if begin is None:
            begin = m.start()
        end = m.end()
        if kind not in ("line", "block"):
            has_code = True
    if begin is not None and has_code:
        pieces.append(_piece(text, begin, end))
    return pieces


def _piece(text: str, begin: int, end: int) -> Piece:
    line = text.count("\n", 0, begin) + 1
    column = begin - (text.rfind("\n", 0, begin) + 1) + 1
    return Piece(text[begin:end], line, column, begin)


def open_construct(text: str) -> str | None:
    """The quote or ``/*`` left open at the end of ``text`` (None when everything is closed)."""
    last = None
    for m in _SCAN.finditer(text):
        last = m.lastgroup
    return _OPEN.get(last or "")


def is_complete(text: str) -> bool:
    """The shell's Enter rule: the buffer ends with ``;`` outside quotes and comments.

    Trailing white space and comments after the ``;`` do not matter.
    """
    last = None
    for m in _SCAN.finditer(text):
        kind = m.lastgroup
        if kind in ("ws", "line", "block"):
            continue
        last = kind
    return last == "semi"
