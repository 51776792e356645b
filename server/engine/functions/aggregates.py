"""Aggregate accumulators (dialect.md §8): incremental state, one object per group and window.

Every accumulator has ``add(value, ts)`` (``ts`` is the record's event time, used by
FIRST_VALUE/LAST_VALUE), ``result()`` and ``merge(other)`` (session windows merge). NULL inputs are
ignored except by COUNT(*); an aggregate over no non-NULL value is NULL (COUNT gives 0). Constant
extra arguments (the ``p`` of PERCENTILE_CONT, the separator of LISTAGG) go to the constructor.
Variance uses Welford's update and Chan's merge, so it is stable and O(1) per record.
"""

from __future__ import annotations

import math
from typing import Any

from .registry import register


class Accumulator:
    """Base class: the interface operators use."""

    __slots__ = ()

    def __init__(self, *params: Any) -> None:
        pass

    def add(self, v: Any, ts: int) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError

    def merge(self, other: Any) -> None:
        raise NotImplementedError


def _agg(name: str, signature: str, description: str, example: str, min_args: int = 1,
         max_args: int | None = 1, return_type: str = "ANY") -> Any:
    return register(name, signature, description, example, min_args, max_args, return_type,
                    kind="aggregate")


@_agg("COUNT", "COUNT(* | x | DISTINCT x) -> BIGINT",
      "Number of rows (*) or of non-NULL values of x.", "COUNT(*)", 0, 1, "BIGINT")
class Count(Accumulator):
    __slots__ = ("n",)

    def __init__(self, *params: Any) -> None:
        self.n = 0

    def add(self, v: Any, ts: int) -> None:
        if v is not None:
            self.n += 1

    def result(self) -> Any:
        return self.n

    def merge(self, other: Any) -> None:
        self.n += other.n


class CountDistinct(Accumulator):
    """COUNT(DISTINCT x): the set of values seen."""

    __slots__ = ("seen",)

    def __init__(self, *params: Any) -> None:
        self.seen: set[Any] = set()

    def add(self, v: Any, ts: int) -> None:
        if v is not None:
            self.seen.add(v)

    def result(self) -> Any:
        return len(self.seen)

    def merge(self, other: Any) -> None:
        self.seen |= other.seen


@_agg("APPROX_COUNT_DISTINCT", "APPROX_COUNT_DISTINCT(x) -> BIGINT",
      "Number of distinct non-NULL values (exact in this version).", "APPROX_COUNT_DISTINCT(user)",
      1, 1, "BIGINT")
class ApproxCountDistinct(CountDistinct):
    __slots__ = ()


@_agg("SUM", "SUM(x NUMBER) -> NUMBER", "Sum of the non-NULL values.", "SUM(quantity)",
      return_type="ARG")
class Sum(Accumulator):
    __slots__ = ("s",)

    def __init__(self, *params: Any) -> None:
        self.s: Any = None

    def add(self, v: Any, ts: int) -> None:
        if v is not None:
            self.s = v if self.s is None else self.s + v

    def result(self) -> Any:
        return self.s

    def merge(self, other: Any) -> None:
        if other.s is not None:
            self.add(other.s, 0)


@_agg("AVG", "AVG(x NUMBER) -> DOUBLE", "Mean of the non-NULL values.", "AVG(price)",
      return_type="DOUBLE")
class Avg(Accumulator):
    __slots__ = ("n", "s")

    def __init__(self, *params: Any) -> None:
        self.s: Any = 0
        self.n = 0

    def add(self, v: Any, ts: int) -> None:
        if v is not None:
            self.s += v
            self.n += 1

    def result(self) -> Any:
        if not self.n:
            return None
        return self.s / self.n

    def merge(self, other: Any) -> None:
        self.s += other.s
        self.n += other.n


@_agg("MIN", "MIN(x) -> ANY", "Smallest non-NULL value.", "MIN(price)", return_type="ARG")
class Min(Accumulator):
    __slots__ = ("m",)

    def __init__(self, *params: Any) -> None:
        self.m: Any = None

    def add(self, v: Any, ts: int) -> None:
        if v is not None and (self.m is None or v < self.m):
            self.m = v

    def result(self) -> Any:
        return self.m

    def merge(self, other: Any) -> None:
        self.add(other.m, 0)


