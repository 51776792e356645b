"""Watermarks across partitions, idle partitions, and bounded join state."""

from __future__ import annotations

import orjson
from velo.grammar.parser import parse_statement
from velo.server.connectors.base import Record
from velo.server.engine.compile import compile_select
from velo.server.engine.time import Watermarks


def test_watermark_is_the_minimum_over_partitions_until_one_goes_idle() -> None:
    wm = Watermarks(out_of_orderness_ms=1000, idle_timeout_ms=10_000)
    wm.observe(0, 50_000)
    wm.observe(1, 20_000)
    # Within the idle timeout of the first record an unseen partition may still start: no watermark.
    assert wm.current < 0
    assert wm.started is not None
    start = wm.started
    wm.touch([0, 1])
    wm.last_seen = {0: start + 11, 1: start + 11}
    assert wm.idle(now=start + 11) == 19_000  # both active: the minimum
    wm.last_seen[1] = start  # partition 1 has been silent for 11 s: idle
    assert wm.idle(now=start + 11) == 49_000
    wm.observe(1, 30_000)  # a watermark never goes back
    assert wm.current == 49_000


def test_tick_closes_windows_when_the_other_partition_is_idle() -> None:
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT symbol, COUNT(*) AS c FROM s GROUP BY symbol WINDOW TUMBLING(10s) "
        "WITH ('event.time.field' = 'ts', 'watermark.idle_timeout' = '1ms')"))
    p = q.processor("rows")
    recs = [Record(orjson.dumps({"symbol": "A", "ts": t}), partition=part)
            for t, part in ((1000, 0), (2000, 1), (25_000, 0))]
    assert p.process(recs).rows == []  # partition 1 holds the watermark at 2000
    import time

    time.sleep(0.01)  # partition 1 goes idle (1 ms)
    out = p.tick(0)
    assert [e.values for e in out.rows] == [["A", 2, 0, 10_000]]
    assert p.watermark_ms() == 25_000  # type: ignore[attr-defined]


def test_unbounded_stream_join_caps_its_rows_and_emits_expired_outer_rows() -> None:
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT a.k AS k, b.v AS v FROM l a LEFT JOIN r b ON a.k = b.k "
        "WITH ('join.state.max_rows' = '2', 'event.time.field' = 'ts')"))
    assert q.plan.warnings and "unbounded" in q.plan.warnings[0]
    p = q.processor("rows")
    left = [Record(orjson.dumps({"k": i, "ts": i})) for i in range(3)]
    out = p.process(left, 0)
    # Three rows exceed the cap of two: the oldest (k=0) is evicted and, unmatched, emitted.
    assert [e.values for e in out.rows] == [[0, None]]
    out = p.process([Record(orjson.dumps({"k": 2, "v": "x", "ts": 5}))], 1)
    # The match comes out; the new row makes three again, so k=1 (unmatched) is evicted.
    assert [e.values for e in out.rows] == [[2, "x"], [1, None]]
    assert p.state_bytes() > 0
    assert p.finish().rows == []


def test_watched_file_table_is_re_read_when_it_changes(tmp_path: object) -> None:
    import os
    from pathlib import Path

    from velo.server.engine.operators import join

    base = Path(str(tmp_path))
    table = base / "ref.csv"
    table.write_text("symbol,sector\nAAPL,tech\n")
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT t.symbol, r.sector FROM t LEFT JOIN ref r ON t.symbol = r.symbol WITH ('ref.type' = "
        "'file_source', 'ref.path' = 'ref.csv', 'ref.format' = 'csv', 'ref.watch' = 'true')"),
        data_dir=base)
    p = q.processor("rows")
    rec = Record(orjson.dumps({"symbol": "AAPL"}))
    assert [e.values for e in p.process([rec]).rows] == [["AAPL", "tech"]]
    table.write_text("symbol,sector\nAAPL,hardware\n")
    os.utime(table, (1, 1))  # a different mtime, whatever the clock's resolution
    join._WATCH_INTERVAL_S = 0.0
    try:
        assert [e.values for e in p.process([rec]).rows] == [["AAPL", "hardware"]]
    finally:
        join._WATCH_INTERVAL_S = 1.0
