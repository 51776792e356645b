"""SQL types at run time: type names, and the cast functions generated code calls.

Values live as plain Python objects: BOOLEAN → bool, INT/BIGINT → int, DOUBLE → float,
DECIMAL → ``Decimal``, STRING → str, TIMESTAMP → int milliseconds since the epoch, DATE → int days
since the epoch, ARRAY → list, MAP/STRUCT → dict. A cast that cannot be done raises ``CastError``
(a record error, handled by the job's failure strategy), except that NULL casts to NULL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from velo.grammar import ast

INT_RANGES = {"INT": (-(2**31), 2**31 - 1), "BIGINT": (-(2**63), 2**63 - 1)}
NUMERIC = {"INT", "BIGINT", "DOUBLE", "DECIMAL"}


class CastError(ValueError):
    """A value that cannot be converted to the requested type."""


def type_name(t: ast.DataType) -> str:
    """The canonical SQL spelling of a type (``DECIMAL(10, 2)``, ``ARRAY<INT>``...)."""
    if isinstance(t, ast.SimpleType):
        return t.name
    if isinstance(t, ast.DecimalType):
        return f"DECIMAL({t.precision}, {t.scale})"
    if isinstance(t, ast.ArrayType):
        return f"ARRAY<{type_name(t.element)}>"
    if isinstance(t, ast.MapType):
        return f"MAP<{type_name(t.key)}, {type_name(t.value)}>"
    return "STRUCT<" + ", ".join(f"{f.name} {type_name(f.type)}" for f in t.fields) + ">"


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float | Decimal):
        return v != 0
    s = str(v).strip().lower()
    if s in ("true", "t", "1", "yes", "y"):
        return True
    if s in ("false", "f", "0", "no", "n"):
        return False
    raise CastError(f"cannot cast {v!r} to BOOLEAN")


def _to_int(name: str) -> Callable[[Any], int]:
    low, high = INT_RANGES[name]

    def cast(v: Any) -> int:
        if isinstance(v, bool):
            out = int(v)
        elif isinstance(v, int):
            out = v
        elif isinstance(v, float | Decimal):
            if isinstance(v, float) and not math.isfinite(v):
                raise CastError(f"cannot cast {v!r} to {name}")
            # A fraction rounds to the nearest integer, as in DuckDB and PostgreSQL (ties: DOUBLE
            # to even, like C's nearbyint; DECIMAL away from zero).
            out = round(v) if isinstance(v, float) else int(v.to_integral_value(ROUND_HALF_UP))
        else:
            try:
                out = int(str(v).strip())
            except ValueError:
                try:
                    out = int(Decimal(str(v).strip()))
                except (InvalidOperation, ValueError):
                    raise CastError(f"cannot cast {v!r} to {name}") from None
        if not low <= out <= high:
            raise CastError(f"{out} is out of range for {name}")
        return out

    return cast


def _to_double(v: Any) -> float:
    if isinstance(v, bool):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        raise CastError(f"cannot cast {v!r} to DOUBLE") from None


def _to_decimal(precision: int, scale: int) -> Callable[[Any], Decimal]:
    quantum = Decimal(1).scaleb(-scale)

    def cast(v: Any) -> Decimal:
        try:
            d = Decimal(str(v).strip()) if not isinstance(v, Decimal) else v
            out = d.quantize(quantum)
        except (InvalidOperation, ValueError):
            raise CastError(f"cannot cast {v!r} to DECIMAL({precision}, {scale})") from None
        if len(out.as_tuple().digits) > precision and out != 0:
            raise CastError(f"{v!r} does not fit DECIMAL({precision}, {scale})")
        return out

    return cast


def _to_string(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return repr(v)
    return str(v)


def parse_timestamp(v: Any) -> int:
    """Milliseconds since the epoch from a number (ms) or an ISO-8601 string (UTC if no zone)."""
    if isinstance(v, bool):
        raise CastError(f"cannot cast {v!r} to TIMESTAMP")
    if isinstance(v, int):
        return v
    if isinstance(v, float | Decimal):
        return int(v)
    s = str(v).strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise CastError(f"cannot cast {v!r} to TIMESTAMP") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


_EPOCH_DATE = date(1970, 1, 1)


def _to_date(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    s = str(v).strip()
    try:
        return (date.fromisoformat(s[:10]) - _EPOCH_DATE).days
    except ValueError:
        raise CastError(f"cannot cast {v!r} to DATE") from None


def format_timestamp(ms: int) -> str:
    """ISO-8601 (UTC, millisecond precision) for JSON output of TIMESTAMP values."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def format_date(days: int) -> str:
    """ISO-8601 (``YYYY-MM-DD``) of a DATE value (days since 1970-01-01)."""
    return (_EPOCH_DATE + timedelta(days=days)).isoformat()


