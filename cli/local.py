"""``velo-cli --local``: run a private ``velo-server --embedded-kafka`` for the length of a shell session.

The server is a subprocess (``python -m velo.server``), never an import: the shell talks to it over HTTP
like to any other server. Its output goes to a log file in the state directory so it does not interleave
with the shell, and it is stopped (SIGTERM, then SIGKILL after a grace period) when the shell exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from velo.cli.client import VeloClient, VeloError
from velo.cli.config import state_dir


class LocalServerError(Exception):
    """The local server did not come up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """A ``velo-server`` subprocess on a free loopback port; a context manager."""

    def __init__(
        self,
        *,
        port: int | None = None,
        startup_timeout: float = 60.0,
        log_path: Path | None = None,
        data_dir: Path | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.log_path = log_path or state_dir() / "local-server.log"
        self.data_dir = data_dir or state_dir() / "local-data"
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "velo.server",
            "--embedded-kafka",
            "--port",
            str(self.port),
            # Its own data dir: the registry of a throwaway server must not mix with a real one's.
            "--data-dir",
            str(self.data_dir),
            "--log-format",
            "text",
            *self.extra_args,
        ]

    def start(self) -> str:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group: the shell's Ctrl-C (cancel a query) must not reach the server.
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_healthy()
        return self.url

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        with VeloClient(self.url, timeout=2.0) as client:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise LocalServerError(f"velo-server exited with code {self.proc.returncode}; see {self.log_path}")
                try:
                    client.health()
                    return
                except VeloError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise LocalServerError(
                        f"velo-server did not answer /health within {self.startup_timeout:.0f}s; see {self.log_path}"
                    )
                time.sleep(0.2)  # polling interval while waiting on a condition, not a correctness sleep

    def stop(self, grace: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
