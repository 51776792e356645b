"""SQL application files: several statements deployed as one unit, with annotations (dialect §9).

    -- @app: trading_analytics        (legacy: -- SQL Application: Trading Analytics)
    -- @version: 1.2.0                (legacy: -- Version: 1.2.0)
    -- @description: ...              (legacy: -- Description: ...)
    -- @name: price_alerts            (legacy: -- Name: Price Alerts  → price_alerts)
    -- @property: key=value           (legacy: -- Property: key=value)

``@app``/``@version``/``@description`` describe the application wherever they stand; ``@name`` and
``@property`` belong to the statement that follows them. ``${VAR}`` and ``${VAR:default}`` are
substituted first — from the given variables, then the environment — so every position in an error
is a position in the file (unless a value spans lines).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from . import ast
from .errors import SqlValidationError
from .lexer import line_col
from .parser import parse

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::([^}]*))?\}")
_ANNOTATION = re.compile(
    r"^[ \t]*--[ \t]*(?:@(?P<key>app|version|description|name|property)|"
    r"(?P<legacy>SQL Application|Version|Description|Name|Property))[ \t]*:[ \t]*(?P<value>.*?)"
    r"[ \t]*\r?$",
    re.I | re.M,
)
_LEGACY = {
    "sql application": "app", "version": "version", "description": "description",
    "name": "name", "property": "property",
}  # fmt: skip


@dataclass(frozen=True)
class AppStatement:
    """One statement of an application, with what its annotations say and where it starts."""

    statement: ast.Statement
    sql: str  # the statement's text, variables substituted
    line: int  # 1-based line of its first character in the file
    index: int  # 1-based position among the file's statements
    name: str | None = None  # from -- @name:
    properties: tuple[ast.Property, ...] = ()  # from -- @property:

    def with_properties(self) -> ast.Statement:
        """The statement with its ``@property`` annotations added to its WITH.

        A key written in the statement's own WITH wins over the same key in an annotation.
        """
        stmt = self.statement
        if not self.properties or not isinstance(
            stmt, (ast.CreateStreamAs, ast.StartJob, ast.InsertSelect)
        ):
            return stmt
        own = {p.key.lower() for p in stmt.properties}
        added = tuple(p for p in self.properties if p.key.lower() not in own)
        return replace(stmt, properties=added + stmt.properties)


@dataclass(frozen=True)
class App:
    """A parsed application file."""

    statements: tuple[AppStatement, ...]
    name: str | None = None
    version: str | None = None
    description: str | None = None


def normalize_name(text: str) -> str:
    """``Price Alerts`` → ``price_alerts`` (the legacy ``-- Name:`` form)."""
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def substitute(
    text: str, variables: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """``text`` with ``${VAR}``/``${VAR:default}`` replaced (variables, then environ).

    Raises SqlValidationError, at the variable's position, for one that has no value.
    """
    env = os.environ if environ is None else environ
    given = variables or {}

    def value(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in given:
            return str(given[name])
        if name in env:
            return env[name]
        if default is not None:
            return default
        line, column = line_col(text, m.start())
        raise SqlValidationError(
            f"Variable ${{{name}}} has no value: pass it with the deploy request, set it in the "
            f"server's environment or write ${{{name}:default}}",
            line=line, column=column, suggestions=[f"${{{name}:default}}"],
        )  # fmt: skip

    return _VARIABLE.sub(value, text)


def _property(text: str, line: int) -> ast.Property:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SqlValidationError(
            f"An @property annotation must read key=value, found '{text}'", line=line, column=1
        )
    value = raw.strip()
    parsed: ast.LiteralValue = value
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        parsed = value[1:-1]
    elif re.fullmatch(r"-?\d+", value):
        parsed = int(value)
    elif value.lower() in ("true", "false"):
        parsed = value.lower() == "true"
    return ast.Property(key.strip().strip("'\""), parsed)


def parse_app(
    text: str,
    variables: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> App:
    """Parse an application file: substitute variables, parse every statement, read annotations.

    Raises SqlSyntaxError (with the statement's index and the line in the file) or
    SqlValidationError (a variable without a value, a malformed annotation).
    """
    source = substitute(text, variables, environ)
    statements = parse(source)
    header: dict[str, str] = {}
    result: list[AppStatement] = []
    cursor = 0
    for index, stmt in enumerate(statements, start=1):
        assert stmt.span is not None  # the parser gives every statement its span
        name: str | None = None
        props: list[ast.Property] = []
        for m in _ANNOTATION.finditer(source, cursor, stmt.span.start_pos):
            key = (m.group("key") or _LEGACY[m.group("legacy").lower()]).lower()
            value = m.group("value")
            line = source.count("\n", 0, m.start()) + 1
            if key == "name":
                name = value if m.group("key") else normalize_name(value)
            elif key == "property":
                props.append(_property(value, line))
            elif key == "app" and not m.group("key"):
                header[key] = normalize_name(value)
            else:
                header[key] = value
        cursor = stmt.span.end_pos
        sql = source[stmt.span.start_pos : stmt.span.end_pos]
        result.append(AppStatement(stmt, sql, stmt.span.line, index, name, tuple(props)))
    for m in _ANNOTATION.finditer(source, cursor):  # a header written after the last statement
        key = (m.group("key") or _LEGACY[m.group("legacy").lower()]).lower()
        if key in ("app", "version", "description"):
            header[key] = m.group("value")
    return App(tuple(result), header.get("app"), header.get("version"), header.get("description"))
