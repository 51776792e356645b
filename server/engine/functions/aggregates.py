"""Aggregate accumulators (dialect.md §8): incremental state, one object per group and window.

Every accumulator has ``add(value, ts)`` (``ts`` is the record's event time, used by
FIRST_VALUE/LAST_VALUE), ``result()`` and ``merge(other)`` (session windows merge). NULL inputs are
ignored except by COUNT(*); an aggregate over no non-NULL value is NULL (COUNT gives 0). Constant
extra arguments (the ``p`` of PERCENTILE_CONT, the separator of LISTAGG) go to the constructor.
Variance uses Welford's update and Chan's merge, so it is stable and O(1) per record.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
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
      "Number of rows (*) or of non-NULL values of x.", "COUNT(x) → 4", 0, 1, "BIGINT")
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
      "Number of distinct non-NULL values (exact in this version).", "APPROX_COUNT_DISTINCT(x) → 3",
      1, 1, "BIGINT")
class ApproxCountDistinct(CountDistinct):
    __slots__ = ()


@_agg("SUM", "SUM(x NUMBER) -> NUMBER", "Sum of the non-NULL values.", "SUM(x) → 9",
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


@_agg("AVG", "AVG(x NUMBER) -> DOUBLE", "Mean of the non-NULL values.", "AVG(x) → 2.25",
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


@_agg("MIN", "MIN(x) -> ANY", "Smallest non-NULL value.", "MIN(x) → 1", return_type="ARG")
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


@_agg("MAX", "MAX(x) -> ANY", "Largest non-NULL value.", "MAX(x) → 3", return_type="ARG")
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
      "The non-NULL value with the earliest event time (first arrival on ties).", "FIRST_VALUE(x) → 3",
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
      "The non-NULL value with the latest event time (last arrival on ties).", "LAST_VALUE(x) → 2",
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


@_agg("VARIANCE", "VARIANCE(x NUMBER) -> DOUBLE", "Sample variance.", "VARIANCE(x) → 0.9166666666666666",
      return_type="DOUBLE")
class VarSamp(_Moments):
    __slots__ = ()

    def result(self) -> Any:
        return self.var_samp()


@_agg("VAR_POP", "VAR_POP(x NUMBER) -> DOUBLE", "Population variance.", "VAR_POP(x) → 0.6875",
      return_type="DOUBLE")
class VarPop(_Moments):
    __slots__ = ()

    def result(self) -> Any:
        return self.var_pop()


@_agg("STDDEV", "STDDEV(x NUMBER) -> DOUBLE", "Sample standard deviation.", "STDDEV(x) → 0.9574271077563381",
      return_type="DOUBLE")
class StddevSamp(_Moments):
    __slots__ = ()

    def result(self) -> Any:
        v = self.var_samp()
        return None if v is None else math.sqrt(max(v, 0.0))


@_agg("STDDEV_POP", "STDDEV_POP(x NUMBER) -> DOUBLE", "Population standard deviation.",
      "STDDEV_POP(x) → 0.82915619758885", return_type="DOUBLE")
class StddevPop(_Moments):
    __slots__ = ()

    def result(self) -> Any:
        v = self.var_pop()
        return None if v is None else math.sqrt(max(v, 0.0))


_agg("VAR_SAMP", "VAR_SAMP(x NUMBER) -> DOUBLE", "Sample variance (= VARIANCE).", "VAR_SAMP(x) → 0.9166666666666666",
     return_type="DOUBLE")(VarSamp)
_agg("STDDEV_SAMP", "STDDEV_SAMP(x NUMBER) -> DOUBLE", "Sample standard deviation (= STDDEV).",
     "STDDEV_SAMP(x) → 0.9574271077563381", return_type="DOUBLE")(StddevSamp)


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


@_agg("MEDIAN", "MEDIAN(x NUMBER) -> DOUBLE", "The median (PERCENTILE_CONT(x, 0.5)).", "MEDIAN(x) → 2.5",
      return_type="DOUBLE")
class Median(_Values):
    __slots__ = ()

    def result(self) -> Any:
        return percentile_cont(self.values, 0.5)


@_agg("PERCENTILE_CONT", "PERCENTILE_CONT(x NUMBER, p DOUBLE) -> DOUBLE",
      "The p-th percentile (0 ≤ p ≤ 1), interpolated.", "PERCENTILE_CONT(x, 0.75) → 3.0", 2, 2,
      "DOUBLE")
class PercentileCont(_Values):
    __slots__ = ("p",)

    def __init__(self, *params: Any) -> None:
        super().__init__()
        self.p = float(params[0]) if params else 0.5

    def result(self) -> Any:
        return percentile_cont(self.values, self.p)


@_agg("LISTAGG", "LISTAGG(x STRING [, sep STRING]) -> STRING",
      "The values joined by sep (default ','), in arrival order.", "LISTAGG(s, ';') → \"b;a;b;c\"", 1, 2,
      "STRING")
class ListAgg(_Values):
    __slots__ = ("sep",)

    def __init__(self, *params: Any) -> None:
        super().__init__()
        self.sep = str(params[0]) if params and params[0] is not None else ","

    def result(self) -> Any:
        return self.sep.join(str(v) for v in self.values) if self.values else None


_agg("STRING_AGG", "STRING_AGG(x STRING [, sep STRING]) -> STRING", "Same as LISTAGG.",
     "STRING_AGG(s, ',') → \"b,a,b,c\"", 1, 2, "STRING")(ListAgg)


@_agg("COLLECT_LIST", "COLLECT_LIST(x) -> ARRAY",
      "Every value as an array, NULLs included, in arrival order (ksqlDB).",
      "COLLECT_LIST(x) → [3, null, 1, 3, 2]", return_type="ARRAY")
class CollectList(_Values):
    __slots__ = ("first",)

    def __init__(self, *params: Any) -> None:
        super().__init__()
        self.first: Any = None  # the earliest event time added: orders the parts of a merged session

    def add(self, v: Any, ts: int) -> None:
        # ksqlDB keeps NULLs (an all-NULL group gives [null, ...], not []); so does DuckDB's list().
        self.values.append(v)
        if self.first is None or ts < self.first:
            self.first = ts

    def result(self) -> Any:
        return list(self.values)

    def merge(self, other: Any) -> None:
        # Sessions do not overlap, so the one that starts first goes first: ksqlDB's documented order
        # (the first window, then the out-of-order record that bridges them, then the second window).
        if _earlier(other.first, self.first):
            self.values = other.values + self.values
        else:
            self.values += other.values
        self.first = other.first if _earlier(other.first, self.first) else self.first


def _earlier(a: Any, b: Any) -> bool:
    return a is not None and (b is None or a < b)


def _hashable(v: Any) -> Any:
    # Arrays and maps are not hashable: key them by their JSON text.
    if isinstance(v, list | dict):
        import orjson

        return ("\0json", orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    return v


@_agg("COLLECT_SET", "COLLECT_SET(x) -> ARRAY",
      "The distinct values as an array (NULL counts once), in order of first arrival.",
      "COLLECT_SET(x) → [3, null, 1, 2]", return_type="ARRAY")
class CollectSet(Accumulator):
    __slots__ = ("first", "items")

    def __init__(self, *params: Any) -> None:
        self.items: dict[Any, Any] = {}  # a dict keeps first-arrival order and marshals as is
        self.first: Any = None  # as in CollectList: orders the parts of a merged session

    def add(self, v: Any, ts: int) -> None:
        self.items.setdefault(_hashable(v), v)
        if self.first is None or ts < self.first:
            self.first = ts

    def result(self) -> Any:
        return list(self.items.values())

    def merge(self, other: Any) -> None:
        if _earlier(other.first, self.first):
            merged = dict(other.items)
            for k, v in self.items.items():
                merged.setdefault(k, v)
            self.items, self.first = merged, other.first
        else:
            for k, v in other.items.items():
                self.items.setdefault(k, v)


def _positive_int(params: tuple[Any, ...], name: str) -> int:
    k = params[0] if params else None
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"{name}'s second argument must be a positive integer constant, got {k!r}")
    return k


@_agg("TOPK", "TOPK(x, k INT) -> ARRAY", "The k largest non-NULL values, largest first (duplicates kept).",
      "TOPK(x, 2) → [3, 3]", 2, 2, "ARRAY")
class TopK(Accumulator):
    __slots__ = ("k", "top")

    def __init__(self, *params: Any) -> None:
        self.k = _positive_int(params, "TOPK")
        self.top: list[Any] = []  # ascending, at most k values

    def add(self, v: Any, ts: int) -> None:
        if v is None:
            return
        top = self.top
        if len(top) < self.k:
            bisect.insort(top, v)
        elif v > top[0]:
            bisect.insort(top, v)
            del top[0]

    def result(self) -> Any:
        return self.top[::-1]

    def merge(self, other: Any) -> None:
        self.top = sorted(self.top + other.top)[-self.k:]


@_agg("TOPKDISTINCT", "TOPKDISTINCT(x, k INT) -> ARRAY", "The k largest distinct non-NULL values, largest first.",
      "TOPKDISTINCT(x, 2) → [3, 2]", 2, 2, "ARRAY")
class TopKDistinct(TopK):
    __slots__ = ()

    def __init__(self, *params: Any) -> None:
        self.k = _positive_int(params, "TOPKDISTINCT")
        self.top = []

    def add(self, v: Any, ts: int) -> None:
        if v is None:
            return
        top = self.top
        i = bisect.bisect_left(top, v)
        if i < len(top) and top[i] == v:
            return
        if len(top) < self.k:
            top.insert(i, v)
        elif i > 0:
            top.insert(i, v)
            del top[0]

    def merge(self, other: Any) -> None:
        self.top = sorted(set(self.top) | set(other.top))[-self.k:]


@_agg("HISTOGRAM", "HISTOGRAM(x STRING) -> MAP<STRING, BIGINT>",
      "How many times each non-NULL value occurs, as a map from the value (as text) to its count.",
      "HISTOGRAM(s) → {\"b\": 2, \"a\": 1, \"c\": 1}", return_type="MAP<STRING, BIGINT>")
class Histogram(Accumulator):
    __slots__ = ("counts",)

    def __init__(self, *params: Any) -> None:
        self.counts: dict[str, int] = {}

    def add(self, v: Any, ts: int) -> None:
        if v is not None:
            k = ("true" if v else "false") if isinstance(v, bool) else str(v)
            self.counts[k] = self.counts.get(k, 0) + 1

    def result(self) -> Any:
        return dict(self.counts)

    def merge(self, other: Any) -> None:
        for k, n in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + n


# Arrival order across accumulators (a merged session window compares two of them), also across a
# restart: counting from the wall clock in nanoseconds puts every number a restored state holds
# below the ones a new process hands out (no process adds more than one record a nanosecond).
_ARRIVAL = itertools.count(time.time_ns())


class _ByOffset(Accumulator):
    """EARLIEST/LATEST_BY_OFFSET: the values with their arrival numbers, at most n of them.

    Arguments (constants): ``(x)``, ``(x, ignore_nulls)``, ``(x, n)`` or ``(x, n, ignore_nulls)``;
    with n the result is an array of up to n values, oldest first.
    """

    __slots__ = ("ignore_nulls", "items", "n", "single")
    latest = False

    def __init__(self, *params: Any) -> None:
        self.single = True
        self.n = 1
        self.ignore_nulls = True
        rest = list(params)
        if rest and isinstance(rest[0], int) and not isinstance(rest[0], bool):
            self.n, self.single = rest.pop(0), False
            if self.n < 1:
                raise ValueError(f"the number of values to keep must be positive, got {self.n}")
        if rest:
            flag = rest.pop(0)
            if not isinstance(flag, bool) or rest:
                raise ValueError("expected (x [, n INT] [, ignore_nulls BOOLEAN]) with constant arguments")
            self.ignore_nulls = flag
        self.items: list[list[Any]] = []  # [arrival, value], in arrival order

    def add(self, v: Any, ts: int) -> None:
        if v is None and self.ignore_nulls:
            return
        items = self.items
        if self.latest:
            items.append([next(_ARRIVAL), v])
            if len(items) > self.n:
                del items[0]
        elif len(items) < self.n:
            items.append([next(_ARRIVAL), v])

    def result(self) -> Any:
        values = [v for _, v in self.items]
        if self.single:
            return values[0] if values else None
        return values

    def merge(self, other: Any) -> None:
        both = sorted(self.items + other.items, key=lambda item: item[0])
        self.items = both[-self.n:] if self.latest else both[:self.n]


@_agg("EARLIEST_BY_OFFSET", "EARLIEST_BY_OFFSET(x [, n INT] [, ignore_nulls BOOLEAN]) -> ANY",
      "The first value to arrive (NULLs skipped unless ignore_nulls is FALSE); with n, an array of the "
      "first n.", "EARLIEST_BY_OFFSET(x, 2, FALSE) → [3, null]", 1, 3, "ARG")
class EarliestByOffset(_ByOffset):
    __slots__ = ()


@_agg("LATEST_BY_OFFSET", "LATEST_BY_OFFSET(x [, n INT] [, ignore_nulls BOOLEAN]) -> ANY",
      "The last value to arrive (NULLs skipped unless ignore_nulls is FALSE); with n, an array of the "
      "last n, oldest first.", "LATEST_BY_OFFSET(x) → 2", 1, 3, "ARG")
class LatestByOffset(_ByOffset):
    __slots__ = ()
    latest = True


def _analytic(name: str, signature: str, description: str, example: str, min_args: int,
              max_args: int, return_type: str) -> Any:
    return register(name, signature, description, example, min_args, max_args, return_type,
                    kind="analytic")


@_analytic("LAG", "LAG(x [, n INT [, default]]) OVER (...) -> ANY",
           "The value of x n rows (default 1) before in the partition.",
           "LAG(x) OVER (PARTITION BY k) → [null, 3, null, 1, 3]", 1, 3, "ARG")
class Lag(Accumulator):
    __slots__ = ()


@_analytic("ROW_NUMBER", "ROW_NUMBER() OVER (...) -> BIGINT", "1, 2, 3, … within the partition.",
           "ROW_NUMBER() OVER (PARTITION BY k) → [1, 2, 3, 4, 5]", 0, 0, "BIGINT")
class RowNumber(Accumulator):
    __slots__ = ()


@_analytic("RANK", "RANK() OVER (... ORDER BY x) -> BIGINT",
           "Rank by the ORDER BY value among the partition's rows so far (gaps after ties).",
           "RANK() OVER (PARTITION BY k ORDER BY ts) → [1, 2, 3, 4, 5]", 0, 0, "BIGINT")
class Rank(Accumulator):
    __slots__ = ()


@_analytic("DENSE_RANK", "DENSE_RANK() OVER (... ORDER BY x) -> BIGINT",
           "Rank without gaps among the partition's rows so far.",
           "DENSE_RANK() OVER (PARTITION BY k ORDER BY ts) → [1, 2, 3, 4, 5]", 0, 0, "BIGINT")
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


def parameter_problem(name: str, args: tuple[Any, ...]) -> str | None:
    """Why the constant extra arguments of aggregate ``name`` are wrong (``TOPK(x, 0)``), or None.

    ``args`` are the call's AST arguments; only literal extras are checked here (a non-constant one
    is the compiler's error), so a bad parameter is a positioned error when the query is compiled
    instead of a failure when the first group is made.
    """
    from velo.grammar import ast

    values: list[Any] = []
    for a in args[1:]:
        if isinstance(a, ast.UnaryOp) and a.op == "-" and isinstance(a.operand, ast.Literal) \
                and isinstance(a.operand.value, int | float):
            values.append(-a.operand.value)
        elif isinstance(a, ast.Literal):
            values.append(a.value)
        else:
            return None
    try:
        accumulator(name, False)(*values)
    except ValueError as exc:
        return str(exc)
    return None
