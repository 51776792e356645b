"""A pygments lexer for Velo SQL, built from the grammar's keyword and function lists.

Used by the shell for syntax highlighting (through prompt_toolkit's ``PygmentsLexer``) and usable on
its own (``pygmentize -l`` style) as :class:`VeloLexer`. A word followed by ``(`` that is a known
function is a function even if it is also a keyword (``LEFT(s, 3)`` vs ``LEFT JOIN``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pygments.lexer import RegexLexer, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)
from velo.cli.vocabulary import TYPES, function_names, keywords


def build_tokens(kw: Sequence[str], functions: Sequence[str], types: Sequence[str]) -> dict[str, list[object]]:
    """The pygments token table for the given vocabulary (kept a function so tests can vary it)."""
    plain_keywords = [k for k in kw if k not in set(types)]
    return {
        "root": [
            (r"\s+", Whitespace),
            # Annotations (-- @name: x, legacy -- Name: x) are meaningful to the server: show them apart.
            (
                r"--\s*(@\w+|Name|Property|SQL Application|Version|Description)\s*:.*?$",
                Comment.Special,
            ),
            (r"--.*?$", Comment.Single),
            (r"/\*", Comment.Multiline, "comment"),
            (r"'(?:''|[^'])*'", String.Single),
            (r"'(?:''|[^'])*$", String.Single),  # unterminated while typing
            (r'"(?:""|[^"])*"', Name.Variable),
            (r"`[^`]*`", Name.Variable),
            (r"\$\{[^}]*\}", Name.Variable.Global),  # ${VAR} substitution
            (r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?:ms|s|m|h|d)?\b", Number),
            (r"\.\d+(?:[eE][+-]?\d+)?", Number),
            (words(tuple(functions), prefix=r"\b", suffix=r"(?=\s*\()"), Name.Function),
            (words(tuple(types), prefix=r"\b", suffix=r"\b"), Keyword.Type),
            (words(tuple(plain_keywords), prefix=r"\b", suffix=r"\b"), Keyword),
            (r"^\s*\\\S+", Keyword.Pseudo),  # meta commands (\?, \jobs …)
            (r"[A-Za-z_][A-Za-z0-9_$]*", Name),
            (r"::|\|\||[<>!=]=|<>|[-+*/%<>=]", Operator),
            (r"[;:()\[\],.]", Punctuation),
            (r".", Text),
        ],
        "comment": [
            (r"[^*/]+", Comment.Multiline),
            (r"/\*", Comment.Multiline, "#push"),
            (r"\*/", Comment.Multiline, "#pop"),
            (r"[*/]", Comment.Multiline),
        ],
    }


class VeloLexer(RegexLexer):
    """Velo SQL (keywords and functions from ``velo.grammar.keywords``)."""

    name = "Velo SQL"
    aliases = ["velo", "velosql"]  # noqa: RUF012 - pygments' class-level API
    filenames = ["*.vsql"]  # noqa: RUF012
    mimetypes = ["text/x-velo-sql"]  # noqa: RUF012
    flags = re.IGNORECASE | re.MULTILINE
    tokens = build_tokens(keywords(), function_names(), TYPES)
