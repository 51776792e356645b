"""Random expressions over random rows evaluate the same in Velo (generated code) and in DuckDB."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .differential import duck, records, run_velo, same

INT_COLS = ["a", "b"]
NUM_LITERALS = st.integers(min_value=-20, max_value=20).map(str)


def _num(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(INT_COLS), NUM_LITERALS, st.just("NULL"))
    if depth == 0:
        return leaf
    sub = _num(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(sub, sub).map(lambda t: f"COALESCE({t[0]}, {t[1]})"),
        st.tuples(_bool(depth - 1), sub, sub).map(lambda t: f"(CASE WHEN {t[0]} THEN {t[1]} ELSE {t[2]} END)"),
        sub.map(lambda s: f"ABS({s})"),
    )


def _bool(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(
        st.tuples(st.sampled_from(INT_COLS), st.sampled_from(["=", "<>", "<", "<=", ">", ">="]),
                  NUM_LITERALS).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.sampled_from(INT_COLS).map(lambda c: f"({c} IS NULL)"),
        st.sampled_from(["TRUE", "FALSE", "CAST(NULL AS BOOLEAN)"]),
        st.tuples(st.sampled_from(INT_COLS), NUM_LITERALS, NUM_LITERALS).map(
            lambda t: f"({t[0]} BETWEEN {t[1]} AND {t[2]})"),
        st.tuples(st.sampled_from(INT_COLS), st.lists(NUM_LITERALS | st.just("NULL"), min_size=1, max_size=3))
        .map(lambda t: f"({t[0]} IN ({', '.join(t[1])}))"),
        st.sampled_from(["s"]).map(lambda c: f"({c} LIKE 'a%')"),
    )
    if depth == 0:
        return leaf
    sub = _bool(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["AND", "OR"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda s: f"(NOT {s})"),
        st.tuples(_num(depth - 1), st.sampled_from(["=", "<", ">="]), _num(depth - 1)).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
    )


ROW = st.fixed_dictionaries({
    "a": st.one_of(st.none(), st.integers(-10, 10)),
    "b": st.one_of(st.none(), st.integers(-10, 10)),
    "s": st.one_of(st.none(), st.sampled_from(["abc", "xyz", "a", ""])),
    "ts": st.just(0),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(num=_num(2), cond=_bool(2), rows=st.lists(ROW, min_size=1, max_size=12))
def test_random_expressions_match_duckdb(num: str, cond: str, rows: list[dict[str, Any]]) -> None:
    sql = f"SELECT {num} AS x, {cond} AS y FROM t"
    got, _ = run_velo(sql, [records(rows)])
    expected = duck({"t": rows}).execute(sql).fetchall()
    same(got, expected)
    where = f"SELECT a, b FROM t WHERE {cond}"
    got, _ = run_velo(where, [records(rows)])
    same(got, duck({"t": rows}).execute(where).fetchall())
