"""Semantic errors: every row of the table in docs/errors.md, against what the server really raises.

The page's first ``sql`` block is the catalog the statements run against; it is executed here through
the statement executor (as ``POST /statements`` would), then every row's statement goes the way the
server sends it: a job statement through ``MultiJobSqlServer.build_spec`` and ``admit`` (which asks
the broker whether the sources exist: here a fake admin that knows the topics ``trades`` and
``orders``), a catalog statement through the executor, a plain SELECT through ``compile_select``
with the options ``POST /query`` uses. Nothing touches Kafka and no job starts. A changed message,
position or suggestion list fails its row.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from velo.grammar import ast, parse_statement
from velo.grammar.errors import SqlError, SqlValidationError
from velo.server.connectors.base import Sink, Source
from velo.server.engine.compile import compile_select
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.model import JobSpec
from velo.server.jobs.statements import StatementError, StatementExecutor

DOCS = Path(__file__).parents[3] / "docs" / "errors.md"
TOPICS = {"trades": 4, "orders": 4, "__consumer_offsets": 50}
"""The broker's topics, as the fake admin reports them."""
SYMBOLS_CSV = "symbol,name,sector\nAAPL,Apple,tech\nMSFT,Microsoft,tech\n"
"""``symbols.csv`` in the server's data directory (the file table of the catalog)."""


class Row:
    """One row of the table: the statement and what the server says about it."""

    def __init__(self, number: int, sql: str, message: str, line: int, column: int,
                 suggestions: list[str]) -> None:
        self.number, self.sql, self.message = number, sql, message
        self.line, self.column, self.suggestions = line, column, suggestions

    def __repr__(self) -> str:
        return f"row {self.number}: {self.sql}"


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row (``\\|`` is a literal bar)."""
    inner = line.strip()[1:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def _code(cell: str) -> str:
    assert cell.startswith("`") and cell.endswith("`"), cell
    return cell[1:-1].replace("\\n", "\n")


def docs_catalog() -> str:
    """The first ``sql`` block of docs/errors.md: the catalog every row runs against."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"```sql\n(.*?)```", text, re.S)
    assert match, "docs/errors.md needs its catalog in a ```sql block"
    return match.group(1)


def docs_rows() -> list[Row]:
    """The rows of the table (``| n | `statement` | message | line:column | suggestions |``)."""
    rows = []
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if not re.match(r"\|\s*\d+\s*\|", line):
            continue
        number, sql, message, place, suggestions = _cells(line)
        ln, col = (int(x) for x in place.split(":"))
        names = [] if suggestions in ("", "—") else [_code(s.strip()) for s in suggestions.split(",")]
        rows.append(Row(int(number), _code(sql), message, ln, col, names))
    return rows


class _FakeAdmin:
    """What ``admit`` asks the broker: partition counts, the topic list, topic creation."""

    async def partition_count(self, topic: str) -> int | None:
        return TOPICS.get(topic)

    async def list_topics(self) -> list[str]:
        return list(TOPICS)

    async def ensure_topic(self, topic: str, partitions: int) -> None:
        return None

    async def close(self) -> None:
        return None


class Accepted(Exception):
    """The statement passed every check: ``admit`` got as far as building its source."""


def _refuse_source(spec: JobSpec) -> Source:
    raise Accepted(spec.sql)


def _refuse_sink(spec: JobSpec, topic: str) -> Sink:
    raise Accepted(spec.sql)


class Server:
    """A job manager and statement executor with the docs' catalog, and no broker."""

    def __init__(self, data_dir: Path) -> None:
        (data_dir / "symbols.csv").write_text(SYMBOLS_CSV, encoding="utf-8")
        self.data_dir = data_dir
        self.manager = MultiJobSqlServer(ManagerConfig("127.0.0.1:1", data_dir=data_dir),
                                         source_factory=_refuse_source, sink_factory=_refuse_sink)
        self.manager.admin = _FakeAdmin()  # type: ignore[assignment]
        asyncio.run(StatementExecutor(self.manager).execute_script(docs_catalog(), {}))

    def error_of(self, sql: str) -> SqlError:
        """The error the server gives for ``sql`` (AssertionError when it accepts it)."""
        try:
            if ";" in sql:  # a script of POST /statements: positions are in the whole text
                try:
                    asyncio.run(StatementExecutor(self.manager).execute_script(sql, {}))
                except StatementError as exc:
                    raise exc.cause from None
                raise AssertionError(f"the server accepts {sql!r}")
            stmt = parse_statement(sql)
            if isinstance(stmt, ast.Select):  # POST /query
                props: dict[str, Any] = {p.key.lower(): p.value for p in stmt.properties}
                compile_select(stmt, catalog=self.manager.catalog, properties=props,
                               data_dir=self.data_dir)
            elif isinstance(stmt, ast.CreateStreamAs | ast.StartJob):  # POST /statements, /jobs
                spec = self.manager.build_spec(sql, statement=stmt)  # deploy_job: build_spec, admit
                asyncio.run(self.manager.admit(spec, statement=stmt))
            else:  # a catalog statement (CREATE STREAM … WITH) of POST /statements
                asyncio.run(StatementExecutor(self.manager).execute(stmt, sql, {}))
                self.manager.catalog.drop(getattr(stmt, "name", ""))
        except SqlError as exc:
            return exc
        except Accepted:
            pass
        raise AssertionError(f"the server accepts {sql!r}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    return Server(tmp_path_factory.mktemp("data"))


ROWS = docs_rows()


def test_the_table_is_there_and_covers_what_the_docs_promise() -> None:
    assert len(ROWS) >= 20
    assert [r.number for r in ROWS] == list(range(1, len(ROWS) + 1))
    messages = " ".join(r.message for r in ROWS)
    for phrase in ("unknown stream or topic", "unknown column", "is ambiguous", "unknown function",
                   "wrong number of arguments", "not allowed in WHERE", "must appear in GROUP BY",
                   "HAVING needs an aggregation", "EMIT FINAL needs", "window size", "hop advance",
                   "GRACE PERIOD must not be negative", "equality key", "unknown property",
                   "duration", "late.data.strategy", "outside the server's data directory",
                   "unknown failure_strategy", "exactly_once"):
        assert phrase in messages, phrase
    assert any("'kafka." in r.sql for r in ROWS), "a row shows that kafka.* keys pass through"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"row{r.number}")
