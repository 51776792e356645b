"""Request models (pydantic): they validate bodies and document them in ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatementsRequest(_Request):
    """``POST /statements``: one or more statements separated by ``;``."""

    sql: str = Field(min_length=1)
    properties: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, str] = Field(default_factory=dict)


class QueryRequest(_Request):
    """``POST /query``: one transient SELECT whose rows stream back."""

    sql: str = Field(min_length=1)
    properties: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = Field(default=None, ge=0)


class JobRequest(_Request):
    """``POST /jobs``: deploy one job statement."""

    sql: str
    name: str | None = None
    version: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
