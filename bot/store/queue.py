"""The queue: a request's jobs stored, the next job claimed for a worker (round-robin, under the caps of every
process), a request cancelled, and what waits in which order."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..models import Job, JobStatus, Reservation
from .backend import Repository
from .credits import reserve_in
from .jobrows import BY_ID, UNFINISHED, job_row, members, row_job
from .schema import jobs, served


class CreditsShort(Exception):
    """A job of the request has not the credits it needs: nothing was stored, nothing charged."""


class QueueFull(Exception):
    """The user already has as many unfinished jobs as allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"limit {limit}")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Caps:
    """What may run at once: over all processes, per user (a request of variants counts once)."""

    total: int
    per_user: int


class Queue(Repository):
    """Claims and cancels are decided here, one transaction each, under the backend's queue lock."""

    async def enqueue(self, new: list[Job], user_limit: int, credits: Sequence[Reservation] = ()) -> None:
        """Store the jobs of one request as queued, unless the user would have more than `user_limit` unfinished;
        with their `credits` reserved in the same transaction (CreditsShort, and nothing stored, when they are not
        there)."""
        user = new[0].origin.user_id
        rows = [job_row(j) for j in new]

        def work(conn: sa.Connection) -> None:
            if credits:
                self._db.lock_credits(conn)
                for reservation in credits:
                    if not reserve_in(conn, reservation):
                        raise CreditsShort(reservation.job_id)
            self._db.lock_queue(conn)
            count = conn.execute(_UNFINISHED_OF_USER, {"b_user": user}).scalar_one()
            if count + len(new) > user_limit:
                raise QueueFull(user_limit)
            conn.execute(_INSERT_JOBS, rows)
            self._db.notify(conn, "jobs")

        await self._db.write(work)

    async def claim(self, worker: str, caps: Caps, lease: float) -> Job | None:
        """Take the next job for `worker`: round-robin across users (the one served least recently first), the
        rest of a request already started before anyone else, within the caps over every process."""
        claimed = await self.claim_many(worker, caps, lease, 1)
        return claimed[0] if claimed else None

    async def claim_many(self, worker: str, caps: Caps, lease: float, limit: int) -> list[Job]:
        """Up to `limit` jobs for `worker`, each taken as `claim` takes one, in one transaction."""

        def work(conn: sa.Connection) -> list[sa.Row]:
            self._db.lock_queue(conn)
            # The lease runs from when the claim takes effect, not from when it was asked for: a claim that waited
            # for the queue lock, or was held up (a partition, a stall), would else arrive with its lease run out,
            # and a reap would take the job back while its worker starts it.
            now = time.time()
            claimed: list[sa.Row] = []
            while len(claimed) < limit:
                row = conn.execute(self._claim_query, {"user_cap": caps.per_user, "total": caps.total}).first()
                if row is None:
                    break
                job_id, user_id = row
                claimed.append(
                    conn.execute(
                        _START, {"b_id": job_id, "v_worker": worker, "v_lease": now + lease, "v_now": now}
                    ).one()
                )
                conn.execute(self._served, {"user_id": user_id, "serial": time.time_ns()})
            return claimed

        return [row_job(row) for row in await self._db.write(work)]

    async def claim_siblings(self, lead: Job, worker: str, lease: float, most: int) -> list[Job]:
        """Beside `lead` (just claimed), up to `most` of its request's other variants still waiting, claimed for the
        same `worker`: one upstream call makes them all (a model whose call returns several images). Each stays its
        own row, with its own epoch, credits and delivery; only the call is shared. They are the rest of a request
        already started, so the caps let them through as `claim` does."""
        if lead.group_id is None or most < 1:
            return []

        def work(conn: sa.Connection) -> list[sa.Row]:
            self._db.lock_queue(conn)
            now = time.time()  # after the lock, as in claim_many
            ids = conn.execute(_WAITING_SIBLINGS, {"b_group": lead.group_id, "b_most": most}).scalars().all()
            params = {"v_worker": worker, "v_lease": now + lease, "v_now": now}
            return [row for job_id in ids if (row := conn.execute(_START_WAITING, {"b_id": job_id, **params}).first())]

        return [row_job(row) for row in await self._db.write(work)]

    @functools.cached_property
    def _served(self) -> Any:
        """Mark a user served now (round-robin): an upsert, in the backend's dialect."""
        statement = self._db.insert(served)
        return statement.on_conflict_do_update(index_elements=["user_id"], set_={"serial": statement.excluded.serial})

    @functools.cached_property
    def _claim_query(self) -> sa.TextClause:
        group = "COALESCE(j.group_id, j.id)"
        return sa.text(f"""
            SELECT j.id, j.user_id FROM jobs j LEFT JOIN served s ON s.user_id = j.user_id
            WHERE j.status = 'queued'
              AND (SELECT COUNT(*) FROM jobs t WHERE t.status = 'running') < :total AND (
                EXISTS (SELECT 1 FROM jobs g WHERE g.group_id = j.group_id AND g.status = 'running')
                OR (SELECT COUNT(DISTINCT COALESCE(r.group_id, r.id)) FROM jobs r
                    WHERE r.user_id = j.user_id AND r.status = 'running') < :user_cap)
            ORDER BY CASE WHEN EXISTS (SELECT 1 FROM jobs g WHERE g.group_id = j.group_id
                                       AND g.status IN ('running', 'made')) THEN 0 ELSE 1 END,
                     COALESCE(s.serial, -1), j.created_at, {group}, j.variant
            LIMIT 1 {self._db.skip_locked}""")

    async def cancel(self, group: str) -> tuple[list[Job], list[str]]:
        """Cancel a request: waiting jobs at once (returned), running ones flagged (their ids returned) for the
        process that runs them."""
        now = time.time()
        where = members(group)

        def work(conn: sa.Connection) -> tuple[Sequence[sa.Row], list[str]]:
            self._db.lock_queue(conn)
            rows = conn.execute(
                sa.update(jobs)
                .where(where, jobs.c.status == JobStatus.QUEUED.value)
                .values(status=JobStatus.CANCELLED.value, finished_at=now)
                .returning(*jobs.c)
            ).all()
            flagged = (
                conn.execute(
                    sa.update(jobs)
                    .where(where, jobs.c.status == JobStatus.RUNNING.value)
                    .values(cancel_requested=1)
                    .returning(jobs.c.id)
                )
                .scalars()
                .all()
            )
            if flagged:
                self._db.notify(conn, "cancel")
            return rows, list(flagged)

        rows, flagged = await self._db.write(work)
        return [row_job(r) for r in rows], flagged

    async def cancel_requested(self, worker: str) -> list[str]:
        rows = await self._db.all(
            sa.select(jobs.c.id).where(
                jobs.c.worker == worker, jobs.c.status == JobStatus.RUNNING.value, jobs.c.cancel_requested == 1
            )
        )
        return [r[0] for r in rows]

    async def waiting_order(self) -> list[tuple[str, str, int]]:
        """(job id, group, user) of every waiting job in the order they will start: each user's k-th job after
        everyone's (k-1)-th, least recently served first. One query, whatever the number of jobs."""
        rows = await self._db.all(
            sa.text("""
            SELECT id, COALESCE(group_id, id), user_id FROM (
                SELECT j.id, j.group_id, j.user_id, j.created_at, j.variant, COALESCE(s.serial, -1) AS serial,
                       ROW_NUMBER() OVER (PARTITION BY j.user_id ORDER BY j.created_at, j.variant) AS nth
                FROM jobs j LEFT JOIN served s ON s.user_id = j.user_id WHERE j.status = 'queued') w
            ORDER BY nth, serial, created_at, variant""")
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def queue_counts(self) -> tuple[int, int]:
        """(waiting, running) over every process."""
        rows = await self._db.all(
            sa.select(jobs.c.status, sa.func.count())
            .where(jobs.c.status.in_((JobStatus.QUEUED.value, JobStatus.RUNNING.value)))
            .group_by(jobs.c.status)
        )
        counts = dict(rows)
        return counts.get(JobStatus.QUEUED.value, 0), counts.get(JobStatus.RUNNING.value, 0)


_UNFINISHED_OF_USER = (
    sa.select(sa.func.count())
    .select_from(jobs)
    .where(jobs.c.user_id == sa.bindparam("b_user"), jobs.c.status.in_(UNFINISHED))
)
_INSERT_JOBS = sa.insert(jobs)
_STARTED = {
    "status": JobStatus.RUNNING.value,
    "worker": sa.bindparam("v_worker"),
    "lease_until": sa.bindparam("v_lease"),
    "started_at": sa.bindparam("v_now"),
    "attempts": jobs.c.attempts + 1,
    "cancel_requested": 0,
    "epoch": jobs.c.epoch + 1,
}
_START = sa.update(jobs).where(BY_ID).values(_STARTED).returning(*jobs.c)
_START_WAITING = (
    sa.update(jobs).where(BY_ID, jobs.c.status == JobStatus.QUEUED.value).values(_STARTED).returning(*jobs.c)
)
_WAITING_SIBLINGS = (
    sa.select(jobs.c.id)
    .where(jobs.c.group_id == sa.bindparam("b_group"), jobs.c.status == JobStatus.QUEUED.value)
    .order_by(jobs.c.variant)
    .limit(sa.bindparam("b_most"))
)
