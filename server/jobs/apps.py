"""SQL applications: a file of statements deployed, listed and stopped as one unit (dialect.md §9).

Deploying is all-or-nothing: catalog statements apply first, then every job statement is validated
and compiled before any starts; if one fails to start, the ones already started are stopped again.
Errors name the statement (1-based) and its line in the file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from velo.grammar import ast
from velo.grammar.apps import AppStatement, parse_app
from velo.grammar.errors import SqlError, SqlValidationError

from ..errors import BadRequestError, DuplicateJobError, JobLimitError, NotFoundError, VeloError
from .manager import MultiJobSqlServer
from .model import LIVE_STATES, JobSpec, JobState
from .runtime import JobRuntime

CatalogExecutor = Callable[[ast.Statement, str], Awaitable[Any]]

_START_TIMEOUT_S = 15.0
_STARTED = frozenset(JobState) - {JobState.STARTING}


@dataclass
class AppInfo:
    """A deployed application and its jobs."""

    name: str
    version: str | None
    description: str | None
    jobs: list[JobRuntime]


def _locate(error: VeloError | SqlError, stmt: AppStatement) -> None:
    """Point ``error`` at the statement's place in the file.

    Errors from the statement's AST already carry file positions (it was parsed with the file);
    others get the statement's first line.
    """
    if isinstance(error, SqlError):
        error.statement = stmt.index
        error.line = error.line or stmt.line
    else:
        error.details["statement"] = stmt.index
        error.details.setdefault("line", stmt.line)
        error.message = f"statement {stmt.index} (line {stmt.line}): {error.message}"


class AppDeployer:
    """Deploys and manages applications on top of the job manager."""

    def __init__(self, manager: MultiJobSqlServer, run_catalog: CatalogExecutor | None = None) -> None:
        self.manager = manager
        self.run_catalog = run_catalog
        self._descriptions: dict[str, tuple[str | None, str | None]] = {}

    async def deploy(self, text: str, name: str | None = None, variables: dict[str, str] | None = None) -> AppInfo:
        """Deploy every statement of an application file, or none of them."""
        app = parse_app(text, variables or {})
        app_name = (name or app.name or "").strip().lower()
        if not app_name:
            raise BadRequestError("the application has no name: add '-- @app: name' or pass a name")
        if self.jobs_of(app_name):
            raise DuplicateJobError(f"an application named '{app_name}' is already deployed; stop it first")
        job_statements = [s for s in app.statements
                          if isinstance(s.statement, ast.CreateStreamAs | ast.StartJob | ast.InsertSelect)]
        for stmt in app.statements:
            if stmt not in job_statements:
                await self._run_catalog(stmt)
        specs = [self._spec(stmt, app_name, app.version) for stmt in job_statements]
        names = [s.name for s in specs]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise DuplicateJobError(f"the application names job '{sorted(duplicates)[0]}' twice")
        free = self.manager.config.max_jobs - self.manager.live_count()
        if len(specs) > free:
            raise JobLimitError(f"the application has {len(specs)} jobs but only {free} of the server's "
                                f"{self.manager.config.max_jobs} job slots are free")
        started: list[JobRuntime] = []
        try:
            for stmt, spec in zip(job_statements, specs, strict=True):
                try:
                    job = await self.manager.admit(spec, statement=stmt.statement)
                except (VeloError, SqlError) as exc:
                    _locate(exc, stmt)
                    raise
                started.append(job)
            for stmt, job in zip(job_statements, started, strict=True):
                if await job.wait_for(_STARTED, _START_TIMEOUT_S) in (JobState.FAILED, JobState.STARTING):
                    error = SqlValidationError(f"job '{job.name}' did not start: {job.error or 'timed out'}")
                    _locate(error, stmt)
                    raise error
        except BaseException:
            for job in started:
                await self.manager.stop_job(job.name, force=True)
            raise
        self._descriptions[app_name] = (app.version, app.description)
        return AppInfo(app_name, app.version, app.description, started)

    def _spec(self, stmt: AppStatement, app: str, version: str | None) -> JobSpec:
        try:
            statement = stmt.with_properties()
            return self.manager.build_spec(stmt.sql, stmt.name, None, statement, app=app, version=version)
        except (VeloError, SqlError) as exc:
            _locate(exc, stmt)
            raise

    async def _run_catalog(self, stmt: AppStatement) -> None:
        if self.run_catalog is None:
            raise BadRequestError(f"statement {stmt.index} (line {stmt.line}) is not a job statement")
        try:
            await self.run_catalog(stmt.statement, stmt.sql)
        except (VeloError, SqlError) as exc:
            _locate(exc, stmt)
            raise

    def jobs_of(self, app: str) -> list[JobRuntime]:
        """The live jobs of an application."""
        return [j for j in self.manager.list_jobs() if j.spec.app == app and j.state in LIVE_STATES | {JobState.FAILED}]

    def list(self) -> list[AppInfo]:
        """Every application with at least one job."""
        names = sorted({j.spec.app for j in self.manager.list_jobs() if j.spec.app})
        return [self.get(n) for n in names]

    def get(self, name: str) -> AppInfo:
        """One application; NotFoundError when it has no jobs."""
        jobs = self.jobs_of(name.lower())
        if not jobs:
            raise NotFoundError(f"no application named '{name}'")
        version, description = self._descriptions.get(name.lower(), (jobs[0].spec.version, None))
        return AppInfo(name.lower(), version, description, jobs)

    async def stop(self, name: str, force: bool = False) -> AppInfo:
        """Stop every job of an application."""
        info = self.get(name)
        info.jobs = [await self.manager.stop_job(j.name, force=force) for j in info.jobs]
        return info
