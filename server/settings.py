"""Server settings, from four layers: command-line flags > ``VELO_*`` environment > TOML file > defaults."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import platformdirs


@dataclass(frozen=True)
class Settings:
    """Everything velo-server can be told (see ``velo-server --help`` for each)."""

    host: str = "127.0.0.1"
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


_TRUE = {"1", "true", "yes", "on"}


def _coerce(name: str, value: Any) -> Any:
    """Convert a text value (environment, file) to the field's type."""
    default = getattr(Settings, name, None)
    if isinstance(default, bool) or name in ("embedded_kafka", "no_auto_deploy"):
        return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE
    if name in ("port", "max_jobs", "max_body"):
        return int(value)
    if name in ("data_dir", "tls_cert", "tls_key"):
        return Path(value).expanduser()
    return str(value)


def load_settings(
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge the layers; ``flags`` holds only the options given on the command line."""
    env = os.environ if env is None else env
    names = {f.name for f in fields(Settings)}
    merged: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as fh:
            for key, value in tomllib.load(fh).items():
                name = key.replace("-", "_")
                if name not in names:
                    raise ValueError(f"unknown setting '{key}' in {config_file}")
                merged[name] = _coerce(name, value)
    for name in names:
        value = env.get(f"VELO_{name.upper()}")
        if value is not None:
            merged[name] = _coerce(name, value)
    merged.update({k: _coerce(k, v) for k, v in flags.items() if v is not None})
    return replace(Settings(), **merged)
