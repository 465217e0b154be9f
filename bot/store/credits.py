"""Credits: reserved per job (the job id is the key, so never a double spend), refunded once, granted by admins."""

from __future__ import annotations

import time

import sqlalchemy as sa

from ..models import JobStatus, Reservation
from .backend import Repository
from .schema import grants, jobs, usage


class Credits(Repository):
    """The `usage` and `grants` tables."""

    async def reserve_credits(self, r: Reservation) -> bool:
        """Record the credits of a job if every limit still has room: one statement, and the job id is the key,
        so never a double spend, whichever processes race."""
        params = {
            "job_id": r.job_id,
            "user_id": r.user_id,
            "chat_id": r.chat_id,
            "day": r.day,
            "credits": r.credits,
            "now": time.time(),
            "user_limit": r.user_limit,
            "chat_limit": r.chat_limit,
        }

        def work(conn: sa.Connection) -> bool:
            self._db.lock_credits(conn)
            if conn.execute(_RESERVE, params).rowcount == 1:
                return True
            row = conn.execute(_REFUNDED, {"b_id": r.job_id}).first()
            return row is not None and not row[0]  # already reserved by this job (a resumed job keeps it)

        return await self._db.write(work)

    async def refund_credits(self, job_id: str) -> bool:
        """Give a job's credits back; True only the first time (idempotent across processes and restarts)."""
        return (
            await self._db.run(
                sa.update(usage).where(usage.c.job_id == job_id, usage.c.refunded == 0).values(refunded=1)
            )
            == 1
        )

    async def refund_unfinished_failures(self) -> int:
        """Refunds a crash may have left undone: every failed or cancelled job gets its credits back."""
        failed = sa.select(jobs.c.id).where(jobs.c.status.in_((JobStatus.FAILED.value, JobStatus.CANCELLED.value)))
        return await self._db.run(
            sa.update(usage).where(usage.c.refunded == 0, usage.c.job_id.in_(failed)).values(refunded=1)
        )

    async def credits_used(self, *, day: str, user_id: int | None = None, chat_id: int | None = None) -> int:
        column = usage.c.user_id == user_id if user_id is not None else usage.c.chat_id == chat_id
        row = await self._one(
            sa.select(sa.func.coalesce(sa.func.sum(usage.c.credits), 0)).where(
                column, usage.c.day == day, usage.c.refunded == 0
            )
        )
        return int(row[0]) if row else 0

    async def credits_granted(self, user_id: int, day: str) -> int:
        row = await self._one(
            sa.select(sa.func.coalesce(sa.func.sum(grants.c.credits), 0)).where(
                grants.c.user_id == user_id, grants.c.day == day
            )
        )
        return int(row[0]) if row else 0

    async def grant_credits(self, user_id: int, day: str, credits: int) -> None:
        await self._db.run(sa.insert(grants).values(user_id=user_id, day=day, credits=credits, created_at=time.time()))


_REFUNDED = sa.select(usage.c.refunded).where(usage.c.job_id == sa.bindparam("b_id"))
_USED = "(SELECT COALESCE(SUM(credits), 0) FROM usage WHERE {col} = :{col} AND day = :day AND refunded = 0)"
_GRANTED = "(SELECT COALESCE(SUM(credits), 0) FROM grants WHERE user_id = :user_id AND day = :day)"
_RESERVE = sa.text(  # one statement: the row goes in only if every limit has room; the job id is the key
    "INSERT INTO usage (job_id, user_id, chat_id, day, credits, refunded, created_at) "
    "SELECT CAST(:job_id AS TEXT), CAST(:user_id AS BIGINT), CAST(:chat_id AS BIGINT), "
    "CAST(:day AS TEXT), CAST(:credits AS INTEGER), 0, CAST(:now AS REAL) WHERE "
    f"(CAST(:user_limit AS BIGINT) IS NULL OR {_USED.format(col='user_id')} + CAST(:credits AS BIGINT) "
    f"<= CAST(:user_limit AS BIGINT) + {_GRANTED}) AND (CAST(:chat_limit AS BIGINT) IS NULL OR "
    f"{_USED.format(col='chat_id')} + CAST(:credits AS BIGINT) <= CAST(:chat_limit AS BIGINT)) "
    "ON CONFLICT (job_id) DO NOTHING"
)
