"""AST builder rules for expressions, windows, durations and types (see transformer.py)."""

from __future__ import annotations

from . import ast as a
from .lexer import Token
from .transform_base import (
    _DURATION,
    _INTERVAL_TEXT,
    _UNIT_OF,
    EXTRACT_UNITS,
    TYPE_NAMES,
    BuilderBase,
    Kids,
    Part,
    _canon_kind,
    _has,
    _nodes,
    _number,
    _parts,
    make_between,
    make_binary,
    make_call,
    make_case,
    make_column,
    make_field,
    make_in_list,
    make_interval,
    make_is_null,
    make_like,
    make_literal,
    make_unary,
    make_when,
    make_window,
)

# the argument shapes each window kind accepts, after the time column and GRACE PERIOD
_SHAPES = {"tumbling": (["dur"], ["size"]), "session": (["dur"], ["dur"]),
           "hopping": (["dur", "dur"], ["size", "advance"])}  # fmt: skip


class ExpressionRules(BuilderBase):
    """One method per expression, window, duration and type rule of velo.lark."""

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
        if shape not in _SHAPES[_canon_kind(kind)]:
            forms = {
                "tumbling": "TUMBLING([time_column,] size) or TUMBLING(SIZE d)",
                "hopping": "HOPPING([time_column,] size, advance) or "
                "HOPPING(SIZE d, ADVANCE BY d)",
                "session": "SESSION([time_column,] gap)",
            }[_canon_kind(kind)]
            raise self.error(f"Wrong {label} window arguments: expected {forms}", s)
        advance = sizes[1] if len(sizes) == 2 else None
        return make_window(self._lines, s, e, _canon_kind(kind), sizes[0], advance, grace, column)

    def window_kind(self, kids: Kids, s: int, e: int) -> Token:
        return Token(("KIND", kids[0].value.lower(), s, e))

    def warg_duration(self, kids: Kids, s: int, e: int) -> Part:
        return Part("dur", kids[0])

    def warg_column(self, kids: Kids, s: int, e: int) -> Part:
        tok: Token = kids[0]
        if tok.type == "QNAME":
            return Part("col", self.qualified_column(kids, s, e))
        if len(kids) == 3:  # quoted parts: "T".ts
            return Part("col", make_column(self._lines, s, e, kids[2].value, tok.value))
        return Part("col", make_column(self._lines, s, e, tok.value))

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
        return make_interval(self._lines, s, e, int(m.group(1)), _UNIT_OF[m.group(2).upper()])

    def duration_words(self, kids: Kids, s: int, e: int) -> a.Interval:
        amount = _number(kids[0].value)
        return make_interval(self._lines, s, e, amount, _UNIT_OF[kids[1].value.upper()])

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
        return make_interval(self._lines, s, e, _number(m.group(1).lstrip("+")), unit)

    # ------------------------------------------------------------ expressions

    def binary(self, kids: Kids, s: int, e: int) -> a.BinaryOp:
        op: Token = kids[1]
        name = "!=" if op.type == "NE" else op.type if op.type in ("AND", "OR") else op.value
        return make_binary(self._lines, s, e, name, kids[0], kids[2])

    def unary(self, kids: Kids, s: int, e: int) -> a.Expr:
        op, operand = kids
        if op.type == "NOT":
            return make_unary(self._lines, s, e, "NOT", operand)
        if isinstance(operand, a.Literal) and type(operand.value) in (int, float):
            value = operand.value if op.type == "PLUS" else -operand.value  # type: ignore[operator]
            return make_literal(self._lines, s, e, value)
        return make_unary(self._lines, s, e, op.value, operand)

    def is_null(self, kids: Kids, s: int, e: int) -> a.IsNull:
        return make_is_null(self._lines, s, e, kids[0], _has(kids, "NOT"))

    def between(self, kids: Kids, s: int, e: int) -> a.Between:
        x, low, high = _nodes(kids)
        return make_between(self._lines, s, e, x, low, high, _has(kids, "NOT"))

    def in_list(self, kids: Kids, s: int, e: int) -> a.InList:
        nodes = _nodes(kids)
        return make_in_list(self._lines, s, e, nodes[0], tuple(nodes[1:]), _has(kids, "NOT"))

    def in_select(self, kids: Kids, s: int, e: int) -> a.InSubquery:
        x, query = _nodes(kids)
        return a.InSubquery(x, query, _has(kids, "NOT"), span=self.span(s, e))

    def like(self, kids: Kids, s: int, e: int) -> a.Like:
        x, pattern = _nodes(kids)
        escape: str | None = None
        if type(kids[-1]) is Token and kids[-1].type == "STRING":
            tok: Token = kids[-1]
            escape = tok.value
            if len(escape) != 1:
                raise self.error(f"ESCAPE takes one character, got '{escape}'", tok.start,
                                 self.text[tok.start : tok.end], ["a string"])  # fmt: skip
        return make_like(self._lines, s, e, x, pattern, _has(kids, "NOT"), escape)

    def exists(self, kids: Kids, s: int, e: int) -> a.Exists:
        return a.Exists(kids[2], span=self.span(s, e))

    def subscript(self, kids: Kids, s: int, e: int) -> a.Subscript:
        return a.Subscript(kids[0], kids[2], span=self.span(s, e))

    def field(self, kids: Kids, s: int, e: int) -> a.Expr:
        base, name = kids[0], kids[2].value
        if type(base) is a.Column and base.qualifier is None:
            return make_column(self._lines, s, e, name, base.name)
        return make_field(self._lines, s, e, base, name)

    def arrow(self, kids: Kids, s: int, e: int) -> a.FieldAccess:
        return make_field(self._lines, s, e, kids[0], kids[2].value)

    def cast_op(self, kids: Kids, s: int, e: int) -> a.Cast:
        return a.Cast(kids[0], kids[2], span=self.span(s, e))

    def number(self, kids: Kids, s: int, e: int) -> a.Literal:
        return make_literal(self._lines, s, e, _number(kids[0].value))

    def string(self, kids: Kids, s: int, e: int) -> a.Literal:
        return make_literal(self._lines, s, e, kids[0].value)

    def true(self, kids: Kids, s: int, e: int) -> a.Literal:
        return make_literal(self._lines, s, e, True)

    def false(self, kids: Kids, s: int, e: int) -> a.Literal:
        return make_literal(self._lines, s, e, False)

    def null(self, kids: Kids, s: int, e: int) -> a.Literal:
        return make_literal(self._lines, s, e, None)

    def column(self, kids: Kids, s: int, e: int) -> a.Column:
        return make_column(self._lines, s, e, kids[0].value)

    def qualified_column(self, kids: Kids, s: int, e: int) -> a.Column:
        qualifier, _, name = kids[0].value.partition(".")
        return make_column(self._lines, s, e, name, qualifier)

    def paren(self, kids: Kids, s: int, e: int) -> a.Expr:
        return kids[1]  # type: ignore[no-any-return]

    def case(self, kids: Kids, s: int, e: int) -> a.Case:
        whens = tuple(k for k in kids if type(k) is a.WhenClause)
        operand: a.Expr | None = None
        if isinstance(kids[1], a.Node) and type(kids[1]) is not a.WhenClause:
            operand = kids[1]  # type: ignore[assignment]
        else_ = kids[-2] if type(kids[-3]) is Token and kids[-3].type == "ELSE" else None
        return make_case(self._lines, s, e, whens, operand, else_)

    def when(self, kids: Kids, s: int, e: int) -> a.WhenClause:
        return make_when(self._lines, s, e, kids[1], kids[3])

    def cast(self, kids: Kids, s: int, e: int) -> a.Cast:
        return a.Cast(kids[2], kids[4], span=self.span(s, e))

    def extract(self, kids: Kids, s: int, e: int) -> a.Extract:
        unit: Token = kids[2]
        if unit.value.upper() not in EXTRACT_UNITS:
            raise self._unknown("EXTRACT unit", unit, sorted(EXTRACT_UNITS), "a date part")
        return a.Extract(unit.value.upper(), kids[4], span=self.span(s, e))

    def position(self, kids: Kids, s: int, e: int) -> a.FunctionCall:
        return make_call(self._lines, s, e, "POSITION", (kids[2], kids[4]))

    def array(self, kids: Kids, s: int, e: int) -> a.ArrayLiteral:
        return a.ArrayLiteral(tuple(_nodes(kids)), span=self.span(s, e))

    def current_timestamp(self, kids: Kids, s: int, e: int) -> a.FunctionCall:
        return make_call(self._lines, s, e, "CURRENT_TIMESTAMP")

    def call(self, kids: Kids, s: int, e: int) -> a.FunctionCall:
        # kids: name ( [DISTINCT] [arg (, arg)*] ) [over] — the arguments are every other kid
        over = kids[-1] if type(kids[-1]) is a.Over else None
        third = kids[2]
        distinct = type(third) is Token and third.type == "DISTINCT"
        args = tuple(kids[3 if distinct else 2 : -2 if over else -1 : 2])
        if distinct and not args:
            raise self.error("DISTINCT needs an argument", third.start, "DISTINCT")
        name = kids[0].value.upper()
        return make_call(self._lines, s, e, name, args, distinct, False, over)

    def call_star(self, kids: Kids, s: int, e: int) -> a.FunctionCall:
        over = kids[-1] if type(kids[-1]) is a.Over else None
        return make_call(self._lines, s, e, kids[0].value.upper(), (), False, True, over)

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
