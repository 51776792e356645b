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
    for k in kids:  # noqa: SIM110 - any(<generator>) makes and resumes a generator: slower
        if type(k) is Token and k.type == token_type:
            return True
    return False


def _ident(kids: Kids, index: int = 0) -> str:
    """The ``index``-th IDENT among ``kids``."""
    return [k.value for k in kids if type(k) is Token and k.type == "IDENT"][index]


def _number(text: str) -> int | float:
    if "." in text or "e" in text or "E" in text:
        return float(text)
    return int(text)


_new = object.__new__


class LineStarts(list[int]):
    """The offsets at which the lines of ``text`` start, worked out when first read (``filled``).

    A parse makes one and every span of it shares it, but few parses ever need a line number
    (an error, EXPLAIN, a server message): until then it stays empty and costs nothing.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filled(self) -> LineStarts:
        if not self:  # one assignment: a concurrent reader sees it empty or complete
            self[:] = [0, *(m.end() for m in _NEWLINE.finditer(self.text))]
        return self


class LazySpan(a.Span):
    """A Span that works out its line and column numbers when they are first read.

    Every node gets a span, few are ever read (error messages, EXPLAIN), and two binary searches
    and six fields per node were an eighth of the parsing time. It equals, hashes and prints as
    the plain Span with the same values. (``dataclasses.replace`` does not apply to it: build an
    ``ast.Span`` instead.)
    """

    _lines: LineStarts

    def __init__(self, lines: LineStarts, start: int, end: int) -> None:  # not the dataclass one
        d = self.__dict__
        d["_lines"], d["start_pos"], d["end_pos"] = lines, start, end

    @property
    def line(self) -> int:
        return bisect_right(self._lines.filled(), self.start_pos)

    @property
    def column(self) -> int:
        return self.start_pos - self._lines.filled()[self.line - 1] + 1

    @property
    def end_line(self) -> int:
        return bisect_right(self._lines.filled(), self.end_pos)

    @property
    def end_column(self) -> int:
        return self.end_pos - self._lines.filled()[self.end_line - 1] + 1

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
    fills the instance's ``__dict__`` directly, three times faster. Fields, their order (that of
    ``__init__``, so that every instance's ``__dict__`` shares one key table), defaults and
    keyword-only fields come from the dataclass itself, so the two cannot drift apart.
    """
    return _compile_constructor(cls, spanned=False)


def spanned_constructor(cls: type[N]) -> Callable[..., N]:
    """Like ``fast_constructor``, but ``make(lines, start, end, <the fields>)``: the node's
    LazySpan (``lines`` are the builder's line starts, ``start``/``end`` the offsets) is built
    here too, instead of in another call — a node per reduction, the call is worth saving. The
    builder's rules use these for the nodes of queries and expressions."""
    return _compile_constructor(cls, spanned=True)


def _compile_constructor(cls: type[N], spanned: bool) -> Callable[..., N]:
    fields = dataclasses.fields(cls)
    assert not {f.name for f in fields} & {"o", "d", "cls", "_new", "LazySpan"}, cls  # names the code uses
    params: list[str] = ["_lines", "_start", "_end"] if spanned else []
    kw_only: list[str] = []
    defaults: dict[str, Any] = {}
    for f in fields:
        assert f.default_factory is dataclasses.MISSING, f"{cls.__name__}.{f.name}"
        if f.name == "span" and spanned:
            continue
        param = f.name
        if f.default is not dataclasses.MISSING:
            defaults[f"_d_{f.name}"] = f.default
            param += f"=_d_{f.name}"
        (kw_only if f.kw_only else params).append(param)
    signature = ", ".join([*params, *(["*", *kw_only] if kw_only else [])])
    body = "    o = _new(cls)\n    d = o.__dict__\n"
    body += "".join(f"    d[{f.name!r}] = {f.name}\n" for f in fields)
    if spanned:  # the span's fields in LazySpan.__init__'s order, the node's `span` is the new one
        body = (
            "    span = _new(LazySpan)\n    d = span.__dict__\n"
            "    d['_lines'] = _lines\n    d['start_pos'] = _start\n    d['end_pos'] = _end\n" + body
        )
    namespace: dict[str, Any] = {"_new": object.__new__, "cls": cls, "LazySpan": LazySpan, **defaults}
    exec(f"def make({signature}):\n{body}    return o\n", namespace)
    make: Callable[..., N] = namespace["make"]
    make.__qualname__ = make.__name__ = f"make_{cls.__name__}"
    return make


def copy_with(node: N, **changes: Any) -> N:
    """``dataclasses.replace`` for the nodes built here (no ``__post_init__``, no ``init=False``
    fields), without the frozen ``__init__``: the same fields, some changed, the span kept."""
    o = _new(type(node))
    d = o.__dict__
    d.update(node.__dict__)
    d.update(changes)
    return o


# the nodes a query is made of (statements that are not queries are rare: a.X(...) there)
make_column = spanned_constructor(a.Column)
make_literal = spanned_constructor(a.Literal)
make_binary = spanned_constructor(a.BinaryOp)
make_unary = spanned_constructor(a.UnaryOp)
make_call = spanned_constructor(a.FunctionCall)
make_item = spanned_constructor(a.SelectItem)
make_star = spanned_constructor(a.Star)
make_table = spanned_constructor(a.TableRef)
make_join = spanned_constructor(a.Join)
make_property = spanned_constructor(a.Property)
make_select = spanned_constructor(a.Select)
make_window = spanned_constructor(a.Window)
make_interval = spanned_constructor(a.Interval)
make_case = spanned_constructor(a.Case)
make_when = spanned_constructor(a.WhenClause)
make_between = spanned_constructor(a.Between)
make_in_list = spanned_constructor(a.InList)
make_is_null = spanned_constructor(a.IsNull)
make_like = spanned_constructor(a.Like)
make_field = spanned_constructor(a.FieldAccess)
make_create_as = spanned_constructor(a.CreateStreamAs)


class BuilderBase:
    """Per-parse state (the text and its line starts), spans and errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines = LineStarts(text)

    # ------------------------------------------------------------ positions and errors

    def span(self, start: int, end: int) -> a.Span:
        s = _new(LazySpan)
        d = s.__dict__
        d["_lines"], d["start_pos"], d["end_pos"] = self._lines, start, end
        return s

    def error(
        self, message: str, pos: int, token: str | None = None, expected: list[str] | None = None
    ) -> SqlSyntaxError:
        lines = self._lines.filled()
        line = bisect_right(lines, pos)
        return SqlSyntaxError(
            message, line=line, column=pos - lines[line - 1] + 1,
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
