"""From grammar rules to AST nodes: one method per rule (or rule alias) of velo.lark.

The parser calls ``Builder.<rule>(builder, kids, start, end)`` at each LALR reduction, so no parse
tree is ever built. ``kids`` holds every child in order: tokens (``lexer.Token``), AST nodes, ``Part``
tuples for clauses that are not nodes, and None for an empty optional rule; ``start``/``end`` are the
offsets the reduction covers. Structural checks that a grammar cannot express (the window argument
forms, type names, interval strings) raise ``SqlSyntaxError`` here, at the offending position.
"""

from __future__ import annotations

import difflib
import re
from bisect import bisect_right
from dataclasses import replace
from typing import Any, NamedTuple

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


class Builder:
    """Per-parse state (the text and its line starts) and the rule callbacks."""

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

    # ------------------------------------------------------------ statement lists

    def start(self, kids: Kids, s: int, e: int) -> list[a.Statement]:
        return _nodes(kids)

    def create_as(self, kids: Kids, s: int, e: int) -> a.CreateStreamAs:
        p = _parts(kids)
        query: a.Select = _nodes(kids)[-1]
        return a.CreateStreamAs(
            _ident(kids), replace(query, properties=()), p["kind"], query.properties,
            p.get("columns", ()), "or_replace" in p, span=self.span(s, e),
        )  # fmt: skip

    def create_source(self, kids: Kids, s: int, e: int) -> a.CreateSource:
        p = _parts(kids)
        return a.CreateSource(
            _ident(kids), p["kind"], p.get("columns", ()), p["with"], "or_replace" in p,
            span=self.span(s, e),
        )  # fmt: skip

    def or_replace(self, kids: Kids, s: int, e: int) -> Part:
        return Part("or_replace", True)

    def relation_kind(self, kids: Kids, s: int, e: int) -> Part:
        return Part("kind", kids[0].value.lower())

    def column_defs(self, kids: Kids, s: int, e: int) -> Part:
        return Part("columns", tuple(_nodes(kids)))

    def column_def(self, kids: Kids, s: int, e: int) -> a.ColumnDef:
        key = _parts(kids).get("key")
        return a.ColumnDef(
            _ident(kids), _nodes(kids)[0], key == "KEY", key == "PRIMARY KEY", span=self.span(s, e)
        )

    def key_marker(self, kids: Kids, s: int, e: int) -> Part:
        return Part("key", "KEY" if len(kids) == 1 else "PRIMARY KEY")

    def start_job(self, kids: Kids, s: int, e: int) -> a.StartJob:
        query: a.Select = kids[-1]
        return a.StartJob(
            _ident(kids), replace(query, properties=()), query.properties, span=self.span(s, e)
        )

    def insert_select(self, kids: Kids, s: int, e: int) -> a.InsertSelect:
        query: a.Select = kids[-1]
        return a.InsertSelect(
            _ident(kids), replace(query, properties=()), query.properties, span=self.span(s, e)
        )

    def insert_values(self, kids: Kids, s: int, e: int) -> a.InsertValues:
        rows = tuple(k.value for k in kids if type(k) is Part and k.tag == "row")
        columns = _parts(kids).get("columns", ())
        for row in rows:
            if columns and len(row) != len(columns):
                raise self.error(
                    f"A row has {len(row)} values for {len(columns)} columns", s, None
                )
        return a.InsertValues(kids[2].value, rows, columns, span=self.span(s, e))

    def ident_list(self, kids: Kids, s: int, e: int) -> Part:
        return Part("columns", tuple(k.value for k in kids if k.type == "IDENT"))

    def row(self, kids: Kids, s: int, e: int) -> Part:
        return Part("row", tuple(_nodes(kids)))

    def drop_stmt(self, kids: Kids, s: int, e: int) -> a.Drop:
        p = _parts(kids)
        return a.Drop(
            _ident(kids), p["kind"], "if_exists" in p, "delete_topic" in p, span=self.span(s, e)
        )

    def if_exists(self, kids: Kids, s: int, e: int) -> Part:
        return Part("if_exists", True)

    def delete_topic(self, kids: Kids, s: int, e: int) -> Part:
        return Part("delete_topic", True)

    # ------------------------------------------------------------ control and inspection

    def print_stmt(self, kids: Kids, s: int, e: int) -> a.Print:
        p = _parts(kids)
        return a.Print(
            kids[1].value, "from_beginning" in p, p.get("interval"), p.get("limit"),
            span=self.span(s, e),
        )  # fmt: skip

    def from_beginning(self, kids: Kids, s: int, e: int) -> Part:
        return Part("from_beginning", True)

    def print_interval(self, kids: Kids, s: int, e: int) -> Part:
        return Part("interval", self._count(kids[1]))

    def stop_job(self, kids: Kids, s: int, e: int) -> a.StopJob:
        return a.StopJob(_ident(kids), _has(kids, "FORCE"), span=self.span(s, e))

    def terminate(self, kids: Kids, s: int, e: int) -> a.StopJob:
        return a.StopJob(_ident(kids), span=self.span(s, e))

    def pause_job(self, kids: Kids, s: int, e: int) -> a.PauseJob:
        return a.PauseJob(_ident(kids), span=self.span(s, e))

    def resume_job(self, kids: Kids, s: int, e: int) -> a.ResumeJob:
        return a.ResumeJob(_ident(kids), span=self.span(s, e))

    def stop_app(self, kids: Kids, s: int, e: int) -> a.StopApp:
        return a.StopApp(_ident(kids), span=self.span(s, e))

    def show_jobs(self, kids: Kids, s: int, e: int) -> a.ShowJobs:
        like = kids[-1].value if kids[-1].type == "STRING" else None
        return a.ShowJobs(like, span=self.span(s, e))

    def show_status(self, kids: Kids, s: int, e: int) -> a.ShowStatus:
        return a.ShowStatus(_ident(kids), span=self.span(s, e))

    def show_metrics(self, kids: Kids, s: int, e: int) -> a.ShowMetrics:
        name = kids[-1].value if kids[-1].type == "IDENT" else None
        return a.ShowMetrics(name, span=self.span(s, e))

    def show_list(self, kids: Kids, s: int, e: int) -> a.Show:
        return a.Show(kids[1].value.lower(), span=self.span(s, e))

    def describe(self, kids: Kids, s: int, e: int) -> a.Describe:
        return a.Describe(_ident(kids), span=self.span(s, e))

    def describe_function(self, kids: Kids, s: int, e: int) -> a.DescribeFunction:
        return a.DescribeFunction(_ident(kids).upper(), span=self.span(s, e))

    def explain(self, kids: Kids, s: int, e: int) -> a.Explain:
        if isinstance(kids[1], a.Node):
            return a.Explain(statement=kids[1], span=self.span(s, e))  # type: ignore[arg-type]
        return a.Explain(name=kids[1].value, span=self.span(s, e))

    def set_stmt(self, kids: Kids, s: int, e: int) -> a.SetProperty:
        return a.SetProperty(kids[1].value, kids[3].value, span=self.span(s, e))

    def unset_stmt(self, kids: Kids, s: int, e: int) -> a.UnsetProperty:
        return a.UnsetProperty(kids[1].value, span=self.span(s, e))

    # ------------------------------------------------------------ SELECT

    def select_stmt(self, kids: Kids, s: int, e: int) -> a.Select:
        distinct = kids[1].type == "DISTINCT" if type(kids[1]) is Token else False
        items, (table, joins) = kids[2 if distinct else 1], kids[4 if distinct else 3]
        windows: list[a.Window] = []
        clauses: dict[str, Any] = {}
        for part in kids[-7:]:
            if part is None:
                continue
            value, window = part.value
            clauses[part.tag] = value
            if window is not None:
                if windows:
                    raise self.error("A query can have only one WINDOW clause", _start(window))
                windows.append(window)
        return a.Select(
            items, table, clauses.get("where"), distinct, clauses.get("limit"),
            clauses.get("emit"), clauses.get("with", ()), joins, clauses.get("group", ()),
            clauses.get("having"), windows[0] if windows else None, span=self.span(s, e),
        )  # fmt: skip

    def select_items(self, kids: Kids, s: int, e: int) -> tuple[a.SelectItem, ...]:
        return tuple(_nodes(kids))

    def select_expr(self, kids: Kids, s: int, e: int) -> a.SelectItem:
        expr = kids[0]
        if isinstance(expr, a.Star):
            raise self.error("'*' cannot be used in an expression", s, "*")
        alias = kids[2].value if len(kids) > 2 and type(kids[1]) is Token else None
        return a.SelectItem(expr, alias, type(kids[-1]) is Part, span=self.span(s, e))

    def select_star(self, kids: Kids, s: int, e: int) -> a.SelectItem:
        tok = kids[0]
        qualifier = tok.value if tok.type == "QSTAR" else None
        return a.SelectItem(a.Star(qualifier, span=self.span(s, e)), span=self.span(s, e))

    def primary_key(self, kids: Kids, s: int, e: int) -> Part:
        return Part("pk", True)

    def from_clause(self, kids: Kids, s: int, e: int) -> tuple[a.TableRef, tuple[a.Join, ...]]:
        return kids[0], tuple(kids[1:])

    def table_alias(self, kids: Kids, s: int, e: int) -> a.TableRef:
        return a.TableRef(kids[0].value, kids[-1].value, span=self.span(s, e))

    def table(self, kids: Kids, s: int, e: int) -> a.TableRef:
        return a.TableRef(kids[0].value, span=self.span(s, e))

    def join(self, kids: Kids, s: int, e: int) -> a.Join:
        kind, table, on = kids[0].value, kids[2], kids[4]
        within = kids[5].value if len(kids) > 5 else None
        return a.Join(kind, table, on, within, span=self.span(s, e))

    def join_kind(self, kids: Kids, s: int, e: int) -> Part:
        return Part("kind", kids[0].value.lower() if kids else "inner")

    def within(self, kids: Kids, s: int, e: int) -> Part:
        return Part("within", kids[1])

    def window_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("window_only", (None, kids[0])) if kids else None

    def where_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("where", (kids[1], kids[2] if len(kids) > 2 else None)) if kids else None

    def group_part(self, kids: Kids, s: int, e: int) -> Part | None:
        if not kids:
            return None
        window = kids[-1] if isinstance(kids[-1], a.Window) else None
        exprs = tuple(k for k in _nodes(kids[2:]) if k is not window)
        return Part("group", (exprs, window))

    def having_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("having", (kids[1], kids[2] if len(kids) > 2 else None)) if kids else None

    def emit_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("emit", (kids[1].value.lower(), None)) if kids else None

    def limit_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("limit", (kids[0].value, None)) if kids else None

    def limit_clause(self, kids: Kids, s: int, e: int) -> Part:
        return Part("limit", self._count(kids[1]))

    def with_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("with", (kids[0].value, None)) if kids else None

    def with_clause(self, kids: Kids, s: int, e: int) -> Part:
        return Part("with", tuple(_nodes(kids)))

    def property(self, kids: Kids, s: int, e: int) -> a.Property:
        key = kids[0]
        name = key.value if key.type == "STRING" else self._raw(key)
        return a.Property(name, kids[2].value, span=self.span(s, e))

    def prop_value(self, kids: Kids, s: int, e: int) -> Part:
        tok = kids[-1]
        if tok.type == "NUMBER":
            number = _number(tok.value)
            return Part("value", -number if len(kids) == 2 else number)
        if tok.type == "IDENT":
            return Part("value", self._raw(tok))
        return Part("value", {"TRUE": True, "FALSE": False, "NULL": None}.get(tok.type, tok.value))

    def _raw(self, tok: Token) -> str:
        """An unquoted name as written (WITH keys keep their case); a quoted one unquoted."""
        raw = self.text[tok.start : tok.end]
        return tok.value if raw[:1] in ('"', "`") else raw

    def _count(self, tok: Token) -> int:
        if not tok.value.isdigit():
            raise self.error(f"Expected a whole number, found '{tok.value}'", tok.start, tok.value)
        return int(tok.value)

    # ------------------------------------------------------------ windows and durations

    def window_clause(self, kids: Kids, s: int, e: int) -> a.Window:
        kind = kids[1].value
        args: list[Part] = [k for k in kids[3:] if type(k) is Part]
        return self._window(kind, args, s, e)

    def _window(self, kind: str, args: list[Part], s: int, e: int) -> a.Window:
        label = kind.upper()
        tags = [p.tag for p in args]
        if tags.count("grace") > 1:
            raise self.error(f"{label} window has GRACE PERIOD twice", s)
        grace = next((p.value for p in args if p.tag == "grace"), None)
        column = args[0].value if args and args[0].tag == "col" else None
        rest = [p for p in args if p.tag not in ("grace", "col")]
        if any(p.tag == "col" for p in args[1:]):
            raise self.error(f"{label} window: the time column must be its first argument", s)
        shape = [p.tag for p in rest]
        sizes = [p.value for p in rest]
        want = {"tumbling": (["dur"], ["size"]), "session": (["dur"], ["dur"]),
                "hopping": (["dur", "dur"], ["size", "advance"])}[_canon_kind(kind)]  # fmt: skip
        if shape not in want:
            forms = {
                "tumbling": "TUMBLING([time_column,] size) or TUMBLING(SIZE d)",
                "hopping": "HOPPING([time_column,] size, advance) or "
                "HOPPING(SIZE d, ADVANCE BY d)",
                "session": "SESSION([time_column,] gap)",
            }[_canon_kind(kind)]
            raise self.error(f"Wrong {label} window arguments: expected {forms}", s)
        advance = sizes[1] if len(sizes) == 2 else None
        return a.Window(
            _canon_kind(kind), sizes[0], advance, grace, column, span=self.span(s, e)
        )

    def window_kind(self, kids: Kids, s: int, e: int) -> Token:
        return Token("KIND", kids[0].value.lower(), s, e)

    def warg_duration(self, kids: Kids, s: int, e: int) -> Part:
        return Part("dur", kids[0])

    def warg_column(self, kids: Kids, s: int, e: int) -> Part:
        tok: Token = kids[0]
        if tok.type == "QNAME":
            return Part("col", self.qualified_column(kids, s, e))
        if len(kids) == 3:  # quoted parts: "T".ts
            return Part("col", a.Column(kids[2].value, tok.value, span=self.span(s, e)))
        return Part("col", a.Column(tok.value, span=self.span(s, e)))

    def warg_size(self, kids: Kids, s: int, e: int) -> Part:
        return Part("size", kids[1])

    def warg_advance(self, kids: Kids, s: int, e: int) -> Part:
        return Part("advance", kids[2])

    def warg_grace(self, kids: Kids, s: int, e: int) -> Part:
        return kids[0]  # type: ignore[no-any-return]

    def grace(self, kids: Kids, s: int, e: int) -> Part:
        return Part("grace", kids[2])

    def duration_short(self, kids: Kids, s: int, e: int) -> a.Interval:
        m = _DURATION.fullmatch(kids[0].value)
        assert m is not None  # the lexer matched the same shape
        return a.Interval(int(m.group(1)), _UNIT_OF[m.group(2).upper()], span=self.span(s, e))

    def duration_words(self, kids: Kids, s: int, e: int) -> a.Interval:
        amount = _number(kids[0].value)
        return a.Interval(amount, _UNIT_OF[kids[1].value.upper()], span=self.span(s, e))

    def interval(self, kids: Kids, s: int, e: int) -> a.Interval:
        text_tok: Token = kids[1]
        m = _INTERVAL_TEXT.fullmatch(text_tok.value)
        unit_word = kids[2].value if len(kids) > 2 else (m.group(2) if m else "")
        unit = _UNIT_OF.get(unit_word.upper())
        if m is None or unit is None or (len(kids) > 2 and m.group(2)):
            raise self.error(
                f"Invalid interval '{text_tok.value}': write INTERVAL '5' SECOND or "
                "INTERVAL '5 seconds'",
                text_tok.start, text_tok.value, ["a time unit"],
            )  # fmt: skip
        return a.Interval(_number(m.group(1).lstrip("+")), unit, span=self.span(s, e))

    # ------------------------------------------------------------ expressions

    def binary(self, kids: Kids, s: int, e: int) -> a.BinaryOp:
        op: Token = kids[1]
        name = "!=" if op.type == "NE" else op.type if op.type in ("AND", "OR") else op.value
        return a.BinaryOp(name, kids[0], kids[2], span=self.span(s, e))

    def unary(self, kids: Kids, s: int, e: int) -> a.Expr:
        op, operand = kids
        if op.type == "NOT":
            return a.UnaryOp("NOT", operand, span=self.span(s, e))
        if isinstance(operand, a.Literal) and type(operand.value) in (int, float):
            value = operand.value if op.type == "PLUS" else -operand.value  # type: ignore[operator]
            return a.Literal(value, span=self.span(s, e))
        return a.UnaryOp(op.value, operand, span=self.span(s, e))

    def is_null(self, kids: Kids, s: int, e: int) -> a.IsNull:
        return a.IsNull(kids[0], _has(kids, "NOT"), span=self.span(s, e))

    def between(self, kids: Kids, s: int, e: int) -> a.Between:
        x, low, high = _nodes(kids)
        return a.Between(x, low, high, _has(kids, "NOT"), span=self.span(s, e))

    def in_list(self, kids: Kids, s: int, e: int) -> a.InList:
        nodes = _nodes(kids)
        return a.InList(nodes[0], tuple(nodes[1:]), _has(kids, "NOT"), span=self.span(s, e))

    def in_select(self, kids: Kids, s: int, e: int) -> a.InSubquery:
        x, query = _nodes(kids)
        return a.InSubquery(x, query, _has(kids, "NOT"), span=self.span(s, e))

    def like(self, kids: Kids, s: int, e: int) -> a.Like:
        x, pattern = _nodes(kids)
        return a.Like(x, pattern, _has(kids, "NOT"), span=self.span(s, e))

    def exists(self, kids: Kids, s: int, e: int) -> a.Exists:
        return a.Exists(kids[2], span=self.span(s, e))

    def subscript(self, kids: Kids, s: int, e: int) -> a.Subscript:
        return a.Subscript(kids[0], kids[2], span=self.span(s, e))

    def field(self, kids: Kids, s: int, e: int) -> a.Expr:
        base, name = kids[0], kids[2].value
        if type(base) is a.Column and base.qualifier is None:
            return a.Column(name, base.name, span=self.span(s, e))
        return a.FieldAccess(base, name, span=self.span(s, e))

    def cast_op(self, kids: Kids, s: int, e: int) -> a.Cast:
        return a.Cast(kids[0], kids[2], span=self.span(s, e))

    def number(self, kids: Kids, s: int, e: int) -> a.Literal:
        return a.Literal(_number(kids[0].value), span=self.span(s, e))

    def string(self, kids: Kids, s: int, e: int) -> a.Literal:
        return a.Literal(kids[0].value, span=self.span(s, e))

    def true(self, kids: Kids, s: int, e: int) -> a.Literal:
        return a.Literal(True, span=self.span(s, e))

    def false(self, kids: Kids, s: int, e: int) -> a.Literal:
        return a.Literal(False, span=self.span(s, e))

    def null(self, kids: Kids, s: int, e: int) -> a.Literal:
        return a.Literal(None, span=self.span(s, e))

    def column(self, kids: Kids, s: int, e: int) -> a.Column:
        return a.Column(kids[0].value, span=self.span(s, e))

    def qualified_column(self, kids: Kids, s: int, e: int) -> a.Column:
        qualifier, _, name = kids[0].value.partition(".")
        return a.Column(name, qualifier, span=self.span(s, e))

    def paren(self, kids: Kids, s: int, e: int) -> a.Expr:
        return kids[1]  # type: ignore[no-any-return]

    def case(self, kids: Kids, s: int, e: int) -> a.Case:
        whens = tuple(k for k in kids if type(k) is a.WhenClause)
        operand: a.Expr | None = None
        if isinstance(kids[1], a.Node) and type(kids[1]) is not a.WhenClause:
            operand = kids[1]  # type: ignore[assignment]
        else_ = kids[-2] if type(kids[-3]) is Token and kids[-3].type == "ELSE" else None
        return a.Case(whens, operand, else_, span=self.span(s, e))

    def when(self, kids: Kids, s: int, e: int) -> a.WhenClause:
        return a.WhenClause(kids[1], kids[3], span=self.span(s, e))

    def cast(self, kids: Kids, s: int, e: int) -> a.Cast:
        return a.Cast(kids[2], kids[4], span=self.span(s, e))

    def extract(self, kids: Kids, s: int, e: int) -> a.Extract:
        unit: Token = kids[2]
        if unit.value.upper() not in EXTRACT_UNITS:
            raise self._unknown("EXTRACT unit", unit, sorted(EXTRACT_UNITS), "a date part")
        return a.Extract(unit.value.upper(), kids[4], span=self.span(s, e))

    def position(self, kids: Kids, s: int, e: int) -> a.FunctionCall:
        return a.FunctionCall("POSITION", (kids[2], kids[4]), span=self.span(s, e))

    def array(self, kids: Kids, s: int, e: int) -> a.ArrayLiteral:
        return a.ArrayLiteral(tuple(_nodes(kids)), span=self.span(s, e))

    def current_timestamp(self, kids: Kids, s: int, e: int) -> a.FunctionCall:
        return a.FunctionCall("CURRENT_TIMESTAMP", span=self.span(s, e))

    def call(self, kids: Kids, s: int, e: int) -> a.FunctionCall:
        # kids: name ( [DISTINCT] [arg (, arg)*] ) [over] — the arguments are every other kid
        over = kids[-1] if type(kids[-1]) is a.Over else None
        third = kids[2]
        distinct = type(third) is Token and third.type == "DISTINCT"
        args = tuple(kids[3 if distinct else 2 : -2 if over else -1 : 2])
        if distinct and not args:
            raise self.error("DISTINCT needs an argument", third.start, "DISTINCT")
        name = kids[0].value.upper()
        return a.FunctionCall(name, args, distinct, False, over, span=self.span(s, e))

    def call_star(self, kids: Kids, s: int, e: int) -> a.FunctionCall:
        over = kids[-1] if type(kids[-1]) is a.Over else None
        return a.FunctionCall(kids[0].value.upper(), (), False, True, over, span=self.span(s, e))

    def over(self, kids: Kids, s: int, e: int) -> a.Over:
        p = _parts(kids)
        frame = next((k for k in kids if type(k) is a.WindowFrame), None)
        return a.Over(p.get("partition", ()), p.get("order", ()), frame, span=self.span(s, e))

    def partition_by(self, kids: Kids, s: int, e: int) -> Part:
        return Part("partition", tuple(_nodes(kids)))

    def order_by(self, kids: Kids, s: int, e: int) -> Part:
        return Part("order", tuple(_nodes(kids)))

    def order_item(self, kids: Kids, s: int, e: int) -> a.OrderItem:
        return a.OrderItem(kids[0], _has(kids, "DESC"), span=self.span(s, e))

    def frame_between(self, kids: Kids, s: int, e: int) -> a.WindowFrame:
        start, end = kids[2].value, kids[4].value
        if start is not None and end > start:
            raise self.error("The frame ends before it starts: write n PRECEDING AND m PRECEDING "
                             "with m <= n", s)  # fmt: skip
        return a.WindowFrame(start, end, span=self.span(s, e))

    def frame_single(self, kids: Kids, s: int, e: int) -> a.WindowFrame:
        return a.WindowFrame(kids[1].value, span=self.span(s, e))

    def frame_start(self, kids: Kids, s: int, e: int) -> Part:
        return Part("start", None if kids[0].type == "UNBOUNDED" else self._count(kids[0]))

    def frame_end(self, kids: Kids, s: int, e: int) -> Part:
        return Part("end", 0 if kids[0].type == "CURRENT" else self._count(kids[0]))

    # ------------------------------------------------------------ types

    def simple_type(self, kids: Kids, s: int, e: int) -> a.DataType:
        tok: Token = kids[0]
        name = TYPE_NAMES.get(tok.value.upper())
        if name is None:
            if tok.value.upper() == "DECIMAL":
                raise self.error("DECIMAL needs a precision and a scale: DECIMAL(p, s)", s,
                                 tok.value, ["'('"])  # fmt: skip
            raise self._unknown("type", tok, [*TYPE_NAMES, "DECIMAL", "ARRAY", "MAP", "STRUCT"],
                                "a type")  # fmt: skip
        return a.SimpleType(name, span=self.span(s, e))

    def param_type(self, kids: Kids, s: int, e: int) -> a.DataType:
        tok: Token = kids[0]
        numbers = [self._count(k) for k in kids if k.type == "NUMBER"]
        upper = tok.value.upper()
        if upper == "DECIMAL":
            return a.DecimalType(numbers[0], numbers[1] if len(numbers) > 1 else 0,
                                 span=self.span(s, e))  # fmt: skip
        if upper in ("VARCHAR", "STRING") and len(numbers) == 1:
            return a.SimpleType("STRING", span=self.span(s, e))  # a length is accepted, unused
        raise self.error(f"Type {tok.value.upper()} takes no parameters", s, tok.value)

    def generic_type(self, kids: Kids, s: int, e: int) -> a.DataType:
        ctor = kids[0].value.upper()
        args = _nodes(kids)
        fields = [x for x in args if type(x) is a.StructField]
        if ctor == "STRUCT":
            if len(fields) != len(args):
                raise self.error("STRUCT members need a name and a type: STRUCT<name T, ...>", s)
            return a.StructType(tuple(fields), span=self.span(s, e))
        if fields:
            raise self.error(f"{ctor} takes types, not named members", s)
        if ctor == "ARRAY" and len(args) == 1:
            return a.ArrayType(args[0], span=self.span(s, e))
        if ctor == "MAP" and len(args) == 2:
            return a.MapType(args[0], args[1], span=self.span(s, e))
        form = "ARRAY<T>" if ctor == "ARRAY" else "MAP<STRING, T>"
        raise self.error(f"Wrong number of type arguments: write {form}", s)

    def struct_field(self, kids: Kids, s: int, e: int) -> a.StructField:
        return a.StructField(kids[0].value, kids[1], span=self.span(s, e))


def _canon_kind(kind: str) -> str:
    return "hopping" if kind == "sliding" else kind


def _start(node: a.Node) -> int:
    return node.span.start_pos if node.span else 0
