"""What a state snapshot costs for a big state: encode (the job's loop waits), write (a thread), restore.

No broker: each operator is filled in memory, then snapshotted the way the job runtime does it
(``Processor.snapshot()`` + ``SnapshotStore.save``). The encode time is what a job pauses for; the
runtime spaces snapshots at least ten times that apart (server/jobs/state.py, _SNAPSHOT_BUDGET).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from velo.grammar import ast
from velo.grammar.parser import parse_statement
from velo.server.connectors.base import Record
from velo.server.engine.compile import compile_select
from velo.server.jobs.snapshots import Snapshot, SnapshotStore

PROPS = "'event.time.field' = 'ts', 'watermark.idle_timeout' = '0ms'"
GROUP_BY = "SELECT k, COUNT(*) AS n, SUM(v) AS s FROM t GROUP BY k"
CASES: list[tuple[str, str, int, int]] = [
    # (label, query, records, distinct keys)
    ("GROUP BY, 1M groups (COUNT, SUM)", GROUP_BY, 1_000_000, 1_000_000),
    ("GROUP BY, 100k groups (COUNT, SUM)", GROUP_BY, 100_000, 100_000),
    ("tumbling 1h, 100k keys x 1 window", "SELECT k, COUNT(*) AS n, AVG(v) AS a FROM t GROUP BY k "
     "WINDOW TUMBLING (SIZE 1 HOUR) EMIT FINAL", 200_000, 100_000),
    ("session 1h gap, 100k sessions", "SELECT k, COUNT(*) AS n FROM t GROUP BY k WINDOW SESSION (1 HOUR) "
     "EMIT FINAL", 200_000, 100_000),
    ("stream-stream join, 100k buffered rows", "SELECT a.k AS k, b.v AS v FROM t a JOIN u b ON a.k = b.k "
     "WITHIN 1 HOUR", 100_000, 100_000),
    ("OVER, 100k partitions (LAG, ROWS 5)", "SELECT k, LAG(v) OVER (PARTITION BY k) AS p, AVG(v) OVER "
     "(PARTITION BY k ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS a FROM t", 200_000, 100_000),
]


def records(n: int, keys: int, offset: int = 0) -> list[Record]:
    return [Record(orjson.dumps({"k": f"key{j % keys}", "v": j, "ts": 1000 + j % 1000}), offset=j)
            for j in range(offset, offset + n)]


def measure(label: str, sql: str, n: int, keys: int, store: SnapshotStore) -> None:
    stmt = parse_statement(f"{sql} WITH ({PROPS})")
    assert isinstance(stmt, ast.Select)
    query = compile_select(stmt)
    p: Any = query.processor("encode")
    for i in range(0, n, 10_000):  # the one input (index 1 for the join's other side: unmatched, buffered)
        p.process(records(10_000, keys, i), 1 if "JOIN" in sql else 0)
    started = time.perf_counter()
    state = p.snapshot()
    encoded = time.perf_counter()
    size = store.save("bench", Snapshot("x", {(0, "t", 0): n}, state))
    written = time.perf_counter()
    fresh: Any = query.processor("encode")
    fresh.restore(state)
    restored = time.perf_counter()
    codec = "marshal" if state[3:4] == b"M" else "pickle"
    print(f"{label:42} encode {encoded - started:6.2f}s  write+fsync {written - encoded:5.2f}s  "
          f"restore {restored - written:5.2f}s  {size / 1e6:6.1f} MB ({codec})", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SnapshotStore(Path(tmp))
        for case in CASES:
            measure(*case, store)


if __name__ == "__main__":
    main()
