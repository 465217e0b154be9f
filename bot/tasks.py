"""Background work the bot starts and must not lose: fire-and-forget tasks kept referenced, and writes retried
until the database takes them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from .store.backend import outage

T = TypeVar("T")
log = logging.getLogger(__name__)

COMPLAIN_EVERY = 30.0
_complained: dict[tuple[str, str], float] = {}


def complain(log: logging.Logger, what: str, exc: BaseException) -> None:
    """One WARNING line for an expected, repeating failure, at most every 30 s per `what` and logger — and for the
    database away (connection lost, timeouts, refused), at most every 30 s per kind of outage in this process,
    whichever code met it: the reason, not a traceback."""
    kind = outage(exc)
    key = ("database", kind) if kind else (log.name, what)
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
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        """Every failure is looked at here (never "Task exception was never retrieved"): a database outage in one
        line now and then, anything else with its traceback (a bug)."""
        self._tasks.discard(task)
        if task.cancelled() or (exc := task.exception()) is None:
            return
        if outage(exc):
            complain(log, "background work failed", exc)
        else:
            log.error("background task %s failed", task.get_name(), exc_info=exc)

    async def wait(self, timeout: float) -> None:
        """Let what is running finish, for at most `timeout` seconds (a stop)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


async def persist(
    operation: Callable[[], Awaitable[T]],
    what: str,
    log: logging.Logger,
    *,
    first: float = 0.5,
    longest: float = 15.0,
    attempts: int | None = None,
    final: tuple[type[Exception], ...] = (),
) -> T:
    """Run `operation` until it succeeds (the database may be down for a moment): a made image, a recorded
    update or a refund must not be lost because one write failed. With `attempts`, give up after that many;
    errors of the `final` types (a refusal that trying again cannot change) are raised at once."""
    delay, tried = first, 0
    while True:
        try:
            return await operation()
        except final:
            raise
        except Exception as exc:
            tried += 1
            if attempts is not None and tried >= attempts:
                raise
            complain(log, f"could not {what} (trying again)", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)


async def at_most(work: Coroutine[Any, Any, T], seconds: float) -> T:
    """`work`'s result if it comes within `seconds`, else TimeoutError at once. The work is cancelled, but its
    clean-up (a database connection's, which can take seconds more) goes on in the background, not waited for:
    `asyncio.timeout` would wait for it, and a pre-checkout has Telegram's 10 s in all."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # its error is not ours to log
        raise TimeoutError(f"no answer within {seconds:g} s")
    return task.result()
