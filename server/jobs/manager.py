"""The MultiJobSqlServer: deploys, lists, stops, pauses and resumes many named jobs in one process.

Every check that decides whether a job may exist (name, duplicate, limit) happens under one lock, so
concurrent deploys from many clients give exactly the jobs the rules allow.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from velo.grammar import ast
from velo.grammar.parser import parse_statement

from ..connectors.base import ConnectorError, Sink, Source
from ..connectors.kafka import KafkaAdmin, KafkaSink, KafkaSource
from ..engine.compile import compile_select
from ..errors import (
    BadRequestError,
    DuplicateJobError,
    InvalidStateError,
    JobLimitError,
    KafkaUnavailableError,
    NotFoundError,
    ValidationError,
)
from .runtime import LIVE_STATES, Command, JobRuntime, JobSpec, JobState

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_START_TIMEOUT_S = 10.0
_CONTROL_TIMEOUT_S = 10.0
_STARTED = frozenset(JobState) - {JobState.STARTING}

SourceFactory = Callable[[JobSpec], Source]
SinkFactory = Callable[[JobSpec], Sink]


@dataclass(frozen=True)
class ManagerConfig:
    """What the manager needs from the server's settings."""

    brokers: str
    max_jobs: int = 100


def _int_property(props: dict[str, Any], key: str, default: int) -> int:
    value = props.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"property '{key}' must be an integer, got {value!r}") from None


class MultiJobSqlServer:
    """The job manager. Sources and sinks default to Kafka; tests may pass other factories."""

    def __init__(
        self,
        config: ManagerConfig,
        *,
        source_factory: SourceFactory | None = None,
        sink_factory: SinkFactory | None = None,
    ) -> None:
        self.config = config
        self.admin = KafkaAdmin(config.brokers)
        self._jobs: dict[str, JobRuntime] = {}
        self._lock = asyncio.Lock()
        self._source_factory = source_factory or self._kafka_source
        self._sink_factory = sink_factory or self._kafka_sink

    # ------------------------------------------------------------------ factories

    def _kafka_source(self, spec: JobSpec) -> Source:
        return KafkaSource(self.config.brokers, spec.source_topic, group_id=f"velo-{spec.name}")

    def _kafka_sink(self, spec: JobSpec) -> Sink:
        return KafkaSink(self.config.brokers, spec.sink_topic)

    # ------------------------------------------------------------------ queries

    def list_jobs(self, like: str | None = None) -> list[JobRuntime]:
        """Live and failed jobs, by name; ``like`` is a SQL pattern (``%`` and ``_``)."""
        jobs = sorted(self._jobs.values(), key=lambda j: j.name)
        if like is None:
            return jobs
        pattern = like.lower().replace("*", "[*]").replace("%", "*").replace("_", "?")
        return [j for j in jobs if fnmatch.fnmatchcase(j.name, pattern)]

    def get_job(self, name: str) -> JobRuntime:
        """The job called ``name``; NotFoundError if there is none."""
        job = self._jobs.get(name.lower())
        if job is None:
            raise NotFoundError(f"no job named '{name}'")
        return job

    def live_count(self) -> int:
        """How many jobs hold a slot (every state but FAILED)."""
        return sum(1 for j in self._jobs.values() if j.state in LIVE_STATES)

    # ------------------------------------------------------------------ deploy

    def _spec(
        self,
        sql: str,
        name: str | None,
        properties: dict[str, Any] | None,
        statement: ast.Statement | None = None,
    ) -> JobSpec:
        if not sql or not sql.strip():
            raise BadRequestError("the job's SQL is empty")
        stmt = statement if statement is not None else parse_statement(sql)
        if not isinstance(stmt, ast.CreateStreamAs | ast.StartJob):
            raise BadRequestError(
                "a job needs a CREATE STREAM … AS SELECT or START JOB … AS SELECT statement"
            )
        job_name = (name if name is not None else stmt.name).strip().lower()
        if not job_name:
            raise BadRequestError("the job's name is empty")
        if not NAME_RE.fullmatch(job_name):
            raise BadRequestError(
                f"invalid job name '{job_name}': use a letter, then letters, digits or _ (≤ 64)"
            )
        props = {p.key.lower(): p.value for p in (*stmt.query.properties, *stmt.properties)}
        props.update({k.lower(): v for k, v in (properties or {}).items()})
        sink_topic = str(props.get("output.topic") or props.get("kafka_topic") or stmt.name)
        query = compile_select(stmt.query)
        return JobSpec(
            name=job_name,
            sql=sql,
            query=query,
            source_topic=query.plan.source,
            sink_topic=sink_topic,
            properties=props,
            batch_size=_int_property(props, "batch.size", 2000),
            batch_timeout_ms=_int_property(props, "batch.timeout", 100),
        )

    async def deploy_job(
        self,
        sql: str,
        name: str | None = None,
        properties: dict[str, Any] | None = None,
        *,
        statement: ast.Statement | None = None,
    ) -> JobRuntime:
        """Validate, compile and start a job; returns once it is RUNNING (or has failed)."""
        spec = self._spec(sql, name, properties, statement)
        async with self._lock:
            existing = self._jobs.get(spec.name)
            if existing is not None and existing.state in LIVE_STATES:
                raise DuplicateJobError(f"a job named '{spec.name}' already exists")
            if self.live_count() >= self.config.max_jobs:
                raise JobLimitError(
                    f"the server runs its limit of {self.config.max_jobs} jobs; stop one first"
                )
            await self._prepare_topics(spec)
            job = JobRuntime(spec, self._source_factory(spec), self._sink_factory(spec))
            self._jobs[spec.name] = job
            job.start()
        await job.wait_for(_STARTED, _START_TIMEOUT_S)
        return job

    async def _prepare_topics(self, spec: JobSpec) -> None:
        try:
            partitions = await self.admin.partition_count(spec.source_topic)
            if partitions is None:
                raise ValidationError(f"unknown stream or topic '{spec.source_topic}'")
            await self.admin.ensure_topic(spec.sink_topic, partitions)
        except ConnectorError as exc:
            raise KafkaUnavailableError(str(exc)) from exc

    # ------------------------------------------------------------------ control

    async def stop_job(self, name: str, force: bool = False) -> JobRuntime:
        """Stop a job and free its name and slot; returns the job as it ended."""
        job = self.get_job(name)
        await job.stop(force=force)
        async with self._lock:
            if self._jobs.get(job.name) is job:
                del self._jobs[job.name]
        return job

    async def pause_job(self, name: str) -> JobRuntime:
        """Pause a running job (offsets and state kept)."""
        job = self.get_job(name)
        if job.state not in (JobState.RUNNING, JobState.DEGRADED):
            raise InvalidStateError(f"job '{job.name}' is {job.state.value}, not RUNNING")
        job.send(Command.PAUSE)
        await job.wait_for(frozenset({JobState.PAUSED, JobState.FAILED}), _CONTROL_TIMEOUT_S)
        return job

    async def resume_job(self, name: str) -> JobRuntime:
        """Resume a paused job."""
        job = self.get_job(name)
        if job.state is not JobState.PAUSED:
            raise InvalidStateError(f"job '{job.name}' is {job.state.value}, not PAUSED")
        job.send(Command.RESUME)
        await job.wait_for(
            frozenset({JobState.RUNNING, JobState.DEGRADED, JobState.FAILED}), _CONTROL_TIMEOUT_S
        )
        return job

    async def shutdown(self) -> None:
        """Stop every job (graceful drain), as on server exit."""
        await asyncio.gather(*(j.stop() for j in list(self._jobs.values())))
        self._jobs.clear()
