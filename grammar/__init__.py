"""Velo SQL: the grammar, its typed AST and the statement splitter (public surface of velo.grammar).

    parse(text) -> list[Statement]        every statement of a text (ast.py has the node types)
    parse_statement(text) -> Statement    exactly one statement
    to_sql(node) -> str                   canonical SQL; parse(to_sql(s)) == [s]
    split_statements(text), is_complete(text)   statement pieces and the shell's Enter rule
    parse_app(text, variables)            an application file: annotations, ${VAR} substitution
    SqlError, SqlSyntaxError, SqlValidationError   the only exceptions (see errors.py)
    KEYWORDS, FUNCTION_NAMES              words for the shell's lexer and completer
"""

from . import ast
from .apps import App, AppStatement, parse_app
from .errors import SqlError, SqlSyntaxError, SqlValidationError
from .keywords import FUNCTION_NAMES, KEYWORDS
from .parser import parse, parse_statement
from .printer import to_sql
from .split import Piece, is_complete, split_statements

__all__ = [
    "FUNCTION_NAMES",
    "KEYWORDS",
    "App",
    "AppStatement",
    "Piece",
    "SqlError",
    "SqlSyntaxError",
    "SqlValidationError",
    "ast",
    "is_complete",
    "parse",
    "parse_app",
    "parse_statement",
    "split_statements",
    "to_sql",
]
