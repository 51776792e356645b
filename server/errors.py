"""Every error velo-server raises on purpose, in one place (the httpx model).

    VeloError                 base: a code, an HTTP status and a user-facing message
    ├── BadRequestError       400 bad_request       malformed request or an unsupported statement here
    ├── NotFoundError         404 not_found         no such job / query / stream
    ├── DuplicateJobError     409 duplicate_job     a live job already has that name
    ├── InvalidStateError     409 invalid_state     e.g. resume of a job that is not paused
    ├── JobLimitError         429 job_limit         max_jobs live jobs already
    └── KafkaUnavailableError 503 kafka_unavailable the broker cannot be reached

SQL errors come from the grammar's family (``velo.grammar.errors``): ``SqlSyntaxError`` (400 sql_syntax)
and ``SqlValidationError`` (400 sql_validation: the SQL parses but cannot run — unknown source, bad
property, a job of an app that did not start). The HTTP layer maps both families onto the one error shape
of the API. Nothing else is ever shown to a user.
"""

from __future__ import annotations

from typing import Any


class VeloError(Exception):
    """Base of the server's deliberate errors."""

    code = "internal"
    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` object of an HTTP error body."""
        return {"code": self.code, "message": self.message, **self.details}


class BadRequestError(VeloError):
    code, status = "bad_request", 400


class NotFoundError(VeloError):
    code, status = "not_found", 404


class DuplicateJobError(VeloError):
    code, status = "duplicate_job", 409


class InvalidStateError(VeloError):
    code, status = "invalid_state", 409


class JobLimitError(VeloError):
    code, status = "job_limit", 429


class KafkaUnavailableError(VeloError):
    code, status = "kafka_unavailable", 503