_DAY_MS = 86_400_000


def _from_time(source: str, target: str) -> Callable[[Any], Any] | None:
    """Casts between the engine's time values, which are plain ints: TIMESTAMP ms, DATE days.

    Typed by the operand's (inferred) type, since an int alone does not say which it is.
    """
    if source == "TIMESTAMP":
        return {"DATE": lambda v: parse_timestamp(v) // _DAY_MS,
                "STRING": lambda v: format_timestamp(parse_timestamp(v))}.get(target)
    if source == "DATE":
        return {"TIMESTAMP": lambda v: _to_date(v) * _DAY_MS,
                "STRING": lambda v: format_date(_to_date(v))}.get(target)
    return None


def caster(t: ast.DataType, source: str = "ANY") -> Callable[[Any], Any]:
    """A function converting a non-NULL value to ``t`` (raises CastError when it cannot).

    ``source`` is the operand's SQL type when known: TIMESTAMP and DATE values are ints, so a cast
    from them to DATE, TIMESTAMP or STRING depends on it.
    """
    if isinstance(t, ast.SimpleType):
        timed = _from_time(source, t.name)
        if timed is not None:
            return timed
    if isinstance(t, ast.DecimalType):
        return _to_decimal(t.precision, t.scale)
    if isinstance(t, ast.ArrayType):
        element = caster(t.element)

        def array(v: Any) -> list[Any]:
            if not isinstance(v, list):
                raise CastError(f"cannot cast {v!r} to {type_name(t)}")
            return [None if x is None else element(x) for x in v]

        return array
    if isinstance(t, ast.MapType):
        value = caster(t.value)

        def mapping(v: Any) -> dict[str, Any]:
            if not isinstance(v, dict):
                raise CastError(f"cannot cast {v!r} to {type_name(t)}")
            return {str(k): None if x is None else value(x) for k, x in v.items()}

        return mapping
    if isinstance(t, ast.StructType):
        fields = [(f.name, caster(f.type)) for f in t.fields]

        def struct(v: Any) -> dict[str, Any]:
            if not isinstance(v, dict):
                raise CastError(f"cannot cast {v!r} to {type_name(t)}")
            out = {}
            for name, cast in fields:
                x = v.get(name)
                out[name] = None if x is None else cast(x)
            return out

        return struct
    name = t.name
    if name in INT_RANGES:
        return _to_int(name)
    simple: dict[str, Callable[[Any], Any]] = {
        "BOOLEAN": _to_bool, "DOUBLE": _to_double, "STRING": _to_string,
        "TIMESTAMP": parse_timestamp, "DATE": _to_date,
    }
    if name not in simple:
        raise CastError(f"unknown type {name}")
    return simple[name]


def parse_type(text: str) -> ast.DataType:
    """A type from its canonical name (catalog persistence); nested types via the grammar."""
    text = text.strip().upper()
    if text in ("BOOLEAN", "INT", "BIGINT", "DOUBLE", "STRING", "TIMESTAMP", "DATE"):
        return ast.SimpleType(text)
    from velo.grammar.parser import parse_statement

    stmt = parse_statement(f"CREATE STREAM x (c {text}) WITH (KAFKA_TOPIC='x')")
    assert isinstance(stmt, ast.CreateSource)
    return stmt.columns[0].type


def nullable_cast(cast: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``cast`` with NULL passing through."""

    def run(v: Any) -> Any:
        return None if v is None else cast(v)

    return run
