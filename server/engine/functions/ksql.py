"""ksqlDB's scalar functions (its documented names, argument order and NULL handling).

People bring SQL written for ksqlDB, so its function library is accepted as ksqlDB documents it:
1-based positions, ``NULL`` in gives ``NULL`` out unless a description says otherwise, Java time
patterns (timefmt.py). TIMESTAMP values are milliseconds since the epoch, as everywhere in the
engine, so PARSE_TIMESTAMP and STRINGTOTIMESTAMP both give milliseconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from . import scalar, timefmt
from .registry import register
from .scalar import _json_path, _str

# ---------------------------------------------------------------- strings


# ksqlDB's names for built-ins Velo already has: the same implementations under a second name.
register("UCASE", "UCASE(s STRING) -> STRING", "Upper-cases a string (= UPPER).", "UCASE('abc') = 'ABC'",
         1, 1, "STRING")(scalar.upper)
register("LCASE", "LCASE(s STRING) -> STRING", "Lower-cases a string (= LOWER).", "LCASE('ABC') = 'abc'",
         1, 1, "STRING")(scalar.lower)
register("LEN", "LEN(s STRING) -> INT", "Number of characters (= LENGTH).", "LEN('abc') = 3", 1, 1, "INT")(
    scalar.length)


@register("INITCAP", "INITCAP(s STRING) -> STRING",
          "Each word (run of non-space characters) with its first letter upper-cased, the rest lower.",
          "INITCAP('hello wORLD') = 'Hello World'", 1, 1, "STRING")
def initcap(s: Any) -> Any:
    if s is None:
        return None
    return " ".join(w[:1].upper() + w[1:].lower() for w in _str(s).split(" "))


@register("INSTR", "INSTR(s STRING, sub STRING [, position INT [, occurrence INT]]) -> INT",
          "1-based position of the occurrence-th sub in s, searching from position (negative: "
          "backwards from the end); 0 when absent.",
          "INSTR('CORPORATE FLOOR', 'OR', -3, 2) = 2", 2, 4, "INT")
def instr(s: Any, sub: Any, position: Any = 1, occurrence: Any = 1) -> Any:
    if s is None or sub is None or position is None or occurrence is None:
        return None
    s, sub = _str(s), _str(sub)
    if position == 0 or occurrence < 1:
        return 0
    if position > 0:
        at = position - 1
        for _ in range(occurrence):
            at = s.find(sub, at)
            if at < 0:
                return 0
            found, at = at, at + 1
        return found + 1
    end = len(s) + position + len(sub)  # the first match may start at len + position (0-based)
    for _ in range(occurrence):
        if end < len(sub):
            return 0
        found = s.rfind(sub, 0, end)
        if found < 0:
            return 0
        end = found - 1 + len(sub)
    return found + 1


_MASK_DEFAULTS = ("X", "x", "n", "-")


def _mask(s: str, chars: tuple[Any, ...]) -> str:
    # A NULL replacement keeps that class of characters as it is (ksqlDB).
    upper, lower, digit, other = (chars + _MASK_DEFAULTS[len(chars):])[:4]
    out = []
    for c in s:
        r = upper if c.isupper() else lower if c.islower() else digit if c.isdigit() else other
        out.append(c if r is None else _str(r)[:1])
    return "".join(out)


_MASK_ARGS = "[, upper STRING [, lower STRING [, digit STRING [, other STRING]]]]"


@register("MASK", f"MASK(s STRING {_MASK_ARGS}) -> STRING",
          "s with upper-case letters as X, lower-case as x, digits as n, others as - (or the given "
          "characters; NULL keeps that class).",
          "MASK('AbCd#$123xy Z') = 'XxXx--nnnxx-X'", 1, 5, "STRING")
def mask(s: Any, *chars: Any) -> Any:
    return None if s is None else _mask(_str(s), chars)


def _mask_part(s: Any, n: Any, chars: tuple[Any, ...], head: bool, keep: bool) -> Any:
    if s is None or n is None:
        return None
    s = _str(s)
    if n < 0:
        raise ValueError("the number of characters to mask or keep must not be negative")
    cut = min(n, len(s)) if head else max(len(s) - n, 0)
    a, b = s[:cut], s[cut:]
    if head != keep:  # mask the first part: MASK_LEFT, MASK_KEEP_RIGHT
        return _mask(a, chars) + b
    return a + _mask(b, chars)


@register("MASK_LEFT", f"MASK_LEFT(s STRING, n INT {_MASK_ARGS}) -> STRING",
          "s with its first n characters masked as by MASK.",
          "MASK_LEFT('AbCd#$123xy Z', 5) = 'XxXx-$123xy Z'", 2, 6, "STRING")
def mask_left(s: Any, n: Any, *chars: Any) -> Any:
    return _mask_part(s, n, chars, head=True, keep=False)


@register("MASK_RIGHT", f"MASK_RIGHT(s STRING, n INT {_MASK_ARGS}) -> STRING",
          "s with its last n characters masked as by MASK.",
          "MASK_RIGHT('AbCd#$123xy Z', 5) = 'AbCd#$12nxx-X'", 2, 6, "STRING")
def mask_right(s: Any, n: Any, *chars: Any) -> Any:
    return _mask_part(s, n, chars, head=False, keep=False)


@register("MASK_KEEP_LEFT", f"MASK_KEEP_LEFT(s STRING, n INT {_MASK_ARGS}) -> STRING",
          "s masked as by MASK except its first n characters.",
          "MASK_KEEP_LEFT('AbCd#$123xy Z', 5) = 'AbCd#-nnnxx-X'", 2, 6, "STRING")
def mask_keep_left(s: Any, n: Any, *chars: Any) -> Any:
    return _mask_part(s, n, chars, head=True, keep=True)


@register("MASK_KEEP_RIGHT", f"MASK_KEEP_RIGHT(s STRING, n INT {_MASK_ARGS}) -> STRING",
          "s masked as by MASK except its last n characters.",
          "MASK_KEEP_RIGHT('AbCd#$123xy Z', 5) = 'XxXx--nn3xy Z'", 2, 6, "STRING")
def mask_keep_right(s: Any, n: Any, *chars: Any) -> Any:
    return _mask_part(s, n, chars, head=False, keep=True)


@register("SPLIT_TO_MAP", "SPLIT_TO_MAP(s STRING, entry_sep STRING, kv_sep STRING) -> MAP<STRING, STRING>",
          "A map from 'k1=v1;k2=v2'-style text (entries without kv_sep are dropped; a later key wins).",
          "SPLIT_TO_MAP('a=1;b=2', ';', '=')['b'] = '2'", 3, 3, "MAP<STRING, STRING>")
def split_to_map(s: Any, entry_sep: Any, kv_sep: Any) -> Any:
    if s is None or entry_sep is None or kv_sep is None:
        return None
    if entry_sep == "" or kv_sep == "":
        raise ValueError("SPLIT_TO_MAP separators must not be empty")
    out: dict[str, str] = {}
    for entry in _str(s).split(_str(entry_sep)):
        k, sep, v = entry.partition(_str(kv_sep))
        if sep:
            out[k] = v
    return out


# ---------------------------------------------------------------- arrays
# Set-like results (DISTINCT, EXCEPT, INTERSECT, UNION) keep the order of first appearance, as ksqlDB.


def _key(v: Any) -> Any:
    # Arrays and maps are not hashable: compare them by their JSON text.
    return ("\0json", orjson.dumps(v, option=orjson.OPT_SORT_KEYS)) if isinstance(v, list | dict) else v


def _distinct(values: Any) -> list[Any]:
    seen: dict[Any, Any] = {}
    for v in values:
        seen.setdefault(_key(v), v)
    return list(seen.values())


@register("ARRAY_DISTINCT", "ARRAY_DISTINCT(a ARRAY) -> ARRAY",
          "The distinct elements of a, in order of first appearance (NULL counts once).",
          "ARRAY_DISTINCT(ARRAY[1, 1, 2, 1]) = ARRAY[1, 2]", 1, 1, "ARG")
def array_distinct(a: Any) -> Any:
    return None if a is None else _distinct(a)


@register("ARRAY_EXCEPT", "ARRAY_EXCEPT(a ARRAY, b ARRAY) -> ARRAY",
          "The distinct elements of a that are not in b.",
          "ARRAY_EXCEPT(ARRAY[1, 2, 3, 2], ARRAY[2]) = ARRAY[1, 3]", 2, 2, "ARG")
def array_except(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    drop = {_key(v) for v in b}
    return [v for v in _distinct(a) if _key(v) not in drop]


@register("ARRAY_INTERSECT", "ARRAY_INTERSECT(a ARRAY, b ARRAY) -> ARRAY",
          "The distinct elements of a that are also in b.",
          "ARRAY_INTERSECT(ARRAY[1, 2, 3, 2], ARRAY[2, 3, 4]) = ARRAY[2, 3]", 2, 2, "ARG")
def array_intersect(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    keep = {_key(v) for v in b}
    return [v for v in _distinct(a) if _key(v) in keep]


@register("ARRAY_UNION", "ARRAY_UNION(a ARRAY, b ARRAY) -> ARRAY",
          "The distinct elements of a then b.",
          "ARRAY_UNION(ARRAY[1, 2], ARRAY[2, 3]) = ARRAY[1, 2, 3]", 2, 2, "ARG")
def array_union(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return _distinct([*a, *b])


@register("ARRAY_CONCAT", "ARRAY_CONCAT(a ARRAY, b ARRAY) -> ARRAY",
          "The elements of a then b (duplicates kept); a NULL array counts as empty, NULL when both are.",
          "ARRAY_CONCAT(ARRAY[1, 2], ARRAY[2, 3]) = ARRAY[1, 2, 2, 3]", 2, 2, "ARG")
def array_concat(a: Any, b: Any) -> Any:
    if a is None and b is None:
        return None
    return [*(a or ()), *(b or ())]


@register("ARRAY_REMOVE", "ARRAY_REMOVE(a ARRAY, x) -> ARRAY", "a without the elements equal to x.",
          "ARRAY_REMOVE(ARRAY[1, 2, 1], 1) = ARRAY[2]", 2, 2, "ARG")
def array_remove(a: Any, x: Any) -> Any:
    if a is None:
        return None
    k = _key(x)
    return [v for v in a if _key(v) != k]


def _sortable(a: Any) -> list[Any]:
    return [v for v in a if v is not None]


@register("ARRAY_MAX", "ARRAY_MAX(a ARRAY) -> ANY", "The largest non-NULL element (NULL when none).",
          "ARRAY_MAX(ARRAY[1, 3, 2]) = 3", 1, 1, "ANY")
def array_max(a: Any) -> Any:
    values = None if a is None else _sortable(a)
    return max(values) if values else None


@register("ARRAY_MIN", "ARRAY_MIN(a ARRAY) -> ANY", "The smallest non-NULL element (NULL when none).",
          "ARRAY_MIN(ARRAY[1, 3, 2]) = 1", 1, 1, "ANY")
def array_min(a: Any) -> Any:
    values = None if a is None else _sortable(a)
    return min(values) if values else None


@register("ARRAY_SORT", "ARRAY_SORT(a ARRAY [, direction STRING]) -> ARRAY",
          "a sorted 'ASC' (default) or 'DESC', NULL elements last.",
          "ARRAY_SORT(ARRAY[2, 3, 1], 'DESC') = ARRAY[3, 2, 1]", 1, 2, "ARG")
def array_sort(a: Any, direction: Any = "ASC") -> Any:
    if a is None or direction is None:
        return None
    d = _str(direction).upper()
    if d not in ("ASC", "DESC"):
        raise ValueError(f"ARRAY_SORT direction must be 'ASC' or 'DESC', not {direction!r}")
    values = sorted(_sortable(a), reverse=d == "DESC")
    return values + [None] * (len(a) - len(values))


def _text(v: Any) -> str:
    # How ksqlDB writes an element into a string: NULL as null, booleans as true/false.
    return "null" if v is None else _str(v)


@register("ARRAY_JOIN", "ARRAY_JOIN(a ARRAY [, sep STRING]) -> STRING",
          "The elements as text joined by sep (default ','); a NULL element is written null.",
          "ARRAY_JOIN(ARRAY[1, 2, 3], '-') = '1-2-3'", 1, 2, "STRING")
def array_join(a: Any, sep: Any = ",") -> Any:
    if a is None:
        return None
    return ("" if sep is None else _str(sep)).join(_text(v) for v in a)


@register("SLICE", "SLICE(a ARRAY, from INT, to INT) -> ARRAY",
          "The elements from position from to position to (1-based, both included).",
          "SLICE(ARRAY[1, 2, 3, 4], 2, 3) = ARRAY[2, 3]", 3, 3, "ARG")
def slice_(a: Any, start: Any, end: Any) -> Any:
    if a is None or start is None or end is None:
        return None
    return list(a[max(start, 1) - 1:max(end, 0)])


@register("GENERATE_SERIES", "GENERATE_SERIES(start INT, end INT [, step INT]) -> ARRAY<INT>",
          "The integers from start to end (both included) by step (default 1 or -1).",
          "GENERATE_SERIES(1, 5, 2) = ARRAY[1, 3, 5]", 2, 3, "ARRAY<BIGINT>")
def generate_series(start: Any, end: Any, step: Any = None) -> Any:
    if start is None or end is None:
        return None
    if step is None:
        step = 1 if end >= start else -1
    if step == 0 or (end - start) * step < 0:
        raise ValueError("GENERATE_SERIES step must move from start towards end")
    return list(range(start, end + (1 if step > 0 else -1), step))


# ---------------------------------------------------------------- maps


@register("MAP_UNION", "MAP_UNION(m1 MAP, m2 MAP) -> MAP",
          "The entries of both maps, m2's value winning for a key in both; a NULL map counts as empty, "
          "NULL when both are.", "MAP_UNION(m, m)['b'] = 2", 2, 2, "ARG")
def map_union(m1: Any, m2: Any) -> Any:
    if m1 is None and m2 is None:
        return None
    return {**(m1 or {}), **(m2 or {})}


@register("AS_MAP", "AS_MAP(keys ARRAY<STRING>, values ARRAY) -> MAP",
          "A map pairing keys with values by position (extra keys or values are dropped).",
          "AS_MAP(ARRAY['a', 'b'], ARRAY[1, 2])['b'] = 2", 2, 2, "MAP")
def as_map(keys: Any, values: Any) -> Any:
    if keys is None or values is None:
        return None
    return {_str(k): v for k, v in zip(keys, values, strict=False) if k is not None}


# ---------------------------------------------------------------- JSON


def _parse_json(s: Any) -> Any:
    """The value of a JSON text, or ... when it is not JSON (so NULL and 'null' stay apart)."""
    if not isinstance(s, str | bytes):
        return s  # already a value (a struct, array or map of the record)
    try:
        return orjson.loads(s)
    except orjson.JSONDecodeError:
        return ...


def _json_text(v: Any) -> str:
    return orjson.dumps(v).decode()


@register("EXTRACTJSONFIELD", "EXTRACTJSONFIELD(json STRING, path STRING) -> STRING",
          "The value at a JSONPath ($.a.b[0]) as text: a string as is, other values as JSON.",
          "EXTRACTJSONFIELD('{\"a\": {\"b\": [1, 2]}}', '$.a.b[1]') = '2'", 2, 2, "STRING")
def extractjsonfield(s: Any, path: Any) -> Any:
    if s is None or path is None:
        return None
    v = _json_path(s, _str(path))
    if v is None:
        return None
    return v if isinstance(v, str) else _json_text(v)


@register("IS_JSON_STRING", "IS_JSON_STRING(s STRING) -> BOOLEAN", "Whether s is valid JSON (FALSE for NULL).",
          "IS_JSON_STRING('[1, 2]') = TRUE", 1, 1, "BOOLEAN")
def is_json_string(s: Any) -> Any:
    return isinstance(s, str) and _parse_json(s) is not ...


@register("JSON_ARRAY_LENGTH", "JSON_ARRAY_LENGTH(json STRING) -> INT",
          "Number of elements of a JSON array (NULL when json is not an array).",
          "JSON_ARRAY_LENGTH('[1, 2, 3]') = 3", 1, 1, "INT")
def json_array_length(s: Any) -> Any:
    v = None if s is None else _parse_json(s)
    return len(v) if isinstance(v, list) else None


@register("JSON_ARRAY_CONTAINS", "JSON_ARRAY_CONTAINS(json STRING, x) -> BOOLEAN",
          "Whether a JSON array holds x (FALSE when json is not an array).",
          "JSON_ARRAY_CONTAINS('[1, 2, 3]', 3) = TRUE", 2, 2, "BOOLEAN")
def json_array_contains(s: Any, x: Any) -> Any:
    v = None if s is None else _parse_json(s)
    if not isinstance(v, list):
        return False
    return any(_json_equal(e, x) for e in v)


def _json_equal(e: Any, x: Any) -> bool:
    # Numbers compare by value (1 = 1.0), but TRUE is not 1 and '1' is not 1.
    if isinstance(e, bool) or isinstance(x, bool):
        return isinstance(e, bool) and isinstance(x, bool) and e == x
    if isinstance(e, int | float) and isinstance(x, int | float):
        return bool(e == x)
    return type(e) is type(x) and bool(e == x)


@register("JSON_KEYS", "JSON_KEYS(json STRING) -> ARRAY<STRING>",
          "The keys of a JSON object (NULL when json is not an object).",
          "JSON_KEYS('{\"a\": 1, \"b\": 2}') = ARRAY['a', 'b']", 1, 1, "ARRAY<STRING>")
def json_keys(s: Any) -> Any:
    v = None if s is None else _parse_json(s)
    return list(v) if isinstance(v, dict) else None


@register("JSON_RECORDS", "JSON_RECORDS(json STRING) -> MAP<STRING, STRING>",
          "The entries of a JSON object, each value as JSON text (NULL when json is not an object).",
          "JSON_RECORDS('{\"a\": [1], \"b\": \"x\"}')['b'] = '\"x\"'", 1, 1, "MAP<STRING, STRING>")
def json_records(s: Any) -> Any:
    v = None if s is None else _parse_json(s)
    return {k: _json_text(e) for k, e in v.items()} if isinstance(v, dict) else None


@register("JSON_CONCAT", "JSON_CONCAT(json STRING, ...) -> STRING",
          "Objects merged (a later key wins) or arrays concatenated (a non-array counts as a one-element "
          "array); NULL when an argument is NULL or not JSON.",
          "JSON_CONCAT('{\"a\": 1}', '{\"b\": 2}') = '{\"a\":1,\"b\":2}'", 1, None, "STRING")
def json_concat(*docs: Any) -> Any:
    values = [None if d is None else _parse_json(d) for d in docs]
    if any(v is None or v is ... for v in values):
        return None
    if all(isinstance(v, dict) for v in values):
        merged: dict[str, Any] = {}
        for v in values:
            merged.update(v)  # type: ignore[arg-type]  # all dicts, checked just above
        return _json_text(merged)
    out: list[Any] = []
    for v in values:
        out += v if isinstance(v, list) else [v]
    return _json_text(out)


@register("TO_JSON_STRING", "TO_JSON_STRING(x) -> STRING", "x written as JSON text (NULL as null).",
          "TO_JSON_STRING(ARRAY[1, 2]) = '[1,2]'", 1, 1, "STRING")
def to_json_string(x: Any) -> Any:
    try:
        return _json_text(x)
    except TypeError:
        return _json_text(str(x))  # DECIMAL and other values JSON lacks: as their text


# ---------------------------------------------------------------- time (Java patterns)


def _ms(ts: Any) -> int:
    if isinstance(ts, datetime):
        return int(ts.timestamp() * 1000)
    return int(ts)


_TZ = "[, tz STRING]"


@register("FORMAT_TIMESTAMP", f"FORMAT_TIMESTAMP(ts TIMESTAMP, pattern STRING {_TZ}) -> STRING",
          "ts written with a Java DateTimeFormatter pattern, in time zone tz (default UTC).",
          "FORMAT_TIMESTAMP(1000, 'yyyy-MM-dd''T''HH:mm:ss.SSS') = '1970-01-01T00:00:01.000'", 2, 3, "STRING")
def format_timestamp(ts: Any, pattern: Any, tz: Any = "UTC") -> Any:
    if ts is None or pattern is None or tz is None:
        return None
    return timefmt.format_ms(_ms(ts), _str(pattern), _str(tz))


@register("PARSE_TIMESTAMP", f"PARSE_TIMESTAMP(s STRING, pattern STRING {_TZ}) -> TIMESTAMP",
          "The timestamp s denotes, read with a Java pattern; tz (default UTC) when s has no offset.",
          "PARSE_TIMESTAMP('1970-01-01 01:00:00', 'yyyy-MM-dd HH:mm:ss', '+01:00') = 0", 2, 3, "TIMESTAMP")
def parse_timestamp(s: Any, pattern: Any, tz: Any = "UTC") -> Any:
    if s is None or pattern is None or tz is None:
        return None
    return timefmt.parse_ms(_str(s), _str(pattern), _str(tz))


register("TIMESTAMPTOSTRING", f"TIMESTAMPTOSTRING(ms BIGINT, pattern STRING {_TZ}) -> STRING",
         "Milliseconds since the epoch written with a Java pattern (= FORMAT_TIMESTAMP).",
         "TIMESTAMPTOSTRING(86400000, 'dd/MM/yyyy') = '02/01/1970'", 2, 3, "STRING")(format_timestamp)


register("STRINGTOTIMESTAMP", f"STRINGTOTIMESTAMP(s STRING, pattern STRING {_TZ}) -> BIGINT",
         "Milliseconds since the epoch that s denotes, read with a Java pattern (= PARSE_TIMESTAMP).",
         "STRINGTOTIMESTAMP('1970-01-01T00:00:01Z', 'yyyy-MM-dd''T''HH:mm:ssX') = 1000", 2, 3, "BIGINT")(
    parse_timestamp)
