"""Running statements: the part of the shell shared by the interactive prompt and batch mode.

A :class:`Session` holds the connection, the session properties (``SET``/``UNSET``) and the output
settings. :meth:`Session.run_text` splits text into statements and routes each one (see
``statements.classify``): transient queries stream from ``POST /query``, everything else goes through
``POST /statements`` one statement at a time so that an error's line/column point into that statement.

Ctrl-C while a query streams raises KeyboardInterrupt in the main thread (the rows are read by a
background thread), which cancels the query on the server and returns a normal outcome: the shell goes
back to its prompt, batch mode stops.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from velo.cli import render
from velo.cli.client import (
    ColumnInfo,
    Done,
    Header,
    Heartbeat,
    QueryStream,
    Row,
    ServerUnreachable,
    StreamFailed,
    VeloClient,
    VeloError,
)
from velo.cli.statements import (
    Route,
    Statement,
    changes_catalog,
    parse_set,
    parse_unset,
    split_statements,
)

# Session properties under this prefix configure the shell itself and are never sent to the server
# (the server rejects unknown WITH keys).
CLI_PREFIX = "cli."

_TRUE = {"true", "on", "yes", "1"}


@dataclass
class OutputSettings:
    """How results are shown."""

    fmt: str = "table"  # finite results
    stream_fmt: str = "table"  # streamed SELECT rows
    color: bool = False
    timing: bool = True
    live: bool = False  # live in-place table for keyed EMIT CHANGES streams
    pager: str | None = None  # command line; None = never page
    interactive: bool = False
    limit: int | None = None  # batch --limit for streamed queries
    timeout: float | None = None  # batch --timeout (seconds) for streamed queries


@dataclass
class Outcome:
    """How one statement went."""

    ok: bool
    unreachable: bool = False
    interrupted: bool = False
    rows: int = 0


@dataclass
class RunResult:
    """How a whole text (``-e``, file, buffer) went."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def unreachable(self) -> bool:
        return any(o.unreachable for o in self.outcomes)

    @property
    def interrupted(self) -> bool:
        return any(o.interrupted for o in self.outcomes)


def terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size((100, 40))
    return size.columns, size.lines


def run_pager(command: str, text: str) -> bool:
    """Show ``text`` through a pager; False if the pager could not run (the caller prints instead)."""
    try:
        proc = subprocess.run(shlex.split(command), input=text, text=True, check=False)
    except (OSError, ValueError):
        return False
    return proc.returncode == 0


