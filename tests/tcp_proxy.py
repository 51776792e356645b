"""A TCP proxy on loopback that a test can cut and heal, to simulate a network outage to Kafka.

The broker stays up (restarting Tansu loses every topic and offset; architecture.md); only the path
between client and broker breaks. The proxy runs its own event loop in a thread, so it keeps working
whatever the test's loop is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from velo.server.connectors.embedded_kafka import free_port


class TcpProxy:
    """Forwards ``listen_port`` → ``target_port``; ``cut()`` drops and refuses connections, ``heal()`` ends it."""

    def __init__(self, target_port: int, listen_port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.port = listen_port or free_port(host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="tcp-proxy")
        self._writers: set[asyncio.StreamWriter] = set()
        self._cut = False
        self._server: asyncio.Server | None = None

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _drop_all(self) -> None:
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        """Drop every connection and refuse new ones until heal()."""
        self._cut = True
        self._call(self._drop_all())

    def heal(self) -> None:
        """Accept and forward connections again."""
        self._cut = False

    def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
