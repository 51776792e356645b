"""The Starlette application: ``create_app(settings)`` wires the manager, routes and error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from ..jobs.manager import ManagerConfig, MultiJobSqlServer
from ..jobs.queries import QueryManager
from ..jobs.statements import StatementExecutor
from ..metrics import HttpMetrics, make_registry
from ..settings import Settings
from .errors import HANDLERS
from .routes import ROUTES
from .state import AppState


def create_app(settings: Settings, on_shutdown: Sequence[Callable[[], None]] = ()) -> Starlette:
    """A ready-to-serve app; jobs start and stop with the app's lifespan.

    ``on_shutdown`` runs after every job has stopped (velo-server stops its embedded broker there:
    uvicorn re-raises SIGTERM after its graceful shutdown, so code after ``uvicorn.run`` never runs).
    """
    manager = MultiJobSqlServer(ManagerConfig(brokers=settings.brokers, max_jobs=settings.max_jobs))
    state = AppState(settings, manager, QueryManager(settings.brokers), StatementExecutor(manager))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.queries.shutdown()
            await manager.shutdown()
            for callback in on_shutdown:
                callback()

    state.registry = make_registry(manager, state.queries)
    app = Starlette(
        routes=ROUTES,
        exception_handlers=HANDLERS,
        middleware=[Middleware(HttpMetrics, registry=state.registry)],
        lifespan=lifespan,
    )
    app.state.velo = state
    return app
