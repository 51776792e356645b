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
    assert wm.current == 19_000
    wm.touch([0])
    wm.last_seen[1] = 0.0  # partition 1 last sent something long ago
    assert wm.idle(now=100.0) == 49_000
    wm.observe(1, 30_000)  # a watermark never goes back
    assert wm.current == 49_000


def test_tick_closes_windows_when_the_other_partition_is_idle() -> None:
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT symbol, COUNT(*) AS c FROM s GROUP BY symbol WINDOW TUMBLING(10s) "
        "WITH ('event.time.field' = 'ts', 'watermark.idle_timeout' = '0s')"))
    p = q.processor("rows")
    recs = [Record(orjson.dumps({"symbol": "A", "ts": t}), partition=part)
            for t, part in ((1000, 0), (2000, 1), (25_000, 0))]
    assert p.process(recs).rows == []  # partition 1 holds the watermark at 2000
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
    assert [e.values for e in out.rows] == [[2, "x"]]
    assert p.state_bytes() > 0
    assert [e.values for e in p.finish().rows] == [[1, None]]
