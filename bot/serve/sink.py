"""Where the webhook puts an update before it answers Telegram: an `UpdateSink` (the database inbox,
`bot/inbox.py`, which survives a crash and recognises an update_id seen by any replica)."""

from __future__ import annotations

from typing import Any, Protocol


class UpdateSink(Protocol):
    async def accept(self, payload: dict[str, Any]) -> bool:
        """Record one update (it has an integer `update_id`). False: that update_id was seen before, nothing
        done. Raises when it could not be recorded; the webhook then answers 500 and Telegram sends it again."""
        ...