def test_each_row_gives_the_documented_message_and_position(server: Server, row: Row) -> None:
    exc = server.error_of(row.sql)
    assert isinstance(exc, SqlValidationError), exc
    assert (exc.message, exc.line, exc.column) == (row.message, row.line, row.column)
    assert exc.suggestions == row.suggestions


def test_kafka_keys_pass_through(server: Server) -> None:
    """``kafka.*`` keys reach the clients the job's own factories build, translated to aiokafka's names.

    Job-level keys go to whichever client takes them (a consumer's to the source, a producer's to the
    sink, ``client.id`` to both); ``'<name>.kafka.*'`` to that relation's client, over the job-level
    value. The values are not aiokafka's defaults, so a key that is dropped on the way fails here.
    """
    sql = ("CREATE STREAM out AS SELECT symbol FROM trades "
           "WITH ('kafka.fetch.min.bytes' = '1024', 'kafka.client.id' = 'velo-probe', "
           "'trades.kafka.fetch.max.wait.ms' = '250', 'trades.kafka.fetch.min.bytes' = '2048', "
           "'kafka.linger.ms' = '7', 'out.kafka.max.request.size' = '65536', 'out.kafka.acks' = 'all')")
    with pytest.raises(AssertionError, match="accepts"):
        server.error_of(sql)
    spec = server.manager.build_spec(sql)

    async def client_config() -> dict[str, Any]:
        # The manager's real Kafka factories (the fixture's refuse to build anything); nothing connects.
        source: Any = server.manager._kafka_source(spec)
        sink: Any = server.manager._kafka_sink(spec, spec.sink_topic)
        try:
            consumer, producer = source._consumer, sink._producer
            return {"fetch_min_bytes": consumer._fetch_min_bytes, "fetch_max_wait_ms": consumer._fetch_max_wait_ms,
                    "consumer_client_id": consumer._client._client_id,
                    "producer_client_id": producer.client._client_id,
                    "linger_ms": producer._message_accumulator._linger_time * 1000,
                    "max_request_size": producer._max_request_size, "acks": producer._sender._acks}
        finally:
            await source.stop()
            await sink.stop()

    assert asyncio.run(client_config()) == {
        "fetch_min_bytes": 2048, "fetch_max_wait_ms": 250, "consumer_client_id": "velo-probe",
        "producer_client_id": "velo-probe", "linger_ms": 7, "max_request_size": 65536, "acks": -1}


def test_kafka_keys_velo_manages_are_refused_at_their_property(server: Server) -> None:
    """A Kafka setting that would do nothing (or break delivery) is refused, saying what to use instead."""
    exc = server.error_of("CREATE STREAM out AS SELECT symbol FROM trades\n"
                          "  WITH ('trades.kafka.max.poll.records' = '10')")
    assert isinstance(exc, SqlValidationError)
    assert (exc.line, exc.column) == (2, 9)
    assert "'trades.kafka.max.poll.records' is not passed to the Kafka client" in exc.message
    assert "batch.size" in exc.message
    exc = server.error_of("CREATE STREAM out AS SELECT symbol FROM trades WITH ('out.kafka.fetch.min.bytes' = '1')")
    assert isinstance(exc, SqlValidationError)
    assert "a setting of a source's consumer" in exc.message and exc.column == 54


def test_over_http_the_error_body_carries_the_same_fields(server: Server) -> None:
    from velo.server.api.errors import sql_error_body

    row = next(r for r in ROWS if r.suggestions)
    body = sql_error_body(server.error_of(row.sql))
    assert body["code"] == "sql_validation"
    assert (body["message"], body["line"], body["column"], body["suggestions"]) == (
        row.message, row.line, row.column, row.suggestions)
