"""Late records: exactly those beyond the grace are dropped (counted) or dead-lettered."""

from __future__ import annotations

import orjson
from velo.grammar.parser import parse_statement
from velo.server.connectors.base import Record
from velo.server.engine.compile import compile_select


def _rec(symbol: str, ts: int, i: int) -> Record:
    return Record(orjson.dumps({"symbol": symbol, "ts": ts}), offset=i, timestamp=ts)


def _run(sql: str, times: list[int]) -> tuple[list[list[object]], list[int], int, str]:
    q = compile_select(parse_statement(sql))
    p = q.processor("rows")
    rows: list[list[object]] = []
    late: list[int] = []
    for i, ts in enumerate(times):  # one record per batch: the watermark moves per record
        out = p.process([_rec("A", ts, i)])
        rows += [e.values for e in out.rows]
        late += [orjson.loads(m.value)["ts"] for m in out.late or ()]
    rows += [e.values for e in p.finish().rows]
    return rows, late, p.late_count, q.plan.late_strategy  # type: ignore[attr-defined]


def test_records_beyond_grace_are_dropped_and_counted() -> None:
    # Tumbling 10 s, grace 2 s: the window [0, 10000) closes once the watermark reaches 12000.
    sql = ("SELECT symbol, COUNT(*) AS c FROM s GROUP BY symbol WINDOW TUMBLING(10s) GRACE PERIOD 2s "
           "EMIT FINAL WITH ('event.time.field' = 'ts', 'watermark.idle_timeout' = '0s')")
    times = [1000, 5000, 11000, 9000, 11999, 9500, 12000, 9999, 3000, 15000, 10000]
    rows, late, count, strategy = _run(sql, times)
    # 9000 and 9500 arrive while the watermark (11000, 11999) is below 12000: still counted.
    # After 12000 the window [0, 10000) is closed: 9999 and 3000 are late; 10000 is not.
    assert late == [9999, 3000]
    assert count == 2
    assert strategy == "drop"
    assert sorted(rows) == [["A", 4, 0, 10000], ["A", 5, 10000, 20000]]


def test_dead_letter_strategy_is_in_the_plan_and_late_records_are_returned() -> None:
    sql = ("SELECT symbol, COUNT(*) AS c FROM s GROUP BY symbol WINDOW TUMBLING(10s) "
           "WITH ('event.time.field' = 'ts', 'late.data.strategy' = 'dead_letter', 'watermark.idle_timeout' = '0s', "
           "'watermark.max_out_of_orderness' = '1s')")
    rows, late, count, strategy = _run(sql, [1000, 10500, 11000, 9999, 9000, 12000])
    # Watermark = max - 1 s: 11000 makes it 10000, closing [0, 10000); 9999 and 9000 are late.
    assert strategy == "dead_letter"
    assert late == [9999, 9000]
    assert count == 2
    assert sorted(rows) == [["A", 1, 0, 10000], ["A", 3, 10000, 20000]]


def test_hopping_record_is_late_only_when_every_window_is_closed() -> None:
    sql = ("SELECT symbol, COUNT(*) AS c FROM s GROUP BY symbol WINDOW HOPPING(10s, 5s) "
           "WITH ('event.time.field' = 'ts', 'watermark.idle_timeout' = '0s')")
    # At watermark 12000: [0,10000) closed, [5000,15000) open. 7000 still counts in the second.
    rows, late, _, _ = _run(sql, [1000, 12000, 7000, 4000])
    assert late == [4000]
    assert sorted(rows) == sorted([["A", 1, -5000, 5000], ["A", 1, 0, 10000], ["A", 2, 5000, 15000],
                                   ["A", 1, 10000, 20000]])


def test_session_late_record() -> None:
    sql = ("SELECT symbol, COUNT(*) AS c FROM s GROUP BY symbol WINDOW SESSION(2s) "
           "WITH ('event.time.field' = 'ts', 'watermark.idle_timeout' = '0s')")
    rows, late, _, _ = _run(sql, [1000, 2500, 10000, 1500, 7000])
    # Watermark 10000 closed the session [1000, 4500): 1500 is late; so is 7000, whose own
    # session [7000, 9000) would already be closed.
    assert late == [1500, 7000]
    assert sorted(rows) == [["A", 1, 10000, 12000], ["A", 2, 1000, 4500]]


def test_session_record_joining_an_open_session_is_not_late() -> None:
    sql = ("SELECT symbol, COUNT(*) AS c FROM s GROUP BY symbol WINDOW SESSION(5s) "
           "WITH ('event.time.field' = 'ts', 'watermark.idle_timeout' = '0s')")
    # Session [1000 .. 9000] stays open (9000 + 5000 > watermark 12000); 6000 would alone close
    # at 11000 <= 12000 but falls within the open session, so it counts.
    rows, late, _, _ = _run(sql, [1000, 5000, 9000, 12000, 6000])
    assert late == []
    assert sorted(rows) == [["A", 5, 1000, 17000]]
