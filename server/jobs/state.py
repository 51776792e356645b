"""When a job's operator state is snapshotted, and its restore at start (the file format: snapshots.py).

A ``StateKeeper`` belongs to one ``JobRuntime``, which calls it at a few points: ``restore`` before the
source starts, ``begin_batch`` / ``delivered`` around every batch, ``snapshot`` at pause and stop and
when the task ends. Snapshots are taken between batches only — after a batch's output was
acknowledged, never while one is in flight — so the state has seen exactly the records before the
positions stored with it: every snapshot interval while the state changes, and at pause and stop.

"Operator state" is the processor's (groups, windows, join buffers), not the job's ``JobState``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..connectors.base import Positions, Source
from ..engine import Processor
from .model import JobMetrics, JobSpec
from .snapshots import Snapshot, SnapshotStore, fingerprint

__all__ = ["StateKeeper"]

log = logging.getLogger("velo.job")

# A source that cannot say its positions in this long (a broker gone) skips the snapshot; the next one retries.
_POSITIONS_TIMEOUT_S = 2.0
# A snapshot of a big state takes a while (the loop waits meanwhile): snapshots are spaced at least this many
# times their own duration apart, so they never take more than about a tenth of the job's time.
_SNAPSHOT_BUDGET = 10


class StateKeeper:
    """Restores one job's operator state at start and snapshots it between batches."""

    def __init__(self, spec: JobSpec, source: Source, metrics: JobMetrics, store: SnapshotStore | None) -> None:
        self.spec = spec
        self.source = source
        self.metrics = metrics
        self.restored = False  # the running processor started from a snapshot
        # None for a job without a data dir, and once the job turns out to keep no state or its source
        # cannot seek: from then on every call is a no-op.
        self._store = store
        self._fingerprint = fingerprint(spec.query) if store is not None else ""
        self._dirty = False  # the state changed since the last snapshot (or the restore)
        self._consistent = True  # the state covers exactly the delivered batches (False while one is in flight)
        self._last_snapshot = time.monotonic()
        self._gap = spec.snapshot_interval_ms / 1000
        self._writing: asyncio.Task[int] | None = None

    async def restore(self, processor: Processor) -> Processor:
        """Restore ``processor`` from the job's snapshot when one fits its query; the processor to run.

        Called before the source starts: it is told to start at the snapshot's positions. A snapshot
        of another query (or of none that keeps state) is deleted, with a log line: the job starts with
        empty state, from its committed offsets, as it would have without snapshots.
        """
        store, name = self._store, self.spec.name
        if store is None:
            return processor
        if processor.snapshot() is None:
            self._store = None  # a stateless query: nothing to keep
            if store.exists(name):
                store.delete(name)
                log.info("job %s: its query keeps no state; removed the state snapshot of an earlier query",
                         name, extra={"job": name})
            return processor
        # Reading and rebuilding a big state takes seconds (1M groups: ~3 s): in a thread, so that the
        # other jobs' loops (and the API) keep getting turns meanwhile.
        snapshot = await asyncio.to_thread(store.load, name)
        if snapshot is None:
            return processor
        if snapshot.fingerprint != self._fingerprint:
            store.delete(name)
            log.info("job %s: its query changed since its state snapshot was taken; starting with empty state "
                     "from the committed offsets", name, extra={"job": name})
            return processor
        try:
            await asyncio.to_thread(processor.restore, snapshot.state)  # nobody else holds the processor yet
        except Exception as exc:
            store.delete(name)
            log.warning("job %s: its state snapshot cannot be restored (%s); starting with empty state from the "
                        "committed offsets", name, exc, extra={"job": name})
            return self.spec.query.processor("encode")  # nothing half-restored
        self.source.seek(snapshot.positions)
        self.restored = True
        log.info("job %s: operator state restored from its snapshot (%d bytes); reading on from its positions %s",
                 name, len(snapshot.state), _describe(snapshot.positions), extra={"job": name})
        return processor

    def discard(self, processor: Processor, running: bool = False) -> tuple[Processor, str | None]:
        """A source found its topic recreated: drop the operator state; the processor to run and what went.

        The state was built from the old topic's records, at positions the new topic does not have.
        It cannot be split by source (a join holds both sides; a GROUP BY merges its inputs), so all
        of it goes, and the snapshot file with it: a crash before the next snapshot then restarts
        from the offsets the source committed for its new start, with empty state. At start only a
        restored state is stale (``"snapshot"``); while ``running``, whatever the processor holds
        (``"operator state"``). None when there was nothing to drop.
        """
        if running:
            if processor.state_bytes() == 0:
                return processor, None
            dropped = "operator state"
        elif self.restored:
            dropped = "snapshot"
        else:
            return processor, None  # a fresh processor: nothing to drop
        self.restored = False
        if self._store is not None:
            self._store.delete(self.spec.name)
            self._dirty = True  # the next snapshot is taken with the new positions, even before a record
        log.warning("job %s: its source topic was recreated; its %s is discarded", self.spec.name, dropped,
                    extra={"job": self.spec.name})
        return self.spec.query.processor("encode"), dropped

    def begin_batch(self) -> None:
        """A batch is in flight: until ``delivered``, the state matches no position and is not snapshotted."""
        self._consistent = False

    async def delivered(self, processor: Processor, changed: bool) -> None:
        """The batch's output was acknowledged; snapshot if the state ``changed`` and the interval is up.

        Between snapshots this costs the hot path one comparison per batch.
        """
        self._consistent = True
        self._dirty = self._dirty or changed
        if self._dirty and time.monotonic() - self._last_snapshot >= self._gap:
            await self.snapshot(processor)

    async def snapshot(self, processor: Processor) -> None:
        """Store the operator state with the positions it covers, when it changed since the last snapshot.

        Only between batches, so the state has seen exactly the records before the positions, and
        their output is acknowledged. A failure is logged and the job goes on: the previous snapshot
        still matches its own positions, so a restart from it only reads more again.
        """
        store = self._store
        if store is None or not self._dirty or not self._consistent:
            return
        started = time.perf_counter()
        try:
            positions = await asyncio.wait_for(self.source.positions(), _POSITIONS_TIMEOUT_S)
            if positions is None:  # the source cannot seek (a file): a snapshot could not be resumed from
                self._store = None
                return
            state = processor.snapshot()
            if state is None:
                self._store = None
                return
            size = await self._write(store, Snapshot(self._fingerprint, positions, state))
        except Exception as exc:  # a timeout, a full disk, a bug: never a reason to stop the job
            log.warning("job %s: state snapshot failed (%s: %s); the previous one stands", self.spec.name,
                        type(exc).__name__, exc, extra={"job": self.spec.name})
            self._last_snapshot = time.monotonic()  # try again after an interval, not after every batch
            return
        took = time.perf_counter() - started
        self._dirty = False
        self._last_snapshot = time.monotonic()
        self._gap = max(self.spec.snapshot_interval_ms / 1000, _SNAPSHOT_BUDGET * took)
        m = self.metrics
        m.snapshots += 1
        m.snapshot_bytes = size
        m.snapshot_seconds = took

    async def _write(self, store: SnapshotStore, snapshot: Snapshot) -> int:
        """Write in a thread (the fsync must not stall other jobs), one write at a time, newest last."""
        previous = self._writing
        if previous is not None and not previous.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        task = self._writing = asyncio.create_task(asyncio.to_thread(store.save, self.spec.name, snapshot))
        # A cancelled job (stop, shutdown) lets the write finish; its final snapshot waits for it above.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return await asyncio.shield(task)


def _describe(positions: Positions) -> str:
    return ", ".join(f"{t}[{p}]@{o}" for (_, t, p), o in sorted(positions.items())) or "(none)"
