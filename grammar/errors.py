"""Every error velo.grammar raises, in one place (the httpx model).

    SqlError                  base: message, line, column, statement; to_dict()
    ├── SqlSyntaxError        the text is not Velo SQL: adds expected (in words) and token
    └── SqlValidationError    the SQL parses but cannot mean anything: adds suggestions

``parse()`` and ``parse_statement()`` raise only ``SqlSyntaxError``: a Lark error, an unclosed quote,
a recursion or memory problem — anything — comes out as one. ``SqlValidationError`` is raised by
``parse_app()`` and by the server's semantic checks (unknown source, unknown function, ...), which
share this hierarchy so that a client sees one error shape.

Positions are 1-based and relative to the whole text given to the parser, also when it holds
several statements; ``statement`` is the 1-based index of the statement the error is in.
"""

from __future__ import annotations

from typing import Any


class SqlError(Exception):
    """Base of every SQL error: a user-facing message and where it happened."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        statement: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.statement = statement

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"{self.message} (line {self.line}, column {self.column})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (the ``error`` object of the HTTP API)."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "statement": self.statement,
        }


class SqlSyntaxError(SqlError):
    """The text is not valid Velo SQL.

    ``expected`` lists what would have been accepted, in words ("FROM", "a comma", "an
    identifier"); ``token`` is the offending text ("" at the end of the input).
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        statement: int | None = None,
        expected: list[str] | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(message, line=line, column=column, statement=statement)
        self.expected: list[str] = list(expected or [])
        self.token = token

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "expected": self.expected, "token": self.token}


class SqlValidationError(SqlError):
    """The SQL parses but cannot run as written; ``suggestions`` are likely fixes ("FROM", ...)."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        statement: int | None = None,
        suggestions: list[str] | None = None,
    ) -> None:
        super().__init__(message, line=line, column=column, statement=statement)
        self.suggestions: list[str] = list(suggestions or [])

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "suggestions": self.suggestions}
