"""The prompt helper's calls in flight, one row each, shared by every process: a request's call is claimed once (a
second tap on ✨, in any process, makes no second call), its credits are settled when it ends, and a call a crash
cut short has its credits given back once it is past any deadline."""

from __future__ import annotations

import time

import sqlalchemy as sa

from .backend import Repository
from .schema import helper_calls, pending, usage


class HelperCalls(Repository):
    async def claim(
        self, request_id: str, purpose: str, ledger_key: str | None, stale_before: float, *, unsuggested: bool = False
    ) -> bool:
        """Make this process the one calling the helper for `request_id` and `purpose`; False when another call
        for them runs. `unsuggested`: also False when the request is gone (generated, cancelled) or already shows
        a rewrite. Calls begun before `stale_before` are over (their process stopped): swept first."""

        def work(conn: sa.Connection) -> bool:
            _sweep(conn, stale_before)
            if unsuggested:
                # the row locked (PostgreSQL): a rewrite being saved meanwhile waits for this claim, then finds it
                row = conn.execute(
                    sa.select(pending.c.suggestion).where(pending.c.id == request_id).with_for_update()
                ).first()
                if row is None or row[0] is not None:
                    return False
            inserted = conn.execute(
                self._db.insert(helper_calls)
                .values(request_id=request_id, purpose=purpose, ledger_key=ledger_key, started_at=time.time())
                .on_conflict_do_nothing(index_elements=["request_id", "purpose"])
                .returning(helper_calls.c.request_id)
            ).first()
            return inserted is not None

        return await self._db.write(work)

    async def settle(self, request_id: str, purpose: str, *, refund: bool) -> None:
        """The call ended: its credits stay spent, or (`refund`: it gave nothing) go back; the claim is released."""

        def work(conn: sa.Connection) -> None:
            where = (helper_calls.c.request_id == request_id) & (helper_calls.c.purpose == purpose)
            key = conn.execute(sa.delete(helper_calls).where(where).returning(helper_calls.c.ledger_key)).scalar()
            if refund and key is not None:
                conn.execute(sa.update(usage).where(usage.c.job_id == key, usage.c.refunded == 0).values(refunded=1))

        await self._db.write(work)

    async def refund_stale(self, stale_before: float) -> int:
        """Calls begun before `stale_before` that no process settled (it stopped mid-call): credits given back,
        claims released. How many."""
        return await self._db.write(_sweep, stale_before)


def _sweep(conn: sa.Connection, stale_before: float) -> int:
    stale = conn.execute(
        sa.delete(helper_calls).where(helper_calls.c.started_at < stale_before).returning(helper_calls.c.ledger_key)
    ).all()
    keys = [key for (key,) in stale if key is not None]
    if keys:
        conn.execute(sa.update(usage).where(usage.c.job_id.in_(keys), usage.c.refunded == 0).values(refunded=1))
    return len(stale)
