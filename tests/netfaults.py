"""Network faults between a bot process and its database, for the multi-process tests: a TCP forwarder per
process that can be blackholed — bytes stop flowing both ways while every socket stays open, as in a partition
(no reset, no refusal: the process only sees silence) — and healed, when what waited flows on."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

CHUNK = 65536


class Blackhole:
    """`127.0.0.1:port` forwards to the database of `url`; `cut()` stops every byte, `heal()` lets them through."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._parts = parts
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """The database URL that goes through this forwarder."""
        user = f"{self._parts.username}@" if self._parts.username else ""
        return urlunsplit((self._parts.scheme, f"{user}127.0.0.1:{self.port}", self._parts.path, "", ""))

    @property
    def cut_off(self) -> bool:
        return not self._flowing.is_set()

    def cut(self) -> None:
        self._flowing.clear()

    def heal(self) -> None:
        self._flowing.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.heal()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(
                self._pump(reader, upstream_writer), self._pump(upstream_reader, writer), return_exceptions=True
            )
        finally:
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                await self._flowing.wait()  # cut off: held here (and in the kernel's buffers), nothing is lost
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
