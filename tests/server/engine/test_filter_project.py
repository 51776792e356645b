"""The compiled filter/project function: SQL semantics, record errors, and the code it generates."""

from __future__ import annotations

import ast as pyast
from datetime import UTC, date

import duckdb
import orjson
import pytest
from velo.grammar import ast as a
from velo.grammar import parse_statement
from velo.grammar.errors import SqlValidationError
from velo.server.connectors.base import Record
from velo.server.engine.compile import compile_select
from velo.server.engine.functions import lookup
from velo.server.engine.operators.output import dumps
from velo.server.engine.processor import RowEvent


def _select(items: list[a.SelectItem], where: a.Expr | None = None) -> a.Select:
    return a.Select(items=tuple(items), from_=a.TableRef("trades"), where=where)


ROWS = [
    {"symbol": "AAPL", "price": 150.5, "qty": 10, "side": "BUY"},
    {"symbol": "MSFT", "price": 99.0, "qty": 5, "side": "SELL"},
    {"symbol": "GOOG", "price": None, "qty": 1, "side": "BUY"},
    {"symbol": "AMZN", "price": 120.0, "qty": None, "side": None},
    {"symbol": "TSLA", "price": 300.0, "qty": 0, "side": "BUY"},
]


def _records(rows: list[dict[str, object]]) -> list[Record]:
    return [Record(orjson.dumps(r), key=f"k{i}".encode(), offset=i) for i, r in enumerate(rows)]


def test_filter_and_projection_match_duckdb() -> None:
    where = a.BinaryOp("OR", a.BinaryOp(">", a.Column("price"), a.Literal(100)),
                       a.UnaryOp("NOT", a.BinaryOp("=", a.Column("side"), a.Literal("BUY"))))
    items = [a.SelectItem(a.Column("symbol")),
             a.SelectItem(a.BinaryOp("*", a.Column("price"), a.Column("qty")), alias="notional"),
             a.SelectItem(a.BinaryOp("/", a.Column("qty"), a.Literal(0)), alias="z")]
    emitted = compile_select(_select(items, where)).processor("rows").process(_records(ROWS))
    rows, errors = [e.values for e in emitted.rows], emitted.errors
    assert errors is None

    con = duckdb.connect()
    con.execute("CREATE TABLE trades (symbol VARCHAR, price DOUBLE, qty INTEGER, side VARCHAR)")
    con.executemany("INSERT INTO trades VALUES (?, ?, ?, ?)",
                    [(r["symbol"], r["price"], r["qty"], r["side"]) for r in ROWS])
    expected = con.execute(
        "SELECT symbol, price * qty AS notional, CASE WHEN 0 = 0 THEN NULL END AS z FROM trades "
        "WHERE price > 100 OR NOT side = 'BUY'").fetchall()
    assert sorted(map(tuple, rows), key=str) == sorted(expected, key=str)


def test_job_encoding_keeps_key_and_forwards_star_bytes_untouched() -> None:
    records = _records(ROWS)
    emitted = compile_select(_select([a.SelectItem(a.Star())])).processor("encode").process(records)
    out, errors = emitted.rows, emitted.errors
    assert errors is None
    assert out == [(r.key, r.value) for r in records]


def test_bad_records_are_collected_not_raised() -> None:
    records = [Record(b"not json"), Record(b"[1, 2]"), Record(b'{"price": "x"}'), Record(b'{"price": 200}')]
    where = a.BinaryOp(">", a.Column("price"), a.Literal(100))
    emitted = compile_select(_select([a.SelectItem(a.Column("price"))], where)).processor("encode").process(records)
    out, errors = emitted.rows, emitted.errors
    assert out == [(None, b'{"price":200}')]
    assert errors is not None
    assert [e[0] for e in errors] == records[:3]


def test_null_comparisons_filter_out_and_three_valued_not() -> None:
    where = a.UnaryOp("NOT", a.BinaryOp(">", a.Column("price"), a.Literal(100)))
    query = compile_select(_select([a.SelectItem(a.Column("symbol"))], where))
    emitted = query.processor("rows").process(_records(ROWS))
    rows = [e.values for e in emitted.rows]
    # NOT (NULL > 100) is NULL: GOOG (price NULL) must not pass.
    assert rows == [["MSFT"]]


