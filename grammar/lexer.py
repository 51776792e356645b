"""The tokenizer of Velo SQL: one compiled regular expression plus the parser's current state.

Why not Lark's own lexer: it costs about three times as much per token, and Velo's keywords are
context-dependent — a word is a keyword only where the grammar can take that keyword, otherwise it
is an identifier (``SELECT key, value, timestamp, start FROM t`` needs no quoting). The lexer looks
at the LALR state's action row to decide, which is what Lark's contextual lexer does too.

A few keywords that read like function or column names are keywords only when followed by the
character that makes them one: ``POSITION(``, ``EXTRACT(``, ``CAST(``, ``ARRAY[``, ``INTERVAL '``,
``ARRAY<``/``MAP<``/``STRUCT<`` in types.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from .errors import SqlSyntaxError
from .keywords import RESERVED


class Token(NamedTuple):
    """One token: its terminal name, its value (identifiers folded), its offsets in the text."""

    type: str
    value: str
    start: int
    end: int


TOKEN_RE = re.compile(
    r"""
     (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
    |(?P<qstar>(?:[^\W\d]\w*|"(?:[^"]|"")*"|`(?:[^`]|``)*`)\s*\.\s*\*)
    |(?P<dur>\d+(?:ms|s|m|h|d)(?!\w))
    |(?P<num>(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)
    |(?P<word>[^\W\d]\w*)
    |(?P<qid>"(?:[^"]|"")*")
    |(?P<bid>`(?:[^`]|``)*`)
    |(?P<str>'(?:[^']|'')*')
    |(?P<bad>/\*|['"`])
    |(?P<op>\|\||::|<>|!=|<=|>=|[-+*/%=<>(),.;\[\]])
    |(?P<other>.)
    """,
    re.S | re.X | re.I,
)

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
# NamedTuple's generated __new__ adds a Python-level call per token; tuple.__new__ does not.
_tok = tuple.__new__
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


def tokens(
    text: str, keywords: Mapping[str, str], rows: list[dict[str, int]], stack: list[int]
) -> Iterator[Token]:
    """Tokens of ``text``; ``stack[-1]`` is the parser's state when each word is classified."""
    depth = 0
    for m in TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            continue
        start, end = m.span()
        raw = m.group()
        if kind == "word":
            low = raw.lower()
            row = rows[stack[-1]]
            kw = keywords.get(low)
            if kw is not None and kw in row:
                need = _NEEDS_NEXT.get(kw)
                if need is not None and "IDENT" in row and _next_char(text, end) != need:
                    yield _tok(Token, ("IDENT", low, start, end))
                else:
                    yield _tok(Token, (kw, raw, start, end))
            elif low in TIME_UNITS and "TIME_UNIT" in row:
                yield _tok(Token, ("TIME_UNIT", raw, start, end))
            elif low in TYPE_CTORS and "TYPE_CTOR" in row and _next_char(text, end) == "<":
                yield _tok(Token, ("TYPE_CTOR", raw, start, end))
            elif kw is None or (
                "IDENT" in row and (low not in _RESERVED or _next_char(text, end) == "(")
            ):  # a reserved word stays a keyword (a misplaced FROM is an error, not a column)
                # unless it is a call: LEFT(s, n), RIGHT(s, n)
                yield _tok(Token, ("IDENT", low, start, end))
            else:
                yield _tok(Token, (kw, raw, start, end))
        elif kind == "op":
            if raw in "([":
                depth += 1
                if depth > MAX_DEPTH:
                    raise _lex_error(text, start, f"Brackets nested more than {MAX_DEPTH} deep")
            elif raw in ")]":
                depth -= 1
            yield _tok(Token, (OPERATORS[raw], raw, start, end))
        elif kind == "num":
            yield _tok(Token, ("NUMBER", raw, start, end))
        elif kind == "str":
            yield _tok(Token, ("STRING", raw[1:-1].replace("''", "'"), start, end))
        elif kind == "qid" or kind == "bid":
            yield _tok(Token, ("IDENT", unquote_identifier(raw), start, end))
        elif kind == "dur":
            yield _tok(Token, ("DURATION", raw, start, end))
        elif kind == "qstar":
            yield _tok(Token, ("QSTAR", unquote_identifier(raw[: raw.rindex(".")].rstrip()), start, end))
        else:
            raise _bad_character(text, start, raw)


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
