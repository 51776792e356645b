"""The function library: every registered function's documented example run through the engine, the
ksqlDB functions (COLLECT_LIST/SET, TOPK, HISTOGRAM, EARLIEST/LATEST_BY_OFFSET, strings, arrays, maps,
JSON, Java time patterns) checked against DuckDB where the two agree, their accumulators through
snapshot/restore and session merges, and docs/functions.md against the registry.

Examples follow one convention (docs/functions.md says it too): a scalar example is a boolean SQL
expression that must be TRUE over one record ``{"m": {"a": 1, "b": 2}}`` with header
``trace-id: abc``; an aggregate's, analytic's or window function's is ``expr → JSON result`` over
the five rows of ``ROWS`` (for analytic functions the result lists one value per row; window
functions run in a ``WINDOW TUMBLING (SIZE 10 SECONDS)`` aggregation).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from velo.grammar import FUNCTION_NAMES, parse_statement
from velo.grammar.errors import SqlValidationError
from velo.server.connectors.base import Record
from velo.server.engine.compile import compile_select
from velo.server.engine.functions import Function, all_functions
from velo.server.engine.functions.registry import register
from velo.server.engine.functions.timefmt import format_ms, parse_ms

ROWS: list[dict[str, Any]] = [
    {"k": "a", "x": 3, "s": "b", "ts": 1000},
    {"k": "a", "x": None, "s": None, "ts": 2000},
    {"k": "a", "x": 1, "s": "a", "ts": 3000},
    {"k": "a", "x": 3, "s": "b", "ts": 4000},
    {"k": "a", "x": 2, "s": "c", "ts": 5000},
]
SCALAR_ROW = {"m": {"a": 1, "b": 2}}
HEADERS = [("trace-id", b"abc")]


def _records(rows: list[dict[str, Any]], key: str = "k") -> list[Record]:
    return [Record(orjson.dumps(r), key=str(r.get(key)).encode(), timestamp=int(r.get("ts", 0)), offset=i,
                   headers=HEADERS) for i, r in enumerate(rows)]


def _run(sql: str, recs: list[Record]) -> list[list[Any]]:
    out = compile_select(parse_statement(sql)).processor("rows").process(recs)  # type: ignore[arg-type]
    assert not out.errors, out.errors
    return [e.values for e in out.rows]


def _same(got: Any, expected: Any) -> bool:
    if isinstance(expected, float) or isinstance(got, float):
        return got is not None and expected is not None and math.isclose(got, expected, rel_tol=1e-12)
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(_same(g, e) for g, e in zip(got, expected, strict=True))
    return bool(got == expected)


FUNCTIONS = all_functions()


@pytest.mark.parametrize("fn", FUNCTIONS, ids=[f.name for f in FUNCTIONS])
def test_every_registered_example_gives_its_documented_result(fn: Function) -> None:
    if fn.kind in ("scalar", "syntax"):
        assert "→" not in fn.example
        rows = _run(f"SELECT ({fn.example}) AS ok FROM t", _records([SCALAR_ROW]))
        assert rows == [[True]], f"{fn.example} gave {rows}"
        return
    expr, _, result = fn.example.partition(" → ")
    assert result, f"{fn.name}'s example {fn.example!r} does not state its result"
    expected = orjson.loads(result)
    if fn.kind == "aggregate":
        got = _run(f"SELECT {expr} AS r FROM t", _records(ROWS))[-1][0]
    elif fn.kind == "analytic":
        got = [r[0] for r in _run(f"SELECT {expr} AS r FROM t", _records(ROWS))]
    else:
        assert fn.kind == "window"
        got = _run(f"SELECT {expr} AS r, COUNT(*) AS n FROM t WINDOW TUMBLING (SIZE 10 SECONDS) EMIT CHANGES",
                   _records(ROWS))[-1][0]
    assert _same(got, expected), f"{fn.example}: got {got!r}"


KSQL_AGGREGATES = ["COLLECT_LIST", "COLLECT_SET", "TOPK", "TOPKDISTINCT", "HISTOGRAM", "EARLIEST_BY_OFFSET",
                   "LATEST_BY_OFFSET"]
KSQL_SCALARS = [
    "SPLIT", "SPLIT_TO_MAP", "ARRAY_CONTAINS", "ARRAY_DISTINCT", "ARRAY_EXCEPT", "ARRAY_INTERSECT",
    "ARRAY_UNION", "ARRAY_CONCAT", "ARRAY_JOIN", "ARRAY_LENGTH", "ARRAY_MAX", "ARRAY_MIN",
    "ARRAY_REMOVE", "ARRAY_SORT", "SLICE", "GENERATE_SERIES", "MAP_KEYS", "MAP_VALUES", "MAP_UNION",
    "AS_MAP", "EXTRACTJSONFIELD", "JSON_ARRAY_CONTAINS", "JSON_ARRAY_LENGTH", "JSON_CONCAT",
    "JSON_KEYS", "JSON_RECORDS", "IS_JSON_STRING", "TO_JSON_STRING", "PARSE_TIMESTAMP",
    "FORMAT_TIMESTAMP", "TIMESTAMPTOSTRING", "STRINGTOTIMESTAMP", "UCASE", "LCASE", "LEN", "INSTR",
    "INITCAP", "MASK", "MASK_LEFT", "MASK_RIGHT", "MASK_KEEP_LEFT", "MASK_KEEP_RIGHT",
]


def test_the_ksql_library_is_registered_with_signature_doc_and_example() -> None:
    names = {f.name: f for f in FUNCTIONS}
    ksql = [*KSQL_AGGREGATES, *KSQL_SCALARS]
    for name in ksql:
        fn = names[name]
        assert fn.signature.startswith(name) and fn.description and fn.example.startswith(name), name
    assert set(ksql) <= FUNCTION_NAMES  # the shell completes them


def test_a_function_name_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="UCASE is registered twice"):
        register("UCASE", "UCASE(s) -> STRING", "dup", "UCASE('a') = 'A'", 1, 1)(lambda s: s)


# ---------------------------------------------------------------- scalars against DuckDB

STRINGS = ["Hello World", "", None, "CORPORATE FLOOR", "ümlaut é", "a,b,,c"]


def test_string_functions_match_duckdb() -> None:
    rows = [{"s": s, "i": i} for i, s in enumerate(STRINGS)]
    got = _run("SELECT i, UCASE(s), LCASE(s), LEN(s), INSTR(s, 'OR'), INSTR(s, 'l'), SPLIT(s, ',') FROM t",
               _records(rows, "i"))
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INT, s VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [[r["i"], r["s"]] for r in rows])
    expected = con.execute("SELECT i, ucase(s), lcase(s), length(s), instr(s, 'OR'), instr(s, 'l'), "
                           "string_split(s, ',') FROM t ORDER BY i").fetchall()
    assert [tuple(r) for r in got] == expected


def test_instr_positions_and_occurrences_follow_ksqldb() -> None:
    got = _run("SELECT INSTR(s, 'OR'), INSTR(s, 'OR', 3), INSTR(s, 'OR', 3, 2), INSTR(s, 'OR', -3), "
               "INSTR(s, 'OR', -3, 2), INSTR(s, 'MISSING'), INSTR(s, 'OR', 1, 9), INSTR(NULL, 'OR') FROM t",
               _records([{"s": "CORPORATE FLOOR"}]))
    assert got == [[2, 5, 14, 5, 2, 0, 0, None]]


def test_mask_functions_keep_classes_given_as_null() -> None:
    got = _run("SELECT MASK(s), MASK(s, '*', NULL, '#'), MASK_LEFT(s, 20), MASK_RIGHT(s, 0), "
               "MASK_KEEP_LEFT(s, 2, 'U', 'l', 'd', 'o'), MASK(NULL) FROM t", _records([{"s": "Ab1-"}]))
    assert got == [["Xxn-", "*b#-", "Xxn-", "Ab1-", "Abdo", None]]


ARRAYS = [[3, 1, None, 2, 3], [], None, [5], [-1.5, 2.5]]


def test_array_functions_match_duckdb() -> None:
    rows = [{"i": i, "a": a} for i, a in enumerate(ARRAYS)]
    got = _run("SELECT i, ARRAY_MAX(a), ARRAY_MIN(a), ARRAY_SORT(a), ARRAY_SORT(a, 'DESC'), ARRAY_LENGTH(a), "
               "SLICE(a, 2, 3) FROM t", _records(rows, "i"))
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INT, a DOUBLE[])")
    con.executemany("INSERT INTO t VALUES (?, ?)", [[r["i"], r["a"]] for r in rows])
    expected = con.execute("SELECT i, list_max(a), list_min(a), list_sort(a, 'ASC', 'NULLS LAST'), "
                           "list_sort(a, 'DESC', 'NULLS LAST'), len(a), a[2:3] FROM t ORDER BY i").fetchall()
    assert [tuple(r) for r in got] == expected


def test_set_like_array_functions_keep_first_appearance_order() -> None:
    got = _run("SELECT ARRAY_DISTINCT(a), ARRAY_EXCEPT(a, ARRAY[1]), ARRAY_INTERSECT(a, ARRAY[2, 3, 9]), "
               "ARRAY_UNION(a, ARRAY[9, 3]), ARRAY_REMOVE(a, 3), ARRAY_JOIN(a), ARRAY_CONCAT(a, NULL), "
               "ARRAY_DISTINCT(NULL) FROM t", _records([{"a": [3, 1, None, 3, 2, None]}]))
    assert got == [[[3, 1, None, 2], [3, None, 2], [3, 2], [3, 1, None, 2, 9], [1, None, 2, None],
                    "3,1,null,3,2,null", [3, 1, None, 3, 2, None], None]]


def test_map_functions() -> None:
    got = _run("SELECT MAP_UNION(m, n), MAP_UNION(m, NULL), AS_MAP(ARRAY['a', 'b'], ARRAY[1]), "
               "SPLIT_TO_MAP('a=1;b;c=3', ';', '=') FROM t",
               _records([{"m": {"a": 1, "b": 2}, "n": {"b": 20, "c": 30}}]))
    assert got == [[{"a": 1, "b": 20, "c": 30}, {"a": 1, "b": 2}, {"a": 1}, {"a": "1", "c": "3"}]]


JSONS = ['{"a": 1, "b": [1, 2]}', "[1, 2, 3]", "[]", "not json", None, '"text"', '{"b": {"c": "x"}}']


def test_json_functions_match_duckdb() -> None:
    rows: list[dict[str, Any]] = [{"i": i, "j": j} for i, j in enumerate(JSONS)]
    got = _run("SELECT i, JSON_ARRAY_LENGTH(j), JSON_KEYS(j) FROM t", _records(rows, "i"))
    con = duckdb.connect()
    expected = []
    for r in rows:
        j: str | None = r["j"]
        if j is None or j == "not json":  # DuckDB raises on invalid JSON; ksqlDB gives NULL
            expected.append((r["i"], None, None))
            continue
        found = con.execute("SELECT json_array_length(?::JSON), json_keys(?::JSON)", [j, j]).fetchone()
        assert found is not None
        length, keys = found
        is_array, is_object = j.startswith("["), j.startswith("{")
        expected.append((r["i"], length if is_array else None, keys if is_object else None))
    assert [tuple(r) for r in got] == expected


def test_json_extraction_and_building() -> None:
    got = _run("SELECT EXTRACTJSONFIELD(j, '$.b.c'), EXTRACTJSONFIELD(j, '$.b'), EXTRACTJSONFIELD(j, '$.z'), "
               "JSON_ARRAY_CONTAINS('[1, \"2\", true]', 2), JSON_ARRAY_CONTAINS('[1, \"2\", true]', '2'), "
               "JSON_ARRAY_CONTAINS('[1.0]', 1), JSON_ARRAY_CONTAINS('oops', 1), IS_JSON_STRING('oops'), "
               "JSON_RECORDS(j), JSON_CONCAT('[1]', '2', '[3]'), TO_JSON_STRING(m) FROM t",
               _records([{"j": '{"b": {"c": "x"}}', "m": {"k": [1, None]}}]))
    assert got == [["x", '{"c":"x"}', None, False, True, True, False, False, {"b": '{"c":"x"}'},
                    "[1,2,3]", '{"k":[1,null]}']]


# ---------------------------------------------------------------- Java time patterns

TIMES = [0, 1, 999, 86_399_999, 951_782_400_123, 1_700_000_000_000, -1_500]


def test_format_timestamp_matches_duckdb_strftime() -> None:
    rows = [{"i": i, "ts": t} for i, t in enumerate(TIMES)]
    got = _run("SELECT i, FORMAT_TIMESTAMP(ts, 'yyyy-MM-dd HH:mm:ss.SSS'), TIMESTAMPTOSTRING(ts, 'D/M/yy h a') "
               "FROM t", _records(rows, "i"))
    con = duckdb.connect()
    expected = [con.execute("SELECT ?, strftime(epoch_ms(?::BIGINT), '%Y-%m-%d %H:%M:%S.%g'), "
                            "strftime(epoch_ms(?::BIGINT), '%-j/%-m/%y %-I %p')", [r["i"], r["ts"], r["ts"]]).fetchone()
                for r in rows]
    assert [tuple(r) for r in got] == expected


def test_parse_timestamp_matches_duckdb_strptime_and_round_trips() -> None:
    texts = ["2000-02-29 00:00:00.123", "1970-01-01 00:00:00.000", "2023-11-14 22:13:20.000",
             "1969-12-31 23:59:58.500"]
    rows = [{"i": i, "s": s} for i, s in enumerate(texts)]
    got = _run("SELECT i, PARSE_TIMESTAMP(s, 'yyyy-MM-dd HH:mm:ss.SSS'), "
               "STRINGTOTIMESTAMP(s, 'yyyy-MM-dd HH:mm:ss.SSS', 'Europe/Paris') FROM t", _records(rows, "i"))
    con = duckdb.connect()
    expected = [con.execute("SELECT ?, epoch_ms(strptime(?, '%Y-%m-%d %H:%M:%S.%g')), "
                            "epoch_ms(timezone('Europe/Paris', strptime(?, '%Y-%m-%d %H:%M:%S.%g')))",
                            [r["i"], r["s"], r["s"]]).fetchone() for r in rows]
    assert [tuple(r) for r in got] == expected
    for t in TIMES:
        assert parse_ms(format_ms(t, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "Asia/Kolkata"),
                        "yyyy-MM-dd'T'HH:mm:ss.SSSXXX") == t


def test_time_patterns_take_offsets_quotes_and_names() -> None:
    assert format_ms(0, "EEE, d MMM yyyy HH:mm:ss Z", "-05:30") == "Wed, 31 Dec 1969 18:30:00 -0530"
    assert format_ms(0, "EEEE MMMM ''yy 'at' k", "UTC") == "Thursday January '70 at 24"
    assert parse_ms("Thu, 1 Jan 1970 01:00:00 +0100", "EEE, d MMM yyyy HH:mm:ss Z") == 0
    assert parse_ms("1970-01-01T00:00:00.5Z", "yyyy-MM-dd'T'HH:mm:ss.SX") == 500
    with pytest.raises(ValueError, match="letter 'Q' is not supported"):
        format_ms(0, "yyyy-QQ")
    with pytest.raises(ValueError, match="does not match the time pattern"):
        parse_ms("2020/01/01", "yyyy-MM-dd")
    with pytest.raises(ValueError, match="unknown time zone"):
        format_ms(0, "yyyy", "Mars/Base")


def test_an_unparseable_timestamp_is_a_record_error_not_a_crash() -> None:
    sql = "SELECT PARSE_TIMESTAMP(s, 'yyyy-MM-dd') AS t FROM t"
    out = compile_select(parse_statement(sql)).processor("rows").process(  # type: ignore[arg-type]
        _records([{"s": "2020-01-02"}, {"s": "garbage"}]))
    assert [e.values for e in out.rows] == [[1_577_923_200_000]]
    assert out.errors is not None and len(out.errors) == 1


# ---------------------------------------------------------------- aggregates


def test_collect_list_keeps_nulls_like_ksqldb_and_duckdb_list() -> None:
    rows = [{"k": k, "x": x, "ts": i} for i, (k, x) in
            enumerate([("a", 1), ("b", None), ("a", None), ("b", None), ("a", 2), ("c", 5)])]
    got = _run("SELECT k, COLLECT_LIST(x) AS l FROM t GROUP BY k", _records(rows))
    final = {r[0]: r[1] for r in got}  # the last change per group
    con = duckdb.connect()
    con.execute("CREATE TABLE t (k VARCHAR, x INT, ts INT)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [[r["k"], r["x"], r["ts"]] for r in rows])
    expected = dict(con.execute("SELECT k, list(x ORDER BY ts) FROM t GROUP BY k").fetchall())
    assert final == expected
    assert final["b"] == [None, None]  # an all-NULL group is not []


def test_collect_list_and_set_per_tumbling_window() -> None:
    rows = [{"k": "a", "x": x, "ts": ts} for x, ts in [(1, 100), (1, 200), (None, 1500), (2, 1600), (2, 1700)]]
    got = _run("SELECT k, WINDOWSTART AS ws, COLLECT_LIST(x) AS l, COLLECT_SET(x) AS s FROM t "
               "WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY k EMIT CHANGES", _records(rows))
    final = {r[1]: (r[2], r[3]) for r in got}
    assert final == {0: ([1, 1], [1]), 1000: ([None, 2, 2], [None, 2])}


def test_topk_histogram_and_by_offset_match_duckdb() -> None:
    rows = [{"k": "g" + str(i % 3), "x": (i * 7) % 11 if i % 4 else None, "s": "abc"[i % 3] if i % 5 else None,
             "ts": i} for i in range(40)]
    got = _run("SELECT k, TOPK(x, 3), TOPKDISTINCT(x, 3), HISTOGRAM(s), EARLIEST_BY_OFFSET(x), "
               "LATEST_BY_OFFSET(x), LATEST_BY_OFFSET(x, 2, FALSE) FROM t GROUP BY k", _records(rows))
    final = {r[0]: tuple(r[1:]) for r in got}
    con = duckdb.connect()
    con.execute("CREATE TABLE t (k VARCHAR, x INT, s VARCHAR, ts INT)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [[r["k"], r["x"], r["s"], r["ts"]] for r in rows])
    expected = {r[0]: (r[1], r[2], dict(r[3]), r[4], r[5], r[6]) for r in con.execute(
        "SELECT k, list_sort(list(x), 'DESC')[1:3], list_sort(list(DISTINCT x), 'DESC')[1:3], histogram(s), "
        "first(x ORDER BY ts) FILTER (WHERE x IS NOT NULL), last(x ORDER BY ts) FILTER (WHERE x IS NOT NULL), "
        "list(x ORDER BY ts)[-2:] FROM t GROUP BY k").fetchall()}
    assert final == expected


def test_bad_aggregate_parameters_are_positioned_errors() -> None:
    for sql, message in [("SELECT TOPK(x, 0) FROM t", "TOPK: TOPK's second argument must be a positive integer"),
                         ("SELECT EARLIEST_BY_OFFSET(x, 'no') FROM t", "EARLIEST_BY_OFFSET: expected"),
                         ("SELECT LATEST_BY_OFFSET(x, -1) FROM t", "must be positive")]:
        with pytest.raises(SqlValidationError, match=message) as info:
            compile_select(parse_statement(sql))  # type: ignore[arg-type]
        assert info.value.line == 1 and info.value.column == 8


AGG_SQL = ("SELECT k, COLLECT_LIST(x) AS l, COLLECT_SET(x) AS cs, TOPK(x, 2) AS t, TOPKDISTINCT(x, 2) AS td, "
           "HISTOGRAM(s) AS h, EARLIEST_BY_OFFSET(x) AS e, LATEST_BY_OFFSET(x, 2) AS la FROM t GROUP BY k")


def test_new_accumulators_resume_from_a_snapshot() -> None:
    rows = [{"k": "g" + str(i % 2), "x": i % 5 if i % 3 else None, "s": "xy"[i % 2], "ts": i} for i in range(20)]
    recs = _records(rows)
    query = compile_select(parse_statement(AGG_SQL))  # type: ignore[arg-type]
    whole = query.processor("rows")
    expected = {e.values[0]: e.values for e in whole.process(recs).rows}
    first = query.processor("rows")
    got = {e.values[0]: e.values for e in first.process(recs[:9]).rows}
    data = first.snapshot()
    assert data is not None
    second = query.processor("rows")
    second.restore(data)
    assert second.state_bytes() == first.state_bytes()
    got.update({e.values[0]: e.values for e in second.process(recs[9:]).rows})
    assert got == expected  # the last change of each group, as if never interrupted


def test_session_merge_orders_collect_list_by_window_and_keeps_the_latest_arrival() -> None:
    sql = ("SELECT k, COLLECT_LIST(x) AS l, LATEST_BY_OFFSET(x) AS la, EARLIEST_BY_OFFSET(x) AS ea, "
           "TOPK(x, 2) AS t, HISTOGRAM(s) AS h FROM t WINDOW SESSION (1 SECOND) GROUP BY k EMIT CHANGES")
    # Two sessions (0 s and 1.5 s), then a record at 0.8 s that bridges them: it arrives last, so it
    # is LATEST_BY_OFFSET; COLLECT_LIST lists the first window, the bridging record, the second window.
    rows = [{"k": "a", "x": 1, "s": "p", "ts": 0}, {"k": "a", "x": 3, "s": "q", "ts": 1500},
            {"k": "a", "x": 2, "s": "p", "ts": 800}]
    got = _run(sql, _records(rows))
    assert got == [["a", [1, 2, 3], 2, 1, [3, 2], {"p": 2, "q": 1}, 0, 2500]]


# ---------------------------------------------------------------- docs/functions.md

SECTIONS = [("scalar", "Scalar functions"), ("aggregate", "Aggregates (GROUP BY, windows, and OVER)"),
            ("analytic", "Analytic (OVER only)"), ("window", "Window bounds (windowed queries)"),
            ("syntax", "Syntax forms")]


def function_tables() -> str:
    """The tables of docs/functions.md as the registry gives them (regenerate the file from this)."""
    out = []
    for kind, title in SECTIONS:
        out += [f"## {title}", "", "| function | signature | description | example |", "|---|---|---|---|"]
        for f in FUNCTIONS:
            if f.kind == kind:
                cells = [f"`{f.name}`", f"`{f.signature}`", f.description, f"`{f.example}`"]
                out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def test_docs_list_every_function_as_registered() -> None:
    text = (Path(__file__).parents[3] / "docs" / "functions.md").read_text()
    assert text[text.index("## Scalar functions"):].rstrip() == function_tables().rstrip()
