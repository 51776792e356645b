"""The job registry: every job's SQL, properties, app and desired state — and the catalog — in SQLite.

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

    def save_catalog(self, catalog: dict[str, Any]) -> None:
        """Persist the whole catalog (it is small and changes rarely: one row holds it)."""
        self._db.execute("INSERT OR REPLACE INTO catalog VALUES ('catalog', ?)", (orjson.dumps(catalog).decode(),))

    def load_catalog(self) -> dict[str, Any]:
        """The persisted catalog (empty when none was saved)."""
        row = self._db.execute("SELECT definition FROM catalog WHERE name = 'catalog'").fetchone()
        return dict(orjson.loads(row[0])) if row else {}

    def close(self) -> None:
        """Close the database."""
        self._db.close()
