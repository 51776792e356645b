"""Background catalog refresher: fetch ``GET /catalog`` (and ``/health``) off the prompt's thread.

A refresh runs in a daemon thread with its own client, so a slow or absent server never blocks typing.
Requests that arrive while a refresh runs coalesce into one more run afterwards (pgcli's design). The
result is handed to a callback that swaps the completer's catalog and updates the toolbar's state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from velo.cli.client import VeloClient, VeloError
from velo.cli.completion.catalog import Catalog


class CatalogRefresher:
    """Coalescing background refresh of the completion catalog."""

    def __init__(
        self,
        client_factory: Callable[[], VeloClient],
        on_catalog: Callable[[Catalog], None],
        on_health: Callable[[dict[str, Any] | None], None] | None = None,
    ) -> None:
        self._factory = client_factory
        self._on_catalog = on_catalog
        self._on_health = on_health
        self._lock = threading.Lock()
        self._running = False
        self._again = False
        self._idle = threading.Event()
        self._idle.set()
        self.last_error: VeloError | None = None

    def set_client_factory(self, factory: Callable[[], VeloClient]) -> None:
        """After ``\\c``: later refreshes go to the new server."""
        self._factory = factory

    def refresh(self) -> None:
        """Start a refresh now, or once more after the one in flight."""
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running = True
            self._idle.clear()
        threading.Thread(target=self._loop, name="velo-catalog", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no refresh is running (tests and ``\\refresh`` feedback)."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        try:
            while True:
                self._once()
                with self._lock:
                    if not self._again:
                        self._running = False
                        self._idle.set()
                        return
                    self._again = False
        except BaseException:
            with self._lock:
                self._running = False
                self._idle.set()
            raise

    def _once(self) -> None:
        try:
            with self._factory() as client:
                if self._on_health is not None:
                    try:
                        self._on_health(client.health())
                    except VeloError:
                        self._on_health(None)
                        raise
                self._on_catalog(Catalog.from_json(client.catalog()))
            self.last_error = None
        except VeloError as exc:
            # Completion degrades to keywords and the last known names; the shell reports errors itself.
            self.last_error = exc
