"""Statement text handling for the shell: split a buffer, decide when Enter submits, route each statement.

Splitting and the Enter rule come from ``velo.grammar.split`` when it is importable, so the shell and the
server agree on where a statement ends; a small local scanner (quotes, comments, ``;``) stands in when the
grammar package is not there. Routing decides which server door a statement goes through:

* ``query``      — a transient ``SELECT``/``PRINT``: streamed from ``POST /query``;
* ``set``/``unset`` — session properties kept by the client and sent with every request;
* ``statements`` — everything else (DDL, jobs, SHOW, DESCRIBE, EXPLAIN, INSERT …): ``POST /statements``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Route(Enum):
    """Where a statement is sent."""

    QUERY = "query"
    STATEMENTS = "statements"
    SET = "set"
    UNSET = "unset"
    EMPTY = "empty"


@dataclass(frozen=True)
class Statement:
    """One statement of a buffer or file: its text (no trailing ``;``) and the 1-based line it starts on."""

    text: str
    line: int = 1

    @property
    def route(self) -> Route:
        return classify(self.text)


# --------------------------------------------------------------------------- local scanner


def _scan(text: str) -> tuple[list[tuple[int, int]], bool]:
    """Return the (start, end) spans of statements and whether the scan ended inside a quote/comment.

    The spans exclude the terminating ``;``. Quotes: '…' (with '' escape), "…", `…`; comments: ``--`` to
    end of line and ``/* … */``.
    """
    spans: list[tuple[int, int]] = []
    i, n, start = 0, len(text), 0
    open_construct = False
    while i < n:
        c = text[i]
        if c in "'\"`":
            j = i + 1
            while True:
                k = text.find(c, j)
                if k < 0:
                    i = n
                    open_construct = True
                    break
                if c == "'" and k + 1 < n and text[k + 1] == "'":
                    j = k + 2  # '' is an escaped quote inside a string
                    continue
                i = k + 1
                break
            continue
        if c == "-" and text.startswith("--", i):
            k = text.find("\n", i)
            i = n if k < 0 else k + 1
            continue
        if c == "/" and text.startswith("/*", i):
            k = text.find("*/", i + 2)
            if k < 0:
                i = n
                open_construct = True
            else:
                i = k + 2
            continue
        if c == ";":
            spans.append((start, i))
            start = i + 1
        i += 1
    if start < n:
        spans.append((start, n))
    return spans, open_construct


_COMMENT_RE = re.compile(r"--[^\n]*|/\*.*?(?:\*/|$)", re.S)


def strip_comments(text: str) -> str:
    """Remove ``--`` and ``/* */`` comments (outside quotes) — used only to classify and emptiness checks."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"`":
            k = i + 1
            while True:
                k2 = text.find(c, k)
                if k2 < 0:
                    k = n
                    break
                if c == "'" and k2 + 1 < n and text[k2 + 1] == "'":
                    k = k2 + 2
                    continue
                k = k2 + 1
                break
            out.append(text[i:k])
            i = k
            continue
        m = _COMMENT_RE.match(text, i) if c in "-/" else None
        if m:
            out.append(" ")
            i = m.end()
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _local_split(text: str) -> list[Statement]:
    spans, _ = _scan(text)
    result: list[Statement] = []
    for start, end in spans:
        chunk = text[start:end]
        if not strip_comments(chunk).strip():
            continue
        # Start the statement at its first non-blank line so error carets line up with what the user typed.
        lead = len(chunk) - len(chunk.lstrip())
        line = text.count("\n", 0, start + lead) + 1
        result.append(Statement(chunk.strip(), line))
    return result


def _local_is_complete(text: str) -> bool:
    body = strip_comments(text).rstrip()
    if not body:
        return False
    _, open_construct = _scan(text)
    return not open_construct and body.endswith(";")


# --------------------------------------------------------------------------- grammar-backed entry points


def _grammar_functions() -> tuple[Callable[[str], Any] | None, Callable[[str], bool] | None]:
    try:
        from velo.grammar import split as gsplit
    except Exception:  # the grammar package is optional for the shell: fall back to the local scanner
        return None, None
    return getattr(gsplit, "split_statements", None), getattr(gsplit, "is_complete", None)


_G_SPLIT, _G_COMPLETE = _grammar_functions()


def _piece_text(piece: Any) -> str | None:
    if isinstance(piece, str):
        return piece
    for attr in ("text", "sql", "source"):
        value = getattr(piece, attr, None)
        if isinstance(value, str):
            return value
    return None


def split_statements(text: str) -> list[Statement]:
    """Split ``text`` into statements, each with the line it starts on; blank/comment-only parts dropped."""
    if _G_SPLIT is None:
        return _local_split(text)
    try:
        pieces = list(_G_SPLIT(text))
    except Exception:  # never let a grammar hiccup lose the user's input: the local scanner still works
        return _local_split(text)
    result: list[Statement] = []
    for piece in pieces:
        body = _piece_text(piece)
        if body is None:  # an unexpected piece type: the grammar's API moved on
            return _local_split(text)
        line = getattr(piece, "line", None)
        if not isinstance(line, int):
            offset = getattr(piece, "offset", None)
            line = text.count("\n", 0, offset) + 1 if isinstance(offset, int) else 1
        if strip_comments(body).strip():
            result.append(Statement(body.strip(), line))
    return result


def is_complete(text: str) -> bool:
    """The Enter rule: the buffer ends with ``;`` outside quotes and comments."""
    if _G_COMPLETE is not None:
        try:
            return bool(_G_COMPLETE(text))
        except Exception:  # never let a grammar hiccup block the prompt
            return _local_is_complete(text)
    return _local_is_complete(text)


# --------------------------------------------------------------------------- routing

_FIRST_WORDS_RE = re.compile(r"[A-Za-z_]+")


def leading_words(text: str, count: int = 3) -> list[str]:
    """The first ``count`` words of a statement, upper-cased, comments ignored."""
    return [w.upper() for w in _FIRST_WORDS_RE.findall(strip_comments(text))[:count]]


def classify(text: str) -> Route:
    """Decide which door a statement goes through (see the module docstring)."""
    words = leading_words(text, 2)
    if not words:
        return Route.EMPTY
    first = words[0]
    if first in ("SELECT", "PRINT"):
        return Route.QUERY
    if first == "SET":
        return Route.SET
    if first == "UNSET":
        return Route.UNSET
    return Route.STATEMENTS


_QUOTED = r"'((?:[^']|'')*)'"
_BARE = r"([A-Za-z0-9_.\-]+)"
_SET_RE = re.compile(rf"^\s*SET\s+(?:{_QUOTED}|{_BARE})\s*(?:=|TO)\s*(?:{_QUOTED}|{_BARE})\s*;?\s*$", re.I | re.S)
_UNSET_RE = re.compile(rf"^\s*UNSET\s+(?:{_QUOTED}|{_BARE})\s*;?\s*$", re.I | re.S)


def parse_set(text: str) -> tuple[str, str] | None:
    """``SET 'key' = 'value'`` → (key, value); ``None`` if the statement is malformed."""
    m = _SET_RE.match(strip_comments(text))
    if not m:
        return None
    key = m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2)
    value = m.group(3).replace("''", "'") if m.group(3) is not None else m.group(4)
    return key, value


def parse_unset(text: str) -> str | None:
    """``UNSET 'key'`` → key; ``None`` if malformed."""
    m = _UNSET_RE.match(strip_comments(text))
    if not m:
        return None
    return m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2)


_CATALOG_CHANGING = {"CREATE", "DROP", "START", "STOP", "TERMINATE", "INSERT", "PAUSE", "RESUME"}


def changes_catalog(text: str) -> bool:
    """True when a successful statement may change what completion knows (streams, jobs, topics)."""
    words = leading_words(text, 1)
    return bool(words) and words[0] in _CATALOG_CHANGING
