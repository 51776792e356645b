"""Request and response models (pydantic): they validate bodies and *are* the ``/openapi.json`` schemas.

Request models forbid unknown fields (a typo is a 400, not a silently ignored option). Response models
name every field the API promises and allow extra ones, so a view gaining a field never breaks a
client that validates against the document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------------------------------------- requests


class StatementsRequest(_Request):
    """``POST /statements``: one or more statements separated by ``;``."""

    sql: str = Field(min_length=1, description="One or more statements, each ending with ';'.")
    properties: dict[str, Any] = Field(default_factory=dict, description="Applied to every statement.")
    variables: dict[str, str] = Field(default_factory=dict, description="${name} substitutions.")


class QueryRequest(_Request):
    """``POST /query``: one transient SELECT (or PRINT) whose rows stream back."""

    sql: str = Field(min_length=1)
    properties: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = Field(default=None, ge=0, description="Stop after this many rows.")


class JobRequest(_Request):
    """``POST /jobs``: deploy one job statement."""

    sql: str = Field(min_length=1, description="One CREATE STREAM … AS SELECT or START JOB … AS SELECT.")
    name: str | None = Field(default=None, description="Overrides the statement's name.")
    version: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class AppRequest(_Request):
    """``POST /apps``: deploy a SQL application file (also accepted as a raw ``text/plain`` body)."""

    sql: str = Field(min_length=1, description="The application file's text.")
    name: str | None = Field(default=None, description="Overrides the file's @app annotation.")
    variables: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- errors


class ErrorDetail(_Response):
    """The one error object of every 4xx/5xx body."""

    code: Literal[
        "sql_syntax", "sql_validation", "duplicate_job", "job_limit", "not_found", "invalid_state",
        "unauthorized", "payload_too_large", "bad_request", "kafka_unavailable", "internal",
        "not_implemented",
    ]
    message: str
    line: int | None = None
    column: int | None = None
    expected: list[str] | None = None
    statement: int | None = None
    error_id: str | None = Field(default=None, description="On a 500: the id the server log carries.")


class ErrorResponse(_Response):
    """``{"error": {...}}``."""

    error: ErrorDetail


# ---------------------------------------------------------------------------------------------- server


class KafkaStatus(_Response):
    brokers: str
    reachable: bool


class HealthResponse(_Response):
    """``GET /health``: liveness and a summary (200 even when degraded)."""

    status: Literal["ok", "degraded"]
    version: str
    uptime_s: float
    jobs: dict[str, int] = Field(description="Job count per state (lower case).")
    kafka: KafkaStatus


class ReadyResponse(_Response):
    """``GET /ready``: the server can take work."""

    ready: bool
    registry_loaded: bool
    kafka_reachable: bool


class InfoResponse(_Response):
    """``GET /info``: how this server is configured."""

    version: str
    brokers: str
    embedded_kafka: bool
    max_jobs: int
    live_jobs: int
    data_dir: str
    auth: bool
    tls: bool
    max_body: int
    uptime_s: float


# ---------------------------------------------------------------------------------------------- jobs


class JobMetricsView(_Response):
    records_in: int
    records_out: int
    records_failed: int


class TransitionView(_Response):
    state: str
    at: str
    reason: str


class JobView(_Response):
    """A job as the API shows it; ``GET /jobs/{name}`` adds the plan, code, offsets and errors."""

    name: str
    state: Literal["STARTING", "RUNNING", "PAUSED", "DEGRADED", "STOPPING", "STOPPED", "FAILED"]
    sql: str
    app: str | None = None
    version: str | None = None
    created_at: str
    started_at: str | None = None
    metrics: JobMetricsView
    history: list[TransitionView]


class JobsResponse(_Response):
    jobs: list[JobView]


class StatementResult(_Response):
    """The result of one statement: a deployed job, a table of rows, or a message."""

    type: str = Field(description="'job', 'rows' or 'message' (more kinds may be added).")
    statement: int = Field(description="1-based index of the statement in the request.")
    message: str
    job: JobView | None = None
    columns: list[str] | None = None
    rows: list[list[Any]] | None = None


class StatementsResponse(_Response):
    results: list[StatementResult]


# ---------------------------------------------------------------------------------------------- queries


class QueryView(_Response):
    id: str
    sql: str
    client: str
    started: str
    rows_sent: int


class QueriesResponse(_Response):
    queries: list[QueryView]


class ColumnView(_Response):
    name: str
    type: str


class QueryHeader(_Response):
    query_id: str
    columns: list[ColumnView]
    emit: str


class QueryDone(_Response):
    rows: int
    reason: Literal["limit", "end_of_input", "cancelled", "shutdown"]


class QueryEvent(_Response):
    """One NDJSON line of ``POST /query``: exactly one of the keys below is present."""

    header: QueryHeader | None = None
    row: list[Any] | None = None
    op: Literal["insert", "upsert", "delete"] | None = None
    key: Any = None
    heartbeat: int | None = Field(default=None, description="Server time (ms) after 5 s of silence.")
    done: QueryDone | None = None
    error: ErrorDetail | None = None


# ---------------------------------------------------------------------------------------------- apps


class AppView(_Response):
    name: str
    version: str | None = None
    description: str | None = None
    jobs: list[JobView]


class AppsResponse(_Response):
    apps: list[AppView]


# ---------------------------------------------------------------------------------------------- catalog


class PartitionView(_Response):
    partition: int
    end_offset: int | None = Field(description="Next offset to be written (fetch high watermark).")


class TopicView(_Response):
    name: str
    partitions: list[PartitionView]
    end_offset: int = Field(description="Sum of the partitions' end offsets.")


class TopicsResponse(_Response):
    topics: list[TopicView]


class StreamView(_Response):
    """A declared stream or table, or a job's output stream."""

    name: str
    topic: str = Field(description="Kafka topic (or file path under the data dir) holding its records.")
    columns: list[ColumnView]
    job: str | None = Field(default=None, description="The job producing it, if any.")
    kind: Literal["stream", "table"] = "stream"
    format: str | None = None
    key: str | None = None
    timestamp: str | None = None


class FunctionView(_Response):
    name: str
    signature: str
    description: str
    example: str = ""
    return_type: str = "ANY"


class CatalogResponse(_Response):
    """What the shell completes: streams with columns, tables, topics, jobs, functions, keywords."""

    streams: list[StreamView]
    tables: list[StreamView]
    topics: list[str]
    jobs: list[str]
    functions: list[FunctionView]
