"""Every expression form, type and lexical rule of dialect.md sections 1 and 4."""

from __future__ import annotations

import pytest
from velo.grammar import SqlSyntaxError, parse_statement
from velo.grammar import ast as a


def expr(text: str) -> a.Expr:
    stmt = parse_statement(f"SELECT {text} FROM t")
    assert isinstance(stmt, a.Select)
    return stmt.items[0].expr


A, B, C = a.Column("a"), a.Column("b"), a.Column("c")


def lit(v: a.LiteralValue) -> a.Literal:
    return a.Literal(v)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a + b * c", a.BinaryOp("+", A, a.BinaryOp("*", B, C))),
        ("(a + b) * c", a.BinaryOp("*", a.BinaryOp("+", A, B), C)),
        ("a - b - c", a.BinaryOp("-", a.BinaryOp("-", A, B), C)),
        ("a / b % c", a.BinaryOp("%", a.BinaryOp("/", A, B), C)),
        ("a || '-' || b", a.BinaryOp("||", a.BinaryOp("||", A, lit("-")), B)),
        ("-a", a.UnaryOp("-", A)),
        ("+a", a.UnaryOp("+", A)),
        ("-7", lit(-7)),
        ("- 3.5", lit(-3.5)),
        ("+7", lit(7)),
        ("a - -1", a.BinaryOp("-", A, lit(-1))),
        ("1e-3", lit(0.001)),
        ("42", lit(42)),
        ("3.14", lit(3.14)),
        (".5", lit(0.5)),
        ("TRUE", lit(True)),
        ("false", lit(False)),
        ("NULL", lit(None)),
        ("'it''s'", lit("it's")),
        ("''", lit("")),
        ("'a;b -- c /* d */'", lit("a;b -- c /* d */")),
    ],
)
def test_arithmetic_and_literals(text: str, tree: a.Expr) -> None:
    assert expr(text) == tree


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a = b", a.BinaryOp("=", A, B)),
        ("a != b", a.BinaryOp("!=", A, B)),
        ("a <> b", a.BinaryOp("!=", A, B)),
        ("a < b", a.BinaryOp("<", A, B)),
        ("a <= b", a.BinaryOp("<=", A, B)),
        ("a > b", a.BinaryOp(">", A, B)),
        ("a >= b", a.BinaryOp(">=", A, B)),
        ("a AND b OR c", a.BinaryOp("OR", a.BinaryOp("AND", A, B), C)),
        ("a OR b AND c", a.BinaryOp("OR", A, a.BinaryOp("AND", B, C))),
        ("NOT a AND b", a.BinaryOp("AND", a.UnaryOp("NOT", A), B)),
        ("NOT a = b", a.UnaryOp("NOT", a.BinaryOp("=", A, B))),
        ("a + 1 > b * 2", a.BinaryOp(">", a.BinaryOp("+", A, lit(1)), a.BinaryOp("*", B, lit(2)))),
        ("a IS NULL", a.IsNull(A)),
        ("a IS NOT NULL", a.IsNull(A, negated=True)),
        ("a BETWEEN 1 AND 2", a.Between(A, lit(1), lit(2))),
        ("a NOT BETWEEN b AND c AND TRUE",
         a.BinaryOp("AND", a.Between(A, B, C, negated=True), lit(True))),
        ("a IN (1, 2)", a.InList(A, (lit(1), lit(2)))),
        ("a NOT IN ('x')", a.InList(A, (lit("x"),), negated=True)),
        ("a LIKE 'p%'", a.Like(A, lit("p%"))),
        ("a NOT LIKE b", a.Like(A, B, negated=True)),
    ],
)  # fmt: skip
def test_comparisons_and_predicates(text: str, tree: a.Expr) -> None:
    assert expr(text) == tree


