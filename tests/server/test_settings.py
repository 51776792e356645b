"""Settings precedence: flags > VELO_* environment > TOML file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from velo.server.settings import Settings, load_settings


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


def test_unknown_file_key_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "velo.toml"
    config.write_text("max_jobz = 3\n")
    with pytest.raises(ValueError, match="max_jobz"):
        load_settings({}, env={}, config_file=config)
