"""ksqlDB's forms and the query shapes of issues 12/13: accepted, their AST, their canonical SQL.

Implicit select aliases, ``s->f``, ``LIKE … ESCAPE``, ``WITHIN … GRACE PERIOD`` / ``WITHIN
(before, after)`` (before or after ON), ``PARTITION BY``, ``FROM (SELECT …) alias``, ``WITH … AS``
and ``UNION ALL``. The near misses' messages and positions are in test_errors.py's table.
"""

from __future__ import annotations

import pytest
from velo.grammar import SqlSyntaxError, ast, parse, parse_statement, to_sql


def _select(sql: str) -> ast.Select:
    stmt = parse_statement(sql)
    assert isinstance(stmt, ast.Select)
    return stmt


def _round_trip(sql: str) -> str:
    stmt = parse_statement(sql)
    text = to_sql(stmt)
    assert parse(text) == [stmt], text
    return text


def test_select_items_take_an_alias_without_as() -> None:
    s = _select("SELECT EXP(i) i, s1.name name1, a + 1 \"Total\", x AS y FROM t s1")
    assert [(i.alias, type(i.expr).__name__) for i in s.items] == [
        ("i", "FunctionCall"), ("name1", "Column"), ("Total", "BinaryOp"), ("y", "Column")]
    assert s.items[1].expr == ast.Column("name", "s1")
    assert s.items[0].span is not None and (s.items[0].span.column, s.items[0].span.end_column) == (8, 16)
    assert _round_trip("SELECT EXP(i) i FROM t") == "SELECT EXP(i) AS i FROM t"


@pytest.mark.parametrize("sql", [
    "SELECT a from FROM t",      # a reserved word is never an alias
    "SELECT a b c FROM t",       # one alias per item
    "SELECT a b AS c FROM t",
])
def test_an_implicit_alias_is_one_plain_name(sql: str) -> None:
    with pytest.raises(SqlSyntaxError):
        parse(sql)


def test_keywords_that_can_follow_an_item_stay_keywords() -> None:
    s = _select("SELECT a primary key, COUNT(*) over (PARTITION BY b) FROM t")
    assert s.items[0].primary_key and s.items[0].alias is None
    assert s.items[1].expr.over is not None  # type: ignore[union-attr]
    # quoted, they are aliases
    assert _select('SELECT a "primary", b "from" FROM t').items[1].alias == "from"


def test_arrow_is_field_access_on_a_column_and_chains() -> None:
    s = _select("SELECT s->a, s->a->b, t.s->a, (x)->y, s->\"End\" FROM t")
    col_s = ast.Column("s")
    assert [i.expr for i in s.items] == [
        ast.FieldAccess(col_s, "a"),
        ast.FieldAccess(ast.FieldAccess(col_s, "a"), "b"),
        ast.FieldAccess(ast.Column("s", "t"), "a"),
        ast.FieldAccess(ast.Column("x"), "y"),
        ast.FieldAccess(col_s, "End"),
    ]
    assert s.items[1].expr.span is not None and s.items[1].expr.span.end_column == 21
    # a.b stays the qualified column; a->b is the struct field (different ASTs, both round trip)
    assert _select("SELECT a.b FROM t").items[0].expr == ast.Column("b", "a")
    assert _round_trip("SELECT s->a->b, s.a->b FROM t") == "SELECT s->a->b, (s.a).b FROM t"
    assert _round_trip("SELECT a->b * 2, x-1, x - -1 FROM t") == "SELECT a->b * 2, x - 1, x - -1 FROM t"


def test_like_escape() -> None:
    w = _select("SELECT a FROM t WHERE a NOT LIKE 'x!%' ESCAPE '!'").where
    assert w == ast.Like(ast.Column("a"), ast.Literal("x!%"), negated=True, escape="!")
    assert _round_trip("SELECT a LIKE b ESCAPE '''' AS l FROM t") == "SELECT a LIKE b ESCAPE '''' AS l FROM t"
    assert _select("SELECT a FROM t WHERE a LIKE 'x'").where == ast.Like(ast.Column("a"), ast.Literal("x"))


def _join(sql: str) -> ast.Join:
    return _select(sql).joins[0]


def test_within_grace_and_before_after_on_either_side_of_on() -> None:
    m = ast.Interval(1, "MINUTE")
    after_on = _join("SELECT * FROM a JOIN b ON a.k = b.k WITHIN 1 MINUTE GRACE PERIOD 1 MINUTE")
    before_on = _join("SELECT * FROM a JOIN b WITHIN 1 MINUTE GRACE PERIOD 1 MINUTE ON a.k = b.k")
    assert after_on == before_on == ast.Join(
        "inner", ast.TableRef("b"), ast.BinaryOp("=", ast.Column("k", "a"), ast.Column("k", "b")), m, None, m)
    rng = _join("SELECT * FROM a LEFT JOIN b WITHIN (1 HOUR, 2 HOURS) GRACE PERIOD 5s ON a.k = b.k")
    assert (rng.within, rng.within_after, rng.grace) == (
        ast.Interval(1, "HOUR"), ast.Interval(2, "HOUR"), ast.Interval(5, "SECOND"))
    assert rng.span is not None and rng.span.column == 17
    plain = _join("SELECT * FROM a JOIN b ON a.k = b.k WITHIN 5s")
    assert (plain.within, plain.within_after, plain.grace) == (ast.Interval(5, "SECOND"), None, None)
    assert _round_trip("SELECT * FROM a JOIN b WITHIN (1 HOUR, 2 HOURS) ON a.k = b.k") == (
        "SELECT * FROM a JOIN b ON a.k = b.k WITHIN (INTERVAL '1' HOUR, INTERVAL '2' HOUR)")


