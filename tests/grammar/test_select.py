"""One test per SELECT clause (dialect.md section 4), windows (4.1) and durations (section 1)."""

from __future__ import annotations

import pytest
from velo.grammar import SqlSyntaxError, parse_statement
from velo.grammar import ast as a


def select(sql: str) -> a.Select:
    stmt = parse_statement(sql)
    assert isinstance(stmt, a.Select)
    return stmt


def test_items_aliases_star_and_qualified_star() -> None:
    s = select("SELECT *, t.*, a, b + 1 AS c, \"Mixed\".* FROM t")
    assert [i.expr for i in s.items[:3]] == [a.Star(), a.Star("t"), a.Column("a")]
    assert s.items[3].alias == "c" and s.items[4].expr == a.Star("Mixed")


def test_distinct() -> None:
    assert select("SELECT DISTINCT a FROM t").distinct
    assert not select("SELECT a FROM t").distinct


def test_trailing_primary_key_on_items() -> None:
    s = select("SELECT a PRIMARY KEY, b AS bee PRIMARY KEY, c FROM t")
    assert [(i.alias, i.primary_key) for i in s.items] == [(None, True), ("bee", True), (None, False)]


def test_from_alias_with_and_without_as() -> None:
    assert select("SELECT 1 FROM trades t").from_ == a.TableRef("trades", "t")
    assert select("SELECT 1 FROM trades AS t").from_ == a.TableRef("trades", "t")


@pytest.mark.parametrize(
    ("join", "kind"),
    [
        ("JOIN", "inner"), ("INNER JOIN", "inner"), ("LEFT JOIN", "left"),
        ("LEFT OUTER JOIN", "left"), ("RIGHT JOIN", "right"), ("RIGHT OUTER JOIN", "right"),
        ("FULL JOIN", "full"), ("FULL OUTER JOIN", "full"),
    ],
)  # fmt: skip
def test_join_kinds(join: str, kind: str) -> None:
    s = select(f"SELECT * FROM a x {join} b y ON x.k = y.k")
    assert s.joins == (
        a.Join(kind, a.TableRef("b", "y"), a.BinaryOp("=", a.Column("k", "x"), a.Column("k", "y"))),
    )


def test_several_joins_and_within() -> None:
    s = select(
        "SELECT * FROM a JOIN b ON a.k = b.k WITHIN 10s LEFT JOIN c ON true "
        "FULL JOIN d ON a.k = d.k WITHIN 30 SECONDS"
    )
    assert [j.within for j in s.joins] == [a.Interval(10, "SECOND"), None, a.Interval(30, "SECOND")]
    assert s.joins[1].on == a.Literal(True)


def test_time_bounded_join_condition() -> None:
    s = select(
        "SELECT * FROM a JOIN b ON a.k = b.k AND b._event_time BETWEEN "
        "a._event_time - INTERVAL '10' SECOND AND a._event_time + INTERVAL '10' SECOND"
    )
    cond = s.joins[0].on
    assert isinstance(cond, a.BinaryOp) and isinstance(cond.right, a.Between)
    assert cond.right.low == a.BinaryOp("-", a.Column("_event_time", "a"), a.Interval(10, "SECOND"))


def test_where_group_by_having() -> None:
    s = select("SELECT k, COUNT(*) FROM t WHERE x > 1 GROUP BY k, UPPER(j) HAVING COUNT(*) > 2")
    assert s.where == a.BinaryOp(">", a.Column("x"), a.Literal(1))
    assert s.group_by == (a.Column("k"), a.FunctionCall("UPPER", (a.Column("j"),)))
    assert s.having == a.BinaryOp(">", a.FunctionCall("COUNT", star=True), a.Literal(2))


WINDOW = a.Window("tumbling", a.Interval(1, "MINUTE"))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT k, COUNT(*) FROM t WINDOW TUMBLING (1m) WHERE x > 1 GROUP BY k HAVING COUNT(*) > 1",
        "SELECT k, COUNT(*) FROM t WHERE x > 1 WINDOW TUMBLING (1m) GROUP BY k HAVING COUNT(*) > 1",
        "SELECT k, COUNT(*) FROM t WHERE x > 1 GROUP BY k WINDOW TUMBLING (1m) HAVING COUNT(*) > 1",
        "SELECT k, COUNT(*) FROM t WHERE x > 1 GROUP BY k HAVING COUNT(*) > 1 WINDOW TUMBLING (1m)",
    ],
)
def test_window_in_every_position(sql: str) -> None:
    s = select(sql)
    assert s.window == WINDOW and s.group_by == (a.Column("k"),) and s.having is not None


def test_only_one_window() -> None:
    with pytest.raises(SqlSyntaxError, match="only one WINDOW"):
        select("SELECT * FROM t WINDOW TUMBLING (1m) WHERE x WINDOW TUMBLING (1m)")


def test_emit_limit_with() -> None:
    s = select("SELECT a FROM t EMIT FINAL LIMIT 10 WITH ('auto.offset.reset' = 'earliest')")
    assert (s.emit, s.limit) == ("final", 10)
    assert s.properties == (a.Property("auto.offset.reset", "earliest"),)
    assert select("SELECT a FROM t EMIT CHANGES").emit == "changes"
    assert select("SELECT a FROM t").emit is None


def test_with_values_of_every_kind() -> None:
    s = select("SELECT a FROM t WITH ('s' = 'x', n = 5, m = -2, f = 1.5, b = TRUE, z = NULL, i = json)")
    assert [p.value for p in s.properties] == ["x", 5, -2, 1.5, True, None, "json"]


