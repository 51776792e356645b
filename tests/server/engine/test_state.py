"""Watermarks across partitions, idle partitions, and bounded join state."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from velo.grammar.parser import parse_statement
from velo.server.connectors.base import Record, SourceProgress
from velo.server.engine.compile import compile_select
from velo.server.engine.operators.join import WATCH_INTERVAL_MS
from velo.server.engine.time import NO_WATERMARK, Watermarks


def test_watermark_is_the_minimum_over_partitions_until_one_goes_idle() -> None:
    wm = Watermarks(out_of_orderness_ms=1000, idle_timeout_ms=10_000)
    t0 = 5_000_000  # the driver's clock (ms), from any origin: time comes only through the arguments
    wm.at(t0)
    wm.observe(0, 50_000)
    wm.observe(1, 20_000)
    wm.touch([0, 1])
    # Within the idle timeout of the first record an unseen partition may still start: no watermark.
    assert wm.idle(t0 + 7_999) < 0
    wm.at(t0 + 8_000)
    wm.touch([0, 1])  # a batch at 8 s holds both partitions
    assert wm.idle(t0 + 9_999) < 0
    assert wm.idle(t0 + 10_000) == 19_000  # warm-up over, both active: the minimum
    wm.at(t0 + 15_000)
    wm.touch([0])  # only partition 0 sends on
    assert wm.idle(t0 + 18_000) == 19_000  # partition 1 silent for exactly 10 s: not idle yet
    assert wm.idle(t0 + 18_001) == 49_000  # silent for longer: idle, partition 0 alone counts
    wm.observe(1, 30_000)  # a watermark never goes back
    assert wm.current == 49_000


def test_a_restored_watermark_counts_silence_from_its_new_clock() -> None:
    wm = Watermarks(out_of_orderness_ms=0, idle_timeout_ms=10_000)
    wm.at(0)
    wm.observe(0, 100)
    wm.observe(1, 50)
    wm.at(5_000)
    wm.touch([0, 1])
    wm.at(11_000)
    wm.touch([0])
    assert wm.idle(11_000) == 50  # partition 1 silent for 6 s when the snapshot is taken
    again = Watermarks(out_of_orderness_ms=0, idle_timeout_ms=10_000)
    again.load_state(wm.state())
    # Another process, another clock: the ages count from its first reading, not from its origin.
    again.at(70_000_000)
    assert again.idle(70_000_000 + 3_999) == 50  # 6 s + 3.999 s of silence: partition 1 still holds it
    assert again.idle(70_000_000 + 4_001) == 100  # 10.001 s: idle


def _progress(partitions: range, behind: set[int]) -> SourceProgress:
    """A single-input source's progress: its partitions, and those with records still to come."""
    return SourceProgress(frozenset((0, p) for p in partitions), frozenset((0, p) for p in behind))


def test_a_partition_that_is_behind_never_goes_idle_however_long_it_is_silent() -> None:
    # A backlog read in chunks: partition 0 waits for its turn while partition 1 is read to its end.
    wm = Watermarks(out_of_orderness_ms=0, idle_timeout_ms=0)
    t0 = 1_000_000  # the driver's clock (ms)
    wm.at(t0)
    wm.follow(_progress(range(2), {0, 1}))
    wm.observe(0, 1_000)
    wm.observe(1, 5_000)
    wm.touch([0, 1])
    wm.at(t0 + 10)
    wm.follow(_progress(range(2), {0}))  # partition 1 read to its end; partition 0 still behind
    wm.observe(1, 90_000)
    wm.touch([1])
    assert wm.current == 1_000
    for later in (t0 + 200, t0 + 60_000):  # ticks between fetches, then a long stall: still behind
        assert wm.idle(later) == 1_000
    wm.at(t0 + 60_000)
    wm.follow(_progress(range(2), set()))  # partition 0's last records come: caught up too
    wm.observe(0, 2_000)
    wm.touch([0])
    assert wm.current == 2_000  # just heard from: not idle yet
    assert wm.idle(t0 + 60_001) == 90_000  # every partition caught up and silent: the maximum


