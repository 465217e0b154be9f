"""Payment support waiting for a buyer's next message: a row per buyer with an expiry, so whichever process or
replica receives that message knows it is for the admins (and a restart forgets nothing). And the way back: a row per
message the bot put in an admin's chat for it, naming the buyer an admin's reply to that message goes to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from .backend import Repository
from .schema import support_links, support_waits


class Waiting(StrEnum):
    """What a buyer's private message is to payment support."""

    NO = "no"  # not waited for: an ordinary message
    FIRST = "first"  # the message support waited for (the wait is over)
    MORE = "more"  # another part of the album that was the message


@dataclass(frozen=True, slots=True)
class Buyer:
    """Whom an admin's reply to a payment support message goes to."""

    user_id: int
    lang: str | None  # their language when they wrote


class SupportWaits(Repository):
    async def wait(self, user_id: int, until: float) -> None:
        """Wait for the user's next message (again from now, if they were waited for already)."""
        statement = self._db.insert(support_waits).values(user_id=user_id, until=until, album=None)
        await self._db.run(
            statement.on_conflict_do_update(index_elements=["user_id"], set_={"until": until, "album": None})
        )

    async def take(self, user_id: int, now: float, album: str | None, album_until: float) -> Waiting:
        """Whether this message of the user is for support, deciding it once: the first one ends the wait (an
        album's first part keeps it for the album's other parts, until `album_until`)."""

        def work(conn: sa.Connection) -> Waiting:
            row = conn.execute(sa.select(support_waits).where(support_waits.c.user_id == user_id)).first()
            if row is None:
                return Waiting.NO
            mine = support_waits.c.user_id == user_id
            if row.until < now or (row.album is not None and row.album != album):
                conn.execute(sa.delete(support_waits).where(mine))
                return Waiting.NO
            if row.album is not None:
                return Waiting.MORE
            if album is None:
                conn.execute(sa.delete(support_waits).where(mine))
            else:
                conn.execute(sa.update(support_waits).where(mine).values(album=album, until=album_until))
            return Waiting.FIRST

        if not await self._db.all(sa.select(support_waits.c.user_id).where(support_waits.c.user_id == user_id)):
            return Waiting.NO  # the usual case, a read: most messages are not for support
        return await self._db.write(work)

    async def stop_waiting(self, user_id: int, now: float) -> bool:
        """The buyer gave up (/cancel): True when a wait was on (not over, nor already used by an album)."""
        rows = await self._db.write(
            lambda conn: conn.execute(
                sa.delete(support_waits)
                .where(support_waits.c.user_id == user_id)
                .returning(support_waits.c.until, support_waits.c.album)
            ).all()
        )
        return bool(rows) and rows[0].until >= now and rows[0].album is None

    async def prune_waits(self, now: float) -> int:
        """Waits that ran out with no message from the buyer (housekeeping: `take` forgets one only when that buyer
        writes again). How many."""
        return await self._db.run(sa.delete(support_waits).where(support_waits.c.until < now))

    async def link(self, admin_chat_id: int, message_ids: list[int], buyer: Buyer, until: float) -> None:
        """Messages the bot put in an admin's chat about the buyer: a reply to one of them goes to the buyer."""
        for message_id in message_ids:
            values = {"user_id": buyer.user_id, "lang": buyer.lang, "until": until}
            statement = self._db.insert(support_links).values(
                admin_chat_id=admin_chat_id, message_id=message_id, **values
            )
            await self._db.run(
                statement.on_conflict_do_update(index_elements=["admin_chat_id", "message_id"], set_=values)
            )

    async def linked_buyer(self, admin_chat_id: int, message_id: int, now: float) -> Buyer | None:
        """The buyer a message in an admin's chat is about, while its link lasts; None for any other message."""
        rows = await self._db.all(
            sa.select(support_links.c.user_id, support_links.c.lang).where(
                support_links.c.admin_chat_id == admin_chat_id,
                support_links.c.message_id == message_id,
                support_links.c.until >= now,
            )
        )
        return Buyer(rows[0].user_id, rows[0].lang) if rows else None

    async def prune_links(self, now: float) -> int:
        """Links that ran out (housekeeping). How many."""
        return await self._db.run(sa.delete(support_links).where(support_links.c.until < now))
