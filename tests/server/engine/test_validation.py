"""Semantic validation before deploy: every error is a SqlValidationError with a position."""

from __future__ import annotations

from pathlib import Path

import pytest
from velo.grammar.errors import SqlValidationError
from velo.grammar.parser import parse_statement
from velo.server.engine.catalog import Catalog, CatalogEntry, entry_from_statement
from velo.server.engine.compile import compile_select


def _catalog() -> Catalog:
    cat = Catalog()
    stmt = parse_statement("CREATE STREAM trades (symbol STRING, price DOUBLE, quantity INT, ts BIGINT) "
                           "WITH (KAFKA_TOPIC='trades', VALUE_FORMAT='JSON', TIMESTAMP='ts')")
    cat.put(entry_from_statement(stmt))  # type: ignore[arg-type]
    return cat


def _fails(sql: str, *, data_dir: Path | None = None) -> SqlValidationError:
    with pytest.raises(SqlValidationError) as info:
        compile_select(parse_statement(sql), catalog=_catalog(), data_dir=data_dir)  # type: ignore[arg-type]
    return info.value


def test_unknown_column_suggests_the_nearest() -> None:
    e = _fails("SELECT symbol, pirce FROM trades")
    assert "pirce" in e.message and e.suggestions == ["price"]
    assert (e.line, e.column) == (1, 16)


def test_unknown_relation_qualifier() -> None:
    e = _fails("SELECT x.price FROM trades t")
    assert "relation" in e.message and "t" in e.suggestions


def test_unknown_function_and_wrong_arity() -> None:
    e = _fails("SELECT UPPPER(symbol) FROM trades")
    assert "UPPER" in e.suggestions and e.column == 8
    e = _fails("SELECT SUBSTRING(symbol) FROM trades")
    assert "SUBSTRING(s STRING, start INT [, len INT])" in e.message


def test_aggregate_misuse() -> None:
    e = _fails("SELECT symbol, price FROM trades GROUP BY symbol")
    assert "GROUP BY" in e.message and e.column == 16
    e = _fails("SELECT symbol FROM trades WHERE COUNT(*) > 1")
    assert "WHERE" in e.message
    e = _fails("SELECT SUM(COUNT(*)) FROM trades")
    assert "nested" in e.message


def test_window_and_emit_rules() -> None:
    assert "aggregation" in _fails("SELECT symbol FROM trades WINDOW TUMBLING(1m)").message
    assert "EMIT FINAL" in _fails("SELECT symbol FROM trades EMIT FINAL").message
    assert "advance" in _fails("SELECT COUNT(*) FROM trades WINDOW HOPPING(1m, 2m)").message
    assert "positive" in _fails("SELECT COUNT(*) FROM trades WINDOW TUMBLING(0s)").message


def test_join_needs_an_equality_key() -> None:
    e = _fails("SELECT a.price FROM trades a JOIN trades b ON a.price > b.price WITHIN 5s")
    assert "equality key" in e.message


def test_property_typos_are_errors_and_kafka_keys_pass() -> None:
    e = _fails("SELECT symbol FROM trades WITH ('event.time.feild' = 'ts')")
    assert "event.time.field" in e.suggestions
    e = _fails("SELECT symbol FROM trades WITH ('trades.formt' = 'json')")
    assert "trades.format" in e.suggestions
    compile_select(parse_statement("SELECT symbol FROM trades WITH ('kafka.fetch.max.bytes' = '1')"),  # type: ignore[arg-type]
                   catalog=_catalog())
    assert "duration" in _fails("SELECT symbol FROM trades WITH ('watermark.max_out_of_orderness' = 'x')").message
    assert "late.data.strategy" in _fails("SELECT symbol FROM trades WITH ('late.data.strategy' = 'keep')").message


def test_file_paths_must_stay_under_the_data_dir(tmp_path: Path) -> None:
    e = _fails("SELECT t.symbol FROM trades t JOIN r ON t.symbol = r.symbol "
               "WITH ('r.type' = 'file_source', 'r.path' = '../etc/passwd')", data_dir=tmp_path)
    assert "data directory" in e.message


def test_catalog_round_trips_through_a_dict() -> None:
    cat = _catalog()
    again = Catalog.from_dict(cat.to_dict())
    entry = again.get("trades")
    assert isinstance(entry, CatalogEntry)
    assert entry.timestamp == "ts" and entry.column_names() == ["symbol", "price", "quantity", "ts"]


def test_declared_types_cast_on_read_and_bad_records_are_errors() -> None:
    import orjson
    from velo.server.connectors.base import Record

    q = compile_select(parse_statement("SELECT symbol, quantity + 1 AS q FROM trades"),  # type: ignore[arg-type]
                       catalog=_catalog())
    recs = [Record(orjson.dumps({"symbol": "A", "quantity": "41", "price": 1, "ts": 1})),
            Record(orjson.dumps({"symbol": "B", "quantity": "many", "price": 1, "ts": 1}))]
    out = q.processor("rows").process(recs)
    assert [e.values for e in out.rows] == [["A", 42]]
    assert out.errors is not None and out.errors[0][0] is recs[1]


def test_config_file_supplies_relation_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ref.csv").write_text("symbol,sector\nAAPL,tech\n")
    (tmp_path / "ref.yaml").write_text("type: file_source\npath: ${REF_FILE:ref.csv}\nformat: csv\n")
    monkeypatch.delenv("REF_FILE", raising=False)
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT t.symbol, r.sector FROM trades t JOIN ref r ON t.symbol = r.symbol "
        "WITH ('ref.config_file' = 'ref.yaml')"), catalog=_catalog(), data_dir=tmp_path)
    assert [i.topic for i in q.inputs] == ["trades"]
    (tmp_path / "bad.yaml").write_text("tpye: file_source\n")
    e = _fails("SELECT t.symbol FROM trades t JOIN ref r ON t.symbol = r.symbol "
               "WITH ('ref.config_file' = 'bad.yaml')", data_dir=tmp_path)
    assert "type" in e.suggestions


def test_decimal_columns_stay_exact_with_fractional_literals() -> None:
    from decimal import Decimal

    import orjson
    from velo.server.connectors.base import Record

    cat = Catalog()
    cat.put(entry_from_statement(parse_statement(  # type: ignore[arg-type]
        "CREATE STREAM px (symbol STRING, price DECIMAL(10, 2)) WITH (KAFKA_TOPIC='px')")))
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT price * 1.05 AS up, price > 1.5 AS big, price / 2 AS half FROM px"), catalog=cat)
    out = q.processor("rows").process([Record(orjson.dumps({"symbol": "A", "price": "2.10"}))])
    assert out.errors is None
    assert [e.values for e in out.rows] == [[Decimal("2.2050"), True, Decimal("1.05")]]
    enc = q.processor("encode").process([Record(orjson.dumps({"symbol": "A", "price": "2.10"}))])
    assert enc.rows[0][1] == b'{"up":2.205,"big":true,"half":1.05}'
