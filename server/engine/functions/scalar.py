"""Scalar built-ins (math, string, conditional). Every function returns NULL for a NULL input."""

from __future__ import annotations

import math
from typing import Any

from .registry import register


@register("UPPER", "UPPER(s STRING) -> STRING", "Upper-cases a string.", "UPPER('abc') = 'ABC'",
          1, 1, "STRING")
def upper(s: Any) -> Any:
    return None if s is None else str(s).upper()


@register("LOWER", "LOWER(s STRING) -> STRING", "Lower-cases a string.", "LOWER('ABC') = 'abc'",
          1, 1, "STRING")
def lower(s: Any) -> Any:
    return None if s is None else str(s).lower()


@register("LENGTH", "LENGTH(s STRING) -> INT", "Number of characters.", "LENGTH('abc') = 3",
          1, 1, "INT")
def length(s: Any) -> Any:
    return None if s is None else len(str(s))


@register("ABS", "ABS(x NUMBER) -> NUMBER", "Absolute value.", "ABS(-2) = 2", 1, 1, "DOUBLE")
def abs_(x: Any) -> Any:
    return None if x is None else abs(x)


@register("ROUND", "ROUND(x NUMBER [, d INT]) -> NUMBER", "Rounds half away from zero to d places.",
          "ROUND(2.345, 2) = 2.35", 1, 2, "DOUBLE")
def round_(x: Any, d: Any = 0) -> Any:
    if x is None or d is None:
        return None
    scale = 10.0**d
    value = math.floor(abs(x) * scale + 0.5) / scale
    value = math.copysign(value, x)
    return int(value) if d <= 0 and isinstance(x, int) else value


@register("SQRT", "SQRT(x NUMBER) -> DOUBLE", "Square root (NULL for negative x).", "SQRT(9) = 3.0",
          1, 1, "DOUBLE")
def sqrt(x: Any) -> Any:
    return None if x is None or x < 0 else math.sqrt(x)


@register("COALESCE", "COALESCE(x, y, ...) -> ANY", "The first argument that is not NULL.",
          "COALESCE(NULL, 2) = 2", 1, None)
def coalesce(*args: Any) -> Any:
    for a in args:
        if a is not None:
            return a
    return None


@register("CONCAT", "CONCAT(s, ...) -> STRING", "Joins strings; NULL arguments are skipped.",
          "CONCAT('a', 'b') = 'ab'", 1, None, "STRING")
def concat(*args: Any) -> Any:
    return "".join(str(a) for a in args if a is not None)
