"""The job registry: every job's SQL, properties, app and desired state, in SQLite under the data dir.

The server writes it on every deploy, stop, pause, resume and failure, and reads it once at start to
restore each job to its last desired state. SQLite's own locking and fsync make a crash between two
writes lose at most the change in flight.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    name        TEXT PRIMARY KEY,
    sql         TEXT NOT NULL,
    properties  TEXT NOT NULL,
    app         TEXT,
    version     TEXT,
    state       TEXT NOT NULL,
    reason      TEXT,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS catalog (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class JobRecord:
    """One registry row."""

    name: str
    sql: str
    properties: dict[str, Any]
    app: str | None
    version: str | None
    state: str  # the desired state: RUNNING | PAUSED | FAILED
    reason: str | None
    created_at: str


class JobRegistry:
    """SQLite persistence of jobs (and catalog entries). Calls are short and synchronous."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def save(self, record: JobRecord) -> None:
        """Insert or replace a job."""
        self._db.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record.name, record.sql, orjson.dumps(record.properties).decode(), record.app, record.version,
             record.state, record.reason, record.created_at),
        )

    def set_state(self, name: str, state: str, reason: str | None = None) -> None:
        """Record a job's new desired state."""
        self._db.execute("UPDATE jobs SET state = ?, reason = ? WHERE name = ?", (state, reason, name))

    def delete(self, name: str) -> None:
        """Forget a job (it was stopped)."""
        self._db.execute("DELETE FROM jobs WHERE name = ?", (name,))

    def load(self) -> list[JobRecord]:
        """Every job, oldest first."""
        rows = self._db.execute(
            "SELECT name, sql, properties, app, version, state, reason, created_at FROM jobs ORDER BY created_at"
        ).fetchall()
        return [JobRecord(r[0], r[1], orjson.loads(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows]

    def save_catalog(self, name: str, definition: dict[str, Any]) -> None:
        """Persist one catalog entry (a declared stream or table)."""
        self._db.execute("INSERT OR REPLACE INTO catalog VALUES (?, ?)", (name, orjson.dumps(definition).decode()))

    def delete_catalog(self, name: str) -> None:
        """Forget a catalog entry."""
        self._db.execute("DELETE FROM catalog WHERE name = ?", (name,))

    def load_catalog(self) -> dict[str, dict[str, Any]]:
        """Every catalog entry by name."""
        return {r[0]: orjson.loads(r[1]) for r in self._db.execute("SELECT name, definition FROM catalog")}

    def close(self) -> None:
        """Close the database."""
        self._db.close()
