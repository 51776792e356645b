"""Shared fixtures: one real Tansu broker per session, and real velo-server processes on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from velo.server.connectors.embedded_kafka import EmbeddedKafka, free_port


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """Bootstrap servers of the session's embedded broker."""
    with EmbeddedKafka() as kafka:
        yield kafka.bootstrap_servers


@pytest.fixture
def topic_name() -> Callable[[str], str]:
    """Unique topic names, so tests never see each other's records."""
    return lambda prefix="t": f"{prefix}_{uuid.uuid4().hex[:10]}"


class ServerProcess:
    """A ``velo-server`` child process on a free loopback port."""

    def __init__(self, brokers: str, data_dir: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "velo.server", "--port", str(self.port), "--brokers", brokers,
             "--data-dir", str(data_dir), "--log-format", "text", *extra],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"velo-server exited at start:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"velo-server did not answer in {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def start_server(broker: str, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start velo-server processes with extra flags; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(*extra: str) -> ServerProcess:
        data_dir = tmp_path / f"server{len(started)}"
        data_dir.mkdir()
        server = ServerProcess(broker, data_dir, *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server_url(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a velo-server shared by a test module."""
    server = ServerProcess(broker, tmp_path_factory.mktemp("server"))
    yield server.url
    server.stop()
