"""The peer benchmark's input and workloads: one deterministic trade stream, its expected results in DuckDB.

Input: ``n`` trades ``{"trade_id", "symbol", "price", "quantity", "side", "ts"}`` (JSON), keyed by symbol;
each symbol lives in one of ``PARTITIONS`` partitions (symbol index mod 4), so every system sees each
symbol's trades in event-time order. Event times grow by an even number of milliseconds (0–10 ms
per trade, plus an occasional 2 s pause), so no two trades of a symbol are exactly ``SESSION_GAP_MS``
(odd) apart: session boundaries cannot depend on whether a system's gap test is ``<`` or ``<=``.

End of input: after the trades, one *sentinel* per symbol (``side = "END"``, ``quantity = 0``,
``ts`` = last trade + 1 h) goes to the symbol's partition. It is a normal record to every system: it
moves the event time of its key, its partition and the whole stream far ahead, so every window of a
real trade closes (per-key, per-partition and global watermarks alike). It fails the filter; OVER
and the joins emit rows for it, and a system may emit a sentinel's session: the check ignores
those (trade ids from ``n`` on, windows starting after the last trade).

Expected results are computed by DuckDB over the same trades (sentinels left out), independently
of every system's code.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

PARTITIONS = 4
SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA", "META", "ORCL",
           "IBM", "INTC", "AMD", "CSCO", "ADBE", "CRM", "NFLX", "QCOM"]
BASE_TS = 1_700_000_000_000
SENTINEL_AFTER_MS = 3_600_000
TUMBLE_MS = 1000
HOP_SIZE_MS, HOP_ADVANCE_MS = 2000, 500
SESSION_GAP_MS = 301  # odd, while every gap in the data is even: see the module docstring
OVER_ROWS = 20
INTERVAL_MS = 21  # odd, like the session gap: no two trades of a symbol are exactly this far apart
FILTER_MIN_QTY = 200
SECTORS = {"AAPL": "tech", "MSFT": "tech", "GOOG": "tech", "AMZN": "retail", "TSLA": "auto",
           "NVDA": "chips", "META": "tech", "ORCL": "tech", "INTC": "chips", "AMD": "chips",
           "CRM": "software", "ADBE": "software"}  # four symbols have no row: the LEFT JOIN keeps them

# The parameters every system's job reads (passed to each runner as JSON, so the runners import nothing).
PARAMS: dict[str, Any] = {
    "partitions": PARTITIONS, "tumble_ms": TUMBLE_MS, "hop_size_ms": HOP_SIZE_MS,
    "hop_advance_ms": HOP_ADVANCE_MS, "session_gap_ms": SESSION_GAP_MS, "over_rows": OVER_ROWS,
    "interval_ms": INTERVAL_MS,
    "filter_min_qty": FILTER_MIN_QTY,
}


def partition_of(symbol: str) -> int:
    """The partition a symbol's trades (and its sentinel) go to."""
    return SYMBOLS.index(symbol) % PARTITIONS


