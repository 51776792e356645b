"""Local snapshots of a stateful job: its operator state and the source positions that state covers.

One file per job, ``<data-dir>/state/<job>.snapshot``, replaced atomically (a temporary file, fsync,
``os.replace``): a crash leaves the previous snapshot or the new one, never half of one. It holds

* the query's fingerprint — a hash of the generated code, the plan and the inputs — so a snapshot
  is only restored into the same query (another query under the job's name starts empty);
* the positions: per (input index, topic, partition), the next offset after the records the state
  has seen;
* the processor's bytes (``Processor.snapshot()``), with a CRC32 to catch a damaged file.

A restored job seeks every partition to the snapshot's positions, which may be behind the offsets
committed to ``velo-<job>``: the records in between are read again (at-least-once after a crash;
after a graceful stop the final snapshot matches the final commit and nothing is read twice).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson

from ..connectors.base import Positions
from ..engine import CompiledQuery

log = logging.getLogger("velo.job")

_MAGIC = b"VELO-STATE\n"
_FORMAT = 1
_LENGTH = struct.Struct(">I")
_TMP_IDS = itertools.count()  # two writers of one job (a stop overlapping a redeploy) never share a temp file


@dataclass(frozen=True)
class Snapshot:
    """A job's operator state and the positions it covers."""

    fingerprint: str
    positions: Positions
    state: bytes


def fingerprint(query: CompiledQuery) -> str:
    """What must not change for a snapshot to fit a query: its generated code, plan and inputs.

    Not the SQL text: reformatting a statement, or changing a property the operators do not keep
    (batch size, failure strategy), leaves the state valid.
    """
    shape = {"format": _FORMAT, "code": query.source_code, "plan": query.plan.describe(),
             "inputs": [[i.kind, i.topic, i.role] for i in query.inputs]}
    return hashlib.sha256(orjson.dumps(shape)).hexdigest()


class SnapshotStore:
    """The snapshot files of a server's jobs, under ``root`` (``<data-dir>/state``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, job: str) -> Path:
        """Where ``job``'s snapshot lives (job names are ``[a-z][a-z0-9_]*``: safe as file names)."""
        return self.root / f"{job}.snapshot"

    def save(self, job: str, snapshot: Snapshot) -> int:
        """Write ``snapshot`` atomically and durably; the number of bytes written."""
        header = orjson.dumps({
            "format": _FORMAT,
            "fingerprint": snapshot.fingerprint,
            "positions": [[i, t, p, o] for (i, t, p), o in sorted(snapshot.positions.items())],
            "length": len(snapshot.state),
            "crc32": zlib.crc32(snapshot.state),
        })
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.path(job)
        tmp = final.with_name(f"{final.name}.{os.getpid()}-{next(_TMP_IDS)}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(_MAGIC + _LENGTH.pack(len(header)) + header)
            fh.write(snapshot.state)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        # The rename itself is durable only once the directory is synced.
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return len(_MAGIC) + _LENGTH.size + len(header) + len(snapshot.state)

    def load(self, job: str) -> Snapshot | None:
        """``job``'s snapshot; None when there is none or it cannot be read (logged: the job starts empty)."""
        path = self.path(job)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("job %s: cannot read its state snapshot %s (%s); starting with empty state",
                        job, path, exc, extra={"job": job})
            return None
        try:
            return _parse(data)
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            log.warning("job %s: its state snapshot %s is damaged (%s); starting with empty state",
                        job, path, exc, extra={"job": job})
            return None

    def exists(self, job: str) -> bool:
        """Whether ``job`` has a snapshot file."""
        return self.path(job).exists()

    def delete(self, job: str) -> None:
        """Remove ``job``'s snapshot (and a temporary file a crash may have left)."""
        for path in (self.path(job), *self.root.glob(f"{job}.snapshot.*.tmp")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _parse(data: bytes) -> Snapshot:
    if not data.startswith(_MAGIC):
        raise ValueError("not a Velo state snapshot")
    at = len(_MAGIC)
    (length,) = _LENGTH.unpack_from(data, at)
    at += _LENGTH.size
    header = orjson.loads(data[at:at + length])
    if header["format"] != _FORMAT:
        raise ValueError(f"snapshot format {header['format']} (this server reads {_FORMAT})")
    state = data[at + length:]
    if len(state) != header["length"] or zlib.crc32(state) != header["crc32"]:
        raise ValueError("its operator state is truncated or corrupt")
    positions = {(int(i), str(t), int(p)): int(o) for i, t, p, o in header["positions"]}
    return Snapshot(str(header["fingerprint"]), positions, state)
