"""Pending requests: a prompt waiting on its keyboard, pictures waiting for their words, a prompt the app split."""

from __future__ import annotations

import json

import sqlalchemy as sa

from ..models import PendingRequest
from ..options import AspectRatio, Resolution
from .backend import Repository
from .jobrows import ORIGIN_COLUMNS, request_columns, row_origin, stored_request
from .schema import pending


class Pending(Repository):
    """A request's life before it is queued; `take_pending` ends it exactly once."""

    async def save_pending(self, p: PendingRequest) -> None:
        row = {name: getattr(p.origin, name) for name in ORIGIN_COLUMNS}
        row.update(
            id=p.id,
            prompt=p.prompt,
            **request_columns(p.request),
            message_id=p.message_id,
            created_at=p.created_at,
            refs=json.dumps(p.references),
            variants=p.variants,
            ref_width=p.ref_width,
            ref_height=p.ref_height,
            source_text=p.source_text,
            source_date=p.source_date,
            wants_prompt=int(p.wants_prompt),
            album_id=p.album_id,
            original=p.original,
            style=p.style,
        )
        statement = self._db.insert(pending).values(**row, suggestion=p.suggestion)
        await self._db.run(
            statement.on_conflict_do_update(
                index_elements=["id"], set_={k: statement.excluded[k] for k in row if k != "id"}
            )
        )

    async def set_suggestion(self, pending_id: str, suggestion: str | None) -> bool:
        """The prompt helper's rewrite, shown until ✓ Use it or ↩ Keep mine (None: none shown). Its own statement,
        so that a save of a choice made meanwhile neither loses it nor brings back an old one; False when the
        request is gone (generated, or cancelled)."""
        return (
            await self._db.run(sa.update(pending).where(pending.c.id == pending_id).values(suggestion=suggestion)) == 1
        )

    async def get_pending(self, pending_id: str) -> PendingRequest | None:
        row = await self._one(sa.select(pending).where(pending.c.id == pending_id))
        return _pending(row) if row else None

    async def pending_for_source(self, chat_id: int, user_id: int, message_id: int) -> PendingRequest | None:
        """The open keyboard a user's message started (an edit of that message changes its prompt)."""
        row = await self._one(
            sa.select(pending)
            .where(
                pending.c.chat_id == chat_id,
                pending.c.user_id == user_id,
                pending.c.reply_to == message_id,
                pending.c.wants_prompt == 0,
            )
            .order_by(pending.c.created_at.desc())
            .limit(1)
        )
        return _pending(row) if row else None

    async def latest_pending(
        self, chat_id: int, user_id: int, since: float, *, wants_prompt: bool
    ) -> PendingRequest | None:
        """A user's newest request in a chat made after `since`: pictures waiting for words (`wants_prompt`), or a
        keyboard whose prompt may go on in the next message."""
        condition = (pending.c.wants_prompt == 1) if wants_prompt else pending.c.source_text.is_not(None)
        row = await self._one(
            sa.select(pending)
            .where(
                pending.c.chat_id == chat_id,
                pending.c.user_id == user_id,
                pending.c.created_at >= since,
                condition,
            )
            .order_by(pending.c.created_at.desc())
            .limit(1)
        )
        return _pending(row) if row else None

    async def drop_waiting_pictures(self, chat_id: int, user_id: int) -> None:
        """Pictures waiting for words are forgotten once other pictures come with their words."""
        await self._db.run(
            sa.delete(pending).where(
                pending.c.chat_id == chat_id, pending.c.user_id == user_id, pending.c.wants_prompt == 1
            )
        )

    async def take_pending(self, pending_id: str) -> PendingRequest | None:
        """Remove and return it: of two quick taps on Generate, on any processes, only one gets it."""
        rows = await self._db.write(
            lambda conn: conn.execute(sa.delete(pending).where(pending.c.id == pending_id).returning(*pending.c)).all()
        )
        return _pending(rows[0]) if rows else None


def _pending(row: sa.Row) -> PendingRequest:
    m = row._mapping
    request = stored_request(m["prompt"], m)
    return PendingRequest(
        m["id"],
        row_origin(m),
        m["prompt"],
        AspectRatio(request.options["ratio"]),
        Resolution(request.options["size"]),
        m["message_id"],
        m["created_at"],
        tuple(json.loads(m["refs"])),
        m["variants"],
        m["ref_width"],
        m["ref_height"],
        m["source_text"],
        m["source_date"],
        bool(m["wants_prompt"]),
        m["album_id"],
        request.model,
        {k: v for k, v in request.options.items() if k not in ("ratio", "size")},
        m["suggestion"],
        m["original"],
        m["style"],
    )
