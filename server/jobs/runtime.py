"""One job's task: read a batch → process → write → commit, driven by a control channel.

The loop awaits once per batch, never per record. Offsets are committed only after the sink has
acknowledged the batch's output (at-least-once). Connector trouble never kills the job: it goes
DEGRADED with the reason and retries the same step with capped exponential backoff. Records that
cannot be processed follow the job's failure strategy (failures.py). A stateful job snapshots its
operator state between batches, with the source positions it covers, and restores it at start (when:
state.py; the file format: snapshots.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from ..connectors.base import Batch, ConnectorError, Headers, OutputRow, PositionReset, Sink, Source
from ..engine import Emitted, Processor, RecordErrors
from .failures import FailurePolicy, dead_letter
from .model import LIVE_STATES, JobMetrics, JobSpec, JobState, Transition
from .snapshots import SnapshotStore
from .state import StateKeeper

__all__ = ["LIVE_STATES", "Command", "JobRuntime", "JobSpec", "JobState", "describe_error"]

log = logging.getLogger("velo.job")


class Command(StrEnum):
    """Messages on a job's control channel."""

    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


class JobFailed(Exception):
    """The job cannot go on (FailBatch, or an error in the job itself); it ends FAILED."""


_BACKOFF_START, _BACKOFF_CAP = 0.2, 5.0
_PAUSED_REFRESH_S = 2.0  # how often a paused job learns its partitions' ends (its lag)
_SLOW_S = 2.0
_COMMIT_INTERVAL_S = 0.2


