"""``velo-server``: the command that runs the HTTP API, the job manager and optionally a broker.

Settings come from flags > ``VELO_*`` environment > ``--config`` TOML file > defaults (settings.py).
Logs are one line per event, JSON when asked (or when stderr is not a terminal), with the job name
as its own field where the event concerns a job. Shutdown (SIGTERM/SIGINT, and SIGHUP: the terminal
closed) first ends every open query stream with ``{"done": {"reason": "shutdown"}}``, then lets uvicorn
drain, then stops the jobs (and the embedded broker).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson
import uvicorn
from starlette.applications import Starlette

from . import __version__
from .api.app import create_app
from .api.state import AppState
from .connectors.embedded_kafka import EmbeddedKafka, EmbeddedKafkaError
from .settings import LOG_FORMATS, LOG_LEVELS, LOOPBACK, Settings, load_settings

log = logging.getLogger("velo.server")

# Seconds uvicorn waits for open connections after the streams were told to end; the streams end
# within a poll (~200 ms), so this only bounds a stuck client.
GRACE_S = 10

# uvicorn adds color_message (ANSI-coloured duplicate of message) to its records: not for JSON.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class _JobField(logging.Filter):
    """Binds ``job`` on job events: the runtime logs ``"job %s: ..."`` with the name first."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (not hasattr(record, "job") and record.name.startswith("velo.job")
                and isinstance(record.msg, str) and record.msg.startswith("job %s")
                and isinstance(record.args, tuple) and record.args):
            record.job = record.args[0]
        return True


class _JsonFormatter(logging.Formatter):
    """One JSON object per log line (for log shippers); ``extra`` fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": self.formatTime(record), "level": record.levelname.lower(),
                                 "logger": record.name, "message": record.getMessage()}
        entry.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _TextFormatter(logging.Formatter):
    """Readable lines for a terminal; a bound job shows as ``[job=name]``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        job = getattr(record, "job", None)
        return f"{line} [job={job}]" if job is not None and "job %s" not in str(record.msg) else line


