"""Fixtures for the HTTP API tests: servers with a token, with TLS, and without a broker.

Every server here is a real ``velo-server`` process under uvicorn on loopback (tests/conftest.py).
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from velo.server.connectors.embedded_kafka import free_port

from tests.conftest import ServerProcess

TOKEN = "s3cret-token"


def assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, object]:
    """The response is an error of the API's one shape, with no stack trace."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error: dict[str, object] = resp.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in resp.text and 'File "' not in resp.text
    return error


class TlsServerProcess(ServerProcess):
    """A velo-server serving HTTPS with a certificate from a test CA."""

    def __init__(self, brokers: str, data_dir: Path, ca: trustme.CA, *extra: str) -> None:
        cert = ca.issue_cert("127.0.0.1")
        cert_path, key_path = data_dir / "cert.pem", data_dir / "key.pem"
        cert.cert_chain_pems[0].write_to_path(str(cert_path))
        cert.private_key_pem.write_to_path(str(key_path))
        self.ssl_context = ssl.create_default_context()
        ca.configure_trust(self.ssl_context)
        super().__init__(brokers, data_dir, "--tls-cert", str(cert_path), "--tls-key", str(key_path), *extra)
        self.url = f"https://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 30.0) -> None:
        url = f"https://127.0.0.1:{self.port}/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"velo-server exited at start:\n{self.log_path.read_text()}")
            try:
                if httpx.get(url, timeout=1, verify=self.ssl_context).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"velo-server (TLS) did not answer in {timeout}s:\n{self.log_path.read_text()}")


@pytest.fixture(scope="module")
def token_server(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server requiring the bearer token ``TOKEN``."""
    server = ServerProcess(broker, tmp_path_factory.mktemp("token"), "--auth-token", TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def no_broker_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose Kafka is a closed port: the 503 paths."""
    server = ServerProcess(f"127.0.0.1:{free_port()}", tmp_path_factory.mktemp("nobroker"))
    yield server
    server.stop()


@pytest.fixture
def start_tls_server(broker: str, tmp_path: Path) -> Iterator[Callable[..., TlsServerProcess]]:
    started: list[TlsServerProcess] = []

    def start(*extra: str) -> TlsServerProcess:
        data_dir = tmp_path / f"tls{len(started)}"
        data_dir.mkdir()
        server = TlsServerProcess(broker, data_dir, trustme.CA(), *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run ``velo-server`` with ``args`` (for --help and settings errors, which exit at once)."""
    return subprocess.run([sys.executable, "-m", "velo.server", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