class JobRuntime:
    """Runs one job as an asyncio task; controlled only through ``send()`` and ``stop()``."""

    def __init__(
        self,
        spec: JobSpec,
        source: Source,
        sink: Sink,
        *,
        policy: FailurePolicy | None = None,
        dlq: Sink | None = None,
        on_change: Callable[[JobRuntime], None] | None = None,
        snapshots: SnapshotStore | None = None,
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.spec = spec
        self.source = source
        self.sink = sink
        self.policy = policy or FailurePolicy()
        self.dlq = dlq
        self.metrics = JobMetrics()
        self.history: list[Transition] = []
        self.error: str | None = None
        self.last_errors: list[str] = []  # the most recent record errors, for the job's detail view
        self.created_at = datetime.now(UTC)
        self.started_at: datetime | None = None
        self._on_change = on_change
        self._control: asyncio.Queue[Command] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[frozenset[JobState], asyncio.Future[JobState]]] = []
        self._processor: Processor | None = None
        self._idle = True  # True while the task waits for records: nothing is in flight then
        # Offsets of delivered batches, committed together at most every _COMMIT_INTERVAL_S: a commit is a
        # broker round trip, and one per batch would cost a third of the throughput. A crash in between
        # re-reads at most that interval's records (at-least-once); stop and pause commit first.
        self._uncommitted: dict[tuple[str, int], int] = {}
        self._last_commit = time.monotonic()
        # Operator state snapshots (a no-op for a job without a data dir or without state).
        self._state = StateKeeper(spec, source, self.metrics, snapshots)
        self._input_index = 0  # the input (of a merged source) the batch in hand came from
        # A restored job's first step (its topics were not checked at restore): raises ConnectorError,
        # with the reason, until the job can start (its source topic exists).
        self._prepare = prepare
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
        log.info("job %s: %s (%s)", self.spec.name, state.value, reason, extra={"job": self.spec.name})
        if state is JobState.RUNNING and self.started_at is None:
            self.started_at = self.history[-1].at
        for states, waiter in self._waiters:
            if state in states and not waiter.done():
                waiter.set_result(state)
        if self._on_change is not None:
            self._on_change(self)

    def _note(self, reason: str) -> None:
        """Record an event in the history without a change of state (the entry repeats the state)."""
        self.history.append(Transition(self.state, datetime.now(UTC), reason))
        log.info("job %s: %s", self.spec.name, reason, extra={"job": self.spec.name})
        if self._on_change is not None:
            self._on_change(self)

    def mark(self, state: JobState, reason: str) -> None:
        """Put a job that is not running (restored, never started) in ``state``."""
        if self._task is None:
            self._set_state(state, reason)

    def lag(self) -> int:
        """Records waiting in the source (0 for sources without a notion of lag)."""
        lag = getattr(self.source, "lag", None)
        return int(lag()) if callable(lag) else 0

    def partitions(self) -> list[dict[str, Any]]:
        """Per-partition offsets and lag of the job's source (empty for sources without offsets)."""
        partitions = getattr(self.source, "partitions", None)
        return list(partitions()) if callable(partitions) else []

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The job's asyncio task (None before start)."""
        return self._task

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
        """Stop the job: finish the batch in flight and commit (unless ``force``), then close."""
        if self._task is None or self._task.done():
            if self.state not in (JobState.STOPPED, JobState.FAILED):
                self._set_state(JobState.STOPPED, "stopped")
            return
        self._set_state(JobState.STOPPING, "forced stop" if force else "stop requested")
        if force or self._idle:
            # Waiting for records (or a group join) holds nothing uncommitted: cancelling it loses nothing.
            self._task.cancel()
        else:
            self.send(Command.STOP)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        sinks = [s for s in (self.sink, self.dlq) if s is not None]
        try:
            if self._prepare is not None:
                await self._wait_until_ready(self._prepare)
            # Restored before the source starts: its partitions then begin at the snapshot's positions.
            processor = self._processor = await self._state.restore(self.spec.query.processor("encode"))
            for sink in sinks:
                await self._retrying("connecting", sink.start)
            await self._retrying("connecting", self.source.start)
            # The source checked the snapshot's positions (or the committed offsets) against its topic.
            resets = self.source.take_resets()
            dropped = None
            if any(r.recreated for r in resets):
                processor, dropped = self._state.discard(processor)
                self._processor = processor
            self._set_state(JobState.RUNNING, "connected, operator state restored from its snapshot"
                            if self._state.restored else "connected")
            for reset in resets:
                self._note(_reset_reason(reset, dropped if reset.recreated else None))
            await self._loop(processor)
        except asyncio.CancelledError:
            pass
        except JobFailed as exc:
            self._fail(str(exc))
        except Exception as exc:
            log.exception("job %s failed", self.spec.name)
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            await self._final_commit()
            if self._processor is not None and self.state is not JobState.FAILED:
                # A stop, a server shutdown, a forced stop between batches: keep the state. (Mid-batch it
                # would not match any position; the last snapshot stands and the batch is read again.)
                await self._state.snapshot(self._processor)
            await self.source.stop()
            for sink in sinks:
                await sink.stop()
            self._processor = None  # operator state is released with the task
            if self.state is not JobState.FAILED:
                self._set_state(JobState.STOPPED, "stopped")

    async def _wait_until_ready(self, prepare: Callable[[], Awaitable[None]]) -> None:
        """Wait, DEGRADED with the reason, until ``prepare`` succeeds (a restored job's topics exist).

        Polls with capped exponential backoff (0.2 s → 5 s): a job may wait days for its topic, and
        each try is one metadata request. The task is idle meanwhile, so a stop cancels it at once;
        a pause is taken at once too (PAUSED, still waiting) and applied once the job has started.
        """
        delay, paused = _BACKOFF_START, False
        while True:
            try:
                await prepare()
            except ConnectorError as exc:
                reason = str(exc)
            else:
                if paused:
                    self._control.put_nowait(Command.PAUSE)  # taken before the first fetch: nothing is read
                return
            if paused:
                pass  # PAUSED says what the user asked for; the reason is in the history already
            elif self.state is not JobState.DEGRADED:
                self._set_state(JobState.DEGRADED, reason)
            elif self.history[-1].reason != reason:
                self._note(reason)  # another reason now (Kafka was down, now the topic is missing)
            try:
                command = await asyncio.wait_for(self._control.get(), delay)
            except TimeoutError:
                delay = min(delay * 2, _BACKOFF_CAP)
                continue
            if command is Command.STOP:
                raise asyncio.CancelledError  # nothing started yet: it ends as a cancelled wait does
            if command is Command.PAUSE and not paused:
                paused = True
                self._set_state(JobState.PAUSED, f"paused, {reason}")
            elif command is Command.RESUME and paused:
                paused = False
                self._set_state(JobState.DEGRADED, reason)

    async def _final_commit(self) -> None:
        """Commit what was delivered before the task ended, however it ended (bounded: Kafka may be gone)."""
        if self._uncommitted:
            with contextlib.suppress(ConnectorError, TimeoutError):
                await asyncio.wait_for(self.source.commit(self._uncommitted), _SLOW_S)
            self._uncommitted = {}

    def _fail(self, reason: str) -> None:
        self.error = reason
        self._set_state(JobState.FAILED, reason)

    async def _next_command(self, source: Source) -> Command:
        """The next command of a paused job, learning its partitions' ends meanwhile: its lag grows."""
        # One get() across the waits: cancelling a get() on a timeout could lose a command put meanwhile.
        get = asyncio.ensure_future(self._control.get())
        try:
            while not (await asyncio.wait({get}, timeout=_PAUSED_REFRESH_S))[0]:
                await source.refresh_ends()
        except BaseException:
            get.cancel()
            raise
        return get.result()

    async def _loop(self, processor: Processor) -> None:
        spec, source = self.spec, self.source
        paused = False
        while True:
            while not self._control.empty() or paused:
                await self._commit()  # nothing delivered stays uncommitted across a pause or stop
                await self._state.snapshot(processor)  # nor is any state change left out of the snapshot
                self._idle = True
                command = await self._next_command(source) if paused else await self._control.get()
                self._idle = False
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
            batch = await self._read(spec.batch_size, spec.batch_timeout_ms)
            resets = source.take_resets()  # a topic recreated under the job (found on an empty fetch)
            if resets:
                processor = self._reset_while_running(resets, processor)
            started = time.perf_counter()
            self._state.begin_batch()
            # Which partitions are still behind their end: only caught-up ones may go idle (a watermark
            # must not run ahead of partitions that are merely waiting for their turn in a backlog).
            progress = source.progress()
            if batch.records:
                # A merged (multi-input) source says which input the batch came from.
                self._input_index = getattr(source, "last_index", 0)
                # The processor's clock (idle partitions, watched files) is this driver's: it reads none.
                emitted = processor.process(batch.records, self._input_index, int(time.monotonic() * 1000), progress)
            elif source.at_end:
                # finish() closes what is open; the batch is never marked delivered, so that state is not snapshotted.
                await self._deliver(processor.finish(), batch, processor)
                await self._commit()
                return
            else:
                emitted = processor.tick(int(time.monotonic() * 1000), progress)
                if self._uncommitted:
                    await self._commit()  # idle: no reason to hold offsets back
            await self._deliver(emitted, batch, processor)
            if batch.records:
                self.metrics.observe_batch(time.perf_counter() - started)
            # Records change the state; an idle tick only when it closed windows.
            await self._state.delivered(processor, changed=bool(batch.records or emitted.rows))

    def _reset_while_running(self, resets: list[PositionReset], processor: Processor) -> Processor:
        """The source moved to ``auto.offset.reset`` (its topic was recreated): drop what belongs to the old topic.

        The state built from the old topic's records goes, and so do its offsets not committed yet
        (committed later, they would point past the new topic's end again).
        """
        topics = {r.topic for r in resets if r.recreated}
        self._uncommitted = {tp: o for tp, o in self._uncommitted.items() if tp[0] not in topics}
        dropped = None
        if topics:
            processor, dropped = self._state.discard(processor, running=True)
            self._processor = processor
        for reset in resets:
            self._note(_reset_reason(reset, dropped if reset.recreated else None))
        return processor

    async def _read(self, max_records: int, timeout_ms: int) -> Batch:
        delay = _BACKOFF_START
        while True:
            try:
                self._idle = True
                batch = await self.source.read(timeout_ms, max_records)
                self._idle = False
            except ConnectorError as exc:
                self._set_state(JobState.DEGRADED, f"source unavailable: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_CAP)
                continue
            if self.state is JobState.DEGRADED:
                self._set_state(JobState.RUNNING, "recovered")
            return batch

    async def _deliver(self, emitted: Emitted, batch: Batch, processor: Processor) -> None:
        """Write what the processor emitted, then commit the batch's offsets (at-least-once)."""
        rows = emitted.rows
        dead: list[tuple[bytes | None, bytes, Headers]] = []
        if emitted.errors:
            rows = rows + await self._handle_errors(emitted.errors, processor, dead)
        if emitted.late:
            self.metrics.records_late += len(emitted.late)
            if self.policy.late_strategy == "dead_letter":
                dead += [dead_letter(r, self.spec.name, "late record: its windows had closed") for r in emitted.late]
        if dead:
            await self._write_dead_letters(dead)
        if rows:
            await self._retrying("sink unavailable", self.sink.write, rows)
        if batch.offsets:
            self._uncommitted.update(batch.offsets)
            if time.monotonic() - self._last_commit >= _COMMIT_INTERVAL_S:
                await self._commit()
        m = self.metrics
        m.records_in += len(batch.records)
        m.records_out += len(rows)
        m.state_bytes = processor.state_bytes()
        watermark = getattr(processor, "watermark_ms", None)
        if callable(watermark):
            m.watermark_ms = watermark()
        if batch.records:
            m.batches += 1

    async def _commit(self) -> None:
        """Commit the offsets of every batch delivered so far (their output is acknowledged)."""
        if self._uncommitted:
            offsets, self._uncommitted = self._uncommitted, {}
            await self._retrying("offset commit failed", self.source.commit, offsets)
        self._last_commit = time.monotonic()

    async def _handle_errors(
        self, errors: RecordErrors, processor: Processor, dead: list[tuple[bytes | None, bytes, Headers]]
    ) -> list[OutputRow]:
        """Apply the failure strategy; returns output rows recovered by retries."""
        policy, name = self.policy, self.spec.name
        self._note_errors(errors)
        if policy.strategy == "FailBatch":
            record, exc = errors[0]
            raise JobFailed(f"FailBatch: record {_where(record)} failed: {describe_error(exc)}; "
                            "the batch was not committed")
        recovered: list[OutputRow] = []
        for record, exc in errors:
            reason = describe_error(exc)
            if policy.strategy == "RetryWithBackoff":
                rows, reason = await self._retry_record(record, processor, reason)
                if rows is not None:
                    recovered += rows
                    continue
            if policy.strategy in ("SendToDLQ", "RetryWithBackoff"):
                dead.append(dead_letter(record, name, reason))
        return recovered

    async def _retry_record(
        self, record: Any, processor: Processor, reason: str
    ) -> tuple[list[OutputRow] | None, str]:
        backoff = self.policy.retry_backoff_ms / 1000
        for _ in range(self.policy.max_retries):
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_CAP)
            self.metrics.records_retried += 1
            again = processor.process([record], self._input_index)  # a table's record goes back to its table
            if not again.errors:
                self.metrics.records_failed -= 1  # counted as failed in _note_errors; it recovered
                return list(again.rows), reason
            reason = describe_error(again.errors[0][1])
        return None, f"{reason} (after {self.policy.max_retries} retries)"

    def _note_errors(self, errors: RecordErrors) -> None:
        for _record, exc in errors:
            self.metrics.count_failure(error_label(exc))
        record, exc = errors[0]
        message = f"{_where(record)}: {describe_error(exc)}"
        self.last_errors = ([*self.last_errors, message])[-10:]
        log.warning("job %s: %d record(s) failed (%s); first at %s", self.spec.name, len(errors),
                    self.policy.strategy, message, extra={"job": self.spec.name})

    async def _write_dead_letters(self, dead: list[tuple[bytes | None, bytes, Headers]]) -> None:
        if self.dlq is None:
            raise JobFailed("the job has dead letters but no DLQ sink")
        rows = [(key, value) for key, value, _ in dead]
        headers = [h for _, _, h in dead]
        await self._retrying("DLQ unavailable", self.dlq.write, rows, headers)
        self.metrics.records_dlq += len(dead)

    async def _retrying(self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Call ``fn`` until it succeeds; DEGRADED while it fails or hangs, back to RUNNING after.

        A call still pending after ``_SLOW_S`` (a producer waiting out a broker outage) already
        shows DEGRADED: the user sees the trouble when it starts, not when a timeout expires. The
        watch is a timer, not a task, so the common case (it answers at once) costs next to nothing.
        """
        delay = _BACKOFF_START
        slow: list[bool] = []

        def mark_slow() -> None:
            slow.append(True)
            self._set_state(JobState.DEGRADED, f"{what}: waiting for Kafka")

        while True:
            timer = asyncio.get_running_loop().call_later(_SLOW_S, mark_slow)
            try:
                await fn(*args)
            except ConnectorError as exc:
                slow.append(True)
                self._set_state(JobState.DEGRADED, f"{what}: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_CAP)
                continue
            finally:
                timer.cancel()
            if slow:
                self._set_state(JobState.RUNNING, "recovered")
            return


def _reset_reason(reset: PositionReset, dropped: str | None) -> str:
    """The history entry for a source whose saved positions did not fit its topic (``dropped``: what state went)."""
    what = ("topic recreated? " if reset.recreated else "") + (f"{dropped} discarded, " if dropped else "")
    return f"source {reset.topic} {reset.cause} — {what}reading from {reset.reset} (auto.offset.reset)"


def _where(record: Any) -> str:
    return f"{getattr(record, 'topic', '?')}[{getattr(record, 'partition', '?')}]@{getattr(record, 'offset', '?')}"


def error_label(exc: Exception) -> str:
    """A short metric label for a record error."""
    if isinstance(exc, orjson.JSONDecodeError):
        return "invalid_json"
    if isinstance(exc, AttributeError):
        return "not_an_object"
    if isinstance(exc, TypeError | ValueError):
        return "type_error"
    return "evaluation_error"


def describe_error(exc: Exception) -> str:
    """A user-facing reason for a record that could not be processed."""
    if isinstance(exc, orjson.JSONDecodeError):
        return f"invalid JSON ({exc})"
    if isinstance(exc, AttributeError):
        return "the record's value is not a JSON object"
    if isinstance(exc, TypeError):
        return f"type error: {exc}"
    return f"{type(exc).__name__}: {exc}"