class Session:
    """Executes statements against one server and writes results."""

    def __init__(
        self,
        client: VeloClient,
        settings: OutputSettings | None = None,
        *,
        out: TextIO | None = None,
        console: TextIO | None = None,
        err: TextIO | None = None,
        variables: dict[str, str] | None = None,
        on_catalog_change: Callable[[], None] | None = None,
        size: Callable[[], tuple[int, int]] = terminal_size,
        pager: Callable[[str, str], bool] = run_pager,
    ) -> None:
        self.client = client
        self.settings = settings or OutputSettings()
        self.out: TextIO = out or sys.stdout  # results (``\\o FILE`` swaps this)
        self.console: TextIO = console or sys.stdout  # messages, summaries: always the terminal
        self.err: TextIO = err or sys.stderr
        self.variables = dict(variables or {})
        self.properties: dict[str, str] = {}
        self.on_catalog_change = on_catalog_change
        self.connected: bool | None = None  # None until the first answer (or failure)
        self._size = size
        self._pager = pager
        self.last_rows_per_s: float | None = None

    # ------------------------------------------------------------------ helpers

    @property
    def out_is_console(self) -> bool:
        return self.out is self.console

    def server_properties(self) -> dict[str, str]:
        return {k: v for k, v in self.properties.items() if not k.lower().startswith(CLI_PREFIX)}

    def _say(self, text: str) -> None:
        """A human message: the terminal in the shell, stderr in batch (stdout stays pure data)."""
        stream = self.console if self.settings.interactive else self.err
        stream.write(text + "\n")
        stream.flush()

    def _error(self, err: VeloError, stmt: Statement | None = None) -> None:
        if isinstance(err, ServerUnreachable):
            text = render.red(f"ERROR {err.message}", self.settings.color)
        else:
            text = render.format_error(
                err,
                stmt.text if stmt else None,
                color=self.settings.color,
                line_offset=(stmt.line - 1) if stmt else 0,
            )
        self.err.write(text + "\n")
        self.err.flush()

    def write_result(self, text: str) -> None:
        """Write a finite result; through the pager when it is taller than the terminal."""
        if not text:
            return
        if (
            self.settings.pager
            and self.settings.interactive
            and self.out_is_console
            and text.count("\n") + 1 > self._size()[1] - 2
            and self._pager(self.settings.pager, text + "\n")
        ):
            return
        self.out.write(text + "\n")
        self.out.flush()

    def _mark(self, ok: bool) -> None:
        self.connected = ok

    # ------------------------------------------------------------------ entry points

    def run_text(self, text: str, *, on_error: str = "stop", line_offset: int = 0) -> RunResult:
        """Run every statement of ``text``; stop at the first failure when ``on_error == 'stop'``.

        A server that cannot be reached stops the run whatever ``on_error`` says: every later
        statement would fail the same way.
        """
        result = RunResult()
        for stmt in split_statements(text):
            if line_offset:
                stmt = Statement(stmt.text, stmt.line + line_offset)
            outcome = self.run_statement(stmt)
            result.outcomes.append(outcome)
            if outcome.interrupted or outcome.unreachable:
                break
            if not outcome.ok and on_error == "stop":
                break
        return result

    def run_statement(self, stmt: Statement) -> Outcome:
        route = stmt.route
        try:
            if route is Route.EMPTY:
                return Outcome(True)
            if route is Route.SET:
                return self._set(stmt)
            if route is Route.UNSET:
                return self._unset(stmt)
            if route is Route.QUERY:
                return self._query(stmt)
            return self._statements(stmt)
        except ServerUnreachable as exc:
            self._mark(False)
            self._error(exc, stmt)
            return Outcome(False, unreachable=True)
        except VeloError as exc:
            self._mark(True)
            self._error(exc, stmt)
            return Outcome(False)

    # ------------------------------------------------------------------ SET / UNSET

    def _set(self, stmt: Statement) -> Outcome:
        parsed = parse_set(stmt.text)
        if parsed is None:
            self._error(VeloError("sql_syntax", "expected SET 'key' = 'value'"), stmt)
            return Outcome(False)
        key, value = parsed
        self.properties[key] = value
        if key.lower() == "cli.live":
            self.settings.live = value.strip().lower() in _TRUE
        if self.settings.interactive:
            self._say(f"Set {key!r} = {value!r}")
        return Outcome(True)

    def _unset(self, stmt: Statement) -> Outcome:
        key = parse_unset(stmt.text)
        if key is None:
            self._error(VeloError("sql_syntax", "expected UNSET 'key'"), stmt)
            return Outcome(False)
        removed = self.properties.pop(key, None)
        if self.settings.interactive:
            self._say(f"Unset {key!r}" if removed is not None else f"{key!r} was not set")
        return Outcome(True)

    # ------------------------------------------------------------------ POST /statements

    def _statements(self, stmt: Statement) -> Outcome:
        started = time.monotonic()
        results = self.client.statements(stmt.text, self.server_properties(), self.variables)
        self._mark(True)
        elapsed = time.monotonic() - started
        rows_total = 0
        for r in results:
            kind = r.get("type")
            if kind == "rows":
                columns = [str(c) for c in r.get("columns") or []]
                rows = [row if isinstance(row, list) else [row] for row in r.get("rows") or []]
                rows_total += len(rows)
                self.write_result(render.render(self.settings.fmt, columns, rows))
                if self.settings.interactive and self.settings.timing:
                    self._say(render.dim(render.rows_summary(len(rows), elapsed), self.settings.color))
            else:
                message = str(r.get("message") or "")
                job = r.get("job")
                if not message and isinstance(job, dict):
                    message = f"job {job.get('name')}: {job.get('state')}"
                if message:
                    self._say(message)
        if changes_catalog(stmt.text) and self.on_catalog_change is not None:
            self.on_catalog_change()
        return Outcome(True, rows=rows_total)

    # ------------------------------------------------------------------ POST /query

    def _query(self, stmt: Statement) -> Outcome:
        stream = self.client.open_query(stmt.text, self.server_properties(), self.settings.limit)
        runner = _QueryRun(self, stream, stmt)
        try:
            return runner.run()
        except KeyboardInterrupt:
            runner.interrupt()
            return runner.finish(interrupted=True)


