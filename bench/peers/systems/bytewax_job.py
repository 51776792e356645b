"""Bytewax (0.21) dataflows for the peer workloads; run in Bytewax's own virtual environment.

``python bytewax_job.py '<json config>'`` (keys: brokers, input, output, workload, params). Reads the
input with ``bytewax.connectors.kafka`` from the beginning (``tail=True``: it keeps running like a
streaming job), one worker, and prints ``READY <epoch seconds>`` right before the dataflow runs.
Windows use an ``EventClock`` on the ``ts`` field (per key, as Bytewax's window state is) with
``wait_for_system_duration = 10 s`` (see ``WAIT_S``), aligned to the epoch.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
import orjson
from bytewax._bytewax import cli_main
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import (
    EventClock,
    SessionWindower,
    SlidingWindower,
    TumblingWindower,
    fold_window,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
loads, dumps = orjson.loads, orjson.dumps
# Bytewax's event clock also advances a key's watermark with the system time passed since the key's
# latest event: replaying a backlog, a key unseen for a few milliseconds of wall time would see its
# next (in-order) trades as late. A 10 s wait keeps the clock from running ahead; closing the last
# windows is the sentinels' job, as for every system.
WAIT_S = 10


def _ts(r: dict[str, Any]) -> datetime:
    return EPOCH + timedelta(milliseconds=r["ts"])


def _new() -> list[Any]:
    return [0, 0, None, None, None]  # count, sum qty, min price, max price, first ts


def _fold(acc: list[Any], r: dict[str, Any]) -> list[Any]:
    p = r["price"]
    acc[0] += 1
    acc[1] += r["quantity"]
    acc[2] = p if acc[2] is None or p < acc[2] else acc[2]
    acc[3] = p if acc[3] is None or p > acc[3] else acc[3]
    acc[4] = r["ts"] if acc[4] is None or r["ts"] < acc[4] else acc[4]
    return acc


def _merge(a: list[Any], b: list[Any]) -> list[Any]:
    return [a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3]), min(a[4], b[4])]


def build(cfg: dict[str, Any]) -> Dataflow:
    """The dataflow for ``cfg["workload"]``: Kafka in, the workload, Kafka out."""
    p, workload = cfg["params"], cfg["workload"]
    flow = Dataflow("peer_bench")
    src = kop.input("in", flow, brokers=[cfg["brokers"]], topics=[cfg["input"]], tail=True)
    if workload == "filter":
        min_qty = p["filter_min_qty"]

        def fp(m: Any) -> KafkaSinkMessage[bytes, bytes] | None:
            r = loads(m.value)
            if r["side"] == "BUY" and r["quantity"] >= min_qty:
                return KafkaSinkMessage(m.key, dumps({"symbol": r["symbol"], "trade_id": r["trade_id"],
                                                      "price": r["price"], "quantity": r["quantity"],
                                                      "notional": r["price"] * r["quantity"]}))
            return None

        out = op.filter_map("fp", src.oks, fp)
    elif workload in ("tumbling", "hopping", "session"):
        keyed = op.map("kv", src.oks, lambda m: (m.key.decode(), loads(m.value)))
        clock = EventClock(_ts, wait_for_system_duration=timedelta(seconds=WAIT_S))
        if workload == "tumbling":
            size = advance = p["tumble_ms"]
            windower: Any = TumblingWindower(length=timedelta(milliseconds=size), align_to=EPOCH)
        elif workload == "hopping":
            size, advance = p["hop_size_ms"], p["hop_advance_ms"]
            windower = SlidingWindower(length=timedelta(milliseconds=size), offset=timedelta(milliseconds=advance),
                                       align_to=EPOCH)
        else:
            size = advance = 0
            windower = SessionWindower(gap=timedelta(milliseconds=p["session_gap_ms"]))
        win = fold_window("agg", keyed, clock, windower, _new, _fold, _merge)

        def enc(kv: tuple[str, tuple[int, list[Any]]]) -> KafkaSinkMessage[bytes, bytes]:
            sym, (wid, acc) = kv
            # A sliding window's id counts offsets from align_to (the epoch); a session starts at its first event.
            start = wid * advance if size else acc[4]
            return KafkaSinkMessage(sym.encode(), dumps({"symbol": sym, "window_start": start, "cnt": acc[0],
                                                         "sum_qty": acc[1], "min_price": acc[2],
                                                         "max_price": acc[3]}))

        out = op.map("enc", win.down, enc)
    elif workload == "over":
        rows = p["over_rows"]
        keyed = op.map("kv", src.oks, lambda m: (m.key.decode(), loads(m.value)))

        def avg(h: list[float] | None, r: dict[str, Any]) -> tuple[list[float], bytes]:
            h = [*(h or [])[-(rows - 1):], r["price"]] if rows > 1 else [r["price"]]
            return h, dumps({"symbol": r["symbol"], "trade_id": r["trade_id"], "price": r["price"],
                             "avg_price": sum(h) / len(h)})

        over = op.stateful_map("over", keyed, avg)
        out = op.map("enc", over, lambda kv: KafkaSinkMessage(kv[0].encode(), kv[1]))
    else:
        raise SystemExit(f"bytewax runner: no dataflow for workload {workload!r}")
    kop.output("out", out, brokers=[cfg["brokers"]], topic=cfg["output"])
    return flow


if __name__ == "__main__":
    flow = build(orjson.loads(sys.argv[1]))
    print(f"READY {time.time()}", flush=True)
    cli_main(flow, workers_per_process=1)
