"""Album parts: Telegram sends an album as separate messages, which may reach different processes."""

from __future__ import annotations

import json
import time

import sqlalchemy as sa

from .backend import Repository
from .schema import album_parts


class Albums(Repository):
    """The pictures of an album's parts, kept a day."""

    async def add_album_part(self, chat_id: int, media_group_id: str, message_id: int, refs: list[dict]) -> None:
        await self._db.run(
            self._db.insert(album_parts)
            .values(
                chat_id=chat_id,
                media_group_id=media_group_id,
                message_id=message_id,
                refs=json.dumps(refs),
                received_at=time.time(),
            )
            .on_conflict_do_nothing()
        )

    async def album(self, chat_id: int, media_group_id: str) -> tuple[list[dict], float]:
        """The album's pictures in message order, and when its newest part arrived."""
        rows = await self._db.all(
            sa.select(album_parts.c.refs, album_parts.c.received_at)
            .where(album_parts.c.chat_id == chat_id, album_parts.c.media_group_id == media_group_id)
            .order_by(album_parts.c.message_id)
        )
        return [ref for r in rows for ref in json.loads(r[0])], max((r[1] for r in rows), default=0.0)

    async def prune_albums(self, older_than: float) -> None:
        await self._db.run(sa.delete(album_parts).where(album_parts.c.received_at < older_than))
