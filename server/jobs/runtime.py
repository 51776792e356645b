"""One job's task: read a batch → run the compiled function → write → commit, driven by a control channel.

The loop awaits once per batch, never per record. Offsets are committed only after the sink has
acknowledged the batch's output (at-least-once). Connector trouble never kills the job: it goes
DEGRADED with the reason and retries the same batch with capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from ..connectors.base import Batch, ConnectorError, Sink, Source
from ..engine import CompiledQuery, Emitted, RecordErrors

log = logging.getLogger("velo.job")


class JobState(StrEnum):
    """The states of a job (http-api.md, "Jobs")."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    DEGRADED = "DEGRADED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


LIVE_STATES = frozenset({JobState.STARTING, JobState.RUNNING, JobState.PAUSED, JobState.DEGRADED})


@dataclass
class Transition:
    """One entry of a job's state history."""

    state: JobState
    at: datetime
    reason: str


@dataclass
class JobMetrics:
    """Counters a job keeps (read by the API and the Prometheus collector)."""

    records_in: int = 0
    records_out: int = 0
    records_failed: int = 0
    batches: int = 0
    last_batch_seconds: float = 0.0


@dataclass
class JobSpec:
    """What a job runs: its name, SQL, properties and the compiled query."""

    name: str
    sql: str
    query: CompiledQuery
    source_topic: str
    sink_topic: str
    properties: dict[str, Any] = field(default_factory=dict)
    app: str | None = None
    version: str | None = None
    batch_size: int = 2000
    batch_timeout_ms: int = 100


class Command(StrEnum):
    """Messages on a job's control channel."""

    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


_BACKOFF_START, _BACKOFF_CAP = 0.2, 5.0


class JobRuntime:
    """Runs one job as an asyncio task; controlled only through ``send()`` and ``stop()``."""

    def __init__(
        self,
        spec: JobSpec,
        source: Source,
        sink: Sink,
        on_change: Callable[[JobRuntime], None] | None = None,
    ) -> None:
        self.spec = spec
        self.source = source
        self.sink = sink
        self.metrics = JobMetrics()
        self.history: list[Transition] = []
        self.error: str | None = None
        self.created_at = datetime.now(UTC)
        self.started_at: datetime | None = None
        self._on_change = on_change
        self._control: asyncio.Queue[Command] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[frozenset[JobState], asyncio.Future[JobState]]] = []
        self._set_state(JobState.STARTING, "deployed")

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> JobState:
        return self.history[-1].state

    @property
    def name(self) -> str:
        return self.spec.name

    def _set_state(self, state: JobState, reason: str) -> None:
        if self.history and self.history[-1].state is state:
            return
        self.history.append(Transition(state, datetime.now(UTC), reason))
        log.info("job %s: %s (%s)", self.spec.name, state.value, reason)
        if state is JobState.RUNNING and self.started_at is None:
            self.started_at = self.history[-1].at
        for states, waiter in self._waiters:
            if state in states and not waiter.done():
                waiter.set_result(state)
        if self._on_change is not None:
            self._on_change(self)

    def lag(self) -> int:
        """Records waiting in the source (0 for sources without a notion of lag)."""
        lag = getattr(self.source, "lag", None)
        return int(lag()) if callable(lag) else 0

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        """Start the job's task."""
        self._task = asyncio.create_task(self._run(), name=f"velo-job-{self.spec.name}")

    async def wait_for(self, states: frozenset[JobState], timeout: float) -> JobState:
        """Wait until the job is in one of ``states`` (or ``timeout`` passes); the state then."""
        if self.state in states:
            return self.state
        entry = (states, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry[1], timeout)
        finally:
            self._waiters.remove(entry)
        return self.state

    def send(self, command: Command) -> None:
        """Put a command on the control channel; the task acts on it between batches."""
        self._control.put_nowait(command)

    async def stop(self, force: bool = False) -> None:
        """Stop the job: drain the batch in flight and commit (unless ``force``), then close."""
        if self._task is None or self._task.done():
            return
        self._set_state(JobState.STOPPING, "forced stop" if force else "stop requested")
        if force:
            self._task.cancel()
        else:
            self.send(Command.STOP)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        try:
            await self._retrying("connecting", self.sink.start)
            await self._retrying("connecting", self.source.start)
            self._set_state(JobState.RUNNING, "connected")
            await self._loop()
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", self.spec.name)
            self._set_state(JobState.FAILED, self.error)
        finally:
            await self.source.stop()
            await self.sink.stop()
            if self.state is not JobState.FAILED:
                self._set_state(JobState.STOPPED, "stopped")

    async def _loop(self) -> None:
        spec, source = self.spec, self.source
        processor = spec.query.processor("encode")
        paused = False
        while True:
            while not self._control.empty() or paused:
                command = await self._control.get()
                if command is Command.STOP:
                    return
                if command is Command.PAUSE and not paused:
                    paused = True
                    source.pause()
                    self._set_state(JobState.PAUSED, "paused")
                elif command is Command.RESUME and paused:
                    paused = False
                    source.resume()
                    self._set_state(JobState.RUNNING, "resumed")
            batch = await source.read(spec.batch_timeout_ms, spec.batch_size)
            if batch.records:
                started = time.perf_counter()
                await self._deliver(processor.process(batch.records), batch)
                self.metrics.last_batch_seconds = time.perf_counter() - started
            elif source.at_end:
                await self._deliver(processor.finish(), batch)
                return
            else:
                await self._deliver(processor.tick(int(time.time() * 1000)), batch)

    async def _deliver(self, emitted: Emitted, batch: Batch) -> None:
        """Write what the processor emitted, then commit the batch's offsets (at-least-once)."""
        if emitted.errors:
            self._record_errors(emitted.errors)
        if emitted.rows:
            await self._retrying("sink unavailable", self.sink.write, emitted.rows)
        if batch.offsets:
            await self._retrying("offset commit failed", self.source.commit, batch.offsets)
        m = self.metrics
        m.records_in += len(batch.records)
        m.records_out += len(emitted.rows)
        if batch.records:
            m.batches += 1

    def _record_errors(self, errors: RecordErrors) -> None:
        # LogAndContinue (the default strategy): count, log a sample, skip the records.
        self.metrics.records_failed += len(errors)
        record, exc = errors[0]
        log.warning(
            "job %s: %d record(s) skipped; first at %s[%s]@%s: %s",
            self.spec.name, len(errors), getattr(record, "topic", "?"),
            getattr(record, "partition", "?"), getattr(record, "offset", "?"), describe_error(exc),
        )

    async def _retrying(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn`` until it succeeds; DEGRADED while it fails, back to the prior state after."""
        delay = _BACKOFF_START
        before: JobState | None = None
        while True:
            try:
                await fn(*args)
            except ConnectorError as exc:
                if before is None:
                    before = self.state
                self._set_state(JobState.DEGRADED, f"{what}: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_CAP)
                continue
            if before is not None:
                self._set_state(before, "recovered")
            return


def describe_error(exc: Exception) -> str:
    """A user-facing reason for a record that could not be processed."""
    if isinstance(exc, orjson.JSONDecodeError):
        return f"invalid JSON ({exc})"
    if isinstance(exc, AttributeError):
        return "the record's value is not a JSON object"
    if isinstance(exc, TypeError):
        return f"type error: {exc}"
    return f"{type(exc).__name__}: {exc}"
