"""Pathway (0.33) pipelines for the peer workloads; run in Pathway's own virtual environment.

``python pathway_job.py '<json config>'`` (keys: brokers, input, output, group, workload, params).
Reads the input with ``pw.io.kafka.read`` (JSON, a typed schema, a fresh consumer group from
``earliest``, streaming mode) and writes with ``pw.io.kafka.write`` (JSON; Pathway adds its ``time``
and ``diff`` fields). Windows are ``windowby`` on the ``ts`` column per symbol (``instance``) with
``exactly_once_behavior()``: one final row per window, which is EMIT FINAL. Prints ``READY <epoch
seconds>`` right before ``pw.run()``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pathway as pw


class Trade(pw.Schema):
    trade_id: int
    symbol: str
    price: float
    quantity: int
    side: str
    ts: int


def build(cfg: dict[str, Any]) -> None:
    """Declare the pipeline for ``cfg["workload"]`` (Kafka in, the workload, Kafka out) in Pathway's graph."""
    p, workload = cfg["params"], cfg["workload"]
    settings = {"bootstrap.servers": cfg["brokers"], "group.id": cfg["group"], "auto.offset.reset": "earliest",
                "session.timeout.ms": "6000"}
    t = pw.io.kafka.read(settings, topic=cfg["input"], format="json", schema=Trade, mode="streaming")
    if workload == "filter":
        out = t.filter((t.side == "BUY") & (t.quantity >= p["filter_min_qty"])).select(
            pw.this.symbol, pw.this.trade_id, pw.this.price, pw.this.quantity,
            notional=pw.this.price * pw.this.quantity)
    elif workload in ("tumbling", "hopping", "session"):
        if workload == "tumbling":
            window = pw.temporal.tumbling(duration=p["tumble_ms"], origin=0)
        elif workload == "hopping":
            window = pw.temporal.sliding(hop=p["hop_advance_ms"], duration=p["hop_size_ms"], origin=0)
        else:
            window = pw.temporal.session(max_gap=p["session_gap_ms"])
        out = t.windowby(t.ts, window=window, instance=t.symbol,
                         behavior=pw.temporal.exactly_once_behavior()).reduce(
            symbol=pw.this._pw_instance, window_start=pw.this._pw_window_start,
            cnt=pw.reducers.count(), sum_qty=pw.reducers.sum(pw.this.quantity),
            min_price=pw.reducers.min(pw.this.price), max_price=pw.reducers.max(pw.this.price))
        if workload == "session":
            # A session's window_start is its first event (Pathway's session start is the same, but say so).
            out = out.select(pw.this.symbol, pw.this.window_start, pw.this.cnt, pw.this.sum_qty,
                             pw.this.min_price, pw.this.max_price)
    elif workload == "interval_join":
        other = t.copy()  # a self-join: the same table twice
        d = p["interval_ms"]
        out = pw.temporal.interval_join(t, other, t.ts, other.ts, pw.temporal.interval(-d, d),
                                        t.symbol == other.symbol).select(
            symbol=pw.left.symbol, a_id=pw.left.trade_id, b_id=pw.right.trade_id)
    else:
        raise SystemExit(f"pathway runner: no pipeline for workload {workload!r}")
    pw.io.kafka.write(out, {"bootstrap.servers": cfg["brokers"]}, topic_name=cfg["output"], format="json")


if __name__ == "__main__":
    build(json.loads(sys.argv[1]))
    print(f"READY {time.time()}", flush=True)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
