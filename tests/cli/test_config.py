"""Config file, profiles and the server/token/output resolution order."""

from __future__ import annotations

from pathlib import Path

import pytest
from velo.cli.config import (
    Config,
    ConfigError,
    config_path,
    history_path,
    load_config,
    resolve_connection,
)

CONFIG = """
[main]
output = "vertical"
default_profile = "local"

[profiles.local]
url = "127.0.0.1:9999"

[profiles.prod]
url = "https://velo.example.com"
token = "prod-token"
output = "json"
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    p = tmp_path / "config.toml"
    p.write_text(CONFIG)
    return load_config(p)


def test_paths_follow_xdg(tmp_path: Path) -> None:
    assert config_path() == tmp_path / "config" / "velo" / "config.toml"
    assert history_path() == tmp_path / "state" / "velo" / "history"


def test_first_run_writes_a_commented_default(tmp_path: Path) -> None:
    p = tmp_path / "new" / "config.toml"
    config = load_config(p)
    assert p.exists() and config.profiles == {} and config.main == {}
    # Everything in the default is commented out: loading it again yields the defaults.
    assert load_config(p).profiles == {}


def test_unreadable_config_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[main\n")
    with pytest.raises(ConfigError):
        load_config(p)


def test_resolution_order(cfg: Config) -> None:
    env: dict[str, str] = {}
    assert resolve_connection(cfg, env=env).url == "http://127.0.0.1:9999"  # default_profile
    assert resolve_connection(cfg, env={"VELO_SERVER": "h:1"}).url == "http://h:1"  # env beats profile
    assert resolve_connection(cfg, url="x:2", env={"VELO_SERVER": "h:1"}).url == "http://x:2"  # flag wins
    prod = resolve_connection(cfg, profile="prod", env=env)
    assert (prod.url, prod.token, prod.output) == ("https://velo.example.com", "prod-token", "json")
    assert resolve_connection(cfg, profile="prod", token="t2", env=env).token == "t2"
    assert resolve_connection(cfg, profile="prod", env={"VELO_TOKEN": "t3"}).token == "t3"
    assert resolve_connection(cfg, env=env).output == "vertical"  # [main] output
    assert resolve_connection(Config(), env=env).url == "http://127.0.0.1:8080"


def test_unknown_profile(cfg: Config) -> None:
    with pytest.raises(ConfigError, match="no profile 'nope'"):
        resolve_connection(cfg, profile="nope", env={})


def test_token_is_not_in_repr(cfg: Config) -> None:
    conn = resolve_connection(cfg, profile="prod", env={})
    assert "prod-token" not in repr(conn)


def test_ca_cert_resolution(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text('[profiles.corp]\nurl = "https://velo.corp:8443"\nca_cert = "corp-ca.pem"\n'
                 '[profiles.abs]\nurl = "https://a"\nca_cert = "/etc/ssl/a.pem"\n[profiles.none]\nurl = "https://n"\n')
    cfg = load_config(p)
    # A profile's relative ca_cert is the config file's neighbour, whatever the working directory.
    assert resolve_connection(cfg, profile="corp", env={}).ca_cert == str(tmp_path / "corp-ca.pem")
    assert resolve_connection(cfg, profile="abs", env={}).ca_cert == "/etc/ssl/a.pem"
    assert resolve_connection(cfg, profile="corp", ca_cert="flag.pem", env={}).ca_cert == "flag.pem"  # flag wins
    plain = resolve_connection(cfg, profile="none", env={})
    assert plain.ca_cert is None and plain.insecure is False
    assert resolve_connection(cfg, profile="none", insecure=True, env={}).insecure is True