def _setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    as_json = settings.log_format == "json" or (settings.log_format == "auto" and not sys.stderr.isatty())
    handler.setFormatter(_JsonFormatter() if as_json else _TextFormatter(
        "%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(_JobField())
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # its reconnect chatter is our DEGRADED
    # uvicorn's own loggers go through the same handler (log_config=None below); its access log
    # would be a second line per request next to the metrics, so it stays off.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    if settings.log_level != "debug":  # our own first lines already say where we listen
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def _first_line(settings: Settings) -> str:
    """What the server says first: where it listens and whether it is protected."""
    where = f"{settings.scheme}://{settings.bind_host}:{settings.port}"
    if settings.auth_token is None:
        if settings.host is None:
            guard = f"no --auth-token set: bound to {LOOPBACK} only (give --host to listen elsewhere)"
        elif settings.bind_host not in (LOOPBACK, "localhost", "::1"):
            guard = f"WARNING: no --auth-token set and listening on {settings.bind_host}: anyone can connect"
        else:
            guard = "no --auth-token set"
    else:
        guard = "bearer token required on every route but /health and /ready"
    return f"velo-server {__version__} starting on {where}; {guard}"


class _Server(uvicorn.Server):
    """uvicorn, plus: tell open query streams to finish *before* waiting for connections to close.

    uvicorn runs the app's lifespan shutdown only after every connection closed, so without this
    an open stream would hold the server for the whole grace period and then be cut mid-line.
    """

    def __init__(self, config: uvicorn.Config, state: AppState) -> None:
        super().__init__(config)
        self.velo = state

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        log.info("shutting down: ending %d open stream(s)", len(self.velo.queries.list()))
        self.velo.begin_shutdown()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's SIGINT/SIGTERM handling, plus SIGHUP the same way.

        uvicorn leaves SIGHUP at its default, which kills the process on the spot: closing the terminal
        a server runs in would skip the jobs' final snapshots and commits and the broker's stop.
        """
        if threading.current_thread() is not threading.main_thread():  # signals are the main thread's
            yield
            return
        previous = signal.signal(signal.SIGHUP, self.handle_exit)
        try:
            with super().capture_signals():
                yield
        finally:
            signal.signal(signal.SIGHUP, previous)
        # As uvicorn does for the others: once shut down, end by the signal received, so that the
        # exit status says what stopped the server.
        if signal.SIGHUP in self._captured_signals:
            signal.raise_signal(signal.SIGHUP)


def serve(settings: Settings, app: Starlette) -> None:
    """Run ``app`` under uvicorn until SIGTERM, SIGINT or SIGHUP."""
    config = uvicorn.Config(
        app,
        host=settings.bind_host,
        port=settings.port,
        log_config=None,
        access_log=False,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        timeout_graceful_shutdown=GRACE_S,
        # httptools parses HTTP when installed (uvicorn[standard]); the loop stays asyncio's own, the
        # one aiokafka is tested on.
        http="auto",
        loop="asyncio",
        # Many NDJSON streams and pollers per server; the default backlog is plenty, the default
        # keep-alive of 5 s is not for a shell polling every few seconds.
        timeout_keep_alive=30,
    )
    _Server(config, app.state.velo).run()


_HELP = f"""Run the Velo streaming SQL server.

Every option can also be set as VELO_<NAME> in the environment (VELO_MAX_JOBS=10) or as a key of the
--config TOML file (max_jobs = 10); flags beat the environment, which beats the file. Log levels:
{', '.join(LOG_LEVELS)}.
"""


@click.command(help=_HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="velo-server")
@click.option("--host", help="Address to bind. Default: 127.0.0.1 only (also when no --auth-token is set).")
@click.option("--port", type=int, help="Port to listen on. Default: 8080.")
@click.option("--brokers", help="Kafka bootstrap servers, host:port[,host:port…]. Default: 127.0.0.1:9092.")
@click.option("--embedded-kafka", is_flag=True, default=None,
              help="Start the bundled Tansu broker on a free loopback port and use it (demo, development).")
@click.option("--max-jobs", type=int, help="Most live jobs at once; the next deploy gets 429. Default: 100.")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="Where the job registry and file sources/sinks live; file paths may not leave it.")
@click.option("--no-auto-deploy", is_flag=True, default=None,
              help="Load the job registry at start but leave every job stopped until resumed.")
@click.option("--auth-token", help="Require 'Authorization: Bearer TOKEN' on every route but /health and /ready.")
@click.option("--tls-cert", type=click.Path(path_type=Path), help="TLS certificate (PEM): serve HTTPS.")
@click.option("--tls-key", type=click.Path(path_type=Path), help="TLS private key (PEM) for --tls-cert.")
@click.option("--max-body", type=int, help="Largest request body in bytes; larger is 413. Default: 1 MiB.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A TOML file of settings (flags and VELO_* variables override it).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), help="Default: info.")
@click.option("--log-format", type=click.Choice(LOG_FORMATS),
              help="One line per event; 'auto' (default) is JSON unless stderr is a terminal.")
def main(config_file: Path | None, **flags: Any) -> None:
    """Run the Velo streaming SQL server."""
    if config_file is None and os.environ.get("VELO_CONFIG"):
        config_file = Path(os.environ["VELO_CONFIG"])
    try:
        settings = load_settings(flags, config_file=config_file)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    _setup_logging(settings)
    log.info(_first_line(settings))
    broker: EmbeddedKafka | None = None
    if settings.embedded_kafka:
        try:
            broker = EmbeddedKafka().start()
        except EmbeddedKafkaError as exc:
            raise click.ClickException(str(exc)) from exc
        settings = load_settings({**flags, "brokers": broker.bootstrap_servers}, config_file=config_file)
        log.info("embedded Kafka broker at %s", broker.bootstrap_servers)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        log.info("Kafka at %s; at most %d jobs; data in %s", settings.brokers, settings.max_jobs,
                 settings.data_dir)
        serve(settings, create_app(settings, on_shutdown=[broker.stop] if broker else []))
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
