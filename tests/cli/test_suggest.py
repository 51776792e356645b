"""pgcli-style suggestion tests: text before the cursor → the kinds of names that may come next."""

from __future__ import annotations

import pytest
from velo.cli.completion.suggest import (
    Column,
    Datatype,
    Function,
    Job,
    Keyword,
    PropertyKey,
    PropertyValue,
    Relation,
    TableRef,
    Topic,
    context_at,
    relations_in,
    suggest,
)


def kinds(text: str, after: str = "") -> set[type]:
    return {type(s) for s in suggest(text + after, text)}


def keywords(text: str, after: str = "") -> set[str]:
    found: set[str] = set()
    for s in suggest(text + after, text):
        if isinstance(s, Keyword):
            found |= set(s.words)
    return found


def columns(text: str, after: str = "") -> Column:
    cols = [s for s in suggest(text + after, text) if isinstance(s, Column)]
    assert len(cols) == 1, suggest(text + after, text)
    return cols[0]


# ------------------------------------------------------------------ statement starts


@pytest.mark.parametrize("text", ["", "   ", "SHOW JOBS; ", "SEL", "sel"])
def test_start_of_statement_offers_statement_keywords(text: str) -> None:
    kw = keywords(text)
    assert {"SELECT", "CREATE STREAM", "SHOW", "STOP JOB", "PRINT", "SET"} <= kw
    assert kinds(text) == {Keyword}


def test_show_offers_show_targets() -> None:
    assert {"JOBS", "STREAMS", "TOPICS", "STATUS", "FUNCTIONS", "PROPERTIES"} <= keywords("SHOW ")


def test_create_offers_stream_table_or_replace() -> None:
    assert keywords("CREATE ") == {"STREAM", "TABLE", "OR REPLACE"}
    assert keywords("CREATE OR ") == {"REPLACE"}
    assert keywords("CREATE OR REPLACE ") == {"STREAM", "TABLE"}


def test_create_stream_as_offers_select() -> None:
    assert keywords("CREATE STREAM big AS ") == {"SELECT"}
    assert keywords("START JOB j ") == {"AS"}
    assert keywords("START JOB j AS ") == {"SELECT"}


# ------------------------------------------------------------------ relations


@pytest.mark.parametrize(
    "text", ["SELECT * FROM ", "SELECT * FROM tr", "select a from t JOIN ", "SELECT * FROM a LEFT JOIN "]
)
def test_relations_after_from_and_join(text: str) -> None:
    assert suggest(text) == [Relation()]


def test_insert_into_offers_streams_and_topics() -> None:
    assert suggest("INSERT INTO ") == [Relation(("stream", "topic"))]


def test_drop_stream_offers_streams() -> None:
    assert Relation(("stream",)) in suggest("DROP STREAM ")


def test_print_offers_topics_bare_and_quoted() -> None:
    assert suggest("PRINT ") == [Topic()]
    assert suggest("PRINT 'tra") == [Topic(quoted=True)]
    assert {"FROM BEGINNING", "LIMIT"} <= keywords("PRINT trades ")


def test_after_a_relation_offers_clause_keywords() -> None:
    kw = keywords("SELECT * FROM trades ")
    assert {"WHERE", "JOIN", "GROUP BY", "EMIT CHANGES", "LIMIT", "WITH", "WINDOW"} <= kw
    assert {"WHERE", "JOIN"} <= keywords("SELECT * FROM trades t ")


def test_after_joined_relation_offers_on() -> None:
    assert "ON" in keywords("SELECT * FROM trades t JOIN instruments i ")


# ------------------------------------------------------------------ columns & functions


def test_select_list_offers_columns_of_the_statement_relations() -> None:
    col = columns("SELECT ", " FROM trades")
    assert col.relations == (TableRef("trades"),)
    assert kinds("SELECT ", " FROM trades") == {Column, Function, Keyword}
    assert {"DISTINCT", "CASE"} <= keywords("SELECT ", " FROM trades")


def test_columns_after_comma_and_partial_word() -> None:
    assert columns("SELECT symbol, pr", " FROM trades").relations == (TableRef("trades"),)


def test_where_and_boolean_operators_offer_columns() -> None:
    for text in (
        "SELECT * FROM trades WHERE ",
        "SELECT * FROM trades WHERE a > 1 AND ",
        "SELECT * FROM trades WHERE price > ",
    ):
        assert Column in kinds(text), text


def test_qualified_column_uses_the_alias() -> None:
    text = "SELECT t. FROM trades t JOIN instruments i ON t.symbol = i.symbol"
    before = "SELECT t."
    col = next(s for s in suggest(text, before) if isinstance(s, Column))
    assert col.relations == (TableRef("trades", "t"),) and col.qualified
    ctx = context_at("SELECT i.sec", "SELECT i.sec")
    assert ctx is not None and ctx.qualifier == "i" and ctx.word == "sec"


def test_join_on_offers_columns_of_both_sides() -> None:
    col = columns("SELECT * FROM trades t JOIN instruments i ON ")
    assert col.relations == (TableRef("trades", "t"), TableRef("instruments", "i"))


def test_group_by_offers_columns() -> None:
    assert Column in kinds("SELECT symbol, COUNT(*) FROM trades GROUP BY ")
    assert {"WINDOW", "HAVING", "EMIT CHANGES"} <= keywords("SELECT symbol FROM trades GROUP BY symbol ")


def test_function_arguments_offer_columns() -> None:
    assert kinds("SELECT AVG(", ") FROM trades") >= {Column, Function}


