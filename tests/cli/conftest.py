"""Fixtures of the shell's tests: a scripted fake server (real uvicorn on loopback) and isolated dirs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.fakeserver import FakeServer


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Config and history go to a temp dir: tests never read or write the developer's files."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("VELO_SERVER", "VELO_TOKEN", "VELO_PROFILE", "PAGER"):
        monkeypatch.delenv(var, raising=False)
