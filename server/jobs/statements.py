"""Runs the statements of a ``POST /statements`` request against the job manager, one result each.

Results are plain dicts (the API's contract): ``type`` is ``job`` (a deployed job), ``rows`` (a
table such as SHOW JOBS) or ``message``. A transient SELECT is refused here: it streams from
``POST /query``.
"""

from __future__ import annotations

from typing import Any

from velo.grammar import ast
from velo.grammar.errors import SqlError
from velo.grammar.parser import parse

from ..errors import BadRequestError, VeloError
from .catalog_statements import CATALOG_STATEMENTS, execute_catalog, register_job_output
from .manager import MultiJobSqlServer
from .views import job_view

Result = dict[str, Any]
JOB_COLUMNS = ["name", "state", "source", "sink", "records_in", "records_out", "records_failed"]


class StatementError(Exception):
    """A statement of a multi-statement request failed; carries its 1-based index."""

    def __init__(self, index: int, cause: VeloError | SqlError) -> None:
        super().__init__(str(cause))
        self.index = index
        self.cause = cause


class StatementExecutor:
    """Executes parsed statements; the job manager does the work."""

    def __init__(self, manager: MultiJobSqlServer) -> None:
        self.manager = manager

    async def execute_script(self, sql: str, properties: dict[str, Any]) -> list[Result]:
        """Parse and run every statement in order; stop at the first failure (StatementError)."""
        statements = parse(sql)
        results = []
        for index, statement in enumerate(statements, start=1):
            try:
                result = await self.execute(statement, _text_of(sql, statement), properties)
            except (VeloError, SqlError) as exc:
                raise StatementError(index, exc) from exc
            result["statement"] = index
            results.append(result)
        return results

    async def run_catalog(self, stmt: ast.Statement, sql: str) -> Result:
        """Run a non-job statement of an application file (catalog statements apply first)."""
        return await self.execute(stmt, sql, {})

    async def execute(self, stmt: ast.Statement, sql: str, properties: dict[str, Any]) -> Result:
        """Run one statement."""
        if isinstance(stmt, ast.CreateStreamAs | ast.StartJob):
            job = await self.manager.deploy_job(sql, properties=properties, statement=stmt)
            target = job.spec.query.sink
            # Registered where later statements would read it: not a file, nor a topic on another cluster.
            if target is None or (target.kind == "kafka" and target.bootstrap_servers is None):
                register_job_output(self.manager, stmt, job.spec.sink_topic,
                                    [(c.name, c.type) for c in job.spec.query.plan.columns],
                                    job.spec.query.output_schema)
            return {"type": "job", "message": f"Job '{job.name}' is {job.state.value}",
                    "job": job_view(job)}
        if isinstance(stmt, ast.InsertSelect):  # a job writing into an existing stream: nothing is registered
            job = await self.manager.deploy_job(sql, properties=properties, statement=stmt)
            return {"type": "job", "message": f"Job '{job.name}' is {job.state.value}", "job": job_view(job)}
        if isinstance(stmt, ast.ShowJobs):
            rows = []
            for job in self.manager.list_jobs(stmt.like):
                m = job.metrics
                rows.append([job.name, job.state.value, job.spec.source_topic, job.spec.sink_topic,
                             m.records_in, m.records_out, m.records_failed])
            return {"type": "rows", "message": f"{len(rows)} job(s)", "columns": JOB_COLUMNS,
                    "rows": rows}
        if isinstance(stmt, ast.StopJob):
            job = await self.manager.stop_job(stmt.name, force=stmt.force)
            return {"type": "message", "message": f"Job '{job.name}' stopped"}
        if isinstance(stmt, ast.PauseJob):
            job = await self.manager.pause_job(stmt.name)
            return {"type": "job", "message": f"Job '{job.name}' is {job.state.value}", "job": job_view(job)}
        if isinstance(stmt, ast.ResumeJob):
            job = await self.manager.resume_job(stmt.name)
            return {"type": "job", "message": f"Job '{job.name}' is {job.state.value}", "job": job_view(job)}
        if isinstance(stmt, ast.ShowStatus):
            view = job_view(self.manager.get_job(stmt.name), detail=True)
            rows = [[k, _cell(v)] for k, v in view.items() if k not in ("generated_code", "history", "plan_tree")]
            rows += [[f"history[{i}]", f"{h['at']} {h['state']} ({h['reason']})"]
                     for i, h in enumerate(view["history"])]
            return {"type": "rows", "message": f"status of job '{stmt.name}'", "columns": ["field", "value"],
                    "rows": rows}
        if isinstance(stmt, CATALOG_STATEMENTS):
            result = await execute_catalog(self.manager, stmt, properties)
            if result is not None:
                return result
        if isinstance(stmt, ast.Select):
            raise BadRequestError("a SELECT streams its rows: send it to POST /query")
        raise BadRequestError(f"{type(stmt).__name__} is not supported yet")


def _cell(value: Any) -> Any:
    """A job-view value as one table cell."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return value


def _text_of(sql: str, stmt: ast.Statement) -> str:
    """The statement's own source text (the whole text when positions are unknown)."""
    if stmt.span is None:
        return sql.strip()
    return sql[stmt.span.start_pos : stmt.span.end_pos].strip()
