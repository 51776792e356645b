"""The ``'kafka.*'`` WITH keys: which Kafka client settings a job may pass, and their aiokafka names.

Users write the settings as Kafka documents them (``'kafka.fetch.max.bytes' = '1048576'``); aiokafka
takes keyword arguments (``fetch_max_bytes=1048576``). This table is the translation, and the list of
what is accepted: a key that is not in it is refused when the job is validated (at the property), so
that a typo or a setting aiokafka does not have cannot be accepted and then do nothing. Settings Velo
manages itself (offsets, commits, group membership, serialisation, partitioning) are refused with the
key to use instead. No aiokafka import here: the engine validates with this table before anything
connects.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Side = Literal["consumer", "producer"]
"""A source's client (the consumer) or a sink's (the producer)."""


class OptionError(ValueError):
    """A ``kafka.*`` key or value that cannot be passed on; ``suggestions`` are the nearest keys."""

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.suggestions = suggestions or []


@dataclass(frozen=True)
class _Option:
    kwarg: str
    convert: Callable[[str, Any], Any]
    sides: frozenset[str]


def _count(minimum: int) -> Callable[[str, Any], Any]:
    def convert(key: str, value: Any) -> int:
        try:
            out = int(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            out = None
        if out is None or out < minimum:
            raise OptionError(f"'{key}' must be a whole number ({minimum} or more), got {value!r}")
        return out
    return convert


def _flag(key: str, value: Any) -> bool:
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise OptionError(f"'{key}' must be true or false, got {value!r}")
    return text == "true"


def _text(key: str, value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise OptionError(f"'{key}' must not be empty")
    return text


def _one_of(*allowed: str) -> Callable[[str, Any], Any]:
    def convert(key: str, value: Any) -> str:
        text = str(value).strip().lower()
        if text not in allowed:
            raise OptionError(f"'{key}' must be {' or '.join(allowed)}, got {value!r}")
        return text
    return convert


def _acks(key: str, value: Any) -> Any:
    text = str(value).strip().lower()
    if text in ("all", "-1"):
        return "all"
    if text == "1":
        return 1
    raise OptionError(f"'{key}' must be all, -1 or 1, got {value!r} (acks=0 would lose records a job has "
                      "already committed: delivery is at-least-once)")


_BOTH = frozenset({"consumer", "producer"})
_CONSUMER = frozenset({"consumer"})
_PRODUCER = frozenset({"producer"})

OPTIONS: dict[str, _Option] = {
    # Either client.
    "client.id": _Option("client_id", _text, _BOTH),
    "request.timeout.ms": _Option("request_timeout_ms", _count(1), _BOTH),
    "retry.backoff.ms": _Option("retry_backoff_ms", _count(0), _BOTH),
    "metadata.max.age.ms": _Option("metadata_max_age_ms", _count(0), _BOTH),
    "connections.max.idle.ms": _Option("connections_max_idle_ms", _count(0), _BOTH),
    # A source's consumer.
    "fetch.min.bytes": _Option("fetch_min_bytes", _count(1), _CONSUMER),
    "fetch.max.bytes": _Option("fetch_max_bytes", _count(1), _CONSUMER),
    "fetch.max.wait.ms": _Option("fetch_max_wait_ms", _count(0), _CONSUMER),
    "max.partition.fetch.bytes": _Option("max_partition_fetch_bytes", _count(1), _CONSUMER),
    "isolation.level": _Option("isolation_level", _one_of("read_uncommitted", "read_committed"), _CONSUMER),
    "check.crcs": _Option("check_crcs", _flag, _CONSUMER),
    "client.rack": _Option("client_rack", _text, _CONSUMER),
    # A sink's producer.
    "acks": _Option("acks", _acks, _PRODUCER),
    "linger.ms": _Option("linger_ms", _count(0), _PRODUCER),
    "batch.size": _Option("max_batch_size", _count(1), _PRODUCER),
    "max.request.size": _Option("max_request_size", _count(1), _PRODUCER),
}
"""Kafka's name (after ``kafka.``) → the aiokafka keyword, how the value converts, which clients take it."""