def test_subqueries_in_exists_and_in() -> None:
    sub = a.Select((a.SelectItem(a.Column("k")),), a.TableRef("ref"), a.Column("ok"))
    assert expr("a IN (SELECT k FROM ref WHERE ok)") == a.InSubquery(A, sub)
    assert expr("a NOT IN (SELECT k FROM ref WHERE ok)") == a.InSubquery(A, sub, negated=True)
    assert expr("EXISTS (SELECT k FROM ref WHERE ok)") == a.Exists(sub)
    assert expr("NOT EXISTS (SELECT k FROM ref WHERE ok)") == a.UnaryOp("NOT", a.Exists(sub))


def test_case_both_forms() -> None:
    assert expr("CASE WHEN a > 1 THEN 'big' WHEN a > 0 THEN 'small' ELSE 'none' END") == a.Case(
        (
            a.WhenClause(a.BinaryOp(">", A, lit(1)), lit("big")),
            a.WhenClause(a.BinaryOp(">", A, lit(0)), lit("small")),
        ),
        else_=lit("none"),
    )
    assert expr("CASE a WHEN 1 THEN b END") == a.Case((a.WhenClause(lit(1), B),), operand=A)


def test_casts_both_forms() -> None:
    assert expr("CAST(a AS BIGINT)") == a.Cast(A, a.SimpleType("BIGINT"))
    assert expr("a::DOUBLE") == a.Cast(A, a.SimpleType("DOUBLE"))
    assert expr("a::INT < 5") == a.BinaryOp("<", a.Cast(A, a.SimpleType("INT")), lit(5))
    assert expr("CAST(a AS ARRAY<INT>) ") == a.Cast(A, a.ArrayType(a.SimpleType("INT")))


def test_field_subscript_and_map_access() -> None:
    assert expr("t.price") == a.Column("price", "t")
    assert expr("t.s.f") == a.FieldAccess(a.Column("s", "t"), "f")
    assert expr("a[1]") == a.Subscript(A, lit(1))
    assert expr("m['k']") == a.Subscript(a.Column("m"), lit("k"))
    assert expr("a[1].x[2]") == a.Subscript(a.FieldAccess(a.Subscript(A, lit(1)), "x"), lit(2))
    assert expr("(a).b") == a.Column("b", "a")


def test_function_calls() -> None:
    assert expr("COUNT(*)") == a.FunctionCall("COUNT", star=True)
    assert expr("count(DISTINCT a)") == a.FunctionCall("COUNT", (A,), distinct=True)
    assert expr("round(a, 2)") == a.FunctionCall("ROUND", (A, lit(2)))
    assert expr("NOW()") == a.FunctionCall("NOW")
    assert expr("left(a, 2)") == a.FunctionCall("LEFT", (A, lit(2)))
    assert expr("RIGHT(a, 2)") == a.FunctionCall("RIGHT", (A, lit(2)))
    assert expr("timestamp()") == a.FunctionCall("TIMESTAMP")
    assert expr("IF(a, 1, 2)") == a.FunctionCall("IF", (A, lit(1), lit(2)))


def test_special_function_forms() -> None:
    assert expr("POSITION('x' IN a)") == a.FunctionCall("POSITION", (lit("x"), A))
    assert expr("EXTRACT(year FROM ts)") == a.Extract("YEAR", a.Column("ts"))
    assert expr("CURRENT_TIMESTAMP") == a.FunctionCall("CURRENT_TIMESTAMP")
    assert expr("CURRENT_TIMESTAMP()") == a.FunctionCall("CURRENT_TIMESTAMP")
    assert expr("ARRAY[1, 2, a]") == a.ArrayLiteral((lit(1), lit(2), A))
    assert expr("ARRAY[]") == a.ArrayLiteral()
    with pytest.raises(SqlSyntaxError, match="Unknown EXTRACT unit 'yeer'; did you mean YEAR"):
        expr("EXTRACT(yeer FROM ts)")