@_agg("MAX", "MAX(x) -> ANY", "Largest non-NULL value.", "MAX(price)", return_type="ARG")
class Max(Accumulator):
    __slots__ = ("m",)

    def __init__(self, *params: Any) -> None:
        self.m: Any = None

    def add(self, v: Any, ts: int) -> None:
        if v is not None and (self.m is None or v > self.m):
            self.m = v

    def result(self) -> Any:
        return self.m

    def merge(self, other: Any) -> None:
        self.add(other.m, 0)


@_agg("FIRST_VALUE", "FIRST_VALUE(x) -> ANY",
      "The non-NULL value with the earliest event time (first arrival on ties).", "FIRST_VALUE(price)",
      return_type="ARG")
class FirstValue(Accumulator):
    __slots__ = ("ts", "v")

    def __init__(self, *params: Any) -> None:
        self.v: Any = None
        self.ts: Any = None

    def add(self, v: Any, ts: int) -> None:
        if v is not None and (self.ts is None or ts < self.ts):
            self.v, self.ts = v, ts

    def result(self) -> Any:
        return self.v

    def merge(self, other: Any) -> None:
        if other.ts is not None:
            self.add(other.v, other.ts)


@_agg("LAST_VALUE", "LAST_VALUE(x) -> ANY",
      "The non-NULL value with the latest event time (last arrival on ties).", "LAST_VALUE(price)",
      return_type="ARG")
class LastValue(Accumulator):
    __slots__ = ("ts", "v")

    def __init__(self, *params: Any) -> None:
        self.v: Any = None
        self.ts: Any = None

    def add(self, v: Any, ts: int) -> None:
        if v is not None and (self.ts is None or ts >= self.ts):
            self.v, self.ts = v, ts

    def result(self) -> Any:
        return self.v

    def merge(self, other: Any) -> None:
        if other.ts is not None:
            self.add(other.v, other.ts)


class _Moments(Accumulator):
    """Welford's running mean and M2; Chan's formula merges two of them."""

    __slots__ = ("m2", "mean", "n")

    def __init__(self, *params: Any) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, v: Any, ts: int) -> None:
        if v is None:
            return
        x = float(v)
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    def merge(self, other: Any) -> None:
        if not other.n:
            return
        n = self.n + other.n
        d = other.mean - self.mean
        self.mean += d * other.n / n
        self.m2 += other.m2 + d * d * self.n * other.n / n
        self.n = n

    def var_samp(self) -> Any:
        return self.m2 / (self.n - 1) if self.n > 1 else None

    def var_pop(self) -> Any:
        return self.m2 / self.n if self.n else None


@_agg("VARIANCE", "VARIANCE(x NUMBER) -> DOUBLE", "Sample variance.", "VARIANCE(price)",
      return_type="DOUBLE")
class VarSamp(_Moments):
    __slots__ = ()

    def result(self) -> Any:
        return self.var_samp()


@_agg("VAR_POP", "VAR_POP(x NUMBER) -> DOUBLE", "Population variance.", "VAR_POP(price)",
      return_type="DOUBLE")
class VarPop(_Moments):
    __slots__ = ()

    def result(self) -> Any:
        return self.var_pop()


@_agg("STDDEV", "STDDEV(x NUMBER) -> DOUBLE", "Sample standard deviation.", "STDDEV(price)",
      return_type="DOUBLE")
class StddevSamp(_Moments):
    __slots__ = ()

    def result(self) -> Any:
        v = self.var_samp()
        return None if v is None else math.sqrt(max(v, 0.0))


@_agg("STDDEV_POP", "STDDEV_POP(x NUMBER) -> DOUBLE", "Population standard deviation.",
      "STDDEV_POP(price)", return_type="DOUBLE")
class StddevPop(_Moments):
    __slots__ = ()

    def result(self) -> Any:
        v = self.var_pop()
        return None if v is None else math.sqrt(max(v, 0.0))


_agg("VAR_SAMP", "VAR_SAMP(x NUMBER) -> DOUBLE", "Sample variance (= VARIANCE).", "VAR_SAMP(price)",
     return_type="DOUBLE")(VarSamp)
_agg("STDDEV_SAMP", "STDDEV_SAMP(x NUMBER) -> DOUBLE", "Sample standard deviation (= STDDEV).",
     "STDDEV_SAMP(price)", return_type="DOUBLE")(StddevSamp)