def test_a_partition_not_seen_yet_that_is_behind_holds_the_watermark() -> None:
    wm = Watermarks(out_of_orderness_ms=0, idle_timeout_ms=200)
    t0 = 5_000
    wm.at(t0)
    wm.follow(_progress(range(3), {0, 1, 2}))
    for et in (10_000, 50_000, 90_000):  # only partition 2's records in the first batches
        assert wm.observe(2, et) == NO_WATERMARK
    wm.touch([2])
    # Long past the warm-up, partitions 0 and 1 (never seen, records to come) still hold it.
    assert wm.idle(t0 + 3_600_000) == NO_WATERMARK
    wm.follow(_progress(range(3), {0, 1}))
    assert wm.observe(0, 20_000) == NO_WATERMARK  # partition 1 still unseen
    assert wm.observe(1, 30_000) == 20_000  # all seen: the minimum, at once
    wm.touch([0, 1])
    assert wm.idle(t0 + 3_600_000) == 20_000


def test_with_progress_the_watermark_waits_only_for_partitions_not_seen_and_caught_up() -> None:
    # Every partition seen in the first batch: no warm-up, even with the default 10 s timeout.
    wm = Watermarks(out_of_orderness_ms=0, idle_timeout_ms=10_000)
    t0 = 7_000
    wm.at(t0)
    wm.follow(_progress(range(2), {0, 1}))
    wm.observe(0, 4_000)
    assert wm.observe(1, 3_000) == 3_000
    # A caught-up partition with nothing in it yet may start any moment: it holds the watermark for
    # idle_timeout after the first record, then stops holding it.
    wm = Watermarks(out_of_orderness_ms=0, idle_timeout_ms=10_000)
    wm.at(t0)
    wm.follow(_progress(range(3), {0, 1}))
    wm.observe(0, 4_000)
    wm.observe(1, 3_000)
    wm.touch([0, 1])
    assert wm.idle(t0 + 9_999) == NO_WATERMARK
    assert wm.idle(t0 + 10_000) == 3_000


def test_caught_up_partitions_go_idle_after_the_timeout_and_the_last_windows_close() -> None:
    wm = Watermarks(out_of_orderness_ms=0, idle_timeout_ms=200)
    t0 = 2_000_000
    wm.at(t0)
    wm.follow(_progress(range(2), set()))
    wm.observe(0, 10_000)
    wm.observe(1, 20_000)
    wm.touch([0, 1])
    wm.at(t0 + 150)
    wm.follow(_progress(range(2), set()))
    wm.observe(1, 25_000)
    wm.touch([1])
    assert wm.idle(t0 + 200) == 10_000  # partition 0 silent for exactly the timeout: not idle yet
    # Idle partitions leave the minimum at a batch too, not only at a tick: partition 1 streams on.
    wm.at(t0 + 201)
    wm.observe(1, 30_000)
    wm.touch([1])
    assert wm.current == 30_000
    assert wm.idle(t0 + 351) == 30_000  # both caught up and silent past the timeout: the maximum


def test_a_backlog_read_in_chunks_loses_nothing_with_a_zero_idle_timeout() -> None:
    # The processor as a job drives it: partition 1's records come after partition 0's whole
    # backlog, with ticks (empty reads) in between; nothing of partition 1 is late.
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT symbol, COUNT(*) AS c FROM s GROUP BY symbol WINDOW TUMBLING(10s) EMIT FINAL "
        "WITH ('event.time.field' = 'ts', 'watermark.idle_timeout' = '0s')"))
    p = q.processor("rows")

    def batch(part: int, times: range) -> list[Record]:
        return [Record(orjson.dumps({"symbol": "A", "ts": t}), partition=part) for t in times]

    now = 50_000
    out = p.process(batch(0, range(0, 60_000, 1_000)), 0, now, _progress(range(2), {0, 1}))
    assert out.rows == []
    assert p.tick(now + 500, _progress(range(2), {1})).rows == []  # partition 1 behind: it holds
    out = p.process(batch(1, range(500, 60_000, 1_000)), 0, now + 600, _progress(range(2), set()))
    assert out.late is None
    assert [e.values for e in out.rows] == [["A", 20, w, w + 10_000] for w in range(0, 50_000, 10_000)]
    last = p.tick(now + 601, _progress(range(2), set()))  # both caught up and silent: all idle
    assert [e.values for e in last.rows] == []  # the watermark is at the newest record, 59 500
    assert p.watermark_ms() == 59_500  # type: ignore[attr-defined]