def test_after_a_select_item_offers_from_and_as() -> None:
    assert {"FROM", "AS"} <= keywords("SELECT symbol ")
    assert "FROM" in keywords("SELECT * ")
    assert keywords("SELECT price AS p ") >= {"FROM"}


def test_alias_name_after_as_suggests_nothing() -> None:
    assert suggest("SELECT price AS ") == []


def test_after_where_condition_offers_connectives_and_clauses() -> None:
    kw = keywords("SELECT * FROM trades WHERE price > 100 ")
    assert {"AND", "OR", "GROUP BY", "EMIT CHANGES", "LIMIT"} <= kw


def test_is_offers_null() -> None:
    assert keywords("SELECT * FROM t WHERE a IS ") == {"NULL", "NOT NULL"}


def test_over_clause() -> None:
    assert {"PARTITION BY", "ORDER BY", "ROWS BETWEEN"} <= keywords("SELECT AVG(price) OVER (")
    assert Column in kinds("SELECT AVG(price) OVER (PARTITION BY ", " FROM trades")


# ------------------------------------------------------------------ streaming clauses


def test_emit_and_window_keywords() -> None:
    assert keywords("SELECT * FROM trades EMIT ") == {"CHANGES", "FINAL"}
    assert keywords("SELECT COUNT(*) FROM trades WINDOW ") == {"TUMBLING", "HOPPING", "SESSION", "SLIDING"}
    assert "SIZE" in keywords("SELECT COUNT(*) FROM trades WINDOW TUMBLING (")
    assert "GRACE PERIOD" in keywords("SELECT COUNT(*) FROM trades WINDOW TUMBLING (1m) ")


# ------------------------------------------------------------------ jobs


@pytest.mark.parametrize(
    "text",
    ["STOP JOB ", "PAUSE JOB ", "RESUME JOB ", "SHOW STATUS ", "TERMINATE ", "stop job big", "SHOW METRICS "],
)
def test_job_names(text: str) -> None:
    assert Job in kinds(text)


def test_stop_pause_resume_offer_job_keyword() -> None:
    assert keywords("STOP ") == {"JOB"}
    assert keywords("PAUSE ") == {"JOB"}
    assert keywords("RESUME ") == {"JOB"}


def test_describe_offers_relations_jobs_and_function() -> None:
    assert kinds("DESCRIBE ") == {Relation, Job, Keyword}
    assert suggest("DESCRIBE FUNCTION ") == [Function()]
    assert Job in kinds("EXPLAIN ")


# ------------------------------------------------------------------ WITH properties, SET


def test_with_keys_include_relation_prefixed_keys() -> None:
    sugg = suggest("CREATE STREAM out AS SELECT * FROM trades WITH (")
    assert len(sugg) == 1 and isinstance(sugg[0], PropertyKey)
    assert set(sugg[0].relations) == {"trades", "out"}
    assert not sugg[0].quoted


def test_with_keys_inside_a_quote_and_after_a_comma() -> None:
    text = "START JOB j AS SELECT * FROM trades WITH ('output.topic' = 'x', '"
    sugg = suggest(text)
    assert isinstance(sugg[0], PropertyKey) and sugg[0].quoted


def test_with_value_after_equals() -> None:
    assert suggest("SELECT * FROM t WITH ('t.type' = ") == [PropertyValue("t.type")]
    assert suggest("SELECT * FROM t WITH ('t.format' = 'j") == [PropertyValue("t.format", quoted=True)]


def test_catalog_ddl_with_offers_ksql_keys() -> None:
    sugg = suggest("CREATE STREAM trades (symbol STRING) WITH (")
    assert isinstance(sugg[0], PropertyKey) and sugg[0].catalog
    assert suggest("CREATE STREAM trades (symbol STRING) WITH (KAFKA_TOPIC='") == [Topic(quoted=True)]


def test_set_offers_session_keys_and_values() -> None:
    assert suggest("SET ") == [PropertyKey(session=True)]
    assert suggest("SET 'cli.") == [PropertyKey(quoted=True, session=True)]
    assert suggest("SET 'auto.offset.reset' = '") == [PropertyValue("auto.offset.reset", quoted=True)]


# ------------------------------------------------------------------ types, comments, strings


def test_types_in_column_definitions_and_casts() -> None:
    assert suggest("CREATE STREAM trades (symbol ") == [Datatype()]
    assert suggest("CREATE STREAM trades (symbol STRING, price ") == [Datatype()]
    assert suggest("SELECT CAST(price AS ") == [Datatype()]
    assert suggest("SELECT price::") == [Datatype()]


def test_nothing_inside_comments_or_plain_strings() -> None:
    assert suggest("SELECT * FROM t -- FROM ") == []
    assert suggest("SELECT /* FROM ") == []
    assert suggest("SELECT * FROM t WHERE s = 'FROM ") == []


def test_only_the_current_statement_counts() -> None:
    assert suggest("SELECT * FROM a; SELECT * FROM ") == [Relation()]
    text = "SELECT  FROM b; SELECT * FROM a"
    col = next(s for s in suggest(text, "SELECT ") if isinstance(s, Column))
    assert col.relations == (TableRef("b"),)


def test_relations_in_ignores_keywords_as_aliases() -> None:
    refs = relations_in("SELECT * FROM trades WHERE x JOIN q AS z ON 1 LEFT JOIN r ON 2")
    assert refs == (TableRef("trades"), TableRef("q", "z"), TableRef("r"))