def test_analytic_over() -> None:
    e = expr("LAG(price, 1, 0) OVER (PARTITION BY sym, venue ORDER BY ts DESC, id "
             "ROWS BETWEEN 5 PRECEDING AND CURRENT ROW)")  # fmt: skip
    assert e == a.FunctionCall(
        "LAG", (a.Column("price"), lit(1), lit(0)),
        over=a.Over(
            (a.Column("sym"), a.Column("venue")),
            (a.OrderItem(a.Column("ts"), True), a.OrderItem(a.Column("id"))),
            a.WindowFrame(5, 0),
        ),
    )  # fmt: skip
    assert expr("ROW_NUMBER() OVER (ORDER BY ts)") == a.FunctionCall(
        "ROW_NUMBER", over=a.Over(order_by=(a.OrderItem(a.Column("ts")),))
    )
    assert expr("COUNT(*) OVER (ROWS 10 PRECEDING)").over == a.Over(frame=a.WindowFrame(10))  # type: ignore[union-attr]
    frame = expr("SUM(a) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)").over.frame  # type: ignore[union-attr]
    assert frame == a.WindowFrame(None, 1)
    with pytest.raises(SqlSyntaxError, match="frame ends before it starts"):
        expr("SUM(a) OVER (ROWS BETWEEN 1 PRECEDING AND 5 PRECEDING)")


@pytest.mark.parametrize(
    ("text", "type_"),
    [
        ("BOOLEAN", a.SimpleType("BOOLEAN")), ("bool", a.SimpleType("BOOLEAN")),
        ("INT", a.SimpleType("INT")), ("INTEGER", a.SimpleType("INT")),
        ("BIGINT", a.SimpleType("BIGINT")), ("DOUBLE", a.SimpleType("DOUBLE")),
        ("FLOAT", a.SimpleType("DOUBLE")), ("REAL", a.SimpleType("DOUBLE")),
        ("STRING", a.SimpleType("STRING")), ("VARCHAR", a.SimpleType("STRING")),
        ("VARCHAR(20)", a.SimpleType("STRING")), ("TEXT", a.SimpleType("STRING")),
        ("TIMESTAMP", a.SimpleType("TIMESTAMP")), ("DATE", a.SimpleType("DATE")),
        ("DECIMAL(10, 2)", a.DecimalType(10, 2)), ("DECIMAL(5)", a.DecimalType(5, 0)),
        ("ARRAY<STRING>", a.ArrayType(a.SimpleType("STRING"))),
        ("MAP<STRING, DOUBLE>", a.MapType(a.SimpleType("STRING"), a.SimpleType("DOUBLE"))),
        ("MAP<STRING, ARRAY<INT>>",
         a.MapType(a.SimpleType("STRING"), a.ArrayType(a.SimpleType("INT")))),
        ("STRUCT<name STRING, tags ARRAY<STRING>, \"Pos\" STRUCT<x INT>>",
         a.StructType((
             a.StructField("name", a.SimpleType("STRING")),
             a.StructField("tags", a.ArrayType(a.SimpleType("STRING"))),
             a.StructField("Pos", a.StructType((a.StructField("x", a.SimpleType("INT")),))),
         ))),
    ],
)  # fmt: skip
def test_types(text: str, type_: a.DataType) -> None:
    stmt = parse_statement(f"CREATE STREAM s (c {text}) WITH ('k' = 'v')")
    assert isinstance(stmt, a.CreateSource) and stmt.columns[0].type == type_


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("STRNG", "Unknown type 'STRNG'; did you mean STRING?"),
        ("DECIMAL", "DECIMAL needs a precision and a scale"),
        ("ARRAY<INT, INT>", "write ARRAY<T>"),
        ("STRUCT<INT>", "STRUCT members need a name"),
        ("MAP<a INT, b INT>", "MAP takes types"),
        ("INT(3)", "Type INT takes no parameters"),
    ],
)
def test_bad_types(text: str, message: str) -> None:
    with pytest.raises(SqlSyntaxError, match=message.replace("(", r"\(").replace("?", r"\?")):
        parse_statement(f"CREATE STREAM s (c {text}) WITH ('k' = 'v')")