def test_tick_closes_windows_when_the_other_partition_is_idle() -> None:
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT symbol, COUNT(*) AS c FROM s GROUP BY symbol WINDOW TUMBLING(10s) "
        "WITH ('event.time.field' = 'ts', 'watermark.idle_timeout' = '1s')"))
    p = q.processor("rows")
    now = 7_000  # the driver's clock (ms)
    recs = [Record(orjson.dumps({"symbol": "A", "ts": t}), partition=part)
            for t, part in ((1000, 0), (2000, 1))]
    assert p.process(recs, 0, now).rows == []
    later = [Record(orjson.dumps({"symbol": "A", "ts": 25_000}), partition=0)]
    assert p.process(later, 0, now + 500).rows == []  # partition 1 holds the watermark at 2000
    assert p.tick(now + 1_000).rows == []  # partition 1 silent for 1 s: not idle yet
    assert p.watermark_ms() == 2000  # type: ignore[attr-defined]
    out = p.tick(now + 1_001)  # silent for longer than the idle timeout: it stops holding it back
    assert [e.values for e in out.rows] == [["A", 2, 0, 10_000]]
    assert p.watermark_ms() == 25_000  # type: ignore[attr-defined]


def test_an_aggregate_after_a_join_follows_the_drivers_clock() -> None:
    # The aggregate over a join's rows has a watermark of its own: the join passes the driver's time on.
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT a.k AS k, COUNT(*) AS c FROM l a JOIN r b ON a.k = b.k WITHIN 1 SECOND GROUP BY a.k "
        "WINDOW TUMBLING (10s) EMIT FINAL WITH ('event.time.field' = 'ts', 'watermark.idle_timeout' = '1s')"))

    def rec(ts: int) -> Record:
        return Record(orjson.dumps({"k": 1, "ts": ts}))

    def run(clock: list[int | None]) -> list[list[object]]:
        p = q.processor("rows")
        out = []
        for (side, ts), now in zip(((0, 1000), (1, 1500), (0, 30_000), (1, 30_000)), clock, strict=True):
            out += p.process([rec(ts)], side, now).rows
        return [e.values for e in out]

    # Within the warm-up (1 s after the first record) nothing closes; past it, the first window does.
    assert run([5_000, 5_100, 5_200, 5_300]) == []
    assert run([5_000, 5_100, 7_000, 7_100]) == [[1, 1, 0, 10_000]]
    assert run([None, None, None, None]) == []  # no time given: time does not pass


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


def test_watched_file_table_is_re_read_when_it_changes(tmp_path: Path) -> None:
    table = tmp_path / "ref.csv"
    table.write_text("symbol,sector\nAAPL,tech\n")
    q = compile_select(parse_statement(  # type: ignore[arg-type]
        "SELECT t.symbol, r.sector FROM t LEFT JOIN ref r ON t.symbol = r.symbol WITH ('ref.type' = "
        "'file_source', 'ref.path' = 'ref.csv', 'ref.format' = 'csv', 'ref.watch' = 'true')"),
        data_dir=tmp_path)
    p = q.processor("rows")
    rec = Record(orjson.dumps({"symbol": "AAPL"}))
    now = 1_000_000  # the driver's clock (ms)
    assert [e.values for e in p.process([rec], 0, now).rows] == [["AAPL", "tech"]]
    table.write_text("symbol,sector\nAAPL,hardware\n")
    os.utime(table, (1, 1))  # a different mtime, whatever the clock's resolution
    # The file is looked at once per interval of the driver's clock, not at every batch.
    assert [e.values for e in p.process([rec], 0, now + WATCH_INTERVAL_MS - 1).rows] == [["AAPL", "tech"]]
    assert p.tick(now + WATCH_INTERVAL_MS).rows == []  # an idle tick looks at it too
    assert [e.values for e in p.process([rec], 0, now + WATCH_INTERVAL_MS + 1).rows] == [["AAPL", "hardware"]]
