"""The words the shell knows: keywords and function names from ``velo.grammar``, plus WITH keys and types.

``velo.grammar.keywords`` (``KEYWORDS``, ``FUNCTION_NAMES``) is the source of truth, so highlighting and
completion follow the grammar; the lists here are the dialect spec's words, used only when the grammar
package cannot be imported (an older install) so the shell still highlights and completes.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FALLBACK_KEYWORDS = _words(
    """
ADD ADVANCE ALL AND APP AS ASC BEGINNING BETWEEN BY CASE CAST CHANGES CREATE DAY DAYS DELETE DESC
DESCRIBE DISTINCT DROP ELSE EMIT END EXISTS EXPLAIN FALSE FINAL FORCE FROM FULL FUNCTION FUNCTIONS
GRACE GROUP HAVING HOPPING HOUR HOURS IF IN INNER INSERT INTERVAL INTO IS JOB JOBS JOIN KEY LEFT
LIKE LIMIT METRICS MILLISECOND MILLISECONDS MINUTE MINUTES NOT NULL ON OR ORDER OUTER OVER PARTITION
PAUSE PERIOD PRECEDING PRIMARY PRINT PROPERTIES QUERIES REPLACE RESUME RIGHT ROW ROWS SECOND SECONDS
SELECT SESSION SET SHOW SIZE SLIDING START STATUS STOP STREAM STREAMS TABLE TABLES TERMINATE THEN
TOPIC TOPICS TRUE TUMBLING UNSET VALUES WHEN WHERE WINDOW WITH WITHIN CURRENT UNBOUNDED FOLLOWING
DATE TIMESTAMP TOPIC
"""
)

_FALLBACK_FUNCTIONS = _words(
    """
COUNT SUM AVG MIN MAX FIRST_VALUE LAST_VALUE STDDEV STDDEV_SAMP STDDEV_POP VARIANCE VAR_SAMP VAR_POP
MEDIAN PERCENTILE_CONT APPROX_COUNT_DISTINCT LISTAGG STRING_AGG COLLECT_LIST ABS ROUND CEIL CEILING
FLOOR SQRT POWER POW MOD EXP LN LOG10 SIGN LEAST GREATEST RANDOM UPPER LOWER LENGTH SUBSTRING
REPLACE TRIM LTRIM RTRIM CONCAT SPLIT SPLIT_PART LEFT RIGHT POSITION REGEXP_MATCH REGEXP_EXTRACT
REGEXP_REPLACE LPAD RPAD NOW CURRENT_TIMESTAMP TIMESTAMP EXTRACT DATE_FORMAT FROM_UNIXTIME
UNIX_TIMESTAMP TUMBLE_START TUMBLE_END DATEDIFF COALESCE NULLIF IF JSON_EXTRACT JSON_VALUE
ARRAY_LENGTH ARRAY_CONTAINS MAP_KEYS MAP_VALUES HEADER HAS_HEADER HEADER_KEYS LAG ROW_NUMBER RANK
DENSE_RANK WINDOWSTART WINDOWEND
"""
)

TYPES = (
    "BOOLEAN", "INT", "INTEGER", "BIGINT", "DOUBLE", "FLOAT", "REAL", "DECIMAL", "STRING", "VARCHAR",
    "TEXT", "TIMESTAMP", "DATE", "ARRAY", "MAP", "STRUCT",
)  # fmt: skip

# Keys of a job's WITH (...) clause (dialect section 6), offered inside WITH (.
JOB_PROPERTY_KEYS = (
    "output.topic", "event.time.field", "event.time.format", "watermark.max_out_of_orderness",
    "watermark.idle_timeout", "late.data.strategy", "failure_strategy", "max_retries", "retry_backoff",
    "dlq.topic", "batch.size", "batch.timeout", "delivery.guarantee", "join.state.ttl",
    "join.state.max_rows", "over.state.ttl", "auto.offset.reset", "state.snapshot.interval",
)  # fmt: skip

# Per-relation keys, offered as '<name>.<key>' for each relation of the statement.
RELATION_PROPERTY_KEYS = (
    "type", "topic", "topic.name", "bootstrap.servers", "format", "group.id", "auto.offset.reset",
    "path", "has_headers", "delimiter", "watch", "config_file", "avro.schema", "avro.schema.file",
    "avro.confluent",
)  # fmt: skip

# Catalog statement keys (CREATE STREAM x (...) WITH (KAFKA_TOPIC=...)).
CATALOG_PROPERTY_KEYS = (
    "KAFKA_TOPIC", "VALUE_FORMAT", "KEY_FORMAT", "TIMESTAMP", "TIMESTAMP_FORMAT", "KEY", "PARTITIONS",
)  # fmt: skip

# Values worth offering after `'<key>' =`.
PROPERTY_VALUES: dict[str, tuple[str, ...]] = {
    "type": ("kafka_source", "kafka_sink", "file_source", "file_sink"),
    "format": ("json", "csv", "avro"),
    "auto.offset.reset": ("earliest", "latest"),
    "late.data.strategy": ("drop", "dead_letter"),
    "failure_strategy": ("LogAndContinue", "SendToDLQ", "FailBatch", "RetryWithBackoff"),
    "delivery.guarantee": ("at_least_once", "exactly_once"),
    "event.time.format": ("epoch_millis", "epoch_seconds", "iso8601"),
    "value_format": ("JSON", "CSV", "AVRO"),
    "cli.live": ("true", "false"),
}

STATEMENT_STARTERS = (
    "SELECT", "CREATE STREAM", "CREATE TABLE", "CREATE OR REPLACE", "START JOB", "INSERT INTO", "PRINT",
    "STOP JOB", "TERMINATE", "PAUSE JOB", "RESUME JOB", "SHOW", "DESCRIBE", "EXPLAIN", "SET", "UNSET",
    "DROP STREAM", "DROP TABLE",
)  # fmt: skip


def _upper_words(values: Iterable[object]) -> tuple[str, ...]:
    return tuple(sorted({str(v).upper() for v in values if str(v).strip()}))


@cache
def keywords() -> tuple[str, ...]:
    """Every keyword, upper case (the grammar's when it exports them)."""
    try:
        from velo.grammar.keywords import KEYWORDS

        words = _upper_words(KEYWORDS)
        if words:
            return words
    except Exception:  # grammar not installed or not built yet: the spec's list keeps the shell usable
        pass
    return _upper_words(_FALLBACK_KEYWORDS)


@cache
def function_names() -> tuple[str, ...]:
    """Every built-in function name, upper case."""
    try:
        from velo.grammar.keywords import FUNCTION_NAMES

        words = _upper_words(FUNCTION_NAMES)
        if words:
            return words
    except Exception:  # see keywords()
        pass
    return _upper_words(_FALLBACK_FUNCTIONS)