def make_trades(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` trades, the same for a given seed on every machine."""
    rng = random.Random(seed)
    prices = {s: round(rng.uniform(20, 500), 2) for s in SYMBOLS}
    ts = BASE_TS
    out = []
    for i in range(n):
        ts += 2 * rng.randint(0, 5) + (2000 if rng.random() < 0.001 else 0)
        sym = rng.choice(SYMBOLS)
        prices[sym] = max(1.0, round(prices[sym] * (1 + rng.gauss(0, 0.002)), 2))
        out.append({"trade_id": i, "symbol": sym, "price": prices[sym], "quantity": rng.randint(1, 1000),
                    "side": "BUY" if rng.random() < 0.5 else "SELL", "ts": ts})
    return out


def sentinels(trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One far-future record per symbol that closes every real window (module docstring)."""
    ts = sentinel_ts(trades)
    return [{"trade_id": len(trades) + k, "symbol": s, "price": 0.0, "quantity": 0, "side": "END", "ts": ts}
            for k, s in enumerate(SYMBOLS)]


def sentinel_ts(trades: list[dict[str, Any]]) -> int:
    """The sentinels' event time."""
    return (trades[-1]["ts"] if trades else BASE_TS) + SENTINEL_AFTER_MS


Row = tuple[Any, ...]


@dataclass
class Workload:
    """One query: its Velo SQL, its DuckDB expectation and how an output row is compared.

    ``velo_sql`` is a SELECT with ``{src}``/``{ref}`` placeholders (the WITH clause is added by the
    harness); ``duckdb_sql`` reads table ``trades`` (and ``ref``); ``key`` turns an output JSON row
    into the tuple compared with DuckDB's row, ``approx`` lists tuple positions compared to 9
    significant digits (floating-point products and averages), ``emits_for_sentinel`` says whether
    each sentinel produces an output row (OVER, the joins), which the check then ignores.
    """

    name: str
    title: str
    velo_sql: str
    duckdb_sql: str
    key: Callable[[dict[str, Any]], Row]
    event_time: bool
    approx: tuple[int, ...] = ()
    emits_for_sentinel: bool = False


def _window_key(r: dict[str, Any]) -> Row:
    return (r["symbol"], int(r["window_start"]), int(r["cnt"]), int(r["sum_qty"]),
            float(r["min_price"]), float(r["max_price"]))


_AGGS = "COUNT(*) AS cnt, SUM(quantity) AS sum_qty, MIN(price) AS min_price, MAX(price) AS max_price"

WORKLOADS: dict[str, Workload] = {w.name: w for w in [
    Workload(
        "filter", "filter + projection",
        f"SELECT symbol, trade_id, price, quantity, price * quantity AS notional FROM {{src}} "
        f"WHERE side = 'BUY' AND quantity >= {FILTER_MIN_QTY}",
        f"SELECT symbol, trade_id, price, quantity, price * quantity FROM trades "
        f"WHERE side = 'BUY' AND quantity >= {FILTER_MIN_QTY}",
        lambda r: (r["symbol"], int(r["trade_id"]), float(r["price"]), int(r["quantity"]), float(r["notional"])),
        event_time=False, approx=(4,)),
    Workload(
        "tumbling", "1 s tumbling per symbol, EMIT FINAL (count, sum qty, min/max price)",
        f"SELECT symbol, {_AGGS} FROM {{src}} GROUP BY symbol WINDOW TUMBLING({TUMBLE_MS}ms) EMIT FINAL",
        f"SELECT symbol, ts // {TUMBLE_MS} * {TUMBLE_MS}, {_AGGS} FROM trades GROUP BY ALL",
        _window_key, event_time=True),
    Workload(
        "hopping", f"hopping {HOP_SIZE_MS} ms / {HOP_ADVANCE_MS} ms per symbol, EMIT FINAL (same aggregates)",
        f"SELECT symbol, {_AGGS} FROM {{src}} GROUP BY symbol "
        f"WINDOW HOPPING({HOP_SIZE_MS}ms, {HOP_ADVANCE_MS}ms) EMIT FINAL",
        f"SELECT symbol, ts // {HOP_ADVANCE_MS} * {HOP_ADVANCE_MS} - k * {HOP_ADVANCE_MS} AS ws, {_AGGS} "
        f"FROM trades, range({HOP_SIZE_MS // HOP_ADVANCE_MS}) AS r(k) GROUP BY ALL",
        _window_key, event_time=True),
    Workload(
        "session", f"session windows per symbol, gap {SESSION_GAP_MS} ms, EMIT FINAL (same aggregates)",
        f"SELECT symbol, {_AGGS} FROM {{src}} GROUP BY symbol WINDOW SESSION({SESSION_GAP_MS}ms) EMIT FINAL",
        f"""WITH g AS (SELECT *, coalesce(ts - lag(ts) OVER w > {SESSION_GAP_MS}, true)::INT AS brk
                       FROM trades WINDOW w AS (PARTITION BY symbol ORDER BY ts, trade_id)),
                s AS (SELECT *, sum(brk) OVER (PARTITION BY symbol ORDER BY ts, trade_id) AS sid FROM g)
            SELECT symbol, min(ts), {_AGGS} FROM s GROUP BY symbol, sid""",
        _window_key, event_time=True),
    Workload(
        "over", f"AVG(price) over the last {OVER_ROWS} rows per symbol (OVER … ROWS), one row per trade",
        f"SELECT symbol, trade_id, price, AVG(price) OVER (PARTITION BY symbol ROWS BETWEEN {OVER_ROWS - 1} "
        f"PRECEDING AND CURRENT ROW) AS avg_price FROM {{src}}",
        f"SELECT symbol, trade_id, price, AVG(price) OVER (PARTITION BY symbol ORDER BY trade_id ROWS BETWEEN "
        f"{OVER_ROWS - 1} PRECEDING AND CURRENT ROW) FROM trades",
        lambda r: (r["symbol"], int(r["trade_id"]), float(r["price"]), float(r["avg_price"])),
        event_time=False, approx=(3,), emits_for_sentinel=True),
    Workload(
        "stream_table_join", "stream–table join: each trade LEFT JOIN a sector table (a topic, keyed by symbol)",
        "SELECT t.symbol, t.trade_id, t.price, r.sector FROM {src} t LEFT JOIN {ref} r ON t.symbol = r.symbol",
        "SELECT t.symbol, t.trade_id, t.price, r.sector FROM trades t LEFT JOIN ref r ON t.symbol = r.symbol",
        lambda r: (r["symbol"], int(r["trade_id"]), float(r["price"]), r.get("sector")),
        event_time=False, emits_for_sentinel=True),
    Workload(
        "interval_join", f"interval join: trades of a symbol at most {INTERVAL_MS} ms apart (a self-join), "
                         "one row per pair",
        f"SELECT a.symbol, a.trade_id AS a_id, b.trade_id AS b_id FROM {{src}} a JOIN {{src}} b "
        f"ON a.symbol = b.symbol WITHIN {INTERVAL_MS}ms",
        f"SELECT a.symbol, a.trade_id, b.trade_id FROM trades a JOIN trades b "
        f"ON a.symbol = b.symbol AND abs(a.ts - b.ts) <= {INTERVAL_MS}",
        lambda r: (r["symbol"], int(r["a_id"]), int(r["b_id"])), event_time=True, emits_for_sentinel=True),
]}

ORDER = ["filter", "tumbling", "hopping", "session", "over", "stream_table_join", "interval_join"]


class Expected:
    """DuckDB's answer for every workload over one input (computed once, reused by every round)."""

    def __init__(self, trades: list[dict[str, Any]]) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="velo-peers-"))
        path = self._dir / "trades.jsonl"
        with path.open("w") as f:
            for t in trades:
                f.write(json.dumps(t) + "\n")
        self._db = duckdb.connect()
        self._db.execute(
            "CREATE TABLE trades AS SELECT * FROM read_json(?, columns = {trade_id: 'BIGINT', symbol: 'VARCHAR', "
            "price: 'DOUBLE', quantity: 'BIGINT', side: 'VARCHAR', ts: 'BIGINT'})", [str(path)])
        self._db.execute("CREATE TABLE ref (symbol VARCHAR, sector VARCHAR)")
        self._db.executemany("INSERT INTO ref VALUES (?, ?)", list(SECTORS.items()))
        self._cache: dict[str, list[Row]] = {}

    def rows(self, workload: Workload) -> list[Row]:
        """The expected rows, as tuples in the order of ``workload.key``."""
        if workload.name not in self._cache:
            self._cache[workload.name] = [tuple(r) for r in self._db.execute(workload.duckdb_sql).fetchall()]
        return self._cache[workload.name]


def check(workload: Workload, expected: list[Row], output: list[Any], trade_count: int, last_ts: int) -> str | None:
    """None when ``output`` (parsed JSON rows) equals ``expected`` as a multiset; else the reason.

    Rows for the sentinels are ignored: those with a trade id from ``trade_count`` on (OVER and the
    joins emit one per record), and windows that start after ``last_ts``, the last trade (no real
    trade is in them; a system that closes a session once its time reaches the session's last event
    emits the sentinels' own sessions).
    """
    got: list[Row] = []
    for i, r in enumerate(output):
        if not isinstance(r, dict):
            return f"row {i} is not a JSON object: {str(r)[:80]}"
        if any(isinstance(r.get(k), int) and r[k] >= trade_count for k in ("trade_id", "a_id", "b_id")):
            continue
        if isinstance(r.get("window_start"), int) and r["window_start"] > last_ts:
            continue
        try:
            got.append(workload.key(r))
        except (KeyError, TypeError, ValueError) as exc:
            return f"row {i} lacks or mistypes a column ({exc!r}): {str(r)[:120]}"
    want_c = Counter(_rounded(workload, r) for r in expected)
    got_c = Counter(_rounded(workload, r) for r in got)
    if want_c == got_c:
        return None
    missing, extra = want_c - got_c, got_c - want_c
    parts = [f"{len(got)} rows vs {len(expected)} expected"]
    if missing:
        parts.append(f"{sum(missing.values())} expected rows missing (e.g. {next(iter(missing))})")
    if extra:
        parts.append(f"{sum(extra.values())} unexpected rows (e.g. {next(iter(extra))})")
    return "; ".join(parts)


def _rounded(workload: Workload, row: Row) -> Row:
    return tuple(_sig(v) if i in workload.approx else v for i, v in enumerate(row))


def _sig(v: Any) -> Any:
    """A float to 9 significant digits, so sums and averages computed in any order compare equal."""
    if not isinstance(v, float) or v == 0 or not math.isfinite(v):
        return v
    return float(f"{v:.9g}")