def test_unknown_function_is_a_validation_error_with_position() -> None:
    span = a.Span(1, 8, 1, 20, 7, 19)
    call = a.FunctionCall("NOSUCH", (a.Column("price"),), span=span)
    with pytest.raises(SqlValidationError) as info:
        compile_select(_select([a.SelectItem(call)]))
    assert (info.value.line, info.value.column) == (1, 8)
    assert "NOSUCH" in info.value.message


def test_generated_source_is_one_loop_without_tree_walks() -> None:
    q = compile_select(_select([a.SelectItem(a.FunctionCall("UPPER", (a.Column("symbol"),)))],
                               a.BinaryOp(">", a.Column("price"), a.Literal(100))))
    tree = pyast.parse(q.source_code)
    functions = [n for n in tree.body if isinstance(n, pyast.FunctionDef)]
    assert [f.name for f in functions] == ["encode", "rows"]
    assert not [n for n in pyast.walk(tree) if isinstance(n, pyast.AsyncFunctionDef | pyast.Await)]
    for fn in functions:
        # Exactly one loop, over the batch: no loop, comprehension or lambda per record or per node.
        loops = [n for n in pyast.walk(fn) if isinstance(n, pyast.For | pyast.While | pyast.comprehension
                                                           | pyast.Lambda | pyast.AsyncFor)]
        assert len(loops) == 1 and isinstance(loops[0], pyast.For), pyast.dump(fn)
        assert isinstance(loops[0].iter, pyast.Name) and loops[0].iter.id == "batch"
        # The expression is inline code: the only calls are decoding, the function itself, building the
        # output and collecting a record's error — nothing that is handed an expression to evaluate.
        called = {pyast.unparse(n.func) for n in pyast.walk(fn) if isinstance(n, pyast.Call)}
        assert called <= {"loads", "r.get", "_f_UPPER", "_dumps", "append", "RowEvent", "errors.append"}, called
        assert "_f_UPPER" in called
        # WHERE price > 100 is a comparison in the loop's body itself.
        assert "_t1 > 100" in {pyast.unparse(n) for n in pyast.walk(loops[0]) if isinstance(n, pyast.Compare)}
    # The source needs nothing else: run on its own, with only those names bound, it gives the rows —
    # so no evaluator, AST node or helper of the expression module hides behind a name.
    namespace: dict[str, object] = {"loads": orjson.loads, "_f_UPPER": lookup("UPPER").impl,  # type: ignore[union-attr]
                                    "_dumps": dumps, "RowEvent": RowEvent}
    exec(compile(q.source_code, "<generated>", "exec"), namespace)  # the compiled query's own text
    rows, errors = namespace["rows"](_records(ROWS))  # type: ignore[operator]
    assert errors is None
    assert [e.values for e in rows] == [["AAPL"], ["AMZN"], ["TSLA"]]
    assert [e.values for e in q.processor("rows").process(_records(ROWS)).rows] == [["AAPL"], ["AMZN"], ["TSLA"]]


def test_casts_between_timestamp_date_and_string_follow_the_operands_type() -> None:
    # TIMESTAMP (ms) and DATE (days) are both ints inside the engine: the cast reads the operand's type.
    sql = ("SELECT CAST(CAST(ts AS TIMESTAMP) AS DATE) AS d, CAST(CAST(ts AS TIMESTAMP) AS STRING) AS s, "
           "CAST(CAST(CAST(ts AS TIMESTAMP) AS DATE) AS TIMESTAMP) AS m, "
           "CAST(CAST(CAST(ts AS TIMESTAMP) AS DATE) AS STRING) AS ds FROM x")
    stmt = parse_statement(sql)
    assert isinstance(stmt, a.Select)
    [row] = compile_select(stmt).processor("rows").process(_records([{"ts": 1_700_000_000_123}])).rows
    [(day, midnight, text)] = duckdb.sql("SELECT t::DATE, t::DATE::TIMESTAMP, strftime(t::DATE, '%Y-%m-%d') "
                                         "FROM (SELECT make_timestamp(1700000000123000) AS t)").fetchall()
    assert row.values == [(day - date(1970, 1, 1)).days, "2023-11-14T22:13:20.123Z",
                          int(midnight.replace(tzinfo=UTC).timestamp() * 1000), text]
