"""Hypothesis strategies for Velo's AST: every statement, clause, expression and type.

They generate exactly the ASTs the parser can produce (see the conventions in ast.py): folded or
oddly-cased identifiers, upper-case function names, signs folded into number literals, a WITH on
the statement rather than on a job's query, EMIT / LIMIT / WITH only on a whole query (not on its
UNION ALL branches), GRACE PERIOD and WITHIN's second duration only with a WITHIN.
"""

from __future__ import annotations

import dataclasses
import math

from hypothesis import strategies as st
from velo.grammar import ast as a
from velo.grammar.transform_base import EXTRACT_UNITS

# names that print bare, names that must be quoted (case, keywords, odd characters)
NAMES = st.sampled_from(
    ["a", "b", "price", "t", "trades", "_x1", "key", "value", "end", "select", "Price", "MiXed",
     "with space", 'quo"te', "semi;colon", "dash--dash", "é", "window_start", "interval", "size",
     "seconds", "map", "struct", "position", "over", "rows"]
)  # fmt: skip
FUNCTIONS = st.sampled_from(
    ["COUNT", "SUM", "UPPER", "LEFT", "RIGHT", "IF", "LAG", "NOW", "POSITION", "CURRENT_TIMESTAMP",
     "CASE", "NOT", "SELECT", "WEIRD NAME", "ARRAY", "INTERVAL", "TIMESTAMP"]
)  # fmt: skip
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
NONNEG_INT = st.integers(min_value=0, max_value=10**20)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
UNITS = st.sampled_from(list(a.UNIT_MILLIS))

literal_values = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20), FLOATS, TEXT, st.booleans(), st.none()
)
literals = st.builds(a.Literal, literal_values)
columns = st.builds(a.Column, NAMES, st.none() | NAMES)
intervals = st.builds(
    a.Interval,
    st.integers(min_value=-1000, max_value=10**6) | st.floats(0, 1e6).filter(math.isfinite),
    UNITS,
)


def data_types() -> st.SearchStrategy[a.DataType]:
    simple = st.builds(
        a.SimpleType,
        st.sampled_from(["BOOLEAN", "INT", "BIGINT", "DOUBLE", "STRING", "TIMESTAMP", "DATE"]),
    ) | st.builds(a.DecimalType, st.integers(0, 60), st.integers(0, 30))

    def nested(inner: st.SearchStrategy[a.DataType]) -> st.SearchStrategy[a.DataType]:
        return st.one_of(
            st.builds(a.ArrayType, inner),
            st.builds(a.MapType, inner, inner),
            st.builds(
                a.StructType,
                st.lists(st.builds(a.StructField, NAMES, inner), min_size=1, max_size=3).map(tuple),
            ),
        )

    return st.recursive(simple, nested, max_leaves=4)


def _tuple(s: st.SearchStrategy[a.Expr], lo: int = 0, hi: int = 3) -> st.SearchStrategy[tuple[a.Expr, ...]]:
    return st.lists(s, min_size=lo, max_size=hi).map(tuple)


frames = st.one_of(
    st.builds(a.WindowFrame, st.none(), st.integers(0, 50)),
    st.integers(0, 50).flatmap(lambda n: st.builds(a.WindowFrame, st.just(n), st.integers(0, n))),
)


def _extend(inner: st.SearchStrategy[a.Expr]) -> st.SearchStrategy[a.Expr]:
    """Every compound expression, over ``inner`` operands."""
    overs = st.builds(
        a.Over, _tuple(inner), _tuple(st.builds(a.OrderItem, inner, st.booleans())),
        st.none() | frames,
    )  # fmt: skip
    calls = st.one_of(
        st.builds(a.FunctionCall, FUNCTIONS, _tuple(inner), st.just(False), st.just(False),
                  st.none() | overs),
        st.builds(a.FunctionCall, FUNCTIONS, _tuple(inner, 1), st.just(True), st.just(False),
                  st.none() | overs),
        st.builds(a.FunctionCall, FUNCTIONS, st.just(()), st.just(False), st.just(True),
                  st.none() | overs),
    )  # fmt: skip
    ops = st.sampled_from(["+", "-", "*", "/", "%", "||", "=", "!=", "<", "<=", ">", ">=", "AND", "OR"])
    return st.one_of(
        st.builds(a.BinaryOp, ops, inner, inner),
        st.builds(a.UnaryOp, st.just("NOT"), inner),
        st.builds(a.UnaryOp, st.sampled_from(["-", "+"]), inner).filter(
            lambda u: not (type(u.operand) is a.Literal and type(u.operand.value) in (int, float))
        ),
        st.builds(a.IsNull, inner, st.booleans()),
        st.builds(a.Between, inner, inner, inner, st.booleans()),
        st.builds(a.InList, inner, _tuple(inner, 1), st.booleans()),
        st.builds(a.Like, inner, inner, st.booleans(), st.none() | st.text(min_size=1, max_size=1)),
        st.builds(a.Case, _tuple(st.builds(a.WhenClause, inner, inner), 1), st.none() | inner,
                  st.none() | inner),
        st.builds(a.Cast, inner, data_types()),
        st.builds(a.Subscript, inner, inner),
        st.builds(a.FieldAccess, inner, NAMES),  # on a bare column it is written s->f
        st.builds(a.ArrayLiteral, _tuple(inner)),
        st.builds(a.Extract, st.sampled_from(sorted(EXTRACT_UNITS)), inner),
        calls,
    )  # fmt: skip


expressions: st.SearchStrategy[a.Expr] = st.recursive(
    st.one_of(literals, columns, intervals), _extend, max_leaves=8
)

