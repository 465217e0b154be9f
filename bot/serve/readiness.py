"""`/readyz`: ready when the database answers and the Bot API was reachable recently.

An orchestrator asks often and from several places, so the work per request is bounded: the database is asked at
most once per `db_every` seconds (concurrent requests share one ping), and the Bot API is probed with `getMe` at
most once per `probe_every` seconds, and only when no Bot API call of the bot succeeded within `recent` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Readiness:
    def __init__(
        self,
        ping: Callable[[], Awaitable[object]],
        last_answer: Callable[[], float],
        probe: Callable[[], Awaitable[object]],
        *,
        clock: Callable[[], float] = time.monotonic,
        db_every: float = 2.0,
        recent: float = 60.0,
        probe_every: float = 10.0,
        timeout: float = 5.0,
    ) -> None:
        self._ping, self._last_answer, self._probe, self._clock = ping, last_answer, probe, clock
        self._db_every, self._recent, self._probe_every, self._timeout = db_every, recent, probe_every, timeout
        self._db_lock, self._probe_lock = asyncio.Lock(), asyncio.Lock()
        self._db_at = self._probe_at = -math.inf
        self._db_reason: str | None = None
        self._probe_reason: str | None = None

    async def reason(self) -> str | None:
        """None when ready, else one short sentence saying what is not."""
        return await self._database() or await self._bot_api()

    async def _database(self) -> str | None:
        async with self._db_lock:
            if self._clock() - self._db_at >= self._db_every:
                self._db_reason = await self._check(self._ping, self._db_reason, "the database does not answer")
                self._db_at = self._clock()
            return self._db_reason

    async def _bot_api(self) -> str | None:
        if self._clock() - self._last_answer() <= self._recent:
            return None
        async with self._probe_lock:
            if self._clock() - self._probe_at >= self._probe_every:
                self._probe_reason = await self._check(
                    self._probe, self._probe_reason, "the Telegram Bot API is not reachable"
                )
                self._probe_at = self._clock()
            return self._probe_reason

    async def _check(self, call: Callable[[], Awaitable[object]], before: str | None, failure: str) -> str | None:
        """The new reason (None: fine); one log line when a dependency goes away or comes back, not per probe."""
        try:
            await asyncio.wait_for(call(), self._timeout)
        except Exception as exc:
            if before is None:
                log.warning("not ready: %s (%r)", failure, exc)
            return failure
        if before is not None:
            log.info("ready again (it was: %s)", before)
        return None