class _Values(Accumulator):
    """Keeps the non-NULL values (MEDIAN, PERCENTILE_CONT, LISTAGG, COLLECT_LIST)."""

    __slots__ = ("values",)

    def __init__(self, *params: Any) -> None:
        self.values: list[Any] = []

    def add(self, v: Any, ts: int) -> None:
        if v is not None:
            self.values.append(v)

    def merge(self, other: Any) -> None:
        self.values += other.values


def percentile_cont(values: list[Any], p: float) -> Any:
    """Linear interpolation between the closest ranks (as PERCENTILE_CONT in SQL)."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * p
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    frac = pos - lo
    return float(s[lo]) + (float(s[hi]) - float(s[lo])) * frac


@_agg("MEDIAN", "MEDIAN(x NUMBER) -> DOUBLE", "The median (PERCENTILE_CONT(x, 0.5)).", "MEDIAN(price)",
      return_type="DOUBLE")
class Median(_Values):
    __slots__ = ()

    def result(self) -> Any:
        return percentile_cont(self.values, 0.5)


@_agg("PERCENTILE_CONT", "PERCENTILE_CONT(x NUMBER, p DOUBLE) -> DOUBLE",
      "The p-th percentile (0 ≤ p ≤ 1), interpolated.", "PERCENTILE_CONT(latency, 0.99)", 2, 2,
      "DOUBLE")
class PercentileCont(_Values):
    __slots__ = ("p",)

    def __init__(self, *params: Any) -> None:
        super().__init__()
        self.p = float(params[0]) if params else 0.5

    def result(self) -> Any:
        return percentile_cont(self.values, self.p)


@_agg("LISTAGG", "LISTAGG(x STRING [, sep STRING]) -> STRING",
      "The values joined by sep (default ','), in arrival order.", "LISTAGG(symbol, ';')", 1, 2,
      "STRING")
class ListAgg(_Values):
    __slots__ = ("sep",)

    def __init__(self, *params: Any) -> None:
        super().__init__()
        self.sep = str(params[0]) if params and params[0] is not None else ","

    def result(self) -> Any:
        return self.sep.join(str(v) for v in self.values) if self.values else None


_agg("STRING_AGG", "STRING_AGG(x STRING [, sep STRING]) -> STRING", "Same as LISTAGG.",
     "STRING_AGG(symbol, ',')", 1, 2, "STRING")(ListAgg)


@_agg("COLLECT_LIST", "COLLECT_LIST(x) -> ARRAY", "The values as an array, in arrival order.",
      "COLLECT_LIST(price)", return_type="ARRAY")
class CollectList(_Values):
    __slots__ = ()

    def result(self) -> Any:
        return list(self.values)


def _analytic(name: str, signature: str, description: str, example: str, min_args: int,
              max_args: int, return_type: str) -> Any:
    return register(name, signature, description, example, min_args, max_args, return_type,
                    kind="analytic")


@_analytic("LAG", "LAG(x [, n INT [, default]]) OVER (...) -> ANY",
           "The value of x n rows (default 1) before in the partition.",
           "LAG(price) OVER (PARTITION BY symbol)", 1, 3, "ARG")
class Lag(Accumulator):
    __slots__ = ()


@_analytic("ROW_NUMBER", "ROW_NUMBER() OVER (...) -> BIGINT", "1, 2, 3, … within the partition.",
           "ROW_NUMBER() OVER (PARTITION BY symbol)", 0, 0, "BIGINT")
class RowNumber(Accumulator):
    __slots__ = ()


@_analytic("RANK", "RANK() OVER (... ORDER BY x) -> BIGINT",
           "Rank by the ORDER BY value among the partition's rows so far (gaps after ties).",
           "RANK() OVER (PARTITION BY symbol ORDER BY ts)", 0, 0, "BIGINT")
class Rank(Accumulator):
    __slots__ = ()


@_analytic("DENSE_RANK", "DENSE_RANK() OVER (... ORDER BY x) -> BIGINT",
           "Rank without gaps among the partition's rows so far.",
           "DENSE_RANK() OVER (PARTITION BY symbol ORDER BY ts)", 0, 0, "BIGINT")
class DenseRank(Accumulator):
    __slots__ = ()


def accumulator(name: str, distinct: bool) -> type[Accumulator]:
    """The accumulator class of aggregate ``name`` (COUNT DISTINCT has its own)."""
    from .registry import lookup

    if name == "COUNT" and distinct:
        return CountDistinct
    fn = lookup(name)
    assert fn is not None and fn.kind == "aggregate"
    impl: type[Accumulator] = fn.impl  # type: ignore[assignment]
    return impl