# ---------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("spec", "window"),
    [
        ("TUMBLING (1m)", a.Window("tumbling", a.Interval(1, "MINUTE"))),
        ("TUMBLING (ts, 5s)", a.Window("tumbling", a.Interval(5, "SECOND"), time_column=a.Column("ts"))),
        ("TUMBLING (t.ts, INTERVAL '1' HOUR)",
         a.Window("tumbling", a.Interval(1, "HOUR"), time_column=a.Column("ts", "t"))),
        ("TUMBLING (SIZE 30 SECONDS)", a.Window("tumbling", a.Interval(30, "SECOND"))),
        ("TUMBLING (SIZE 30 SECONDS, GRACE PERIOD 1 MINUTE)",
         a.Window("tumbling", a.Interval(30, "SECOND"), grace=a.Interval(1, "MINUTE"))),
        ("TUMBLING(1m) GRACE PERIOD 5s",
         a.Window("tumbling", a.Interval(1, "MINUTE"), grace=a.Interval(5, "SECOND"))),
        ("HOPPING (10m, 1m)", a.Window("hopping", a.Interval(10, "MINUTE"), a.Interval(1, "MINUTE"))),
        ("HOPPING (ts, 10m, 1m) GRACE PERIOD 2s",
         a.Window("hopping", a.Interval(10, "MINUTE"), a.Interval(1, "MINUTE"),
                  a.Interval(2, "SECOND"), a.Column("ts"))),
        ("HOPPING (SIZE 30 SECONDS, ADVANCE BY 10 SECONDS)",
         a.Window("hopping", a.Interval(30, "SECOND"), a.Interval(10, "SECOND"))),
        ("HOPPING (SIZE 30 SECONDS, ADVANCE BY 10 SECONDS, GRACE PERIOD 1 DAY)",
         a.Window("hopping", a.Interval(30, "SECOND"), a.Interval(10, "SECOND"), a.Interval(1, "DAY"))),
        ("SLIDING (5m, 1m)", a.Window("hopping", a.Interval(5, "MINUTE"), a.Interval(1, "MINUTE"))),
        ("SESSION (30 SECONDS)", a.Window("session", a.Interval(30, "SECOND"))),
        ("SESSION (ts, 2h)", a.Window("session", a.Interval(2, "HOUR"), time_column=a.Column("ts"))),
        ("SESSION (30 SECONDS, GRACE PERIOD 100ms)",
         a.Window("session", a.Interval(30, "SECOND"), grace=a.Interval(100, "MILLISECOND"))),
    ],
)  # fmt: skip
def test_window_forms(spec: str, window: a.Window) -> None:
    assert select(f"SELECT COUNT(*) FROM t WINDOW {spec}").window == window


@pytest.mark.parametrize(
    "spec",
    ["TUMBLING (1m, 1m)", "HOPPING (1m)", "SESSION (SIZE 1m)", "TUMBLING (ADVANCE BY 1m)",
     "TUMBLING (1m, ts)", "TUMBLING (SIZE 1m, GRACE PERIOD 1s) GRACE PERIOD 1s"],
)  # fmt: skip
def test_wrong_window_arguments(spec: str) -> None:
    with pytest.raises(SqlSyntaxError, match="window"):
        select(f"SELECT COUNT(*) FROM t WINDOW {spec}")


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("INTERVAL '5' SECOND", a.Interval(5, "SECOND")),
        ("INTERVAL '5' SECONDS", a.Interval(5, "SECOND")),
        ("INTERVAL '5 seconds'", a.Interval(5, "SECOND")),
        ("INTERVAL '1 minute'", a.Interval(1, "MINUTE")),
        ("INTERVAL '250' MILLISECONDS", a.Interval(250, "MILLISECOND")),
        ("INTERVAL '1.5' HOUR", a.Interval(1.5, "HOUR")),
        ("INTERVAL '2' DAYS", a.Interval(2, "DAY")),
        ("100ms", a.Interval(100, "MILLISECOND")),
        ("5s", a.Interval(5, "SECOND")),
        ("1m", a.Interval(1, "MINUTE")),
        ("2h", a.Interval(2, "HOUR")),
        ("1d", a.Interval(1, "DAY")),
        ("30 SECONDS", a.Interval(30, "SECOND")),
        ("1 MINUTE", a.Interval(1, "MINUTE")),
        ("3 days", a.Interval(3, "DAY")),
    ],
)
def test_duration_forms(text: str, interval: a.Interval) -> None:
    assert select(f"SELECT COUNT(*) FROM t WINDOW TUMBLING ({text})").window == a.Window(
        "tumbling", interval
    )
    assert interval.millis > 0


def test_interval_in_expressions_and_its_millis() -> None:
    s = select("SELECT ts + INTERVAL '10 seconds' FROM t")
    assert s.items[0].expr == a.BinaryOp("+", a.Column("ts"), a.Interval(10, "SECOND"))
    assert a.Interval(1.5, "SECOND").millis == 1500


@pytest.mark.parametrize("text", ["INTERVAL '5'", "INTERVAL 'five seconds'", "INTERVAL '5 s' SECOND"])
def test_bad_intervals(text: str) -> None:
    with pytest.raises(SqlSyntaxError, match="Invalid interval"):
        select(f"SELECT {text} FROM t")
