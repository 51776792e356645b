"""The MultiJobSqlServer: deploys, lists, stops, pauses and resumes many named jobs in one process.

Every check that decides whether a job may exist (name, duplicate, limit) happens under one lock, so
concurrent deploys from many clients give exactly the jobs the rules allow. With a registry, every
change of a job's desired state is persisted and ``restore()`` brings the jobs back after a restart.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velo.grammar import ast
from velo.grammar.parser import parse_statement

from ..connectors.base import ConnectorError, Sink, Source
from ..connectors.files import FileSink
from ..connectors.inputs import input_source
from ..connectors.kafka import KafkaAdmin, KafkaSink
from ..engine.catalog import Catalog
from ..engine.compile import InputSpec, compile_select
from ..engine.compiler.sink import insert_columns, insert_target
from ..engine.validate import check_job_properties, parse_duration, sink_keys, unknown
from ..errors import (
    BadRequestError,
    DuplicateJobError,
    InvalidStateError,
    JobLimitError,
    KafkaUnavailableError,
    NotFoundError,
)
from .failures import FailurePolicy
from .model import LIVE_STATES, JobSpec, JobState
from .queries import check_inferred_columns
from .registry import JobRecord, JobRegistry
from .runtime import Command, JobRuntime
from .snapshots import SnapshotStore

log = logging.getLogger("velo.job")

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_START_TIMEOUT_S = 10.0
_CONTROL_TIMEOUT_S = 10.0
_STARTED = frozenset(JobState) - {JobState.STARTING}

SourceFactory = Callable[[JobSpec], Source]
SinkFactory = Callable[[JobSpec, str], Sink]


@dataclass(frozen=True)
class ManagerConfig:
    """What the manager needs from the server's settings."""

    brokers: str
    max_jobs: int = 100
    data_dir: Path | None = None  # file sources and sinks must lie under it


def _relation_node(statement: ast.Statement | None, alias: str) -> ast.Node | None:
    """The FROM/JOIN reference of a job statement that an input (by its alias) comes from."""
    query = getattr(statement, "query", None)
    if not isinstance(query, ast.Select):
        return None
    for ref in (query.from_, *(j.table for j in query.joins)):
        if (ref.alias or ref.name) == alias:
            return ref
    return None


