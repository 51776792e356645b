"""Grouped and windowed aggregation: accumulators per (group key, window), closed by the watermark.

The generated ``extract`` function turns a batch into ``(event_time, partition, key, args, record)``
tuples (WHERE already applied); this operator assigns windows, updates accumulators and emits:

* EMIT CHANGES — after each batch, one upsert per (key, window) the batch changed (a batch's
  updates to one key are coalesced: the last one is the one that counts, as in Kafka Streams'
  record cache); sessions merged away are deleted.
* EMIT FINAL — a window emits once when the watermark reaches ``window_end + grace``; ``finish()``
  flushes everything still open (bounded input), including non-windowed aggregates.

A record is late when the watermark has passed ``end + grace`` of every window it belongs to; late
records are counted and returned in ``Emitted.late`` (the driver drops or dead-letters them).
Window state is evicted as soon as the window closes, so memory follows the open windows.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...connectors.base import SourceProgress
from ..functions.aggregates import Accumulator
from ..processor import Emitted, RecordErrors
from ..snapshot import accumulator_columns, accumulator_rows, decode, encode
from ..time import NO_WATERMARK, Watermarks
from .output import Output, key_bytes

Extract = Callable[[Sequence[Any]], tuple[list[tuple[Any, ...]], RecordErrors | None]]
Project = Callable[[tuple[Any, ...], list[Any], Any, Any], "list[Any] | None"]
AccSpec = tuple[type[Accumulator], tuple[Any, ...]]
Encode = Callable[[list[Any], tuple[Any, ...], Any, Output, bool], Any]
"""A query's generated row encoder (compiler/aggregate.py ``agg_encode``): result values, group key, window
start (None without a window), the Output (its PRIMARY KEY bookkeeping, refused rows) and whether the row
is an upsert → the ``(key, value)`` bytes ``Output.row`` would make of it."""
_CHUNK = 256  # records extracted and folded at a time (see process)


@dataclass(frozen=True)
class WindowSpec:
    """A window in milliseconds: ``kind`` tumbling | hopping | session (``size`` is the gap)."""

    kind: str
    size: int
    advance: int
    grace: int


class _Session:
    __slots__ = ("accs", "last", "start")

    def __init__(self, start: int, last: int, accs: list[Accumulator]) -> None:
        self.start = start
        self.last = last
        self.accs = accs


def _start(s: _Session) -> int:
    return s.start


class AggregateProcessor:
    """The Processor of a GROUP BY / window / DISTINCT query."""

    def __init__(
        self,
        extract: Extract | None,
        project: Project,
        accs: Sequence[AccSpec],
        window: WindowSpec | None,
        emit: str,
        output: Output,
        watermarks: Watermarks,
        distinct: bool = False,
        encode: Encode | None = None,
    ) -> None:
        self._extract = extract
        self._project = project
        self._accs = list(accs)
        self._window = window
        self._final = emit == "final"
        self._out = output
        # Emitted rows go through the query's generated encoder in encode mode (names, TIMESTAMP columns
        # and key positions baked in) rather than the generic Output.row; retractions still take
        # Output.row, which finds the key their upsert went out under.
        self._encode = encode if output.mode == "encode" else None
        self._upsert = not (self._final or distinct)
        self._wm = watermarks
        self._distinct = distinct
        self._groups: dict[Any, list[Accumulator]] = {}  # (key, window start) → accumulators
        self._sessions: dict[Any, list[_Session]] = {}
        # Heap of (window end, seq, (key, window start)); for sessions (session end, seq, key, session)
        # (one tuple less per session: sessions are made per record in a sparse stream).
        self._ends: list[tuple[Any, ...]] = []
        self._seq = 0
        self._emitted: set[Any] = set()  # keys whose row was sent (HAVING can retract them)
        self.late_count = 0

    # ------------------------------------------------------------------ contract

    def process(self, records: Sequence[Any], input_index: int = 0, now_ms: int | None = None,
                progress: SourceProgress | None = None) -> Emitted:
        assert self._extract is not None
        self._wm.at(now_ms)
        self._wm.follow(progress)
        late: list[Any] = []
        changed: dict[Any, None] = {}
        deleted: list[tuple[Any, int]] = []
        parts: set[Any] = set()
        errors: RecordErrors | None = None
        # Extract and fold a chunk at a time (the same records, in the same order): a chunk's
        # extracted tuples are freed before the next one, where a whole batch of them would outlive
        # several young-generation GC passes that walk them and promote them to older generations.
        for i in range(0, len(records), _CHUNK):
            tuples, chunk_errors = self._extract(records[i : i + _CHUNK])
            if chunk_errors:
                errors = chunk_errors if errors is None else errors + chunk_errors
            self._fold(tuples, late, changed, deleted, parts)
        emitted = self._settle(late, changed, deleted, parts)
        emitted.errors = errors
        return emitted

    def at(self, now_ms: int | None, progress: SourceProgress | None = None) -> None:
        """Advance the clock without records: a join feeding this aggregate (``consume``) passes its time
        and its source's progress."""
        self._wm.at(now_ms)
        self._wm.follow(progress)

    def tick(self, now_ms: int, progress: SourceProgress | None = None) -> Emitted:
        self._wm.follow(progress)
        self._wm.idle(now_ms)
        return Emitted(self._close(self._wm.current))

    def finish(self) -> Emitted:
        rows = self._close(None)
        if self._window is None and self._final:
            for k, accs in self._groups.items():
                self._row(rows, k, accs, None, None)
            self._groups.clear()
        return Emitted(rows)

    def watermark_ms(self) -> int | None:
        """The current event-time watermark (None before the first record), for metrics."""
        wm = self._wm.current
        return None if wm == NO_WATERMARK else wm

    def state_bytes(self) -> int:
        per_acc = 64
        n = len(self._groups) + sum(len(s) for s in self._sessions.values())
        return n * (100 + per_acc * len(self._accs))

    def snapshot(self) -> bytes:
        """Groups, sessions, the window ends, the emitted keys, the late count and the watermark."""
        state: dict[str, Any] = {"wm": self._wm.state(), "late": self.late_count, "sent": self._out.sent_keys}
        if self._window is not None and self._window.kind == "session":
            # Sessions are shared by their key's list and the ends heap (stale entries included):
            # pickle keeps that sharing, and the heap's order, as they are.
            state.update(sessions=self._sessions, ends=self._ends, seq=self._seq, emitted=list(self._emitted))
            return encode("aggregate", state, plain=False)
        # A group's heap entry is (start + size, creation order, key) and the dict keeps creation
        # order, so the keys and the accumulators, column-wise, are the whole state (fast to encode).
        # The emitted keys are groups' keys: one flag per group, in the same order (the set itself, in
        # hash order, encodes several times slower).
        keys = list(self._groups)
        emitted = self._emitted
        idents = keys if self._window is not None else [(k, None) for k in keys]
        flags = bytes([ident in emitted for ident in idents]) if emitted else b""
        others = list(emitted.difference(idents)) if len(emitted) != flags.count(1) else []
        classes = [cls for cls, _ in self._accs]
        state.update(keys=keys, accs=accumulator_columns(classes, list(self._groups.values())), emitted=flags,
                     emitted_others=others)
        return encode("aggregate", state)

    def restore(self, data: bytes) -> None:
        """Take over ``snapshot()``'s state (this processor is fresh, from the same query)."""
        state = decode("aggregate", data)
        w = self._window
        if w is not None and w.kind == "session":
            self._sessions, self._ends, self._seq = state["sessions"], state["ends"], state["seq"]
            self._emitted = set(state["emitted"])
        else:
            keys = state["keys"]
            classes = [cls for cls, _ in self._accs]
            self._groups = dict(zip(keys, accumulator_rows(classes, state["accs"], len(keys)), strict=True))
            self._seq = len(keys)
            if w is not None:
                self._ends = [(start + w.size, i, (k, start)) for i, (k, start) in enumerate(keys)]
                heapq.heapify(self._ends)
            flags = state["emitted"]
            self._emitted = {k if w is not None else (k, None) for k, f in zip(keys, flags, strict=False) if f}
            self._emitted.update(state["emitted_others"])
        self.late_count = state["late"]
        self._out.sent_keys = dict(state["sent"])
        self._wm.load_state(state["wm"])

    # ------------------------------------------------------------------ the work

    def consume(self, tuples: list[tuple[Any, ...]]) -> Emitted:
        """Fold extracted tuples into the state; the rows and late records that result."""
        late: list[Any] = []
        changed: dict[Any, None] = {}
        deleted: list[tuple[Any, int]] = []
        parts: set[Any] = set()
        self._fold(tuples, late, changed, deleted, parts)
        return self._settle(late, changed, deleted, parts)

    def _fold(self, tuples: list[tuple[Any, ...]], late: list[Any], changed: dict[Any, None],
              deleted: list[tuple[Any, int]], parts: set[Any]) -> None:
        """Fold extracted tuples into the state, noting late records, changed and deleted windows."""
        w = self._window
        wm = self._wm
        groups = self._groups
        specs = self._accs
        if w is None:
            for et, part, k, args, _m in tuples:
                parts.add(part)
                wm.observe(part, et)
                accs = groups.get(k)
                if accs is None:
                    accs = groups[k] = [cls(*params) for cls, params in specs]
                elif self._distinct:
                    continue
                for acc, v in zip(accs, args, strict=True):
                    acc.add(v, et)
                changed[k] = None
        elif w.kind == "session":
            self._fold_sessions(tuples, parts, late, changed, deleted)
        else:
            size, advance, grace = w.size, w.advance, w.grace
            for et, part, k, args, m in tuples:
                parts.add(part)
                current = wm.observe(part, et)
                start = et - et % advance
                placed = False
                while start > et - size:
                    end = start + size
                    if end + grace > current:
                        sk = (k, start)
                        accs = groups.get(sk)
                        if accs is None:
                            accs = groups[sk] = [cls(*params) for cls, params in specs]
                            self._seq += 1
                            heapq.heappush(self._ends, (end, self._seq, sk))
                        for acc, v in zip(accs, args, strict=True):
                            acc.add(v, et)
                        changed[sk] = None
                        placed = True
                    start -= advance
                if not placed:
                    late.append(m)

    def _settle(self, late: list[Any], changed: dict[Any, None], deleted: list[tuple[Any, int]],
                parts: set[Any]) -> Emitted:
        """After a batch's folds: the changes (EMIT CHANGES), the windows the watermark closed."""
        wm = self._wm
        wm.touch(parts)
        rows: list[Any] = []
        if not self._final:
            for dk, dstart in deleted:
                if (dk, dstart) in self._emitted:
                    self._emitted.discard((dk, dstart))
                    rows.append(self._out.row([], [*dk, dstart], "delete"))
            for sk in changed:
                self._emit_changed(rows, sk)
        rows += self._close(wm.current)
        self.late_count += len(late)
        return Emitted(rows, None, late or None)

    def _fold_sessions(self, tuples: list[tuple[Any, ...]], parts: set[Any], late: list[Any],
                       changed: dict[Any, None], deleted: list[tuple[Any, int]]) -> None:
        """Session windows: fold records into their key's sessions.

        A key's open sessions are sorted by start and more than a gap apart, so a record at or after
        the start of the key's newest session either extends that session (within the gap of its
        last record: no other session is within reach) or opens a new one after it (unless it is
        late). Those two cases — nearly every record of an in-order stream — are done inline here,
        without the bisect and the call; out-of-order records go through ``_session_add``.
        """
        w = self._window
        assert w is not None
        gap = w.size
        reach = w.size + w.grace
        observe = self._wm.observe
        by_key = self._sessions
        ends = self._ends
        specs = self._accs
        push = heapq.heappush
        track = not self._final  # only EMIT CHANGES reads ``changed``
        add_part = parts.add
        # One aggregate (COUNT(*), say) is the usual case: add to it without a zip loop.
        single = len(specs) == 1
        cls0, params0 = specs[0] if single else (None, ())
        for et, part, k, args, m in tuples:
            add_part(part)
            current = observe(part, et)
            sessions = by_key.get(k)
            if sessions:
                s = sessions[-1]
                if s.start <= et:
                    if et <= s.last + gap:  # extends the newest session
                        if single:
                            s.accs[0].add(args[0], et)
                        else:
                            for acc, v in zip(s.accs, args, strict=True):
                                acc.add(v, et)
                        if et > s.last:
                            s.last = et
                            self._seq += 1
                            push(ends, (et + gap, self._seq, k, s))
                        if track:
                            changed[(k, s)] = None
                        continue
                    if et + reach <= current:  # no session within reach, and its windows closed
                        late.append(m)
                        continue
                else:  # before the newest session's start: it may touch or bridge older ones
                    if et + reach <= current and not self._session_open_near(k, et):
                        late.append(m)
                        continue
                    self._session_add(k, et, args, changed, deleted)
                    continue
            elif et + reach <= current:
                late.append(m)
                continue
            # A new session, after every open one of its key.
            if cls0 is not None:
                first = cls0(*params0)
                first.add(args[0], et)
                accs = [first]
            else:
                accs = [cls(*params) for cls, params in specs]
                for acc, v in zip(accs, args, strict=True):
                    acc.add(v, et)
            new = _Session(et, et, accs)
            if sessions:
                sessions.append(new)
            else:
                by_key[k] = [new]
            if track:
                changed[(k, new)] = None
            self._seq += 1
            push(ends, (et + gap, self._seq, k, new))

    def _session_open_near(self, k: Any, et: int) -> bool:
        """Whether an open session of ``k`` is within the gap of ``et`` (it would take the record)."""
        w = self._window
        assert w is not None
        sessions = self._sessions.get(k)
        if not sessions:
            return False
        i = bisect.bisect_right(sessions, et + w.size, key=_start)
        return i > 0 and sessions[i - 1].last + w.size >= et

    def _session_add(self, k: Any, et: int, args: Sequence[Any], changed: dict[Any, None],
                     deleted: list[tuple[Any, int]]) -> None:
        w = self._window
        assert w is not None
        gap = w.size
        sessions = self._sessions.get(k)
        if sessions is None:
            sessions = self._sessions[k] = []
        # Open sessions are disjoint and kept sorted by start: the ones within reach of ``et``
        # are a short run just before the first session starting after et + gap.
        i = bisect.bisect_right(sessions, et + gap, key=_start)
        hits = []
        while i > 0 and sessions[i - 1].last + gap >= et:
            i -= 1
            hits.append(sessions[i])
        if len(hits) == 1:  # the common case: the record extends one open session
            s = hits[0]
            for acc, v in zip(s.accs, args, strict=True):
                acc.add(v, et)
            if et < s.start:  # the session's key (its start) changes: retract the old row
                deleted.append((k, s.start))
                s.start = et
            if et > s.last:
                s.last = et
                self._seq += 1
                heapq.heappush(self._ends, (et + gap, self._seq, k, s))
            changed[(k, s)] = None
            return
        accs = [cls(*params) for cls, params in self._accs]
        for acc, v in zip(accs, args, strict=True):
            acc.add(v, et)
        new = _Session(et, et, accs)
        # A record within the gap of several sessions bridges them: merge them all into one.
        for s in hits:
            deleted.append((k, s.start))
            changed.pop((k, s), None)
            sessions.remove(s)
            for a, b in zip(new.accs, s.accs, strict=True):
                a.merge(b)
            new.start, new.last = min(new.start, s.start), max(new.last, s.last)
        sessions.insert(bisect.bisect_right(sessions, new.start, key=_start), new)
        changed[(k, new)] = None
        self._seq += 1
        heapq.heappush(self._ends, (new.last + gap, self._seq, k, new))

    def _emit_changed(self, rows: list[Any], sk: Any) -> None:
        w = self._window
        if w is None:
            accs = self._groups.get(sk)
            if accs is not None:
                self._row(rows, sk, accs, None, None, track=True)
        elif w.kind == "session":
            k, s = sk
            if s in self._sessions.get(k, ()):
                self._row(rows, k, s.accs, s.start, s.last + w.size, track=True)
        else:
            accs = self._groups.get(sk)
            if accs is not None:
                k, start = sk
                self._row(rows, k, accs, start, start + w.size, track=True)

    def _row(self, rows: list[Any], k: Any, accs: list[Accumulator], ws: Any, we: Any,
             track: bool = False) -> None:
        values = self._project(k, [a.result() for a in accs], ws, we)
        ident = (k, ws)
        if values is None:  # HAVING is false: retract a row sent before
            if track and ident in self._emitted:
                self._emitted.discard(ident)
                rows.append(self._out.row([], list(k) if ws is None else [*k, ws], "delete"))
            return
        if track and not self._final:
            self._emitted.add(ident)
        encode = self._encode
        if encode is not None:
            rows.append(encode(values, k, ws, self._out, self._upsert))
        else:
            rows.append(self._out.row(values, list(k) if ws is None else [*k, ws],
                                      "upsert" if self._upsert else "insert"))

    def _close(self, watermark: int | None) -> list[Any]:
        """Emit (FINAL) and evict every window whose end + grace the watermark has reached."""
        w = self._window
        rows: list[Any] = []
        if w is None:
            return rows
        if w.kind == "session":
            return self._close_sessions(watermark)
        ends = self._ends
        while ends and (watermark is None or ends[0][0] + w.grace <= watermark):
            end, _, sk = heapq.heappop(ends)
            accs = self._groups.pop(sk, None)
            if accs is None:
                continue
            k, start = sk
            if self._final:
                self._row(rows, k, accs, start, end)
            self._forget(k, start)
        return rows

    def _close_sessions(self, watermark: int | None) -> list[Any]:
        """``_close`` for session windows, in one loop: it runs once per session."""
        w = self._window
        assert w is not None
        gap, grace = w.size, w.grace
        ends = self._ends
        by_key = self._sessions
        final = self._final
        project, out, out_row, encode = self._project, self._out, self._out.row, self._encode
        pop = heapq.heappop
        rows: list[Any] = []
        while ends and (watermark is None or ends[0][0] + grace <= watermark):
            end, _, k, s = pop(ends)
            if s.last + gap != end:
                continue  # extended: a later heap entry stands for it
            sessions = by_key.get(k)
            if not sessions:
                continue  # merged away (or already closed)
            if sessions[0] is s:  # the key's oldest session: the usual case, as sessions end in order
                del sessions[0]
            elif s in sessions:
                sessions.remove(s)
            else:
                continue  # merged away
            if not sessions:
                del by_key[k]
            if final:
                # _row() of an EMIT FINAL row, inline. Such a row is an insert, sent once: nothing
                # remembers it (_emitted, Output.sent_keys), so there is nothing to _forget.
                accs = s.accs
                results = [accs[0].result()] if len(accs) == 1 else [a.result() for a in accs]
                values = project(k, results, s.start, end)
                if values is None:  # HAVING rejects it
                    continue
                if encode is not None:
                    rows.append(encode(values, k, s.start, out, False))
                else:
                    rows.append(out_row(values, [*k, s.start], "insert"))
            else:
                self._forget(k, s.start)
        return rows

    def _forget(self, k: Any, start: int) -> None:
        """A closed window can no longer be retracted: drop what remembers its emitted row."""
        self._emitted.discard((k, start))
        if self._out.sent_keys:
            self._out.sent_keys.pop(key_bytes([*k, start]), None)
