"""What the app holds while it runs: settings, the job manager, transient queries, the metrics registry."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from ..jobs.apps import AppDeployer
from ..jobs.manager import MultiJobSqlServer
from ..jobs.queries import QueryManager
from ..jobs.statements import StatementExecutor
from ..settings import Settings

# /health and /ready are probed often (load balancers, orchestrators); one broker round trip per
# second is plenty and keeps a probe storm from opening a Kafka connection per request.
_REACHABLE_TTL_S = 1.0


@dataclass
class AppState:
    """The server's live objects, attached to ``app.state.velo``."""

    settings: Settings
    manager: MultiJobSqlServer
    queries: QueryManager
    executor: StatementExecutor
    started: float = field(default_factory=time.monotonic)
    prometheus: CollectorRegistry = field(default_factory=CollectorRegistry)
    apps: AppDeployer | None = None
    openapi: bytes = b"{}"
    closing: bool = False
    registry_loaded: bool = False
    _reachable: tuple[float, bool] = (float("-inf"), False)

    async def kafka_reachable(self) -> bool:
        """Whether the broker answers (cached for a second)."""
        at, value = self._reachable
        now = time.monotonic()
        if now - at < _REACHABLE_TTL_S:
            return value
        value = await self.manager.admin.reachable()
        self._reachable = (time.monotonic(), value)
        return value

    def begin_shutdown(self) -> None:
        """The server is going down: refuse new queries, end every open stream with ``done``."""
        self.closing = True
        self.queries.shutdown()
