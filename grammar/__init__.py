"""Velo SQL: the grammar, its typed AST and the statement splitter (public surface of velo.grammar).

    parse(text) -> list[Statement]        every statement of a text
    parse_statement(text) -> Statement    exactly one statement
    split_statements(text), is_complete(text)   statement pieces and the shell's Enter rule
    SqlError, SqlSyntaxError, SqlValidationError   the only exceptions (see errors.py)
    KEYWORDS, FUNCTION_NAMES              words for the shell's lexer and completer
"""

from . import ast
from .errors import SqlError, SqlSyntaxError, SqlValidationError
from .keywords import FUNCTION_NAMES, KEYWORDS
from .parser import parse, parse_statement
from .split import Piece, is_complete, split_statements

__all__ = [
    "FUNCTION_NAMES",
    "KEYWORDS",
    "Piece",
    "SqlError",
    "SqlSyntaxError",
    "SqlValidationError",
    "ast",
    "is_complete",
    "parse",
    "parse_statement",
    "split_statements",
]
