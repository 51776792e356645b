"""The tokens of Velo SQL: one compiled regular expression plus the parser's current state.

Why not Lark's own lexer: it costs about three times as much per token, and Velo's keywords are
context-dependent — a word is a keyword only where the grammar can take that keyword, otherwise it
is an identifier (``SELECT key, value, timestamp, start FROM t`` needs no quoting). The parser's
loop (parser.py) runs ``TOKEN_RE`` and classifies each word with the LALR state's action row —
what Lark's contextual lexer does too — using the helpers here for all but the commonest cases.

A few keywords that read like function or column names are keywords only when followed by the
character that makes them one: ``POSITION(``, ``EXTRACT(``, ``CAST(``, ``ARRAY[``, ``INTERVAL '``,
``ARRAY<``/``MAP<``/``STRUCT<`` in types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from .errors import SqlSyntaxError
from .keywords import RESERVED


class Token(NamedTuple):
    """One token: its terminal name, its value (identifiers folded), its offsets in the text."""

    type: str
    value: str
    start: int
    end: int


# One match per token, its leading white space and comments included (half the matches of a
# separate white-space token); the token itself is the named group that matched.
TOKEN_RE = re.compile(
    r"""
    (?:\s+|--[^\n]*|/\*.*?\*/)*
    (?:
     (?P<word>[^\W\d]\w*+)(?!\s*\.)
    |(?P<qstar>(?:[^\W\d]\w*|"(?:[^"]|"")*"|`(?:[^`]|``)*`)\s*\.\s*\*)
    |(?P<qname>[^\W\d]\w*\.[^\W\d]\w*)
    |(?P<dotted>[^\W\d]\w*)
    |(?P<dur>\d+(?:ms|s|m|h|d)(?!\w))
    |(?P<num>(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)
    |(?P<bad>/\*)
    |(?P<op>\|\||::|<>|!=|<=|>=|[-+*/%=<>(),.;\[\]])
    |(?P<str>'(?:[^']|'')*')
    |(?P<qid>"(?:[^"]|"")*")
    |(?P<bid>`(?:[^`]|``)*`)
    |(?P<unclosed>['"`])
    |(?P<other>.)
    |(?P<ws>\Z)
    )
    """,
    re.S | re.X | re.I,
)
# Most tokens are plain words, so `word` comes first; a word followed by a dot is tried as
# `t.*` (QSTAR), then `t.col` (QNAME, one token for the commonest dotted name), then as a word
# before a dot (`dotted`: `(a).b`, `t."Col"`, `t . col`) — a rarer path through word_token.
# A `/*` that reaches `bad` is unclosed (a closed comment went with the white space before).

OPERATORS: dict[str, str] = {
    "||": "CONCAT", "::": "DCOLON", "<>": "NE", "!=": "NE", "<=": "LE", ">=": "GE",
    "-": "MINUS", "+": "PLUS", "*": "STAR", "/": "SLASH", "%": "PERCENT", "=": "EQ",
    "<": "LT", ">": "GT", "(": "LPAR", ")": "RPAR", ",": "COMMA", ".": "DOT",
    ";": "SEMICOLON", "[": "LSQB", "]": "RSQB",
}  # fmt: skip

TIME_UNITS = frozenset(
    u + s for u in ("millisecond", "second", "minute", "hour", "day") for s in ("", "s")
)
TYPE_CTORS = frozenset({"array", "map", "struct"})

# keyword -> the character that must follow for the word to be that keyword where an identifier
# would also do (else it is an identifier: a column named `position` or `interval`).
_NEEDS_NEXT: dict[str, str] = {
    "POSITION": "(", "EXTRACT": "(", "CAST": "(", "ARRAY": "[", "INTERVAL": "'",
}  # fmt: skip

_RESERVED = frozenset(w.lower() for w in RESERVED)
# NamedTuple's generated __new__ is a Python call per token; tuple.__new__(Token, (...)) is not.
new_token = tuple.__new__
# words that are never anything but an identifier need no look at the parser state
SPECIAL_WORDS = TIME_UNITS | TYPE_CTORS
_NEXT_CHAR = re.compile(r"\s*(.)", re.S)
MAX_DEPTH = 128  # brackets deeper than this are refused: printers and compilers recurse on them


def _next_char(text: str, pos: int) -> str:
    m = _NEXT_CHAR.match(text, pos)
    return m.group(1) if m else ""


def unquote_identifier(raw: str) -> str:
    """The identifier a quoted or plain name stands for (plain ones fold to lower case)."""
    if raw[0] == '"':
        return raw[1:-1].replace('""', '"')
    if raw[0] == "`":
        return raw[1:-1].replace("``", "`")
    return raw.lower()


def word_token(
    text: str, raw: str, start: int, end: int, row: Mapping[str, int], keywords: Mapping[str, str]
) -> Token:
    """A word as the state whose action row is ``row`` reads it: keyword, unit, type or name."""
    low = raw.lower()
    kw = keywords.get(low)
    if kw is not None and kw in row:
        need = _NEEDS_NEXT.get(kw)
        if need is not None and "IDENT" in row and _next_char(text, end) != need:
            return new_token(Token, ("IDENT", low, start, end))
        return new_token(Token, (kw, raw, start, end))
    if low in TIME_UNITS and "TIME_UNIT" in row:
        return new_token(Token, ("TIME_UNIT", raw, start, end))
    if low in TYPE_CTORS and "TYPE_CTOR" in row and _next_char(text, end) == "<":
        return new_token(Token, ("TYPE_CTOR", raw, start, end))
    if kw is None or ("IDENT" in row and (low not in _RESERVED or _next_char(text, end) == "(")):
        # a reserved word stays a keyword (a misplaced FROM is an error, not a column) unless
        # it is a call: LEFT(s, n), RIGHT(s, n)
        return new_token(Token, ("IDENT", low, start, end))
    return new_token(Token, (kw, raw, start, end))


def other_token(text: str, kind: str, raw: str, start: int) -> Token:
    """A token that is neither a word nor an operator; raises at a character that starts none."""
    end = start + len(raw)
    if kind == "num":
        return new_token(Token, ("NUMBER", raw, start, end))
    if kind == "str":
        return new_token(Token, ("STRING", raw[1:-1].replace("''", "'"), start, end))
    if kind == "qname":
        return new_token(Token, ("QNAME", raw.lower(), start, end))
    if kind == "qid" or kind == "bid":
        return new_token(Token, ("IDENT", unquote_identifier(raw), start, end))
    if kind == "dur":
        return new_token(Token, ("DURATION", raw, start, end))
    if kind == "qstar":
        name = unquote_identifier(raw[: raw.rindex(".")].rstrip())
        return new_token(Token, ("QSTAR", name, start, end))
    raise _bad_character(text, start, raw)


def too_deep(text: str, pos: int) -> SqlSyntaxError:
    """The error for a bracket nested deeper than MAX_DEPTH."""
    return _lex_error(text, pos, f"Brackets nested more than {MAX_DEPTH} deep")


_UNCLOSED = {
    "'": "Unclosed string literal: the quote",
    '"': "Unclosed quoted identifier: the double quote",
    "`": "Unclosed quoted identifier: the backquote",
    "/*": "Unclosed comment: the /*",
}


def _bad_character(text: str, pos: int, raw: str) -> SqlSyntaxError:
    if raw in _UNCLOSED:
        line, col = line_col(text, pos)
        return _lex_error(
            text, pos, f"{_UNCLOSED[raw]} at line {line}, column {col} is never closed"
        )
    if raw == "$" and text.startswith("${", pos):
        return _lex_error(
            text, pos, "Unexpected '${': variables are substituted only in application files"
        )
    return _lex_error(text, pos, f"Unexpected character {raw!r}")


def _lex_error(text: str, pos: int, message: str) -> SqlSyntaxError:
    line, col = line_col(text, pos)
    token = "/*" if text.startswith("/*", pos) else text[pos : pos + 1]
    return SqlSyntaxError(message, line=line, column=col, token=token)


def line_col(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of offset ``pos`` in ``text``."""
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1
