"""Avro values with a given schema: engine-shaped values out of the decoder, engine output into the encoder."""

from __future__ import annotations

import io
import struct
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from velo.server.connectors.formats import (
    avro_decoder,
    avro_encoder,
    avro_field_logical,
    avro_plain_schema,
    epoch_days,
    epoch_millis,
)

MONEY = {"type": "fixed", "name": "Money", "size": 8, "logicalType": "decimal", "precision": 12, "scale": 2}
SCHEMA: dict[str, Any] = {
    "type": "record", "name": "Trade", "namespace": "velo.test",
    "fields": [
        {"name": "symbol", "type": "string"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "fee", "type": ["null", MONEY], "default": None},
        {"name": "rebate", "type": ["null", "Money"], "default": None},  # a reference to the named type
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ts_us", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}], "default": None},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ],
}
TS = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def _write(schema: dict[str, Any], row: dict[str, Any]) -> bytes:
    """How another producer writes the value: fastavro with the logical types, Python objects in."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), row)
    return buf.getvalue()


def _read(schema: dict[str, Any], value: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(value), fastavro.parse_schema(schema), None)


def _producer_row() -> dict[str, Any]:
    return {"symbol": "AAPL", "price": Decimal("187.25"), "fee": Decimal("0.10"), "rebate": None,
            "ts": datetime.fromtimestamp(TS / 1000, UTC), "ts_us": datetime.fromtimestamp(TS / 1000, UTC),
            "day": date(2024, 2, 29), "id": ID, "tags": ["a", "b"]}


def test_the_plain_schema_drops_every_logical_type_but_decimal() -> None:
    plain = avro_plain_schema(fastavro.parse_schema(SCHEMA))
    text = repr(plain)
    assert "timestamp" not in text and "date" not in text and "uuid" not in text
    assert text.count("'decimal'") == 2 and "__fastavro" not in text
    fastavro.parse_schema(plain)  # still a valid schema with the same layout


def test_logical_fields_are_found_through_unions_and_named_references() -> None:
    found = avro_field_logical(SCHEMA)
    assert {n: t["logicalType"] for n, t in found.items()} == {
        "price": "decimal", "fee": "decimal", "rebate": "decimal", "ts": "timestamp-millis",
        "ts_us": "timestamp-micros", "day": "date", "id": "uuid"}


def test_the_decoder_gives_the_engines_values() -> None:
    decode = avro_decoder(SCHEMA)
    row = decode(_write(SCHEMA, _producer_row()))
    assert row == {"symbol": "AAPL", "price": Decimal("187.25"), "fee": Decimal("0.10"), "rebate": None,
                   "ts": TS, "ts_us": TS, "day": (date(2024, 2, 29) - date(1970, 1, 1)).days,
                   "id": str(ID), "tags": ["a", "b"]}
    assert isinstance(row["ts"], int) and isinstance(row["day"], int)


def test_the_decoder_refuses_an_empty_value_and_a_non_record() -> None:
    decode = avro_decoder(SCHEMA)
    with pytest.raises(ValueError, match="empty Avro record"):
        decode(None)
    with pytest.raises(Exception):  # noqa: B017 - fastavro's own error for truncated input
        decode(b"\x02")


def test_the_confluent_header_is_skipped_and_checked() -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]}
    plain = _write(schema, {"n": 42})
    decode = avro_decoder(schema, confluent=True)
    assert decode(b"\x00" + struct.pack(">I", 7) + plain) == {"n": 42}
    with pytest.raises(ValueError, match="Confluent wire format"):
        decode(b"\x01" + struct.pack(">I", 7) + plain)
    with pytest.raises(ValueError, match="Confluent wire format"):
        decode(b"\x00\x00")
    assert avro_decoder(schema)(plain) == {"n": 42}


def test_the_encoder_writes_the_engines_values_as_they_are() -> None:
    wide = {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 10}
    schema = {**SCHEMA, "fields": [*SCHEMA["fields"], {"name": "big", "type": ["null", wide], "default": None}]}
    encode = avro_encoder(schema)
    # TIMESTAMP as epoch ms, DATE as epoch days, DECIMAL as Decimal: no text, no float on the way.
    big = Decimal("12345678901234567890.1234567891")  # 30 digits: a double keeps ~15, the default context 28
    value = encode({"symbol": "AAPL", "price": Decimal("187.25"), "fee": None, "ts": TS, "ts_us": TS,
                    "day": 19782, "id": str(ID), "tags": [], "big": big})
    assert _read(schema, value) == {
        "symbol": "AAPL", "price": Decimal("187.25"), "fee": None, "rebate": None,
        "ts": datetime.fromtimestamp(TS / 1000, UTC), "ts_us": datetime.fromtimestamp(TS / 1000, UTC),
        "day": date(2024, 2, 29), "id": ID, "tags": [], "big": big}
    # A Decimal finer than the field's scale is rounded to it (half even), as a cast would.
    assert _read(schema, encode({"symbol": "A", "price": Decimal("1.005"), "ts": TS, "ts_us": TS, "day": 0,
                                 "id": str(ID), "tags": []}))["price"] == Decimal("1.00")


def test_the_encoder_also_takes_what_an_untyped_column_holds() -> None:
    encode = avro_encoder(SCHEMA)
    # A column without a SQL type may hold ISO text for a timestamp, a float for a decimal.
    value = encode({"symbol": "AAPL", "price": 187.25, "fee": 0.1, "ts": "2023-11-14T22:13:20.123Z",
                    "ts_us": TS, "day": 19782, "id": str(ID), "tags": ["a", "b"]})
    assert _read(SCHEMA, value) == {
        "symbol": "AAPL", "price": Decimal("187.25"), "fee": Decimal("0.10"), "rebate": None,
        "ts": datetime.fromtimestamp(TS / 1000, UTC), "ts_us": datetime.fromtimestamp(TS / 1000, UTC),
        "day": date(2024, 2, 29), "id": ID, "tags": ["a", "b"]}


def test_the_encoder_refuses_a_row_that_does_not_fit() -> None:
    encode = avro_encoder({"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]})
    with pytest.raises((TypeError, ValueError)):
        encode({"n": "many"})
    with pytest.raises((TypeError, ValueError)):
        encode({})  # a required field the row lacks


@pytest.mark.parametrize(("value", "ms"), [
    (TS, TS), (float(TS), TS), (str(TS), TS), ("2023-11-14T22:13:20.123Z", TS),
    ("2023-11-14T22:13:20.123", TS), ("2023-11-14T23:13:20.123+01:00", TS),
    (datetime.fromtimestamp(TS / 1000, UTC), TS), (Decimal(TS), TS),
])
def test_epoch_millis(value: Any, ms: int) -> None:
    assert epoch_millis(value) == ms


def test_epoch_days() -> None:
    assert epoch_days(3) == 3
    assert epoch_days("1970-01-11") == 10
    assert epoch_days(date(1969, 12, 31)) == -1
