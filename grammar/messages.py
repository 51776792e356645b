"""Syntax error messages a person can act on, built from the LALR state where parsing stopped.

The parser knows the set of terminals it could have taken; this module turns that set into words
("FROM or a comma"), drops the operators that could merely continue an expression when something
more telling is possible, names the context ("after the select list"), and offers "did you mean
FROM?" when the offending word is a misspelt keyword.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from .errors import SqlSyntaxError
from .keywords import _words
from .lexer import TIME_UNITS, Token

if TYPE_CHECKING:
    from .transform_base import BuilderBase as Builder

_WORDS: dict[str, str] = {
    "IDENT": "an identifier", "NUMBER": "a number", "STRING": "a string", "COMMA": "a comma",
    "DURATION": "a duration", "QNAME": "a column", "TIME_UNIT": "a time unit", "QSTAR": "alias.*",
    "TYPE_CTOR": "a type", "SEMICOLON": "';'", "$END": "the end of the input",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "DOT": "'.'", "STAR": "'*'",
    "EQ": "'='", "NE": "'!='", "LT": "'<'", "LE": "'<='", "GT": "'>'", "GE": "'>='",
    "PLUS": "'+'", "MINUS": "'-'", "SLASH": "'/'", "PERCENT": "'%'", "CONCAT": "'||'",
    "DCOLON": "'::'", "ARROW": "'->'",
}  # fmt: skip

# Terminals that can only extend what came before (an operator after an operand, AS after an
# item): listing them drowns the useful alternatives, so they are dropped when others remain.
_CONTINUATIONS = _words(
    "EQ NE LT LE GT GE PLUS MINUS STAR SLASH PERCENT CONCAT DCOLON LSQB DOT ARROW AND OR IS NOT "
    "BETWEEN IN LIKE AS PRIMARY OVER LPAR ASC DESC ESCAPE"
)
_OPERATORS = _words("EQ NE LT LE GT GE PLUS MINUS STAR SLASH PERCENT CONCAT DCOLON LSQB DOT ARROW")
_EXPRESSION_START = _words(
    "NUMBER STRING IDENT LPAR NOT MINUS PLUS TRUE FALSE NULL CASE CAST EXTRACT POSITION ARRAY "
    "INTERVAL CURRENT_TIMESTAMP EXISTS QSTAR QNAME"
)
_STATEMENT_START = ("SELECT", "CREATE", "INSERT", "START", "SHOW", "STOP", "DROP", "DESCRIBE")


def _is_keyword(name: str) -> bool:
    return name not in _WORDS and name.replace("_", "").isalpha()


def _expected_words(expected: set[str]) -> list[str]:
    if {"SELECT", "CREATE", "SHOW"} <= expected:
        return ["a statement (" + ", ".join(_STATEMENT_START) + ", ...)"]
    words: list[str] = []
    if {"NUMBER", "STRING", "IDENT"} <= expected:
        words.append("an expression")
        expected = expected - _EXPRESSION_START
    if "TYPE_CTOR" in expected:
        expected = expected - {"IDENT"}
    main = expected - {"$END", "SEMICOLON"}
    if {"FROM", "COMMA"} <= main:  # after a select item's alias: PRIMARY KEY is rarely the point
        main = main - {"PRIMARY"}
    if main & _OPERATORS:  # right after an operand: say what ends or continues the clause
        main = main - _CONTINUATIONS or main - _OPERATORS
    if main or words:
        expected = main
    for name in sorted(expected, key=_order):
        words.append(_WORDS.get(name, name))
    return words


def _order(name: str) -> tuple[int, str]:
    # keywords first (alphabetically), then words like "an identifier", then punctuation
    if name in _WORDS:
        return (2 if _WORDS[name].startswith("'") else 1, name)
    return (0, name)


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words) or "nothing more"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _shown(text: str, tok: Token) -> str:
    if tok.type == "$END":
        return "the end of the input"
    return repr(text[tok.start : tok.end])


def _context(text: str, prev: Token | None, expected: set[str]) -> str:
    if "FROM" in expected and "COMMA" in expected:
        return " after the select list"
    if prev is None:
        return ""
    raw = text[prev.start : prev.end]
    if _is_keyword(prev.type):
        return f" after {raw.upper()}"
    return f" after {raw!r}"


def describe_syntax_error(
    text: str, tok: Token, prev: Token | None, viable: set[str], builder: Builder
) -> SqlSyntaxError:
    """The SqlSyntaxError for finding ``tok`` where only the ``viable`` terminals could come."""
    expected = viable
    words = _expected_words(expected)
    ended = tok.type in ("$END", "SEMICOLON")
    where = _context(text, prev, expected)
    if ended:
        message = f"Statement ended too early: expected {_join(words)}{where}"
    else:
        message = f"Expected {_join(words)}{where}, found {_shown(text, tok)}"
        hint = _did_you_mean(text[tok.start : tok.end], expected)
        if hint:
            message += f"; did you mean {hint}?"
        elif prev is not None and prev.type == "IDENT":
            # a misspelt clause keyword is read as an alias (FROM t WHRE x): the error comes
            # one word later, but the word to fix is the previous one
            word = text[prev.start : prev.end]
            hint = _did_you_mean(word, expected)
            if hint:
                message += f"; did you mean {hint} instead of '{word}'?"
    return builder.error(message, tok.start, text[tok.start : tok.end], words)


def _did_you_mean(word: str, expected: set[str]) -> str | None:
    if not word.replace("_", "").isalpha():
        return None
    choices = [name for name in expected if _is_keyword(name)]
    if "TIME_UNIT" in expected:
        choices += [u.upper() for u in TIME_UNITS]
    close = difflib.get_close_matches(word.upper(), choices, n=1, cutoff=0.7)
    return close[0] if close else None
