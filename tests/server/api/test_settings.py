"""Settings precedence (flags > VELO_* environment > TOML file > defaults) and the velo-server command."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from velo.server.settings import Settings, load_settings

from tests.conftest import ServerProcess
from tests.kafka_helpers import create_topic
from tests.server.api.conftest import run_cli


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "velo.toml"
    config.write_text('port = 9000\nmax-jobs = 7\nbrokers = "file:9092"\nlog_level = "debug"\n')
    env = {"VELO_PORT": "9100", "VELO_BROKERS": "env:9092", "VELO_EMBEDDED_KAFKA": "true"}
    settings = load_settings({"port": 9200, "host": None}, env=env, config_file=config)
    assert settings.port == 9200  # flag beats env and file
    assert settings.brokers == "env:9092"  # env beats file
    assert settings.max_jobs == 7  # file beats default
    assert settings.log_level == "debug"
    assert settings.embedded_kafka is True
    assert settings.host == Settings.host  # a flag not given (None) leaves the lower layers
    assert settings.bind_host == "127.0.0.1"  # nothing said where: loopback only


def test_every_setting_from_every_layer(tmp_path: Path) -> None:
    config = tmp_path / "velo.toml"
    config.write_text('host = "0.0.0.0"\nauth-token = "t"\ntls_cert = "c.pem"\ntls_key = "k.pem"\n'
                      'max_body = 10\nno_auto_deploy = true\nlog_format = "json"\ndata_dir = "~/d"\n')
    settings = load_settings({}, env={}, config_file=config)
    assert (settings.bind_host, settings.auth_token, settings.max_body, settings.no_auto_deploy) == \
        ("0.0.0.0", "t", 10, True)
    assert settings.scheme == "https" and settings.data_dir == Path("~/d").expanduser()
    env = {"VELO_MAX_BODY": "20", "VELO_NO_AUTO_DEPLOY": "false", "VELO_LOG_FORMAT": "text"}
    settings = load_settings({}, env=env, config_file=config)
    assert (settings.max_body, settings.no_auto_deploy, settings.log_format) == (20, False, "text")


@pytest.mark.parametrize(("env", "message"), [
    ({"VELO_PORT": "eighty"}, "port must be an integer"),
    ({"VELO_PORT": "70000"}, "port must be between"),
    ({"VELO_MAX_JOBS": "0"}, "max_jobs must be at least 1"),
    ({"VELO_EMBEDDED_KAFKA": "maybe"}, "embedded_kafka must be true or false"),
    ({"VELO_LOG_FORMAT": "xml"}, "log_format must be one of"),
    ({"VELO_TLS_CERT": "c.pem"}, "tls_cert and tls_key go together"),
])
def test_invalid_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_settings({}, env=env)


def test_unknown_file_key_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "velo.toml"
    config.write_text("max_jobz = 3\n")
    with pytest.raises(ValueError, match="max_jobz"):
        load_settings({}, env={}, config_file=config)


def test_help_documents_every_flag() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in ("--host", "--port", "--brokers", "--embedded-kafka", "--max-jobs", "--data-dir",
                 "--no-auto-deploy", "--auth-token", "--tls-cert", "--tls-key", "--max-body", "--config",
                 "--log-level", "--log-format", "VELO_"):
        assert flag in result.stdout, flag


def test_bad_settings_exit_with_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = 'x'\n")
    result = run_cli("--config", str(config))
    assert result.returncode == 2 and "port must be an integer" in result.stderr
    result = run_cli(env={**os.environ, "VELO_MAX_JOBS": "-1"})
    assert result.returncode == 2 and "max_jobs" in result.stderr


def test_json_logs_bind_the_job_name(start_server: Callable[..., ServerProcess], broker: str,
                                     tmp_path: Path) -> None:
    """One JSON object per line; a job's events carry ``job`` as a field."""
    source = f"logs_{os.getpid()}_{id(tmp_path) % 10000}"
    asyncio.run(create_topic(broker, source, 1))
    server = start_server("--log-format", "json")
    sql = f"START JOB lj AS SELECT id FROM {source} WITH ('output.topic' = '{source}_o');"
    assert httpx.post(f"{server.url}/jobs", json={"sql": sql}, timeout=30).status_code == 201
    lines = [orjson.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    assert lines and all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert "127.0.0.1 only" in lines[0]["message"]
    assert any(line.get("job") == "lj" for line in lines)
