"""Where the webhook puts an update before it answers Telegram: an `UpdateSink`.

The webhook answers 200 only after `accept` returned, so what a sink accepts must survive what the sink promises
to survive: the database inbox survives a crash and de-duplicates across replicas; `QueueSink` (one process,
until the inbox exists) only de-duplicates within the process and hands the update to PTB at once.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Protocol

from telegram import Update
from telegram.ext import Application

log = logging.getLogger(__name__)


class UpdateSink(Protocol):
    async def accept(self, payload: dict[str, Any]) -> bool:
        """Record one update (it has an integer `update_id`). False: that update_id was seen before, nothing
        done. Raises when it could not be recorded; the webhook then answers 500 and Telegram sends it again."""
        ...


class QueueSink:
    """One process: updates go straight into `application.update_queue`; the last `remember` ids are kept to
    drop Telegram's re-sends (it re-sends when it did not see our answer). Not durable across a crash."""

    def __init__(self, application: Application, remember: int = 10_000) -> None:
        self._application = application
        self._order: deque[int] = deque()
        self._seen: set[int] = set()
        self._remember = remember

    async def accept(self, payload: dict[str, Any]) -> bool:
        update_id = payload["update_id"]
        if update_id in self._seen:
            return False
        self._seen.add(update_id)  # before any await: a re-send arriving meanwhile is a duplicate
        self._order.append(update_id)
        if len(self._order) > self._remember:
            self._seen.discard(self._order.popleft())
        try:
            update = Update.de_json(payload, self._application.bot)
        except Exception as exc:  # noqa: BLE001 - a malformed update is dropped, not retried forever
            log.warning("update %s could not be read and is dropped: %r", update_id, exc)
            return True
        await self._application.update_queue.put(update)
        return True