table_refs = st.builds(a.TableRef, NAMES, st.none() | NAMES)
properties = st.builds(a.Property, st.text(min_size=1, max_size=10), literal_values)
windows = st.one_of(
    st.builds(a.Window, st.just("tumbling"), intervals, st.none(), st.none() | intervals,
              st.none() | columns),
    st.builds(a.Window, st.just("hopping"), intervals, intervals, st.none() | intervals,
              st.none() | columns),
    st.builds(a.Window, st.just("session"), intervals, st.none(), st.none() | intervals,
              st.none() | columns),
)  # fmt: skip
select_items = st.one_of(
    st.builds(a.SelectItem, expressions, st.none() | NAMES, st.booleans()),
    st.builds(a.SelectItem, st.builds(a.Star, st.none() | NAMES)),
)


def _joins(tables: st.SearchStrategy[a.TableRef]) -> st.SearchStrategy[a.Join]:
    return st.builds(
        a.Join, st.sampled_from(["inner", "left", "right", "full"]), tables, expressions,
        st.none() | intervals, st.none() | intervals, st.none() | intervals,
    ).filter(lambda j: j.within is not None or (j.within_after is None and j.grace is None))  # fmt: skip


joins = _joins(table_refs)


def _cores(tables: st.SearchStrategy[a.TableRef]) -> st.SearchStrategy[a.Select]:
    """SELECT … up to HAVING: a UNION ALL branch (no EMIT, LIMIT or properties of its own)."""
    return st.builds(
        a.Select,
        items=_tuple(select_items, 1),
        from_=tables,
        where=st.none() | expressions,
        distinct=st.booleans(),
        joins=_tuple(_joins(tables), 0, 2),
        group_by=_tuple(expressions),
        having=st.none() | expressions,
        window=st.none() | windows,
        partition_by=_tuple(expressions),
    )


plain_cores = _cores(table_refs)
# derived tables, CTEs and union branches are one level deep (plain queries), to keep examples small
derived_tables = st.builds(a.TableRef, NAMES, st.none(), st.none() | plain_cores)
ctes = st.lists(st.builds(a.Cte, NAMES, plain_cores), max_size=2, unique_by=lambda c: c.name).map(tuple)


def selects(with_properties: bool = True) -> st.SearchStrategy[a.Select]:
    return st.builds(
        _whole_query,
        _cores(derived_tables),
        ctes,
        _tuple(plain_cores, 0, 2),  # type: ignore[arg-type]
        st.none() | NONNEG_INT,
        st.sampled_from([None, "changes", "final"]),
        _tuple(properties) if with_properties else st.just(()),  # type: ignore[arg-type]
    )


def _whole_query(first: a.Select, ctes: tuple[a.Cte, ...], union_all: tuple[a.Select, ...],
                 limit: int | None, emit: str | None, properties: tuple[a.Property, ...]) -> a.Select:
    return dataclasses.replace(first, ctes=ctes, union_all=union_all, limit=limit, emit=emit,
                               properties=properties)  # fmt: skip


# subqueries inside expressions (IN / EXISTS) use a small SELECT to keep examples readable
subquery_exprs = st.deferred(
    lambda: st.one_of(
        st.builds(a.InSubquery, expressions, selects(), st.booleans()),
        st.builds(a.Exists, selects()),
    )
)

column_defs = st.builds(a.ColumnDef, NAMES, data_types(), st.booleans(), st.booleans()).filter(
    lambda c: not (c.key and c.primary_key)
)
props_1 = _tuple(properties, 1)
kinds = st.sampled_from(["stream", "table"])


def _insert_values() -> st.SearchStrategy[a.InsertValues]:
    def build(width: int) -> st.SearchStrategy[a.InsertValues]:
        row = st.lists(expressions, min_size=width, max_size=width).map(tuple)
        cols = st.just(()) | st.lists(NAMES, min_size=width, max_size=width).map(tuple)
        return st.builds(a.InsertValues, NAMES, st.lists(row, min_size=1, max_size=3).map(tuple), cols)

    return st.integers(1, 3).flatmap(build)


plain_statements = st.one_of(
    selects(),
    st.builds(a.CreateStreamAs, NAMES, selects(False), kinds, _tuple(properties),
              _tuple(column_defs), st.booleans()),
    st.builds(a.CreateSource, NAMES, kinds, _tuple(column_defs), props_1, st.booleans()),
    st.builds(a.StartJob, NAMES, selects(False), _tuple(properties)),
    st.builds(a.InsertSelect, NAMES, selects(False), _tuple(properties)),
    _insert_values(),
    st.builds(a.Drop, NAMES, kinds, st.booleans(), st.booleans()),
    st.builds(a.Print, TEXT, st.booleans(), st.none() | NONNEG_INT, st.none() | NONNEG_INT),
    st.builds(a.StopJob, NAMES, st.booleans()),
    st.builds(a.PauseJob, NAMES),
    st.builds(a.ResumeJob, NAMES),
    st.builds(a.StopApp, NAMES),
    st.builds(a.ShowJobs, st.none() | TEXT),
    st.builds(a.ShowStatus, NAMES),
    st.builds(a.ShowMetrics, st.none() | NAMES),
    st.builds(a.Show, st.sampled_from(["streams", "tables", "topics", "functions", "properties"])),
    st.builds(a.Describe, NAMES),
    st.builds(a.DescribeFunction, FUNCTIONS),
    st.builds(a.SetProperty, TEXT, literal_values),
    st.builds(a.UnsetProperty, TEXT),
)  # fmt: skip

# deferred: a short repr, so hypothesis does not spend time printing the whole strategy tree
statements: st.SearchStrategy[a.Statement] = st.deferred(
    lambda: st.one_of(
        plain_statements,
        st.builds(a.Explain, plain_statements),
        st.builds(a.Explain, name=NAMES),
    )
)
