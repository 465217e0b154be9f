"""Access: blocked users, and sentences a user hears once (first notices)."""

from __future__ import annotations

import time

import sqlalchemy as sa

from .backend import Repository
from .schema import blocked, notices


class Access(Repository):
    """The `blocked` and `notices` tables."""

    async def set_blocked(self, user_id: int, is_blocked: bool) -> None:
        if is_blocked:
            statement = self._db.insert(blocked).values(user_id=user_id, at=time.time())
            await self._db.run(statement.on_conflict_do_nothing())
        else:
            await self._db.run(sa.delete(blocked).where(blocked.c.user_id == user_id))

    async def is_blocked(self, user_id: int) -> bool:
        return await self._one(_BLOCKED, {"b_id": user_id}) is not None

    async def first_notice(self, subject_id: int, kind: str) -> bool:
        """True the first time only: for sentences a user should hear once, not on every message."""
        return (
            await self._db.run(
                self._db.insert(notices)
                .values(subject_id=subject_id, kind=kind, at=time.time())
                .on_conflict_do_nothing()
            )
            == 1
        )

    async def clear_notice(self, subject_id: int, kind: str) -> None:
        await self._db.run(sa.delete(notices).where(notices.c.subject_id == subject_id, notices.c.kind == kind))


_BLOCKED = sa.select(blocked.c.user_id).where(blocked.c.user_id == sa.bindparam("b_id"))
