"""``velo-server``: the command that runs the HTTP API, the job manager and optionally a broker."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
import orjson
import uvicorn

from .api.app import create_app
from .connectors.embedded_kafka import EmbeddedKafka, EmbeddedKafkaError
from .settings import Settings, load_settings

log = logging.getLogger("velo.server")


class _JsonFormatter(logging.Formatter):
    """One JSON object per log line (for log shippers)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": self.formatTime(record), "level": record.levelname.lower(),
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def _setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    as_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not sys.stderr.isatty()
    )
    handler.setFormatter(_JsonFormatter() if as_json else logging.Formatter(
        "%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # its reconnect chatter is our DEGRADED


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8080).")
@click.option("--brokers", help="Kafka bootstrap servers, host:port[,host:port…].")
@click.option("--embedded-kafka", is_flag=True, default=None,
              help="Start the bundled Tansu broker on a free loopback port and use it.")
@click.option("--max-jobs", type=int, help="Most live jobs at once (default 100).")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="Where the job registry and file sources/sinks live.")
@click.option("--no-auto-deploy", is_flag=True, default=None,
              help="Load the job registry but start no job.")
@click.option("--auth-token", help="Require 'Authorization: Bearer TOKEN' (env VELO_AUTH_TOKEN).")
@click.option("--tls-cert", type=click.Path(path_type=Path), help="TLS certificate (PEM) for HTTPS.")
@click.option("--tls-key", type=click.Path(path_type=Path), help="TLS private key (PEM) for HTTPS.")
@click.option("--max-body", type=int, help="Largest request body in bytes (default 1 MiB).")
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path),
              help="A TOML file of settings (flags and VELO_* variables override it).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              help="Log level (default info).")
@click.option("--log-format", type=click.Choice(["text", "json", "auto"]),
              help="Log line format (default: JSON unless stderr is a terminal).")
def main(config_file: Path | None, **flags: Any) -> None:
    """Run the Velo streaming SQL server."""
    settings = load_settings(flags, config_file=config_file)
    _setup_logging(settings)
    broker: EmbeddedKafka | None = None
    if settings.embedded_kafka:
        try:
            broker = EmbeddedKafka().start()
        except EmbeddedKafkaError as exc:
            raise click.ClickException(str(exc)) from exc
        settings = load_settings({**flags, "brokers": broker.bootstrap_servers}, config_file=config_file)
    try:
        log.info("velo-server listening on http://%s:%d (Kafka at %s%s)", settings.host, settings.port,
                 settings.brokers, ", embedded" if broker else "")
        uvicorn.run(
            create_app(settings, on_shutdown=[broker.stop] if broker else []),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
            ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
            timeout_graceful_shutdown=10,
        )
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