class _QueryRun:
    """One streamed query being shown: plain rows, or a live table once keyed updates arrive."""

    REDRAW_S = 0.1

    def __init__(self, session: Session, stream: QueryStream, stmt: Statement) -> None:
        self.s = session
        self.stream = stream
        self.stmt = stmt
        self.started = time.monotonic()
        self.rows = 0
        self.header: Header | None = None
        self.printer: render.StreamPrinter | None = None
        self.live: render.LiveTable | None = None
        self.live_lines = 0  # lines of the last live frame (to move the cursor back over them)
        self.header_lines = 0
        self.dirty = False
        self.last_draw = 0.0
        self.error: VeloError | None = None
        self.reason: str | None = None
        deadline = session.settings.timeout
        self.deadline = self.started + deadline if deadline else None

    # ------------------------------------------------------------------ reading

    def run(self) -> Outcome:
        while True:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.reason = "timeout"
                self.stream.cancel()
                break
            wait = self.REDRAW_S
            if self.deadline is not None:
                wait = max(0.0, min(wait, self.deadline - time.monotonic()))
            event = self.stream.get(timeout=wait)
            if event is None:
                if self.stream.finished:
                    break
                self._maybe_redraw()
                continue
            if isinstance(event, Header):
                self._on_header(event)
            elif isinstance(event, Row):
                self._on_row(event)
            elif isinstance(event, Heartbeat):
                self._maybe_redraw()
            elif isinstance(event, Done):
                self.reason = event.reason
                break
            elif isinstance(event, StreamFailed):
                self.error = event.error
                break
        return self.finish(interrupted=False)

    def interrupt(self) -> None:
        # A second Ctrl-C while cancelling is ignored: the connection is already being dropped.
        with contextlib.suppress(KeyboardInterrupt):
            self.stream.cancel()
        self.reason = "cancelled"

    # ------------------------------------------------------------------ events

    def _live_allowed(self) -> bool:
        st = self.s.settings
        return st.live and st.interactive and self.s.out_is_console and st.stream_fmt == "table"

    def _on_header(self, header: Header) -> None:
        self.s._mark(True)
        self.header = header
        names = [c.name for c in header.columns]
        self.printer = render.stream_printer(self.s.settings.stream_fmt, names, [c.type for c in header.columns])
        text = self.printer.header()
        self.header_lines = text.count("\n")
        self._emit(text)

    def _on_row(self, row: Row) -> None:
        self.rows += 1
        if self.live is None and self.rows == 1 and row.key is not None and self._live_allowed():
            # First keyed update of an EMIT CHANGES aggregate: switch to the in-place table, drawing
            # over the header lines just printed.
            self.live = render.LiveTable([c.name for c in self.header.columns] if self.header else [])
            self.live_lines = self.header_lines
        if self.live is not None:
            self.live.apply(row.values, row.op, row.key)
            self.dirty = True
            self._maybe_redraw()
            return
        if self.printer is None:  # rows before a header: tolerate a server that skipped it
            self._on_header(Header("", [ColumnInfo(f"col{i + 1}") for i in range(len(row.values))]))
        assert self.printer is not None
        self._emit(self.printer.row(row.values, row.op))

    def _emit(self, text: str) -> None:
        if text:
            self.s.out.write(text)
            self.s.out.flush()

    # ------------------------------------------------------------------ live table

    def _maybe_redraw(self, force: bool = False) -> None:
        if self.live is None or not (self.dirty or force):
            return
        now = time.monotonic()
        if not force and now - self.last_draw < self.REDRAW_S:
            return
        self.last_draw = now
        self.dirty = False
        cols, lines = self.s._size()
        frame = self.live.render(max_rows=max(1, lines - 8))
        elapsed = max(now - self.started, 1e-6)
        rate = self.live.updates / elapsed
        self.s.last_rows_per_s = rate
        status = f"{len(self.live.rows)} keys · {self.live.updates} updates · {rate:.1f} rows/s" + (
            "" if force else " · Ctrl-C to stop"
        )
        frame.append(render.dim(status, self.s.settings.color))
        # Cursor to the first line of the previous frame, clear to the end of the screen, redraw.
        prefix = f"\x1b[{self.live_lines}F\x1b[J" if self.live_lines else ""
        clipped = [line[: cols * 4] for line in frame]
        self.s.out.write(prefix + "\n".join(clipped) + "\n")
        self.s.out.flush()
        self.live_lines = len(frame)

    # ------------------------------------------------------------------ end

    def finish(self, interrupted: bool) -> Outcome:
        elapsed = time.monotonic() - self.started
        if self.rows:
            self.s.last_rows_per_s = self.rows / max(elapsed, 1e-6)
        if self.live is not None:
            self._maybe_redraw(force=True)
        elif self.printer is not None and self.header is not None:
            self._emit(self.printer.footer() if self.rows else "")
        self.stream.wait_closed(0.5)
        if self.s.settings.interactive and (self.header is not None or interrupted):
            summary = render.rows_summary(self.rows, elapsed)
            if interrupted or self.reason == "cancelled":
                summary += " (cancelled)"
            elif self.reason == "shutdown":
                summary += " (server shutting down)"
            self.s._say(render.dim(summary, self.s.settings.color))
        if self.error is not None:
            if isinstance(self.error, ServerUnreachable):
                self.s._mark(False)
                self.s._error(self.error)
                return Outcome(False, unreachable=True, rows=self.rows)
            self.s._mark(True)
            # Before the header, a position in the error points into this statement: show the caret.
            self.s._error(self.error, self.stmt if self.header is None else None)
            return Outcome(False, rows=self.rows)
        return Outcome(True, interrupted=interrupted, rows=self.rows)


def env_pager(configured: str | None) -> str | None:
    """``$PAGER`` wins over the config; ``""`` disables paging."""
    value = os.environ.get("PAGER", configured)
    return value or None