def test_partition_by() -> None:
    s = _select("SELECT a FROM t WHERE a > 1 GROUP BY a HAVING COUNT(*) > 1 PARTITION BY a, b->c EMIT CHANGES")
    assert s.partition_by == (ast.Column("a"), ast.FieldAccess(ast.Column("b"), "c"))
    assert s.partition_by[0].span is not None and s.partition_by[0].span.column == 73
    assert _round_trip("SELECT a FROM t PARTITION BY a EMIT CHANGES") == "SELECT a FROM t PARTITION BY a EMIT CHANGES"
    # PARTITION ends the FROM clause: an alias named partition needs AS
    assert _select("SELECT a FROM t AS partition").from_ == ast.TableRef("t", "partition")


def test_derived_tables_in_from_and_join() -> None:
    s = _select("SELECT q.a FROM (SELECT a FROM t WHERE a > 1) AS q JOIN (SELECT b FROM u) r ON q.a = r.b")
    inner = _select("SELECT a FROM t WHERE a > 1")
    assert s.from_ == ast.TableRef("q", None, inner)
    assert s.joins[0].table == ast.TableRef("r", None, _select("SELECT b FROM u"))
    assert s.from_.span is not None and (s.from_.span.column, s.from_.span.end_column) == (17, 51)
    assert s.from_.query is not None and s.from_.query.span is not None and s.from_.query.span.column == 18
    assert _round_trip("SELECT * FROM (SELECT a FROM t) AS q") == "SELECT * FROM (SELECT a FROM t) q"


def test_ctes() -> None:
    s = _select("WITH a AS (SELECT x FROM t), b AS (SELECT y FROM a) SELECT y FROM b EMIT CHANGES")
    assert [(c.name, c.query) for c in s.ctes] == [
        ("a", _select("SELECT x FROM t")), ("b", _select("SELECT y FROM a"))]
    assert s.from_ == ast.TableRef("b") and s.emit == "changes"
    assert s.span is not None and s.span.column == 1 and s.ctes[1].span is not None and s.ctes[1].span.column == 30
    _round_trip("WITH a AS (SELECT x FROM t) SELECT x FROM a")


@pytest.mark.parametrize(("sql", "kind"), [
    ("CREATE STREAM s AS WITH a AS (SELECT x FROM t) SELECT x FROM a WITH ('k' = 'v')", ast.CreateStreamAs),
    ("CREATE TABLE s WITH (KAFKA_TOPIC = 'o') AS WITH a AS (SELECT x FROM t) SELECT x FROM a", ast.CreateStreamAs),
    ("START JOB j AS WITH a AS (SELECT x FROM t) SELECT x FROM a", ast.StartJob),
    ("INSERT INTO s WITH a AS (SELECT x FROM t) SELECT x FROM a WITH ('k' = 'v')", ast.InsertSelect),
])
def test_ctes_in_job_statements(sql: str, kind: type) -> None:
    stmt = parse_statement(sql)
    assert isinstance(stmt, kind)
    query = stmt.query  # type: ignore[attr-defined]
    assert [c.name for c in query.ctes] == ["a"] and query.properties == ()
    _round_trip(sql)


def test_union_all() -> None:
    s = _select("SELECT a FROM t WHERE a > 1 UNION ALL SELECT b FROM u UNION ALL SELECT c FROM v GROUP BY c "
                "EMIT CHANGES LIMIT 5 WITH ('k' = 'v')")
    assert s.from_ == ast.TableRef("t") and s.where is not None
    assert s.union_all == (_select("SELECT b FROM u"), _select("SELECT c FROM v GROUP BY c"))
    assert (s.emit, s.limit, [p.key for p in s.properties]) == ("changes", 5, ["k"])
    assert s.union_all[0].span is not None and s.union_all[0].span.column == 39
    assert s.span is not None and s.span.start_pos == 0
    _round_trip("SELECT a FROM t UNION ALL SELECT b FROM u EMIT CHANGES")
    # inside subqueries too
    inner = _select("SELECT a FROM t WHERE a IN (SELECT a FROM u UNION ALL SELECT b FROM v)").where
    assert isinstance(inner, ast.InSubquery) and len(inner.query.union_all) == 1


def test_a_plain_select_is_unchanged() -> None:
    s = _select("SELECT a FROM t")
    assert (s.ctes, s.union_all, s.partition_by, s.from_.query) == ((), (), (), None)
