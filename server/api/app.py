"""The Starlette application: ``create_app(settings)`` wires the manager, routes, guards and errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware

from ..jobs.apps import AppDeployer
from ..jobs.manager import ManagerConfig, MultiJobSqlServer
from ..jobs.queries import QueryManager
from ..jobs.registry import JobRegistry
from ..jobs.statements import StatementExecutor
from ..metrics import HttpMetrics, make_registry
from ..settings import Settings
from .auth import BearerAuth, BodyLimit
from .console import Console
from .errors import HANDLERS
from .openapi import build_openapi
from .routes import ENDPOINTS, ROUTES
from .state import AppState

log = logging.getLogger("velo.server")


REGISTRY_FILE = "registry.sqlite3"


def _manager(settings: Settings) -> MultiJobSqlServer:
    config = ManagerConfig(brokers=settings.brokers, max_jobs=settings.max_jobs, data_dir=settings.data_dir)
    return MultiJobSqlServer(config, registry=JobRegistry(settings.data_dir / REGISTRY_FILE))


def create_app(settings: Settings, on_shutdown: Sequence[Callable[[], None]] = ()) -> Starlette:
    """A ready-to-serve app; jobs start and stop with the app's lifespan.

    ``on_shutdown`` runs after every job has stopped (velo-server stops its embedded broker there:
    uvicorn re-raises SIGTERM after its graceful shutdown, so code after ``uvicorn.run`` never runs).
    """
    manager = _manager(settings)
    executor = StatementExecutor(manager)
    queries = QueryManager(settings.brokers, catalog=manager.catalog, data_dir=settings.data_dir)
    state = AppState(settings, manager, queries, executor,
                     apps=AppDeployer(manager, run_catalog=executor.run_catalog))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Jobs that were RUNNING/PAUSED come back before the first request is served
        # (--no-auto-deploy: loaded, but left stopped until resumed).
        restored = await manager.restore(auto_deploy=not settings.no_auto_deploy)
        if restored:
            log.info("restored %d job(s) from the registry%s", len(restored),
                     "" if not settings.no_auto_deploy else " (stopped: --no-auto-deploy)")
        state.registry_loaded = True
        try:
            yield
        finally:
            state.begin_shutdown()
            await manager.shutdown()
            for callback in on_shutdown:
                callback()

    state.prometheus = make_registry(manager, state.queries)
    state.openapi = orjson.dumps(build_openapi(ENDPOINTS, auth=settings.auth_token is not None))
    app = Starlette(
        routes=[*ROUTES, *Console(auth=settings.auth_token is not None).routes()],  # the API, then /ui
        exception_handlers=HANDLERS,
        # Outermost first: metrics see every request (401s and 413s included), auth runs before
        # anything reads the body, and the body cap wraps the handlers' reads.
        middleware=[
            Middleware(HttpMetrics, registry=state.prometheus),
            Middleware(BearerAuth, token=settings.auth_token),
            Middleware(BodyLimit, max_body=settings.max_body),
        ],
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # no redirects anywhere: /metrics/ is a 404, not a 307
    app.state.velo = state
    return app
