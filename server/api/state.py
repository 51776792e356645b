"""What the app holds while it runs: settings, the job manager, transient queries."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from ..jobs.manager import MultiJobSqlServer
from ..jobs.queries import QueryManager
from ..jobs.statements import StatementExecutor
from ..settings import Settings


@dataclass
class AppState:
    """The server's live objects, attached to ``app.state.velo``."""

    settings: Settings
    manager: MultiJobSqlServer
    queries: QueryManager
    executor: StatementExecutor
    started: float = field(default_factory=time.monotonic)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
