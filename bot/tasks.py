"""Background work the bot starts and must not lose: fire-and-forget tasks kept referenced, and writes retried
until the database takes them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

COMPLAIN_EVERY = 30.0
_complained: dict[tuple[str, str], float] = {}


def complain(log: logging.Logger, what: str, exc: BaseException) -> None:
    """One WARNING line for an expected, repeating failure (the database away for a while), at most every 30 s per
    `what` and logger: the reason, not a traceback."""
    key = (log.name, what)
    now = time.monotonic()
    if now - _complained.get(key, -COMPLAIN_EVERY) < COMPLAIN_EVERY:
        return
    _complained[key] = now
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    log.warning("%s: %s%s", what, type(exc).__name__, f" ({reason[0]})" if reason and reason[0] else "")


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event` at most `timeout` seconds; True when it is set. Python 3.11's `asyncio.wait_for` loses a
    cancel that arrives just as the event is set, and a loop that lost its cancel never stops; `asyncio.timeout`
    does not."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()


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
        except Exception as exc:
            tried += 1
            if attempts is not None and tried >= attempts:
                raise
            complain(log, f"could not {what} (trying again)", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)