REFUSED: dict[str, str] = {
    "bootstrap.servers": "give a relation's cluster as '<name>.bootstrap.servers'",
    "group.id": "give a source's consumer group as '<name>.group.id' (jobs commit to velo-<job> by default)",
    "auto.offset.reset": "give it as 'auto.offset.reset'",
    "enable.auto.commit": "a job commits its offsets itself, after its output is acknowledged (at-least-once)",
    "auto.commit.interval.ms": "a job commits its offsets itself, after its output is acknowledged",
    "max.poll.records": "a job reads 'batch.size' records at a time: give 'batch.size'",
    "session.timeout.ms": "jobs read their partitions without joining the consumer group",
    "heartbeat.interval.ms": "jobs read their partitions without joining the consumer group",
    "max.poll.interval.ms": "jobs read their partitions without joining the consumer group",
    "partition.assignment.strategy": "jobs read their partitions without joining the consumer group",
    "group.instance.id": "jobs read their partitions without joining the consumer group",
    "compression.type": "give a sink's compression as '<name>.compression'",
    "key.serializer": "Velo encodes keys and values itself (the sink's format)",
    "value.serializer": "Velo encodes keys and values itself (the sink's format)",
    "key.deserializer": "Velo decodes keys and values itself (the source's format)",
    "value.deserializer": "Velo decodes keys and values itself (the source's format)",
    "partitioner": "a sink partitions keyed rows as Kafka's default partitioner does (murmur2)",
    "enable.idempotence": "idempotent producers are not supported (see 'delivery.guarantee')",
    "transactional.id": "transactions are not supported (see 'delivery.guarantee')",
}
"""Kafka settings that exist but that Velo manages: refused with what to do instead."""

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
"""What ``'<sink>.compression'`` may be (aiokafka's ``compression_type``; ``none``: uncompressed)."""


def check_option(name: str, value: Any, side: Side | None, written: str) -> tuple[str, Any]:
    """The aiokafka keyword and value of Kafka setting ``name`` (without ``kafka.``), or OptionError.

    ``side`` is the client the key is given for (None: a job-level key, for whichever client takes
    it); ``written`` is the key as the user wrote it, for the message.
    """
    if name in REFUSED:
        raise OptionError(f"'{written}' is not passed to the Kafka client; {REFUSED[name]}")
    option = OPTIONS.get(name)
    if option is None:
        prefix = written[: len(written) - len(name)]
        known = [n for n, o in OPTIONS.items() if side is None or side in o.sides]
        close = [f"{prefix}{c}" for c in difflib.get_close_matches(name, known, n=3, cutoff=0.6)]
        hint = f"; did you mean {', '.join(close)}?" if close else \
            f" (the Kafka settings a job may give: {', '.join(sorted(known))})"
        raise OptionError(f"unknown property '{written}'{hint}", close)
    if side is not None and side not in option.sides:
        other = "a source's consumer" if side == "producer" else "a sink's producer"
        raise OptionError(f"'{written}' is a setting of {other}, not of the {side} this key is given for")
    return option.kwarg, option.convert(written, value)


def client_options(keys: Mapping[str, Any], side: Side) -> dict[str, Any]:
    """aiokafka keyword arguments for one client from Kafka settings (names without ``kafka.``).

    Job-level keys name settings of either client: only ``side``'s are taken. Values were checked
    when the job was validated; an invalid one raises OptionError here too.
    """
    out: dict[str, Any] = {}
    for name, value in keys.items():
        option = OPTIONS.get(name)
        if option is not None and side not in option.sides:
            continue
        kwarg, converted = check_option(name, value, None, f"kafka.{name}")
        out[kwarg] = converted
    return out
