"""The update inbox's table: updates recorded before they are acknowledged, handed out one per chat in order."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from .backend import Repository
from .schema import updates


class Updates(Repository):
    """Recorded updates, claimed under a lease, done, handed out again when their process died."""

    async def record_update(
        self, update_id: int, chat_id: int | None, payload: dict, owner: str | None = None, lease: float = 0.0
    ) -> bool:
        """Durably keep an update before Telegram hears it was received; False for one seen before. With `owner`,
        it is recorded as taken by that process (which handles it at once), under a lease like a claimed one."""
        now = time.time()
        return (
            await self._db.run(
                self._record_update,
                {
                    "update_id": update_id,
                    "chat_id": chat_id,
                    "payload": json.dumps(payload),
                    "state": "processing" if owner else "new",
                    "owner": owner,
                    "lease_until": now + lease if owner else None,
                    "received_at": now,
                },
                notify=None if owner else "updates",
            )
            == 1
        )

    async def record_updates(self, batch: Sequence[tuple[int, int | None, dict]]) -> set[int]:
        """`record_update` for a polled batch of (update id, chat, payload), in one transaction: the ids new here."""
        now = time.time()

        def work(conn: sa.Connection) -> set[int]:
            new: set[int] = set()
            for update_id, chat_id, payload in batch:
                row: dict[str, Any] = {"update_id": update_id, "chat_id": chat_id, "payload": json.dumps(payload)}
                row.update(state="new", owner=None, lease_until=None, received_at=now)
                if conn.execute(self._record_update, row).rowcount == 1:
                    new.add(update_id)
            if new:
                self._db.notify(conn, "updates")
            return new

        return await self._db.write(work) if batch else set()

    async def record_tap(self, update_id: int, chat_id: int | None, payload: dict, owner: str, lease: float) -> str:
        """Keep a button press like any update, but taken by `owner` at once (its own lane, ahead of the commands
        waiting) when nothing of its chat is waiting or being handled: "taken"; else it waits its turn in its chat
        like any update, "queued"; "seen" for one recorded before."""
        now = time.time()

        def work(conn: sa.Connection) -> str:
            busy = chat_id is not None and conn.execute(_CHAT_BUSY, {"b_chat": chat_id, "now": now}).first()
            values = {
                "update_id": update_id,
                "chat_id": chat_id,
                "payload": json.dumps(payload),
                "state": "new" if busy else "processing",
                "owner": None if busy else owner,
                "lease_until": None if busy else now + lease,
                "received_at": now,
            }
            if conn.execute(self._record_update, values).rowcount != 1:
                return "seen"
            if busy:
                self._db.notify(conn, "updates")
                return "queued"
            return "taken"

        return await self._db.write(work)

    @functools.cached_property
    def _record_update(self) -> Any:
        return self._db.insert(updates).on_conflict_do_nothing(index_elements=["update_id"])

    async def claim_update(self, owner: str, lease: float, limit: int) -> list[tuple[int, dict]]:
        """Up to `limit` recorded updates, at most one per chat, and only a chat's oldest unfinished one: the
        updates of a chat take effect in order, whichever process handles each."""
        now = time.time()

        def work(conn: sa.Connection) -> Sequence[sa.Row]:
            self._db.lock_queue(conn)
            rows = conn.execute(_NEXT_UPDATES, {"now": now, "limit": limit}).all()
            if rows:
                conn.execute(_TAKE_UPDATES, {"b_ids": [r[0] for r in rows], "v_owner": owner, "v_lease": now + lease})
            return rows

        return [(r[0], json.loads(r[1])) for r in await self._db.write(work)]

    async def update_done(self, update_id: int) -> None:
        """Handled: the payload goes, the id stays (a repeat is still recognised)."""
        await self._db.run(_UPDATE_DONE, {"b_id": update_id}, notify="updates")

    async def reap_updates(self, dead: Callable[[str], bool]) -> int:
        """Updates whose process died while handling them (its lease ran out, or `dead(owner)`) are handled again."""

        def work(conn: sa.Connection) -> int:
            owners = (
                conn.execute(sa.select(updates.c.owner).distinct().where(updates.c.state == "processing"))
                .scalars()
                .all()
            )
            gone = [owner for owner in owners if owner and dead(owner)]
            return conn.execute(
                sa.update(updates)
                .where(
                    updates.c.state == "processing", (updates.c.lease_until < time.time()) | updates.c.owner.in_(gone)
                )
                .values(state="new", owner=None)
            ).rowcount

        return await self._db.write(work)

    async def prune_updates(self, older_than: float) -> None:
        await self._db.run(sa.delete(updates).where(updates.c.state == "done", updates.c.received_at < older_than))

    async def last_update_id(self) -> int | None:
        row = await self._one(sa.select(sa.func.max(updates.c.update_id)))
        return row[0] if row else None


_NEXT_UPDATES = sa.text("""
    SELECT u.update_id, u.payload FROM updates u
    WHERE u.state = 'new' AND (u.chat_id IS NULL OR u.update_id = (
        SELECT MIN(m.update_id) FROM updates m WHERE m.chat_id = u.chat_id
        AND (m.state = 'new' OR (m.state = 'processing' AND m.lease_until >= :now))))
    ORDER BY u.update_id LIMIT :limit""")
_CHAT_BUSY = sa.text("""
    SELECT 1 FROM updates WHERE chat_id = :b_chat
    AND (state = 'new' OR (state = 'processing' AND lease_until >= :now)) LIMIT 1""")
_TAKE_UPDATES = (
    sa.update(updates)
    .where(updates.c.update_id.in_(sa.bindparam("b_ids", expanding=True)))
    .values(state="processing", owner=sa.bindparam("v_owner"), lease_until=sa.bindparam("v_lease"))
)
_UPDATE_DONE = (
    sa.update(updates).where(updates.c.update_id == sa.bindparam("b_id")).values(state="done", payload=None, owner=None)
)
