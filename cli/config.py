"""Where the shell keeps its settings and how a server URL, token and output format are chosen.

Files (platformdirs, so ``XDG_CONFIG_HOME``/``XDG_STATE_HOME`` are honoured on Linux):
``~/.config/velo/config.toml`` (written, fully commented, on first run) and ``~/.local/state/velo/history``.

Resolution order: server — ``--server``/URL argument, ``VELO_SERVER``, the profile's ``url``, then
``http://127.0.0.1:8080``; token — ``--token``, ``VELO_TOKEN``, the profile's ``token``; output —
``--output``, the profile's ``output``, ``[main] output``, else the mode's default; trusted CA —
``--ca-cert``, the profile's ``ca_cert`` (relative to the config file's folder), then what
:func:`velo.cli.client.tls_context` falls back on (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, certifi).
``--insecure`` has no config key on purpose: turning verification off is a choice made per command.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from velo.cli.client import DEFAULT_URL, VeloClient, normalize_url, tls_context

APP = "velo"

DEFAULT_CONFIG = """\
# velo-cli configuration. Every setting is optional; uncomment to change a default.

[main]
# Output format in the interactive shell: table | vertical | json | jsonl | csv | tsv
# output = "table"
# Pager for finite results taller than the terminal ("" to disable). $PAGER wins when set.
# pager = "less -SRXF"
# Live in-place table for EMIT CHANGES aggregates (also: SET 'cli.live' = 'false';)
# live = true
# Print "N rows in X.Xs" after every result.
# timing = true
# Key bindings: emacs (default) or vi
# vi = false
# Profile used when neither --profile nor VELO_PROFILE is given.
# default_profile = "local"

# One table per server. Use with: velo-cli --profile prod
# [profiles.local]
# url = "http://127.0.0.1:8080"
#
# [profiles.prod]
# url = "https://velo.example.com:8443"
# token = "..."          # or leave it out and export VELO_TOKEN
# ca_cert = "corp-ca.pem" # CA that signed the server's certificate (relative to this folder)
# output = "vertical"
"""


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def config_path() -> Path:
    return config_dir() / "config.toml"


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP, appauthor=False))


def history_path() -> Path:
    return state_dir() / "history"


class ConfigError(Exception):
    """The config file is unreadable or names a profile that does not exist."""


@dataclass
class Config:
    """The parsed config file."""

    main: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    def flag(self, name: str, default: bool) -> bool:
        value = self.main.get(name, default)
        return value if isinstance(value, bool) else default

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.main.get(name, default)
        return value if isinstance(value, str) else default


def load_config(path: Path | None = None, *, write_default: bool = True) -> Config:
    """Read the config file, writing the commented default first if there is none yet."""
    path = path or config_path()
    if not path.exists():
        if write_default:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(DEFAULT_CONFIG, encoding="utf-8")
                # The file may later hold tokens: keep it private from the start.
                path.chmod(0o600)
            except OSError:
                pass  # a read-only home must not stop the shell
        return Config(path=path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    main = data.get("main") if isinstance(data.get("main"), dict) else {}
    profiles_raw = data.get("profiles") if isinstance(data.get("profiles"), dict) else {}
    profiles = {str(k): dict(v) for k, v in (profiles_raw or {}).items() if isinstance(v, dict)}
    return Config(main=dict(main or {}), profiles=profiles, path=path)


@dataclass(frozen=True)
class Connection:
    """A resolved server to talk to. ``repr`` hides the token so it never lands in a log or traceback."""

    url: str
    token: str | None = field(default=None, repr=False)
    output: str | None = None
    profile: str | None = None
    ca_cert: str | None = None
    insecure: bool = False


def open_client(conn: Connection, *, timeout: float = 30.0) -> VeloClient:
    """A client for ``conn``, trusting its CA (raises :class:`velo.cli.client.CaCertError` if unusable)."""
    return VeloClient(conn.url, conn.token, timeout=timeout, verify=tls_context(conn.ca_cert, insecure=conn.insecure))


def profile_ca_cert(config: Config, profile: dict[str, Any]) -> str | None:
    """A profile's ``ca_cert``, a relative path taken from the config file's folder (not the working dir)."""
    value = _str(profile.get("ca_cert"))
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and config.path is not None:
        path = config.path.parent / path
    return str(path)


def resolve_connection(
    config: Config,
    *,
    url: str | None = None,
    profile: str | None = None,
    token: str | None = None,
    output: str | None = None,
    ca_cert: str | None = None,
    insecure: bool = False,
    env: Mapping[str, str] | None = None,
) -> Connection:
    """Apply the resolution order of the module docstring."""
    env = os.environ if env is None else env
    profile_name = profile or env.get("VELO_PROFILE") or config.text("default_profile")
    prof: dict[str, Any] = {}
    if profile_name:
        if profile_name not in config.profiles:
            if profile:  # asked for explicitly: a typo must not silently go to another server
                known = ", ".join(sorted(config.profiles)) or "none defined"
                raise ConfigError(f"no profile {profile_name!r} in {config.path} ({known})")
            profile_name = None
        else:
            prof = config.profiles[profile_name]
    chosen_url = url or env.get("VELO_SERVER") or _str(prof.get("url")) or DEFAULT_URL
    chosen_token = token or env.get("VELO_TOKEN") or _str(prof.get("token"))
    chosen_output = output or _str(prof.get("output")) or config.text("output")
    chosen_ca = ca_cert or profile_ca_cert(config, prof)
    return Connection(
        normalize_url(chosen_url), chosen_token or None, chosen_output, profile_name, chosen_ca, insecure
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
