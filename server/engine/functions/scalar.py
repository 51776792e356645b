"""Scalar built-ins of dialect.md §8 (math, string, time, conditional, JSON, collections, headers).

Unless a description says otherwise every function returns NULL when an argument is NULL.
TIMESTAMP values are milliseconds since the epoch (ints), as everywhere in the engine.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

import orjson

from .registry import register


def _str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# ---------------------------------------------------------------- math


@register("ABS", "ABS(x NUMBER) -> NUMBER", "Absolute value.", "ABS(-2) = 2", 1, 1, "ARG")
def abs_(x: Any) -> Any:
    return None if x is None else abs(x)


@register("ROUND", "ROUND(x NUMBER [, d INT]) -> NUMBER",
          "Rounds half away from zero to d places (of the value's exact binary expansion).",
          "ROUND(2.5) = 3.0", 1, 2, "ARG")
def round_(x: Any, d: Any = 0) -> Any:
    if x is None or d is None:
        return None
    if isinstance(x, Decimal):
        return x.quantize(Decimal(1).scaleb(-int(d)), rounding=ROUND_HALF_UP)
    if isinstance(x, int) and d >= 0:
        return x
    q = Decimal(float(x)).quantize(Decimal(1).scaleb(-int(d)), rounding=ROUND_HALF_UP)
    return int(q) if isinstance(x, int) else float(q)


@register("CEIL", "CEIL(x NUMBER) -> NUMBER", "Smallest integer not below x.", "CEIL(1.2) = 2",
          1, 1, "ARG")
def ceil(x: Any) -> Any:
    return None if x is None else (x if isinstance(x, int) else type(x)(math.ceil(x)))


@register("CEILING", "CEILING(x NUMBER) -> NUMBER", "Same as CEIL.", "CEILING(1.2) = 2", 1, 1, "ARG")
def ceiling(x: Any) -> Any:
    return ceil(x)


@register("FLOOR", "FLOOR(x NUMBER) -> NUMBER", "Largest integer not above x.", "FLOOR(1.8) = 1",
          1, 1, "ARG")
def floor(x: Any) -> Any:
    return None if x is None else (x if isinstance(x, int) else type(x)(math.floor(x)))


@register("SQRT", "SQRT(x NUMBER) -> DOUBLE", "Square root (NULL for negative x).", "SQRT(9) = 3.0",
          1, 1, "DOUBLE")
def sqrt(x: Any) -> Any:
    return None if x is None or x < 0 else math.sqrt(x)


@register("POWER", "POWER(x NUMBER, y NUMBER) -> DOUBLE", "x raised to the power y.",
          "POWER(2, 10) = 1024.0", 2, 2, "DOUBLE")
def power(x: Any, y: Any) -> Any:
    if x is None or y is None:
        return None
    try:
        return float(math.pow(x, y))
    except (ValueError, OverflowError):
        return None


@register("POW", "POW(x NUMBER, y NUMBER) -> DOUBLE", "Same as POWER.", "POW(2, 3) = 8.0",
          2, 2, "DOUBLE")
def pow_(x: Any, y: Any) -> Any:
    return power(x, y)


@register("MOD", "MOD(a NUMBER, b NUMBER) -> NUMBER", "Remainder of a / b (sign of a; NULL if b = 0).",
          "MOD(7, 3) = 1", 2, 2, "ARG")
def mod(a: Any, b: Any) -> Any:
    if a is None or b is None or b == 0:
        return None
    r = abs(a) % abs(b)
    return -r if a < 0 else r


@register("EXP", "EXP(x NUMBER) -> DOUBLE", "e raised to the power x.", "EXP(0) = 1.0", 1, 1, "DOUBLE")
def exp(x: Any) -> Any:
    if x is None:
        return None
    try:
        return math.exp(x)
    except OverflowError:
        return None


@register("LN", "LN(x NUMBER) -> DOUBLE", "Natural logarithm (NULL for x <= 0).", "LN(1) = 0.0",
          1, 1, "DOUBLE")
def ln(x: Any) -> Any:
    return None if x is None or x <= 0 else math.log(x)


@register("LOG10", "LOG10(x NUMBER) -> DOUBLE", "Base-10 logarithm (NULL for x <= 0).",
          "LOG10(100) = 2.0", 1, 1, "DOUBLE")
def log10(x: Any) -> Any:
    return None if x is None or x <= 0 else math.log10(x)


@register("SIGN", "SIGN(x NUMBER) -> INT", "-1, 0 or 1 by the sign of x.", "SIGN(-5) = -1",
          1, 1, "INT")
def sign(x: Any) -> Any:
    return None if x is None else (x > 0) - (x < 0)


@register("LEAST", "LEAST(x, y, ...) -> ANY", "The smallest non-NULL argument.", "LEAST(3, 1, 2) = 1",
          1, None, "ARG")
def least(*args: Any) -> Any:
    values = [a for a in args if a is not None]
    return min(values) if values else None


@register("GREATEST", "GREATEST(x, y, ...) -> ANY", "The largest non-NULL argument.",
          "GREATEST(3, 1, 2) = 3", 1, None, "ARG")
def greatest(*args: Any) -> Any:
    values = [a for a in args if a is not None]
    return max(values) if values else None


@register("RANDOM", "RANDOM() -> DOUBLE", "A uniform random number in [0, 1).", "RANDOM() < 1",
          0, 0, "DOUBLE")
def random_() -> float:
    return random.random()


# ---------------------------------------------------------------- string


@register("UPPER", "UPPER(s STRING) -> STRING", "Upper-cases a string.", "UPPER('abc') = 'ABC'",
          1, 1, "STRING")
def upper(s: Any) -> Any:
    return None if s is None else _str(s).upper()


@register("LOWER", "LOWER(s STRING) -> STRING", "Lower-cases a string.", "LOWER('ABC') = 'abc'",
          1, 1, "STRING")
def lower(s: Any) -> Any:
    return None if s is None else _str(s).lower()


@register("LENGTH", "LENGTH(s STRING) -> INT", "Number of characters.", "LENGTH('abc') = 3",
          1, 1, "INT")
def length(s: Any) -> Any:
    return None if s is None else len(_str(s))


@register("SUBSTRING", "SUBSTRING(s STRING, start INT [, len INT]) -> STRING",
          "The substring from 1-based position start, of at most len characters.",
          "SUBSTRING('hello', 2, 3) = 'ell'", 2, 3, "STRING")
def substring(s: Any, start: Any, n: Any = -1) -> Any:
    if s is None or start is None or n is None:
        return None
    s = _str(s)
    begin = start - 1 if start > 0 else max(len(s) + start, 0) if start < 0 else -1
    end = len(s) if n == -1 else begin + n
    if begin < 0:  # position 0 counts as the character before the first, as in SQL
        end, begin = (end if n == -1 else n - 1), 0
    return s[begin:max(end, begin)]


@register("REPLACE", "REPLACE(s STRING, from STRING, to STRING) -> STRING",
          "Replaces every occurrence of from by to.", "REPLACE('a-b', '-', '+') = 'a+b'",
          3, 3, "STRING")
def replace(s: Any, old: Any, new: Any) -> Any:
    if s is None or old is None or new is None:
        return None
    return _str(s).replace(_str(old), _str(new))


@register("TRIM", "TRIM(s STRING) -> STRING", "Removes leading and trailing spaces.",
          "TRIM('  a ') = 'a'", 1, 1, "STRING")
def trim(s: Any) -> Any:
    return None if s is None else _str(s).strip(" ")


@register("LTRIM", "LTRIM(s STRING) -> STRING", "Removes leading spaces.", "LTRIM('  a') = 'a'",
          1, 1, "STRING")
def ltrim(s: Any) -> Any:
    return None if s is None else _str(s).lstrip(" ")


@register("RTRIM", "RTRIM(s STRING) -> STRING", "Removes trailing spaces.", "RTRIM('a  ') = 'a'",
          1, 1, "STRING")
def rtrim(s: Any) -> Any:
    return None if s is None else _str(s).rstrip(" ")


@register("CONCAT", "CONCAT(s, ...) -> STRING", "Joins strings; NULL arguments are skipped.",
          "CONCAT('a', 'b') = 'ab'", 1, None, "STRING")
def concat(*args: Any) -> Any:
    return "".join(_str(a) for a in args if a is not None)


@register("SPLIT", "SPLIT(s STRING, sep STRING) -> ARRAY<STRING>", "Splits s at every sep.",
          "SPLIT('a,b', ',') = ARRAY['a', 'b']", 2, 2, "ARRAY<STRING>")
def split(s: Any, sep: Any) -> Any:
    if s is None or sep is None:
        return None
    return _str(s).split(_str(sep)) if sep != "" else list(_str(s))


@register("SPLIT_PART", "SPLIT_PART(s STRING, sep STRING, n INT) -> STRING",
          "The n-th (1-based) part of s split at sep; '' when there is none.",
          "SPLIT_PART('a,b,c', ',', 2) = 'b'", 3, 3, "STRING")
def split_part(s: Any, sep: Any, n: Any) -> Any:
    if s is None or sep is None or n is None:
        return None
    parts = _str(s).split(_str(sep)) if sep != "" else [_str(s)]
    if n < 0:
        n = len(parts) + n + 1
    return parts[n - 1] if 1 <= n <= len(parts) else ""


@register("LEFT", "LEFT(s STRING, n INT) -> STRING", "The first n characters.", "LEFT('abc', 2) = 'ab'",
          2, 2, "STRING")
def left(s: Any, n: Any) -> Any:
    if s is None or n is None:
        return None
    s = _str(s)
    return s[:n] if n >= 0 else s[:max(len(s) + n, 0)]


@register("RIGHT", "RIGHT(s STRING, n INT) -> STRING", "The last n characters.",
          "RIGHT('abc', 2) = 'bc'", 2, 2, "STRING")
def right(s: Any, n: Any) -> Any:
    if s is None or n is None:
        return None
    s = _str(s)
    return (s[-n:] if n > 0 else "") if n >= 0 else s[-n:]


@register("POSITION", "POSITION(sub STRING IN s STRING) -> INT",
          "1-based position of sub in s; 0 when absent.", "POSITION('b' IN 'abc') = 2", 2, 2, "INT")
def position(sub: Any, s: Any) -> Any:
    if sub is None or s is None:
        return None
    return _str(s).find(_str(sub)) + 1


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@register("REGEXP_MATCH", "REGEXP_MATCH(s STRING, pattern STRING) -> BOOLEAN",
          "Whether the regular expression matches somewhere in s.",
          "REGEXP_MATCH('abc', 'b.') = TRUE", 2, 2, "BOOLEAN")
def regexp_match(s: Any, pattern: Any) -> Any:
    if s is None or pattern is None:
        return None
    return _regex(_str(pattern)).search(_str(s)) is not None


@register("REGEXP_EXTRACT", "REGEXP_EXTRACT(s STRING, pattern STRING [, group INT]) -> STRING",
          "The first match of pattern (or its group); NULL when it does not match.",
          "REGEXP_EXTRACT('a12', '[0-9]+') = '12'", 2, 3, "STRING")
def regexp_extract(s: Any, pattern: Any, group: Any = 0) -> Any:
    if s is None or pattern is None or group is None:
        return None
    m = _regex(_str(pattern)).search(_str(s))
    return None if m is None else m.group(group)


@register("REGEXP_REPLACE", "REGEXP_REPLACE(s STRING, pattern STRING, replacement STRING) -> STRING",
          "Replaces every match of pattern by replacement.",
          "REGEXP_REPLACE('a1b2', '[0-9]', '') = 'ab'", 3, 3, "STRING")
def regexp_replace(s: Any, pattern: Any, replacement: Any) -> Any:
    if s is None or pattern is None or replacement is None:
        return None
    return _regex(_str(pattern)).sub(_str(replacement), _str(s))


@register("LPAD", "LPAD(s STRING, n INT, fill STRING) -> STRING",
          "s left-padded with fill (or cut) to n characters.", "LPAD('7', 3, '0') = '007'",
          3, 3, "STRING")
def lpad(s: Any, n: Any, fill: Any) -> Any:
    if s is None or n is None or fill is None:
        return None
    s, fill = _str(s), _str(fill)
    if len(s) >= n or not fill:
        return s[:max(n, 0)]
    pad = (fill * n)[: n - len(s)]
    return pad + s


@register("RPAD", "RPAD(s STRING, n INT, fill STRING) -> STRING",
          "s right-padded with fill (or cut) to n characters.", "RPAD('7', 3, '0') = '700'",
          3, 3, "STRING")
def rpad(s: Any, n: Any, fill: Any) -> Any:
    if s is None or n is None or fill is None:
        return None
    s, fill = _str(s), _str(fill)
    if len(s) >= n or not fill:
        return s[:max(n, 0)]
    return s + (fill * n)[: n - len(s)]


# ---------------------------------------------------------------- time


def _now() -> int:
    return int(time.time() * 1000)


@register("NOW", "NOW() -> TIMESTAMP", "The current time (ms since the epoch).", "NOW() > 0",
          0, 0, "TIMESTAMP")
def now() -> int:
    return _now()


@register("CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP -> TIMESTAMP", "Same as NOW().",
          "CURRENT_TIMESTAMP > 0", 0, 0, "TIMESTAMP")
def current_timestamp() -> int:
    return _now()


@register("TIMESTAMP", "TIMESTAMP() -> TIMESTAMP", "Same as NOW() (Velostream).", "TIMESTAMP() > 0",
          0, 0, "TIMESTAMP")
def timestamp() -> int:
    return _now()


_STRFTIME = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")]


def _pattern(p: str) -> str:
    if "%" in p:
        return p
    for java, c in _STRFTIME:  # Java-style patterns (ksqlDB) become strftime ones
        p = p.replace(java, c)
    return p


@register("DATE_FORMAT", "DATE_FORMAT(ts TIMESTAMP, pattern STRING) -> STRING",
          "Formats a timestamp (UTC) with a strftime or yyyy-MM-dd HH:mm:ss pattern.",
          "DATE_FORMAT(0, '%Y') = '1970'", 2, 2, "STRING")
def date_format(ts: Any, pattern: Any) -> Any:
    if ts is None or pattern is None:
        return None
    return datetime.fromtimestamp(int(ts) / 1000, UTC).strftime(_pattern(_str(pattern)))


@register("FROM_UNIXTIME", "FROM_UNIXTIME(s NUMBER) -> TIMESTAMP",
          "The timestamp s seconds after the epoch.", "FROM_UNIXTIME(1) = 1000", 1, 1, "TIMESTAMP")
def from_unixtime(s: Any) -> Any:
    return None if s is None else int(s * 1000)


@register("UNIX_TIMESTAMP", "UNIX_TIMESTAMP([ts TIMESTAMP]) -> BIGINT",
          "Seconds since the epoch of ts (default: now).", "UNIX_TIMESTAMP(5000) = 5", 0, 1, "BIGINT")
def unix_timestamp(ts: Any = ...) -> Any:
    if ts is ...:
        return _now() // 1000
    return None if ts is None else int(ts) // 1000


_UNIT_MS = {"MILLISECOND": 1, "SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000,
            "WEEK": 7 * 86_400_000}


@register("DATEDIFF", "DATEDIFF(unit STRING, a TIMESTAMP, b TIMESTAMP) -> BIGINT",
          "Whole units from a to b (unit: MILLISECOND … DAY, WEEK).",
          "DATEDIFF('SECOND', 0, 5000) = 5", 3, 3, "BIGINT")
def datediff(unit: Any, a: Any, b: Any) -> Any:
    if unit is None or a is None or b is None:
        return None
    u = _str(unit).upper().rstrip("S")
    if u not in _UNIT_MS:
        raise ValueError(f"unknown DATEDIFF unit {unit!r}")
    return int((b - a) / _UNIT_MS[u])


@register("TUMBLE_START", "TUMBLE_START(ts) -> BIGINT", "Start of the current window (ms).",
          "TUMBLE_START(ts) → 0", 0, 1, "BIGINT", kind="window")
def tumble_start(*_: Any) -> Any:
    raise ValueError("TUMBLE_START is only valid in a windowed query")


@register("TUMBLE_END", "TUMBLE_END(ts) -> BIGINT", "End of the current window (ms).",
          "TUMBLE_END(ts) → 10000", 0, 1, "BIGINT", kind="window")
def tumble_end(*_: Any) -> Any:
    raise ValueError("TUMBLE_END is only valid in a windowed query")


register("WINDOWSTART", "WINDOWSTART -> BIGINT", "Start of the current window (ms), as in ksqlDB.",
         "WINDOWSTART → 0", 0, 0, "BIGINT", kind="window")(tumble_start)
register("WINDOWEND", "WINDOWEND -> BIGINT", "End of the current window (ms), as in ksqlDB.",
         "WINDOWEND → 10000", 0, 0, "BIGINT", kind="window")(tumble_end)


# ---------------------------------------------------------------- conditional


@register("COALESCE", "COALESCE(x, y, ...) -> ANY", "The first argument that is not NULL.",
          "COALESCE(NULL, 2) = 2", 1, None, "ARG")
def coalesce(*args: Any) -> Any:
    for a in args:
        if a is not None:
            return a
    return None


@register("NULLIF", "NULLIF(a, b) -> ANY", "NULL when a = b, else a.", "NULLIF(1, 1) IS NULL",
          2, 2, "ARG")
def nullif(a: Any, b: Any) -> Any:
    return None if a is not None and b is not None and a == b else a


@register("IF", "IF(cond BOOLEAN, a, b) -> ANY", "a when cond is TRUE, else b.", "IF(1 < 2, 'y', 'n') = 'y'",
          3, 3, "ANY")
def if_(cond: Any, a: Any, b: Any) -> Any:
    return a if cond is True else b


# ---------------------------------------------------------------- JSON and collections


def _json_path(doc: Any, path: str) -> Any:
    if isinstance(doc, str | bytes):
        try:
            doc = orjson.loads(doc)
        except orjson.JSONDecodeError:
            return None
    p = path.strip()
    if p.startswith("$"):
        p = p[1:]
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]|\['([^']*)'\]", p):
        name, index, quoted = part
        if index:
            if not isinstance(doc, list) or int(index) >= len(doc):
                return None
            doc = doc[int(index)]
        else:
            if not isinstance(doc, dict):
                return None
            doc = doc.get(name or quoted)
        if doc is None:
            return None
    return doc


@register("JSON_EXTRACT", "JSON_EXTRACT(s STRING, path STRING) -> ANY",
          "The value at a JSONPath ($.a.b[0]) of a JSON document or struct.",
          "JSON_EXTRACT('{\"a\": {\"b\": 1}}', '$.a.b') = 1", 2, 2, "ANY")
def json_extract(s: Any, path: Any) -> Any:
    if s is None or path is None:
        return None
    return _json_path(s, _str(path))


@register("JSON_VALUE", "JSON_VALUE(s STRING, path STRING) -> STRING",
          "The scalar at a JSONPath, as a string (NULL for objects and arrays).",
          "JSON_VALUE('{\"a\": 1}', '$.a') = '1'", 2, 2, "STRING")
def json_value(s: Any, path: Any) -> Any:
    v = json_extract(s, path)
    return None if v is None or isinstance(v, dict | list) else _str(v)


@register("ARRAY_LENGTH", "ARRAY_LENGTH(a ARRAY) -> INT", "Number of elements.",
          "ARRAY_LENGTH(ARRAY[1, 2]) = 2", 1, 1, "INT")
def array_length(a: Any) -> Any:
    return None if a is None else len(a)


@register("ARRAY_CONTAINS", "ARRAY_CONTAINS(a ARRAY, x) -> BOOLEAN", "Whether a holds x.",
          "ARRAY_CONTAINS(ARRAY[1, 2], 2) = TRUE", 2, 2, "BOOLEAN")
def array_contains(a: Any, x: Any) -> Any:
    if a is None or x is None:
        return None
    return x in a


@register("MAP_KEYS", "MAP_KEYS(m MAP) -> ARRAY<STRING>", "The keys of a map.",
          "MAP_KEYS(m) = ARRAY['a', 'b']", 1, 1, "ARRAY<STRING>")
def map_keys(m: Any) -> Any:
    return None if m is None else list(m)


@register("MAP_VALUES", "MAP_VALUES(m MAP) -> ARRAY", "The values of a map.", "MAP_VALUES(m) = ARRAY[1, 2]",
          1, 1, "ARRAY")
def map_values(m: Any) -> Any:
    return None if m is None else list(m.values())


# ---------------------------------------------------------------- Kafka headers
# The compiler passes the source record as the first argument (it is not written in SQL).


def _headers(record: Any) -> Sequence[tuple[str, bytes | None]]:
    return getattr(record, "headers", None) or ()


@register("HEADER", "HEADER(name STRING) -> STRING", "The value of a Kafka header (last one wins).",
          "HEADER('trace-id') = 'abc'", 1, 1, "STRING")
def header(record: Any, name: Any) -> Any:
    if name is None:
        return None
    found = None
    for k, v in _headers(record):
        if k == name:
            found = v
    if isinstance(found, bytes):
        return found.decode("utf-8", "replace")
    return found


@register("HAS_HEADER", "HAS_HEADER(name STRING) -> BOOLEAN", "Whether the record has that header.",
          "HAS_HEADER('trace-id') = TRUE", 1, 1, "BOOLEAN")
def has_header(record: Any, name: Any) -> Any:
    if name is None:
        return None
    return any(k == name for k, _ in _headers(record))


@register("HEADER_KEYS", "HEADER_KEYS() -> ARRAY<STRING>", "The names of the record's headers.",
          "HEADER_KEYS() = ARRAY['trace-id']", 0, 0, "ARRAY<STRING>")
def header_keys(record: Any) -> Any:
    return [k for k, _ in _headers(record)]


# ---------------------------------------------------------------- syntax forms
# Listed so SHOW FUNCTIONS and completion know them; the parser turns them into their own nodes.


def _syntax(*_: Any) -> Any:
    raise ValueError("a syntax form, not a function call")


register("CAST", "CAST(x AS type) | x::type", "Converts x to a type (NULL stays NULL).",
         "CAST('42' AS INT) = 42", 1, 1, "ANY", kind="syntax")(_syntax)
register("EXTRACT", "EXTRACT(unit FROM ts TIMESTAMP) -> BIGINT",
         "A field of a timestamp: YEAR, MONTH, DAY, HOUR, MINUTE, SECOND, MILLISECOND, DOW, DOY, EPOCH.",
         "EXTRACT(YEAR FROM 0) = 1970", 1, 1, "BIGINT", kind="syntax")(_syntax)
register("ARRAY", "ARRAY[x, ...] -> ARRAY", "An array of the values.", "ARRAY[1, 2][2] = 2", 0, None,
         "ARRAY", kind="syntax")(_syntax)
