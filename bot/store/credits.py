"""Credits: reserved per job (the job id is the key, so never a double spend), refunded once, granted by admins."""

from __future__ import annotations

import time

import sqlalchemy as sa

from ..models import JobStatus, Reservation
from .backend import Repository
from .schema import grants, helper_calls, jobs, payments, usage


class Credits(Repository):
    """The `usage` and `grants` tables."""

    async def reserve_credits(self, r: Reservation) -> bool:
        """Record the credits of a job if there is room: today's free allowance first (the user's and the chat's
        limits), then the user's purchased credits. Decided under the credits lock and keyed by the job id, so
        never a double spend, whichever processes race. The purchased part is kept on the row (`paid`): a refund
        (the row marked refunded) gives each part back where it came from."""

        def work(conn: sa.Connection) -> bool:
            self._db.lock_credits(conn)
            return reserve_in(conn, r)

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
        """Today's free allowance used (purchased credits spent are not counted here)."""
        column = usage.c.user_id == user_id if user_id is not None else usage.c.chat_id == chat_id
        row = await self._one(
            sa.select(sa.func.coalesce(sa.func.sum(usage.c.credits - usage.c.paid), 0)).where(
                column, usage.c.day == day, usage.c.refunded == 0
            )
        )
        return int(row[0]) if row else 0

    async def purchased(self, user_id: int) -> int:
        """The purchased credits a user has left: never expire."""
        row = await self._one(_PURCHASED, {"b_user": user_id})
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
_RESERVE = sa.insert(usage)
_FREE_USED = {
    column: sa.select(sa.func.coalesce(sa.func.sum(usage.c.credits - usage.c.paid), 0)).where(
        usage.c[column] == sa.bindparam("b_who"), usage.c.day == sa.bindparam("b_day"), usage.c.refunded == 0
    )
    for column in ("user_id", "chat_id")
}
_GRANTED = sa.select(sa.func.coalesce(sa.func.sum(grants.c.credits), 0)).where(
    grants.c.user_id == sa.bindparam("b_who"), grants.c.day == sa.bindparam("b_day")
)
_BOUGHT = sa.select(sa.func.coalesce(sa.func.sum(payments.c.credits - sa.func.coalesce(payments.c.credits_back, 0)), 0))
# a job's purchased credits are spent while it holds them; refunded, those a refund of their pack took meanwhile stay
_SPENT = sa.select(
    sa.func.coalesce(sa.func.sum(sa.case((usage.c.refunded == 0, usage.c.paid), else_=usage.c.taken_back)), 0)
).where(usage.c.user_id == sa.bindparam("b_user"))
_PURCHASED = sa.select(
    _BOUGHT.where(payments.c.user_id == sa.bindparam("b_user")).scalar_subquery() - _SPENT.scalar_subquery()
)


def reserve_in(conn: sa.Connection, r: Reservation) -> bool:
    """`Credits.reserve_credits` inside a transaction that holds the credits lock (the queue stores a request's
    jobs and their credits in one)."""
    row = conn.execute(_REFUNDED, {"b_id": r.job_id}).first()
    if row is not None:
        return not row[0]  # already reserved by this job (a resumed job keeps it)
    paid = _purchased_part(conn, r)
    if paid is None:
        return False
    values = {"job_id": r.job_id, "user_id": r.user_id, "chat_id": r.chat_id, "day": r.day}
    conn.execute(_RESERVE, {**values, "credits": r.credits, "paid": paid, "created_at": time.time()})
    return True


def purchased_left(conn: sa.Connection, user_id: int) -> int:
    """A user's purchased credits left, inside a transaction (the payments repository takes refunds from it)."""
    return int(conn.execute(_PURCHASED, {"b_user": user_id}).scalar_one())


def take_back_held(conn: sa.Connection, user_id: int, credits: int) -> None:
    """A refund took `credits` fewer than its pack because some are held by jobs (or helper calls) not finished:
    up to that many of theirs are marked taken back, so that a failure of one gives the buyer back only what the
    refund left them. Inside the refund's transaction."""
    unfinished = sa.or_(
        usage.c.job_id.in_(sa.select(jobs.c.id).where(jobs.c.status != JobStatus.DONE.value)),
        usage.c.job_id.in_(sa.select(helper_calls.c.ledger_key).where(helper_calls.c.ledger_key.is_not(None))),
    )
    held = conn.execute(
        sa.select(usage.c.job_id, usage.c.paid - usage.c.taken_back)
        .where(usage.c.user_id == user_id, usage.c.refunded == 0, usage.c.paid > usage.c.taken_back, unfinished)
        .order_by(usage.c.created_at)
    ).all()
    for job_id, part in held:
        if credits <= 0:
            break
        take = min(part, credits)
        conn.execute(sa.update(usage).where(usage.c.job_id == job_id).values(taken_back=usage.c.taken_back + take))
        credits -= take


def _purchased_part(conn: sa.Connection, r: Reservation) -> int | None:
    """How many of a job's credits come from purchased ones (0 while today's free allowance covers them), or None
    when free and purchased credits together are short."""
    room: list[int] = []
    if r.user_limit is not None:
        used = conn.execute(_FREE_USED["user_id"], {"b_who": r.user_id, "b_day": r.day}).scalar_one()
        granted = conn.execute(_GRANTED, {"b_who": r.user_id, "b_day": r.day}).scalar_one()
        room.append(r.user_limit + int(granted) - int(used))
    if r.chat_limit is not None:
        used = conn.execute(_FREE_USED["chat_id"], {"b_who": r.chat_id, "b_day": r.day}).scalar_one()
        room.append(r.chat_limit - int(used))
    if not room:
        return 0  # no limit: nothing is bought
    paid = r.credits - max(0, min(r.credits, *room))
    if paid and paid > purchased_left(conn, r.user_id):
        return None
    return paid