def test_identifiers_fold_unless_quoted() -> None:
    s = parse_statement('SELECT Price, "Price", `Price`, "a""b", TRADES.x FROM Trades')
    assert isinstance(s, a.Select)
    assert [i.expr for i in s.items] == [
        a.Column("price"), a.Column("Price"), a.Column("Price"), a.Column('a"b'),
        a.Column("x", "trades"),
    ]  # fmt: skip
    assert s.from_.name == "trades"


def test_non_reserved_keywords_are_identifiers() -> None:
    s = parse_statement(
        "SELECT key, value, timestamp, start, size, status, topic, position, interval, array, "
        "window_start FROM stream_a"
    )
    assert isinstance(s, a.Select)
    assert [i.expr for i in s.items][:3] == [a.Column("key"), a.Column("value"), a.Column("timestamp")]
    assert s.items[7].expr == a.Column("position") and s.items[9].expr == a.Column("array")


def test_reserved_words_need_quotes() -> None:
    assert expr('"end"') == a.Column("end")
    with pytest.raises(SqlSyntaxError):
        parse_statement("SELECT end FROM t")


def test_comments_anywhere() -> None:
    s = parse_statement(
        "-- leading\nSELECT /* inline ; */ a -- trailing ; \n FROM /* multi\nline */ t; -- done"
    )
    assert s == a.Select((a.SelectItem(A),), a.TableRef("t"))


def test_keywords_are_case_insensitive() -> None:
    assert parse_statement("select a from t where a is not null emit changes") == parse_statement(
        "SELECT a FROM t WHERE a IS NOT NULL EMIT CHANGES"
    )


def test_spans_point_at_the_source() -> None:
    text = "SELECT a,\n       UPPER(b) AS u\nFROM t"
    s = parse_statement(text)
    assert isinstance(s, a.Select)
    call = s.items[1].expr
    assert call.span is not None
    assert (call.span.line, call.span.column, call.span.end_line, call.span.end_column) == (2, 8, 2, 16)
    assert text[call.span.start_pos : call.span.end_pos] == "UPPER(b)"
    item = s.items[1]
    assert item.span is not None and text[item.span.start_pos : item.span.end_pos] == "UPPER(b) AS u"


def test_spans_are_not_part_of_equality() -> None:
    assert expr("a   +   1") == expr("a+1")


def test_fast_constructors_make_the_same_nodes_as_init() -> None:
    from velo.grammar.transform_base import fast_constructor

    span = a.Span(1, 2, 1, 5, 1, 4)
    make_column, make_call = fast_constructor(a.Column), fast_constructor(a.FunctionCall)
    assert make_column("x", span=span) == a.Column("x") and make_column("x").qualifier is None
    call = make_call("F", (A,), over=a.Over())
    assert call == a.FunctionCall("F", (A,), over=a.Over()) and call.span is None
    assert repr(make_column("x", "t", span=span)) == repr(a.Column("x", "t", span=span))
    assert make_column("x", span=span).span is span


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("t.x", a.Column("x", "t")),
        ("t . x", a.Column("x", "t")),
        ('t."X"', a.Column("X", "t")),
        ('"T".x', a.Column("x", "T")),
        ("t.end", a.Column("end", "t")),
        ("t.x.y", a.FieldAccess(a.Column("x", "t"), "y")),
        ("(t).x", a.Column("x", "t")),
        ("1.5", lit(1.5)),
        ("1.", lit(1.0)),
        ("a.b[1]", a.Subscript(a.Column("b", "a"), lit(1))),
        ("select_x", a.Column("select_x")),
    ],
)
def test_dotted_names_and_numbers_lex_as_expected(text: str, tree: a.Expr) -> None:
    assert expr(text) == tree
