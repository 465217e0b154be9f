"""Background work the bot starts and must not lose: fire-and-forget tasks kept referenced, and writes retried
until the database takes them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Background:
    """Tasks started and not awaited, kept referenced (asyncio keeps only weak ones) so none is collected mid-way."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait(self, timeout: float) -> None:
        """Let what is running finish, for at most `timeout` seconds (a stop)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


async def persist(operation: Callable[[], Awaitable[T]], what: str, log: logging.Logger, *,
                  first: float = 0.5, longest: float = 15.0, attempts: int | None = None) -> T:
    """Run `operation` until it succeeds (the database may be down for a moment): a made image, a recorded
    update or a refund must not be lost because one write failed. With `attempts`, give up after that many."""
    delay, tried = first, 0
    while True:
        try:
            return await operation()
        except Exception:
            tried += 1
            if attempts is not None and tried >= attempts:
                raise
            log.warning("could not %s; again in %.1f s", what, delay, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)
