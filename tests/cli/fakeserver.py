"""A scripted stand-in for velo-server's HTTP contract, served by a real uvicorn on loopback.

It lets the shell's streaming, cancellation, error and admin paths be tested before (and independently
of) the real server: same endpoints, same bodies, deterministic behaviour chosen by the SQL text:

* ``SELECT ... FROM endless``  — one row every 20 ms until cancelled or disconnected;
* ``SELECT ... FROM finite``   — three rows then ``done``;
* ``SELECT ... FROM agg``      — ``EMIT CHANGES`` upserts keyed by symbol, then ``done``;
* ``SELECT ... FROM nowhere``  — 400 ``sql_validation`` with line/column;
* ``SHOW JOBS`` rows; ``CREATE STREAM x AS ...`` a job; ``STOP JOB x`` a message; text containing
  ``BAD`` a 400 ``sql_syntax`` at the word's position.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def _err(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def _position(sql: str, word: str) -> tuple[int, int]:
    idx = sql.find(word)
    line = sql.count("\n", 0, idx) + 1
    col = idx - (sql.rfind("\n", 0, idx) + 1) + 1
    return line, col


def _job(name: str, state: str = "RUNNING", sql: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "state": state,
        "sql": sql,
        "app": None,
        "version": 1,
        "created_at": "2024-11-29T10:00:00Z",
        "started_at": "2024-11-29T10:00:01Z",
        "properties": {},
        "source": "trades",
        "sink": name,
        "metrics": {"records_in": 10, "records_out": 7, "records_failed": 0},
        "error": None,
        "history": [
            {"state": "STARTING", "at": "2024-11-29T10:00:00Z", "reason": "deployed"},
            {"state": state, "at": "2024-11-29T10:00:01Z", "reason": "started"},
        ],
    }


@dataclass
class FakeState:
    """What the tests can inspect and script."""

    token: str | None = None
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)  # DELETE /queries/{id}
    disconnected: set[str] = field(default_factory=set)  # stream closed by the client
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    disconnect_event: threading.Event = field(default_factory=threading.Event)


def create_app(state: FakeState) -> Starlette:
    async def guard(request: Request) -> Response | None:
        state.seen_headers.append(dict(request.headers))
        auth = request.headers.get("authorization")
        if state.token and request.url.path != "/health" and auth != f"Bearer {state.token}":
            return _err(401, "unauthorized", "missing or wrong token")
        return None

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("text/plain"):
            return raw.decode()
        return orjson.loads(raw) if raw else None

    async def health(request: Request) -> Response:
        await guard(request)
        running = sum(1 for j in state.jobs.values() if j["state"] == "RUNNING")
        return JSONResponse(
            {
                "status": "ok",
                "version": "0.0-fake",
                "uptime_s": 1.5,
                "jobs": {"running": running, "failed": 0},
                "kafka": {"brokers": "127.0.0.1:1", "reachable": True},
            }
        )

    async def statements(request: Request) -> Response:
        if (denied := await guard(request)) is not None:
            return denied
        body = await body_of(request)
        sql: str = body["sql"]
        state.requests.append(("POST", "/statements", body))
        if "BAD" in sql:
            line, col = _position(sql, "BAD")
            return _err(400, "sql_syntax", "Unexpected token BAD", line=line, column=col,
                        expected=["FROM", ","], statement=1)  # fmt: skip
        up = sql.strip().upper()
        if up.startswith("SELECT"):
            return _err(400, "bad_request", "send transient SELECT to /query")
        if up.startswith("SHOW JOBS"):
            rows = [[j["name"], j["state"]] for j in state.jobs.values()]
            return JSONResponse(
                {
                    "results": [
                        {
                            "statement": 1,
                            "type": "rows",
                            "message": "",
                            "columns": ["name", "state"],
                            "rows": rows,
                        }
                    ]
                }
            )
        m = re.match(r"(?is)\s*CREATE\s+STREAM\s+(\w+)\s+AS", sql)
        if m:
            name = m.group(1).lower()
            if name in state.jobs:
                return _err(409, "duplicate_job", f"job {name} already exists")
            state.jobs[name] = _job(name, sql=sql)
            return JSONResponse(
                {
                    "results": [
                        {
                            "statement": 1,
                            "type": "job",
                            "message": f"Job {name} started",
                            "job": state.jobs[name],
                        }
                    ]
                }
            )
        m = re.match(r"(?is)\s*STOP\s+JOB\s+(\w+)", sql)
        if m:
            name = m.group(1).lower()
            if name not in state.jobs:
                return _err(404, "not_found", f"no job {name}")
            del state.jobs[name]
            return JSONResponse({"results": [{"statement": 1, "type": "message", "message": f"Job {name} stopped"}]})
        return JSONResponse({"results": [{"statement": 1, "type": "message", "message": "OK"}]})

    async def query(request: Request) -> Response:
        if (denied := await guard(request)) is not None:
            return denied
        body = await body_of(request)
        state.requests.append(("POST", "/query", body))
        sql: str = body["sql"]
        limit = body.get("limit")
        if "BAD" in sql:
            line, col = _position(sql, "BAD")
            return _err(400, "sql_syntax", "Unexpected token BAD", line=line, column=col, expected=["FROM"])
        if "nowhere" in sql:
            line, col = _position(sql, "nowhere")
            return _err(400, "sql_validation", "unknown stream 'nowhere'", line=line, column=col)
        qid = f"q-{next(state.ids)}"
        low = sql.lower()
        if "from agg" in low:
            columns = [{"name": "symbol", "type": "STRING"}, {"name": "n", "type": "BIGINT"}]
            emit = "changes"
        elif low.startswith("print"):
            columns = [{"name": n, "type": "STRING"} for n in ("key", "value", "partition", "offset", "timestamp")]
            emit = "none"
        else:
            columns = [{"name": "symbol", "type": "STRING"}, {"name": "price", "type": "DOUBLE"}]
            emit = "changes" if "emit changes" in low else "none"

        async def gen() -> AsyncIterator[bytes]:
            yield orjson.dumps({"header": {"query_id": qid, "columns": columns, "emit": emit}}) + b"\n"
            sent = 0
            try:
                if "from endless" in low:
                    for i in itertools.count():
                        if qid in state.cancelled:
                            yield orjson.dumps({"done": {"rows": sent, "reason": "cancelled"}}) + b"\n"
                            return
                        if limit is not None and sent >= limit:
                            yield orjson.dumps({"done": {"rows": sent, "reason": "limit"}}) + b"\n"
                            return
                        yield orjson.dumps({"row": [f"S{i}", 100.0 + i]}) + b"\n"
                        sent += 1
                        await asyncio.sleep(0.02)
                elif "from agg" in low:
                    counts: dict[str, int] = {}
                    for sym in ["AAPL", "MSFT", "AAPL", "AAPL", "MSFT"]:
                        counts[sym] = counts.get(sym, 0) + 1
                        op = "insert" if counts[sym] == 1 else "upsert"
                        yield orjson.dumps({"row": [sym, counts[sym]], "op": op, "key": [sym]}) + b"\n"
                        sent += 1
                    yield orjson.dumps({"done": {"rows": sent, "reason": "end_of_input"}}) + b"\n"
                elif "fails" in low:
                    yield orjson.dumps({"row": ["X", 1.0]}) + b"\n"
                    yield orjson.dumps({"error": {"code": "internal", "message": "boom"}}) + b"\n"
                else:
                    rows = [["AAPL", 187.25], ["MSFT", None], ["BRK.A", 612000.5]]
                    for r in rows[: limit or None]:
                        yield orjson.dumps({"row": r}) + b"\n"
                        sent += 1
                    yield orjson.dumps({"heartbeat": 1732870000123}) + b"\n"
                    yield orjson.dumps({"done": {"rows": sent, "reason": "end_of_input"}}) + b"\n"
            except (asyncio.CancelledError, GeneratorExit):
                state.disconnected.add(qid)
                state.disconnect_event.set()
                raise

        return StreamingResponse(gen(), media_type="application/x-ndjson")

    async def cancel(request: Request) -> Response:
        if (denied := await guard(request)) is not None:
            return denied
        qid = request.path_params["qid"]
        state.requests.append(("DELETE", f"/queries/{qid}", None))
        state.cancelled.add(qid)
        return Response(status_code=204)

    async def jobs(request: Request) -> Response:
        if (denied := await guard(request)) is not None:
            return denied
        return JSONResponse({"jobs": list(state.jobs.values())})

    async def job(request: Request) -> Response:
        if (denied := await guard(request)) is not None:
            return denied
        name = request.path_params["name"]
        if name not in state.jobs:
            return _err(404, "not_found", f"no job {name}")
        if request.method == "DELETE":
            j = state.jobs.pop(name)
            return JSONResponse(dict(j, state="STOPPED"))
        return JSONResponse(state.jobs[name])

    async def job_action(request: Request) -> Response:
        if (denied := await guard(request)) is not None:
            return denied
        name, action = request.path_params["name"], request.path_params["action"]
        if name not in state.jobs:
            return _err(404, "not_found", f"no job {name}")
        j = state.jobs[name]
        if action == "pause":
            if j["state"] != "RUNNING":
                return _err(409, "invalid_state", f"job {name} is {j['state']}")
            j["state"] = "PAUSED"
        else:
            j["state"] = "RUNNING"
        return JSONResponse(j)

    async def catalog(request: Request) -> Response:
        if (denied := await guard(request)) is not None:
            return denied
        return JSONResponse(
            {
                "streams": [
                    {
                        "name": "trades",
                        "columns": [
                            {"name": "symbol", "type": "STRING"},
                            {"name": "price", "type": "DOUBLE"},
                        ],
                    }
                ],
                "tables": [],
                "topics": ["trades", "orders"],
                "jobs": list(state.jobs),
                "functions": [{"name": "AVG", "signature": "AVG(x DOUBLE) -> DOUBLE", "description": "mean"}],
            }
        )

    async def topics(request: Request) -> Response:
        if (denied := await guard(request)) is not None:
            return denied
        return JSONResponse({"topics": [{"name": "trades", "partitions": 4, "end_offsets": {"0": 5, "1": 7}}]})

    async def apps(request: Request) -> Response:
        if (denied := await guard(request)) is not None:
            return denied
        body = await body_of(request)
        state.requests.append(("POST", "/apps", body))
        sql = body if isinstance(body, str) else body["sql"]
        if "BAD" in sql:
            line, col = _position(sql, "BAD")
            return _err(400, "sql_syntax", "Unexpected token BAD", line=line, column=col, statement=2)
        names = [m.lower() for m in re.findall(r"(?i)CREATE\s+STREAM\s+(\w+)\s+AS", sql)]
        for n in names:
            state.jobs[n] = _job(n, sql=sql)
        return JSONResponse({"name": "app", "jobs": [state.jobs[n] for n in names]}, status_code=201)

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/statements", statements, methods=["POST"]),
            Route("/query", query, methods=["POST"]),
            Route("/queries/{qid}", cancel, methods=["DELETE"]),
            Route("/jobs", jobs),
            Route("/jobs/{name}", job, methods=["GET", "DELETE"]),
            Route("/jobs/{name}/{action}", job_action, methods=["POST"]),
            Route("/catalog", catalog),
            Route("/topics", topics),
            Route("/apps", apps, methods=["POST"]),
        ]
    )


class FakeServer:
    """uvicorn serving :func:`create_app` on a free loopback port, in a thread."""

    def __init__(self, token: str | None = None) -> None:
        self.state = FakeState(token=token)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(self.state), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> FakeServer:
        self.thread.start()
        started = threading.Event()

        def _poll() -> None:
            while not self.server.started and self.thread.is_alive():
                started.wait(0.01)

        _poll()
        if not self.server.started:
            raise RuntimeError("fake server did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