class MultiJobSqlServer:
    """The job manager. Sources and sinks default to Kafka; tests may pass other factories."""

    def __init__(
        self,
        config: ManagerConfig,
        *,
        registry: JobRegistry | None = None,
        source_factory: SourceFactory | None = None,
        sink_factory: SinkFactory | None = None,
    ) -> None:
        self.config = config
        self.admin = KafkaAdmin(config.brokers)
        self.registry = registry
        # Declared streams and tables (CREATE STREAM … WITH), persisted beside the jobs that use them.
        self.catalog = Catalog.from_dict(registry.load_catalog()) if registry is not None else Catalog()
        self._jobs: dict[str, JobRuntime] = {}
        self._lock = asyncio.Lock()
        self._source_factory = source_factory or self._kafka_source
        # Stateful jobs keep their operator state in <data-dir>/state across stops and restarts.
        self.snapshots = SnapshotStore(config.data_dir / "state") if config.data_dir is not None else None
        self._sink_factory = sink_factory or self._kafka_sink
        self._admins: dict[str, KafkaAdmin] = {}  # clusters other than the server's ('<name>.bootstrap.servers')

    # ------------------------------------------------------------------ factories

    def _kafka_source(self, spec: JobSpec) -> Source:
        # 'auto.offset.reset' (validated: earliest or latest) is where a partition without a committed
        # offset starts, and where a source whose topic was recreated reads on (KafkaSource._place).
        reset = str(spec.properties.get("auto.offset.reset", "earliest")).lower()
        return input_source(spec.query.inputs, self.config.brokers, group_id=f"velo-{spec.name}",
                            offset_reset=reset)

    def _kafka_sink(self, spec: JobSpec, topic: str) -> Sink:
        """The job's sink as its keys say (a file, or Kafka: cluster, compression, client settings); a
        DLQ (any other topic) on the server's cluster with the defaults."""
        target = spec.query.sink
        if target is None or topic != spec.sink_topic:
            return KafkaSink(self.config.brokers, topic)
        if target.kind == "file":
            assert target.path is not None  # resolved under the data dir when the job compiled
            return FileSink(Path(target.path), target.format, target.columns, target.delimiter)
        return KafkaSink(target.bootstrap_servers or self.config.brokers, topic, compression=target.compression,
                         client_options=dict(target.client_options))

    def _admin_for(self, brokers: str | None) -> KafkaAdmin:
        """The admin client of a cluster: the server's, or one kept for a source or sink with its own."""
        if brokers is None or brokers == self.config.brokers:
            return self.admin
        admin = self._admins.get(brokers)
        if admin is None:
            admin = self._admins[brokers] = KafkaAdmin(brokers)
        return admin

    def save_catalog(self) -> None:
        """Persist the catalog after a CREATE, DROP or a job's output registration."""
        if self.registry is not None:
            self.registry.save_catalog(self.catalog.to_dict())

    # ------------------------------------------------------------------ queries

    def list_jobs(self, like: str | None = None) -> list[JobRuntime]:
        """Jobs known to the server, by name; ``like`` is a SQL pattern (``%`` and ``_``)."""
        jobs = sorted(self._jobs.values(), key=lambda j: j.name)
        if like is None:
            return jobs
        pattern = like.lower().replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")
        pattern = pattern.replace("%", "*").replace("_", "?")
        return [j for j in jobs if fnmatch.fnmatchcase(j.name, pattern)]

    def get_job(self, name: str) -> JobRuntime:
        """The job called ``name``; NotFoundError if there is none."""
        job = self._jobs.get(name.lower())
        if job is None:
            raise NotFoundError(f"no job named '{name}'")
        return job

    def live_count(self) -> int:
        """How many jobs hold a slot (STARTING, RUNNING, PAUSED, DEGRADED)."""
        return sum(1 for j in self._jobs.values() if j.state in LIVE_STATES)

    # ------------------------------------------------------------------ deploy

    def build_spec(
        self,
        sql: str,
        name: str | None = None,
        properties: dict[str, Any] | None = None,
        statement: ast.Statement | None = None,
        *,
        app: str | None = None,
        version: str | None = None,
    ) -> JobSpec:
        """Parse, validate and compile a job statement; nothing starts."""
        if not sql or not sql.strip():
            raise BadRequestError("the job's SQL is empty")
        stmt = statement if statement is not None else parse_statement(sql)
        if not isinstance(stmt, ast.CreateStreamAs | ast.StartJob | ast.InsertSelect):
            raise BadRequestError("a job needs a CREATE STREAM … AS SELECT, START JOB … AS SELECT or "
                                  "INSERT INTO … SELECT statement")
        insert = isinstance(stmt, ast.InsertSelect)
        target = stmt.target if isinstance(stmt, ast.InsertSelect) else stmt.name
        # An INSERT INTO job is named after its target unless the caller names it (POST /jobs' name): the
        # first insert_<target>, the next insert_<target>_2 while that one runs, and so on.
        job_name = (name if name is not None else f"insert_{target}" if insert else target).strip().lower()
        if insert and name is None:
            base, n = job_name, 2
            while job_name in self._jobs and self._jobs[job_name].state in LIVE_STATES:
                job_name, n = f"{base}_{n}", n + 1
        if not job_name:
            raise BadRequestError("the job's name is empty")
        if not NAME_RE.fullmatch(job_name):
            raise BadRequestError(f"invalid job name '{job_name}': use a letter, then letters, digits or _ (≤ 64)")
        props = {p.key.lower(): p.value for p in (*stmt.query.properties, *stmt.properties)}
        overridden = {k.lower() for k in (properties or {})}
        nodes: dict[str, ast.Node] = {p.key.lower(): p for p in (*stmt.query.properties, *stmt.properties)
                                      if p.key.lower() not in overridden}
        props.update({k.lower(): v for k, v in (properties or {}).items()})
        check_job_properties(stmt.query, props, nodes, sink_name=target, catalog=self.catalog,
                             data_dir=self.config.data_dir)
        own, _ = sink_keys(target, props)  # validated above
        entry = self.catalog.get(target) if insert else None
        if insert:
            insert_target(target, entry, own, stmt)
            sink_topic = entry.topic or target if entry is not None else target
        elif str(own.get("type", "")).lower() == "file_sink":
            sink_topic = str(own["path"])  # shown as the job's sink; no topic is created
        else:
            sink_topic = str(props.get("output.topic") or props.get("kafka_topic") or own.get("topic")
                             or own.get("topic.name") or target)
        query = compile_select(stmt.query, catalog=self.catalog, properties=props,
                               data_dir=self.config.data_dir, sink_name=target)
        if entry is not None and entry.columns:
            insert_columns(target, entry.column_names(), [c.name for c in query.plan.columns], stmt.query)
        return JobSpec(
            name=job_name,
            sql=sql,
            query=query,
            source_topic=query.plan.source,
            sink_topic=sink_topic,
            properties=props,
            app=app,
            version=version,
            batch_size=int(str(props.get("batch.size", 2000))),  # validated by check_job_properties
            batch_timeout_ms=parse_duration(props.get("batch.timeout", 100), "batch.timeout"),
            snapshot_interval_ms=parse_duration(props.get("state.snapshot.interval", 5000),
                                                "state.snapshot.interval"),
            insert=insert,
        )

    async def deploy_job(
        self,
        sql: str,
        name: str | None = None,
        properties: dict[str, Any] | None = None,
        *,
        statement: ast.Statement | None = None,
        app: str | None = None,
        version: str | None = None,
    ) -> JobRuntime:
        """Validate, compile and start a job; returns once it is RUNNING (or has failed)."""
        stmt = statement if statement is not None or not sql or not sql.strip() else parse_statement(sql)
        spec = self.build_spec(sql, name, properties, stmt, app=app, version=version)
        job = await self.admit(spec, statement=stmt)
        await job.wait_for(_STARTED, _START_TIMEOUT_S)
        return job

    async def admit(
        self, spec: JobSpec, desired: JobState = JobState.RUNNING, persist: bool = True, prepare: bool = True,
        *, statement: ast.Statement | None = None,
    ) -> JobRuntime:
        """Take a slot for ``spec`` and start it (or leave it paused/stopped as ``desired`` says).

        ``prepare`` checks the source and creates the sink topics first; a restore skips it when the
        broker is down, and the job starts DEGRADED, retrying, instead of failing. ``statement``
        (the job's parsed statement) places an unknown stream's error at its FROM/JOIN; with it (a
        deploy, not a restore) an undeclared source's columns are checked against its records.
        """
        if prepare and isinstance(statement, ast.CreateStreamAs | ast.StartJob | ast.InsertSelect):
            # Before the lock: it reads the topic, and other deploys need not wait for that.
            await check_inferred_columns(self.config.brokers, statement.query, spec.query,
                                         catalog=self.catalog, properties=spec.properties,
                                         data_dir=self.config.data_dir,
                                         sink_name=statement.target if isinstance(statement, ast.InsertSelect)
                                         else statement.name)
        async with self._lock:
            existing = self._jobs.get(spec.name)
            if existing is not None and existing.state in LIVE_STATES:
                raise DuplicateJobError(f"a job named '{spec.name}' already exists")
            if desired is not JobState.STOPPED and self.live_count() >= self.config.max_jobs:
                raise JobLimitError(f"the server runs its limit of {self.config.max_jobs} jobs; stop one first")
            policy = FailurePolicy.from_properties(spec.name, spec.properties)
            if prepare:
                await self._prepare_topics(spec, policy, statement)
            job = JobRuntime(
                spec,
                self._source_factory(spec),
                self._sink_factory(spec, spec.sink_topic),
                policy=policy,
                dlq=self._sink_factory(spec, policy.dlq_topic) if policy.uses_dlq else None,
                on_change=self._persist_state,
                snapshots=self.snapshots,
                # Not prepared here (a restore): the job's task waits for its topics before it starts.
                prepare=None if prepare else functools.partial(self._wait_for_topics, spec, policy),
            )
            self._jobs[spec.name] = job
            if persist and self.registry is not None:
                self.registry.save(JobRecord(spec.name, spec.sql, spec.properties, spec.app, spec.version,
                                             desired.value, None, job.created_at.isoformat()))
            if desired is JobState.STOPPED:
                job.mark(JobState.STOPPED, "restored without auto-deploy; RESUME JOB to start it")
            else:
                if desired is JobState.PAUSED:
                    job.send(Command.PAUSE)  # handled before the first fetch: no record is read
                job.start()
        return job

    async def _prepare_topics(self, spec: JobSpec, policy: FailurePolicy,
                              statement: ast.Statement | None = None) -> None:
        try:
            missing = await self._ensure_topics(spec, policy)
            if missing is not None and missing.role == "insert":
                topics = [t for t in await self.admin.list_topics() if not t.startswith("_")]
                raise unknown("stream or topic to INSERT INTO", missing.topic,
                              [*self.catalog.names(), *topics], statement)
            if missing is not None:
                topics = [t for t in await self.admin.list_topics() if not t.startswith("_")]
                raise unknown("stream or topic", missing.topic, [*self.catalog.names(), *topics],
                              _relation_node(statement, missing.name))
        except ConnectorError as exc:
            raise KafkaUnavailableError(str(exc)) from exc

    async def _ensure_topics(self, spec: JobSpec, policy: FailurePolicy) -> InputSpec | None:
        """Create the sink (and DLQ) topics once every Kafka input exists; else the first missing input.

        The sink gets the source's partition count, so nothing is created before the source is there.
        ConnectorError when Kafka does not answer.
        """
        kafka_inputs = [i for i in spec.query.inputs if i.kind == "kafka"]
        counts = [await self._admin_for(i.bootstrap_servers).partition_count(i.topic) for i in kafka_inputs]
        missing = [i for i, n in zip(kafka_inputs, counts, strict=True) if n is None]
        if missing:
            return missing[0]
        partitions = next((n for n in counts if n is not None), 4)
        target = spec.query.sink
        if spec.insert:  # INSERT INTO writes into a topic that is there: it is never created
            admin = self._admin_for(target.bootstrap_servers if target is not None else None)
            if await admin.partition_count(spec.sink_topic) is None:
                return InputSpec(spec.name, spec.sink_topic, role="insert")
        elif target is None or target.kind == "kafka":
            admin = self._admin_for(target.bootstrap_servers if target is not None else None)
            await admin.ensure_topic(spec.sink_topic, partitions)
        if policy.uses_dlq:
            await self.admin.ensure_topic(policy.dlq_topic, 1)
        return None

    async def _wait_for_topics(self, spec: JobSpec, policy: FailurePolicy) -> None:
        """A restored job's first step: ConnectorError (the job waits, DEGRADED) until its topics are ready.

        A job definition is the user's: one whose source topic does not exist (yet) — a new broker,
        a topic not created again yet — stays listed, waiting with that reason, and starts by itself
        once the topic appears; the job's task polls with backoff (runtime.py).
        """
        missing = await self._ensure_topics(spec, policy)
        if missing is not None:
            raise ConnectorError(f"waiting for topic '{missing.topic}' to exist")

    def _persist_state(self, job: JobRuntime) -> None:
        """Keep the registry's desired state in step with the job (called on every transition)."""
        if self.registry is None or self._jobs.get(job.name) is not job:
            return
        if job.state in (JobState.RUNNING, JobState.PAUSED, JobState.FAILED):
            self.registry.set_state(job.name, job.state.value, job.error)

    # ------------------------------------------------------------------ restore

    async def restore(self, auto_deploy: bool = True) -> list[str]:
        """Bring back every registered job in its last desired state; returns the names restored.

        Topics are not checked here: each job's task does that before it starts, so a job whose
        source topic is missing (or whose broker is down) is listed DEGRADED with the reason and
        starts when the topic appears (``_wait_for_topics``). A job whose SQL no longer compiles is
        marked FAILED in the registry with the reason rather than blocking the others. Returns once
        every restored job has started (or is waiting, with its reason), within the start timeout.
        """
        if self.registry is None:
            return []
        restored = []
        starting: list[tuple[JobRuntime, frozenset[JobState]]] = []
        for record in self.registry.load():
            desired = JobState(record.state) if auto_deploy else JobState.STOPPED
            try:
                spec = self.build_spec(record.sql, record.name, record.properties,
                                       app=record.app, version=record.version)
                if desired is JobState.FAILED:
                    job = await self.admit(spec, JobState.STOPPED, persist=False, prepare=False)
                    job.error = record.reason
                    job.mark(JobState.FAILED, record.reason or "failed before the restart")
                else:
                    job = await self.admit(spec, desired, persist=False, prepare=False)
                    # A paused job passes through RUNNING ("connected") before its pause is applied.
                    starting.append((job, _STARTED - {JobState.RUNNING} if desired is JobState.PAUSED else _STARTED))
            except Exception as exc:
                # No spec to run or list (its SQL no longer compiles): say so, the registry keeps the job.
                log.error("job %s not restored: %s", record.name, exc, extra={"job": record.name})
                self.registry.set_state(record.name, JobState.FAILED.value, f"restore failed: {exc}")
                continue
            restored.append(record.name)
        # Concurrently: a job waiting for its topic is DEGRADED after its first metadata request.
        await asyncio.gather(*(job.wait_for(states, _START_TIMEOUT_S) for job, states in starting))
        return restored

    # ------------------------------------------------------------------ control

    async def stop_job(self, name: str, force: bool = False) -> JobRuntime:
        """Stop a job and free its name and slot; returns the job as it ended."""
        job = self.get_job(name)
        await job.stop(force=force)
        async with self._lock:
            if self._jobs.get(job.name) is job:
                del self._jobs[job.name]
                if self.registry is not None:
                    self.registry.delete(job.name)
        return job

    async def pause_job(self, name: str) -> JobRuntime:
        """Pause a running job (offsets and operator state kept; the consumer stays in its group)."""
        job = self.get_job(name)
        if job.state not in (JobState.RUNNING, JobState.DEGRADED):
            raise InvalidStateError(f"job '{job.name}' is {job.state.value}, not RUNNING")
        job.send(Command.PAUSE)
        await job.wait_for(frozenset({JobState.PAUSED, JobState.FAILED}), _CONTROL_TIMEOUT_S)
        return job

    async def resume_job(self, name: str) -> JobRuntime:
        """Resume a paused job, or start one restored without auto-deploy."""
        job = self.get_job(name)
        if job.state is JobState.STOPPED and job.task is None:
            async with self._lock:
                if self.live_count() >= self.config.max_jobs:
                    raise JobLimitError(f"the server runs its limit of {self.config.max_jobs} jobs; stop one first")
                job.start()
            await job.wait_for(_STARTED - {JobState.STOPPED}, _START_TIMEOUT_S)
            return job
        if job.state is not JobState.PAUSED:
            raise InvalidStateError(f"job '{job.name}' is {job.state.value}, not PAUSED")
        job.send(Command.RESUME)
        await job.wait_for(frozenset({JobState.RUNNING, JobState.DEGRADED, JobState.FAILED}), _CONTROL_TIMEOUT_S)
        return job

    async def shutdown(self) -> None:
        """Stop every job's task (graceful drain) without forgetting them: a restart restores them."""
        await asyncio.gather(*(j.stop() for j in list(self._jobs.values())))
        self._jobs.clear()
        await self.admin.close()
        for admin in self._admins.values():
            await admin.close()
        if self.registry is not None:
            self.registry.close()
