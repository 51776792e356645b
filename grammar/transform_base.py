"""Shared pieces of the AST builder: positions, errors, the Part tuple and lexical tables.

``transformer.Builder`` (statements, SELECT) extends ``transform_expr.ExpressionRules``
(expressions, windows, durations, types), which extends ``BuilderBase`` here.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from bisect import bisect_right
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from . import ast as a
from .errors import SqlSyntaxError
from .keywords import _words
from .lexer import Token

Kids = list[Any]


class Part(NamedTuple):
    """A piece of a statement that is not itself a node (a clause, a flag, a name)."""

    tag: str
    value: Any


TYPE_NAMES: dict[str, str] = {
    "BOOLEAN": "BOOLEAN", "BOOL": "BOOLEAN", "INT": "INT", "INTEGER": "INT", "BIGINT": "BIGINT",
    "DOUBLE": "DOUBLE", "FLOAT": "DOUBLE", "REAL": "DOUBLE", "STRING": "STRING",
    "VARCHAR": "STRING", "TEXT": "STRING", "TIMESTAMP": "TIMESTAMP", "DATE": "DATE",
}  # fmt: skip
EXTRACT_UNITS = _words("YEAR MONTH DAY HOUR MINUTE SECOND MILLISECOND DOW DOY EPOCH")
_UNIT_OF = {
    "MS": "MILLISECOND", "S": "SECOND", "M": "MINUTE", "H": "HOUR", "D": "DAY",
    **{u + s: u for u in a.UNIT_MILLIS for s in ("", "S")},
}  # fmt: skip
_INTERVAL_TEXT = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*([a-z]*)\s*", re.I)
_DURATION = re.compile(r"(\d+)([a-z]+)", re.I)
_NEWLINE = re.compile(r"\n")


def _nodes(kids: Kids) -> list[Any]:
    return [k for k in kids if isinstance(k, a.Node)]


def _parts(kids: Kids) -> dict[str, Any]:
    return {k.tag: k.value for k in kids if type(k) is Part}


def _has(kids: Kids, token_type: str) -> bool:
    return any(type(k) is Token and k.type == token_type for k in kids)


def _ident(kids: Kids, index: int = 0) -> str:
    """The ``index``-th IDENT among ``kids``."""
    return [k.value for k in kids if type(k) is Token and k.type == "IDENT"][index]


def _number(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


_new = object.__new__


class LazySpan(a.Span):
    """A Span that works out its line and column numbers when they are first read.

    Every node gets a span, few are ever read (error messages, EXPLAIN), and two binary searches
    and six fields per node were an eighth of the parsing time. It equals, hashes and prints as
    the plain Span with the same values. (``dataclasses.replace`` does not apply to it: build an
    ``ast.Span`` instead.)
    """

    _lines: list[int]

    def __init__(self, lines: list[int], start: int, end: int) -> None:  # not the dataclass one
        d = self.__dict__
        d["_lines"], d["start_pos"], d["end_pos"] = lines, start, end

    @property
    def line(self) -> int:
        return bisect_right(self._lines, self.start_pos)

    @property
    def column(self) -> int:
        return self.start_pos - self._lines[self.line - 1] + 1

    @property
    def end_line(self) -> int:
        return bisect_right(self._lines, self.end_pos)

    @property
    def end_column(self) -> int:
        return self.end_pos - self._lines[self.end_line - 1] + 1

    def _key(self) -> tuple[int, int, int, int, int, int]:
        return (self.line, self.column, self.end_line, self.end_column, self.start_pos,
                self.end_pos)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, a.Span):
            return NotImplemented
        return self._key() == (other.line, other.column, other.end_line, other.end_column,
                               other.start_pos, other.end_pos)  # fmt: skip

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Span(line={}, column={}, end_line={}, end_column={}, start_pos={}, end_pos={})".format(
            *self._key()
        )


N = TypeVar("N", bound=a.Node)


def fast_constructor(cls: type[N]) -> Callable[..., N]:
    """A constructor for node class ``cls`` taking the same arguments as its ``__init__``.

    A frozen dataclass's ``__init__`` assigns each field through ``object.__setattr__``; this one
    fills the instance's ``__dict__`` directly, three times faster — it matters for the nodes
    made most often (columns, literals, operators, calls, select items). Fields, order and
    defaults come from the dataclass itself, so the two cannot drift apart.
    """
    fields = [f for f in dataclasses.fields(cls) if f.name != "span"]
    params, defaults = [], {}
    for f in fields:
        assert f.default_factory is dataclasses.MISSING, f"{cls.__name__}.{f.name}"
        if f.default is not dataclasses.MISSING:
            defaults[f"_d_{f.name}"] = f.default
            params.append(f"{f.name}=_d_{f.name}")
        else:
            params.append(f.name)
    sets = "".join(f"    d[{f.name!r}] = {f.name}\n" for f in fields)
    source = (
        f"def make({', '.join(params)}, *, span=None):\n"
        f"    o = _new(cls)\n    d = o.__dict__\n{sets}    d['span'] = span\n    return o\n"
    )
    namespace: dict[str, Any] = {"_new": object.__new__, "cls": cls, **defaults}
    exec(source, namespace)
    make: Callable[..., N] = namespace["make"]
    return make


make_column = fast_constructor(a.Column)
make_literal = fast_constructor(a.Literal)
make_binary = fast_constructor(a.BinaryOp)
make_call = fast_constructor(a.FunctionCall)
make_item = fast_constructor(a.SelectItem)


class BuilderBase:
    """Per-parse state (the text and its line starts), spans and errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines = [0] + [m.end() for m in _NEWLINE.finditer(text)]

    # ------------------------------------------------------------ positions and errors

    def span(self, start: int, end: int) -> a.Span:
        s = _new(LazySpan)
        d = s.__dict__
        d["_lines"], d["start_pos"], d["end_pos"] = self._lines, start, end
        return s

    def error(
        self, message: str, pos: int, token: str | None = None, expected: list[str] | None = None
    ) -> SqlSyntaxError:
        line = bisect_right(self._lines, pos)
        return SqlSyntaxError(
            message, line=line, column=pos - self._lines[line - 1] + 1,
            token=token, expected=expected,
        )  # fmt: skip

    def _unknown(self, what: str, tok: Token, choices: list[str], expected: str) -> SqlSyntaxError:
        word = self.text[tok.start : tok.end]
        message = f"Unknown {what} '{word}'"
        close = difflib.get_close_matches(word.upper(), choices, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]}?"
        return self.error(message, tok.start, word, [expected])

    def _raw(self, tok: Token) -> str:
        """An unquoted name as written (WITH keys keep their case); a quoted one unquoted."""
        raw = self.text[tok.start : tok.end]
        return tok.value if raw[:1] in ('"', "`") else raw

    def _count(self, tok: Token) -> int:
        if not tok.value.isdigit():
            raise self.error(f"Expected a whole number, found '{tok.value}'", tok.start, tok.value)
        return int(tok.value)


def _canon_kind(kind: str) -> str:
    return "hopping" if kind == "sliding" else kind


def _start(node: a.Node) -> int:
    return node.span.start_pos if node.span else 0
