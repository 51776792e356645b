"""Printing and parsing are inverse: ``parse(to_sql(ast)) == [ast]`` for generated ASTs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from velo.grammar import ast as a
from velo.grammar import parse, parse_statement, to_sql

from .strategies import data_types, expressions, selects, statements, subquery_exprs

# the strategies are deep trees; hypothesis warns when it renders their repr, which is harmless
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(statements)
def test_statements_round_trip(stmt: a.Statement) -> None:
    text = to_sql(stmt)
    assert parse(text) == [stmt], text
    assert to_sql(parse_statement(text)) == text  # printing is canonical: a fixed point


@SETTINGS
@given(expressions)
def test_expressions_round_trip(expr: a.Expr) -> None:
    stmt = a.Select((a.SelectItem(expr),), a.TableRef("t"), where=expr)
    assert parse_statement(to_sql(stmt)) == stmt, to_sql(stmt)


@settings(max_examples=100, deadline=None)
@given(subquery_exprs, st.deferred(selects))
def test_subqueries_round_trip(expr: a.Expr, outer: a.Select) -> None:
    stmt = a.Select(outer.items, outer.from_, where=a.BinaryOp("AND", expr, expr))
    assert parse_statement(to_sql(stmt)) == stmt, to_sql(stmt)


@settings(max_examples=100, deadline=None)
@given(data_types())
def test_types_round_trip(type_: a.DataType) -> None:
    stmt = a.CreateSource("s", columns=(a.ColumnDef("c", type_),), properties=(a.Property("k", 1),))
    assert parse_statement(to_sql(stmt)) == stmt, to_sql(stmt)


@settings(max_examples=50, deadline=None)
@given(st.lists(statements, min_size=1, max_size=4))
def test_scripts_round_trip(stmts: list[a.Statement]) -> None:
    assert parse(";\n".join(to_sql(s) for s in stmts)) == stmts


def test_canonical_spellings() -> None:
    cases = {
        "select a::int, b <> c from t": "SELECT CAST(a AS INT), b != c FROM t",
        "SELECT \"Price\", end_ FROM trades AS x": 'SELECT "Price", end_ FROM trades x',
        "SELECT * FROM t WINDOW SLIDING (5s, 1s)": "SELECT * FROM t WINDOW HOPPING "
        "(INTERVAL '5' SECOND, INTERVAL '1' SECOND)",
        "TERMINATE j": "STOP JOB j",
        "SHOW QUERIES": "SHOW JOBS",
        "SELECT \"key\", (a + b) * c, a + b * c FROM t": "SELECT \"key\", (a + b) * c, a + b * c FROM t",
        "SELECT NOT (a AND b), (a = b) = c FROM t": "SELECT NOT (a AND b), (a = b) = c FROM t",
        "SELECT - -a, a - -1, (-1)[1] FROM t": "SELECT - -a, a - -1, (-1)[1] FROM t",
        "SELECT \"left\"(a, 1), \"CASE\"(1) FROM t": "SELECT LEFT(a, 1), \"CASE\"(1) FROM t",
    }
    for sql, canonical in cases.items():
        assert to_sql(parse_statement(sql)) == canonical
