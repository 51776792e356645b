"""Server settings, from four layers: command-line flags > ``VELO_*`` environment > TOML file > defaults.

Each field of ``Settings`` is one flag (``--max-jobs``), one variable (``VELO_MAX_JOBS``) and one key
of the file (``max_jobs`` or ``max-jobs``). Values are checked here, so a bad port in any layer is a
clear error at start rather than a failure later.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

LOOPBACK = "127.0.0.1"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json", "auto")


@dataclass(frozen=True)
class Settings:
    """Everything velo-server can be told (see ``velo-server --help`` for each)."""

    host: str | None = None  # None: not given anywhere → loopback only
    port: int = 8080
    brokers: str = "127.0.0.1:9092"
    embedded_kafka: bool = False
    max_jobs: int = 100
    data_dir: Path = Path(platformdirs.user_data_dir("velo"))
    no_auto_deploy: bool = False
    auth_token: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body: int = 1 << 20
    log_level: str = "info"
    log_format: str = "auto"  # "text" | "json" | "auto" (JSON unless stderr is a terminal)

    @property
    def bind_host(self) -> str:
        """The address to bind: the host given explicitly, else loopback only."""
        return self.host or LOOPBACK

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_BOOLS = ("embedded_kafka", "no_auto_deploy")
_INTS = ("port", "max_jobs", "max_body")
_PATHS = ("data_dir", "tls_cert", "tls_key")


def _coerce(name: str, value: Any) -> Any:
    """Convert a text value (environment, file) to the field's type."""
    if name in _BOOLS:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in _TRUE | _FALSE:
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return text in _TRUE
    if name in _INTS:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer, not {value!r}") from None
    if name in _PATHS:
        return Path(value).expanduser()
    return str(value)


def _check(settings: Settings) -> Settings:
    if not 0 <= settings.port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, not {settings.port}")
    if settings.max_jobs < 1:
        raise ValueError(f"max_jobs must be at least 1, not {settings.max_jobs}")
    if settings.max_body < 1:
        raise ValueError(f"max_body must be at least 1 byte, not {settings.max_body}")
    if settings.log_level.lower() not in LOG_LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
    if settings.log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ValueError("tls_cert and tls_key go together")
    if settings.auth_token is not None and not settings.auth_token.strip():
        raise ValueError("auth_token is empty")
    return replace(settings, log_level=settings.log_level.lower())


def load_settings(
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge the layers; ``flags`` holds only the options given on the command line (None = not given).

    Raises ValueError naming the setting (and the file) when a value is invalid or a key unknown.
    """
    env = os.environ if env is None else env
    names = {f.name for f in fields(Settings)}
    merged: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as fh:
            try:
                table = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{config_file} is not valid TOML: {exc}") from None
        for key, value in table.items():
            name = key.replace("-", "_")
            if name not in names:
                raise ValueError(f"unknown setting '{key}' in {config_file}")
            merged[name] = _coerce(name, value)
    for name in names:
        value = env.get(f"VELO_{name.upper()}")
        if value is not None:
            merged[name] = _coerce(name, value)
    merged.update({k: _coerce(k, v) for k, v in flags.items() if v is not None})
    return _check(replace(Settings(), **merged))
