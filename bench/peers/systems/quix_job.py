"""Quix Streams (3.28) applications for the peer workloads; run in Quix Streams' own virtual environment.

``python quix_job.py '<json config>'`` (keys: brokers, input, output, group, state_dir, workload,
params). One ``Application`` on a fresh consumer group from ``earliest``, its state in a fresh
directory, no changelog topics (nothing to recover in a benchmark; the other systems write none
either), JSON serializers, event time from the ``ts`` field (``timestamp_extractor``); windows use
``.agg(...).final()`` with the default per-key closing strategy. Prints ``READY <epoch seconds>``
right before ``app.run()``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson
from quixstreams import Application
from quixstreams.dataframe.windows import Count, Max, Min, Sum


def build(cfg: dict[str, Any]) -> Application:
    """The application for ``cfg["workload"]``, its StreamingDataFrame writing to the output topic."""
    p, workload = cfg["params"], cfg["workload"]
    app = Application(broker_address=cfg["brokers"], consumer_group=cfg["group"], auto_offset_reset="earliest",
                      state_dir=cfg["state_dir"], use_changelog_topics=False, loglevel=cfg.get("loglevel", "WARNING"),
                      consumer_extra_config={"session.timeout.ms": 6000})
    src = app.topic(cfg["input"], key_deserializer="str", value_deserializer="json",
                    timestamp_extractor=lambda value, headers, ts, ttype: value["ts"])
    dst = app.topic(cfg["output"], key_serializer="str", value_serializer="json")
    sdf = app.dataframe(src)
    if workload == "filter":
        sdf = sdf[(sdf["side"] == "BUY") & (sdf["quantity"] >= p["filter_min_qty"])]
        sdf = sdf.apply(lambda r: {"symbol": r["symbol"], "trade_id": r["trade_id"], "price": r["price"],
                                   "quantity": r["quantity"], "notional": r["price"] * r["quantity"]})
    elif workload in ("tumbling", "hopping", "session"):
        if workload == "tumbling":
            win: Any = sdf.tumbling_window(duration_ms=p["tumble_ms"])
        elif workload == "hopping":
            win = sdf.hopping_window(duration_ms=p["hop_size_ms"], step_ms=p["hop_advance_ms"])
        else:
            win = sdf.session_window(inactivity_gap_ms=p["session_gap_ms"])
        sdf = win.agg(cnt=Count(), sum_qty=Sum("quantity"), min_price=Min("price"), max_price=Max("price")).final()
        sdf = sdf.apply(lambda v, key, ts, headers: {"symbol": key, "window_start": v["start"],
                                                     "window_end": v["end"], "cnt": v["cnt"],
                                                     "sum_qty": v["sum_qty"], "min_price": v["min_price"],
                                                     "max_price": v["max_price"]}, metadata=True)
    elif workload == "over":
        rows = p["over_rows"]

        def avg(r: dict[str, Any], state: Any) -> dict[str, Any]:
            h = [*(state.get("h") or [])[-(rows - 1):], r["price"]] if rows > 1 else [r["price"]]
            state.set("h", h)
            return {"symbol": r["symbol"], "trade_id": r["trade_id"], "price": r["price"], "avg_price": sum(h) / len(h)}

        sdf = sdf.apply(avg, stateful=True)
    else:
        raise SystemExit(f"quix runner: no application for workload {workload!r}")
    sdf.to_topic(dst)
    return app


if __name__ == "__main__":
    application = build(orjson.loads(sys.argv[1]))
    print(f"READY {time.time()}", flush=True)
    application.run()
