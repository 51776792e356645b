"""SQL application files: annotations (both forms), ${VAR} substitution, line numbers."""

from __future__ import annotations

import pytest
from velo.grammar import SqlSyntaxError, SqlValidationError, parse_app
from velo.grammar import ast as a
from velo.grammar.apps import normalize_name, substitute

APP = """\
-- @app: trading_analytics
-- @version: 1.2.0
-- @description: Alerts and candles

CREATE STREAM trades (symbol STRING, price DOUBLE) WITH (KAFKA_TOPIC='${TRADES_TOPIC:trades}');

-- @name: price_alerts
-- @property: batch.size=100
-- @property: late.data.strategy = dead_letter
CREATE STREAM alerts AS
SELECT symbol, price FROM trades WHERE price > ${THRESHOLD}
WITH ('output.topic' = 'alerts', 'batch.size' = 10);

-- a plain comment
START JOB candles AS SELECT symbol, MAX(price) AS high FROM trades GROUP BY symbol
  WINDOW TUMBLING (1m);
"""

LEGACY = """\
-- SQL Application: Trading Analytics
-- Version: 0.9
-- Description: the old style
-- Name: Price Alerts
-- Property: auto.offset.reset=earliest
START JOB x AS SELECT * FROM trades
"""


def test_annotations_and_statements() -> None:
    app = parse_app(APP, {"THRESHOLD": "100"}, environ={})
    assert (app.name, app.version, app.description) == ("trading_analytics", "1.2.0", "Alerts and candles")
    catalog, alerts, candles = app.statements
    assert isinstance(catalog.statement, a.CreateSource)
    assert catalog.statement.properties == (a.Property("KAFKA_TOPIC", "trades"),)
    assert (catalog.line, catalog.index, catalog.name) == (5, 1, None)
    assert alerts.name == "price_alerts" and alerts.line == 10 and alerts.index == 2
    assert alerts.properties == (
        a.Property("batch.size", 100), a.Property("late.data.strategy", "dead_letter")
    )  # fmt: skip
    assert alerts.sql.startswith("CREATE STREAM alerts AS") and alerts.sql.endswith("10)")
    assert candles.name is None and candles.properties == () and candles.line == 15


def test_annotation_properties_join_the_with_and_lose_to_it() -> None:
    alerts = parse_app(APP, {"THRESHOLD": "1"}, environ={}).statements[1]
    stmt = alerts.with_properties()
    assert isinstance(stmt, a.CreateStreamAs)
    assert stmt.properties == (
        a.Property("late.data.strategy", "dead_letter"),
        a.Property("output.topic", "alerts"),
        a.Property("batch.size", 10),
    )


def test_legacy_annotations() -> None:
    app = parse_app(LEGACY)
    assert (app.name, app.version, app.description) == ("trading_analytics", "0.9", "the old style")
    (job,) = app.statements
    assert job.name == "price_alerts"
    assert job.properties == (a.Property("auto.offset.reset", "earliest"),)


def test_variables_from_the_mapping_then_the_environment_then_the_default() -> None:
    env = {"A": "env", "B": "env"}
    assert substitute("${A} ${B} ${C:dflt} ${D:}", {"A": "given"}, env) == "given env dflt "
    with pytest.raises(SqlValidationError, match=r"\$\{THRESHOLD\} has no value") as info:
        parse_app(APP, environ={})
    assert (info.value.line, info.value.column) == (11, 48)
    assert info.value.suggestions == ["${THRESHOLD:default}"]


def test_errors_name_the_statement_and_its_line() -> None:
    text = "SHOW JOBS;\n-- @name: bad\nSTART JOB bad AS\nSELECT id FORM src;"
    with pytest.raises(SqlSyntaxError) as info:
        parse_app(text)
    assert (info.value.statement, info.value.line, info.value.column) == (2, 4, 16)  # at `src`: FORM reads as an alias


def test_bad_property_annotation() -> None:
    with pytest.raises(SqlValidationError, match="key=value"):
        parse_app("-- @property: nothing here\nSHOW JOBS")


def test_normalize_name() -> None:
    assert normalize_name("Price Alerts") == "price_alerts"
    assert normalize_name("  VWAP (1m) -- v2 ") == "vwap_1m_v2"
