"""The tokens of Velo SQL: one compiled regular expression plus the parser's current state.

Why not Lark's own lexer: it costs about three times as much per token, and Velo's keywords are
context-dependent — a word is a keyword only where the grammar can take that keyword, otherwise it
is an identifier (``SELECT key, value, timestamp, start FROM t`` needs no quoting). The parser's
loop (parser.py) runs ``TOKEN_RE`` and classifies each word with the LALR state's action row —
what Lark's contextual lexer does too — using the helpers here for all but the commonest cases
(and remembering, per state, what ``word_kind`` said a keyword-like word is).

A few keywords that read like function or column names are keywords only when followed by the
character that makes them one: ``POSITION(``, ``EXTRACT(``, ``CAST(``, ``ARRAY[``, ``INTERVAL '``,
``ARRAY<``/``MAP<``/``STRUCT<`` in types.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .errors import SqlSyntaxError
from .keywords import RESERVED


class Token(tuple[str, str, int, int]):
    """One token: its terminal name, its value (identifiers folded), its offsets in the text.

    Built as ``Token((type, value, start, end))``: what a NamedTuple would be, minus its
    ``__new__``, which is Python code (and ``tuple.__new__(Token, ...)``, the way around it, a
    slower generic call); a plain tuple subclass is made by ``tuple`` itself. It runs once per
    token of every statement.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def type(self) -> str: ...
        @property
        def value(self) -> str: ...
        @property
        def start(self) -> int: ...
        @property
        def end(self) -> int: ...

    else:  # a namedtuple's field accessors (C descriptors that work on any tuple)
        _fields = namedtuple("_fields", "type value start end")
        type, value, start, end = _fields.type, _fields.value, _fields.start, _fields.end
        del _fields

    def __repr__(self) -> str:
        return "Token(type={!r}, value={!r}, start={!r}, end={!r})".format(*self)


# One match per token, its leading white space included (half the matches of a separate
# white-space token); the token itself is the named group that matched. Comments are tokens of
# their own that the parser skips: they are rare, and a repeat of comment-or-space in front of
# every token costs more than the odd extra match. No re.I: case folding is slower, so the few
# letters that need it are classes (`ſ`, U+017F, is an `s` to re.I: the duration units keep it).
TOKEN_RE = re.compile(
    r"""
    \s*+
    (?:
     (?P<word>[^\W\d]\w*+)(?!\s*\.)
    |(?P<op>[+*%=(),;\[\]]|<[>=]?|>=?|!=|\|\||::|->|-(?!-)|/(?!\*)|\.(?!\d))
    |(?P<qname>[^\W\d]\w*+\.[^\W\d]\w*+)
    |(?P<qstar>(?:[^\W\d]\w*+|"(?:[^"]|"")*"|`(?:[^`]|``)*`)\s*\.\s*\*)
    |(?P<dotted>[^\W\d]\w*+)
    |(?P<dur>\d+(?:[mM][sS\u017f]|[sS\u017fmMhHdD])(?!\w))
    |(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<str>'(?:[^']|'')*')
    |(?P<quoted>"(?:[^"]|"")*"|`(?:[^`]|``)*`)
    |(?P<comment>--[^\n]*|/\*.*?\*/)
    |(?P<other>/\*|.)
    |(?P<ws>\Z)
    )
    """,
    re.S | re.X,
)
# Most tokens are plain words, so `word` comes first, then operators (the next commonest): a
# `-` before `-` and a `/` before `*` are left to `comment` (or to `other`, for a comment that is
# never closed), a `.` before a digit to `num` (`.5`). A word followed by a dot is tried as
# `t.col` (QNAME, one token for the commonest dotted name), then `t.*` (QSTAR), then as a word
# before a dot (`dotted`: `(a).b`, `t."Col"`, `t . col`) — a rarer path through word_token.
# QNAME and QSTAR never both match at one place, so their order is only speed; nor can anything
# but `other` take what `comment` does. `\w*+` never gives characters back: what follows a name
# (a dot, white space, the end) cannot be a word character, so backtracking would be wasted.
# `other` is an error: an unclosed comment or quote, or a character that starts no token.

# group numbers the parser's loop tests (by number: no name look-up per token)
WORD, OP, QNAME, DOTTED, COMMENT, END = (
    TOKEN_RE.groupindex[g] for g in ("word", "op", "qname", "dotted", "comment", "ws")
)

OPERATORS: dict[str, str] = {
    "||": "CONCAT", "::": "DCOLON", "<>": "NE", "!=": "NE", "<=": "LE", ">=": "GE",
    "-": "MINUS", "+": "PLUS", "*": "STAR", "/": "SLASH", "%": "PERCENT", "=": "EQ",
    "<": "LT", ">": "GT", "(": "LPAR", ")": "RPAR", ",": "COMMA", ".": "DOT",
    ";": "SEMICOLON", "[": "LSQB", "]": "RSQB", "->": "ARROW",
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


def word_kind(low: str, row: Mapping[str, int], keywords: Mapping[str, str]) -> str | None:
    """What ``word_token`` makes of the word ``low`` in the state whose action row is ``row``, or
    None when the character after the word decides (``POSITION(``, ``ARRAY<``, ``LEFT(``).

    The answer depends on the state and the word only, so the parser remembers it per state: a
    keyword costs one dictionary look-up instead of a call here.
    """
    kw = keywords.get(low)
    if kw is not None and kw in row:
        return None if kw in _NEEDS_NEXT and "IDENT" in row else kw
    if low in TIME_UNITS and "TIME_UNIT" in row:
        return "TIME_UNIT"
    if (low in TYPE_CTORS and "TYPE_CTOR" in row) or (kw is not None and "IDENT" in row and low in _RESERVED):
        return None
    return "IDENT" if kw is None or "IDENT" in row else kw


def word_token(
    text: str, raw: str, start: int, end: int, row: Mapping[str, int], keywords: Mapping[str, str]
) -> Token:
    """A word as the state whose action row is ``row`` reads it: keyword, unit, type or name."""
    low = raw.lower()
    kw = keywords.get(low)
    if kw is not None and kw in row:
        need = _NEEDS_NEXT.get(kw)
        if need is not None and "IDENT" in row and _next_char(text, end) != need:
            return Token(("IDENT", low, start, end))
        return Token((kw, raw, start, end))
    if low in TIME_UNITS and "TIME_UNIT" in row:
        return Token(("TIME_UNIT", raw, start, end))
    if low in TYPE_CTORS and "TYPE_CTOR" in row and _next_char(text, end) == "<":
        return Token(("TYPE_CTOR", raw, start, end))
    if kw is None or ("IDENT" in row and (low not in _RESERVED or _next_char(text, end) == "(")):
        # a reserved word stays a keyword (a misplaced FROM is an error, not a column) unless
        # it is a call: LEFT(s, n), RIGHT(s, n)
        return Token(("IDENT", low, start, end))
    return Token((kw, raw, start, end))


def other_token(text: str, kind: str, raw: str, start: int) -> Token:
    """A token the parser's loop leaves to this function (not a word, an operator or a QNAME);
    raises at a character that starts none."""
    end = start + len(raw)
    if kind == "num":
        return Token(("NUMBER", raw, start, end))
    if kind == "str":
        return Token(("STRING", raw[1:-1].replace("''", "'"), start, end))
    if kind == "quoted":
        return Token(("IDENT", unquote_identifier(raw), start, end))
    if kind == "dur":
        return Token(("DURATION", raw, start, end))
    if kind == "qstar":
        name = unquote_identifier(raw[: raw.rindex(".")].rstrip())
        return Token(("QSTAR", name, start, end))
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
