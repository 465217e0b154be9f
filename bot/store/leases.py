"""Leases and their fences: a worker's claims renewed, held for a send, given back or taken over when their process
stopped; a job's outcome written and a complete request's delivery claimed (exactly one process gets it, as a new
epoch of its lead job); what a delivery sent, and its end. Every write names the epoch it holds."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import sqlalchemy as sa

from ..models import Job, JobStatus
from .backend import Repository
from .jobrows import (
    AT_EPOCH,
    BY_ID,
    DELIVERING,
    FINAL,
    IN_GROUP,
    IS_LEAD,
    OPEN,
    OUTCOME_COLUMNS,
    REFUND,
    SETTLED,
    LeaseLost,
    outcome,
    row_job,
)
from .schema import jobs, usage

MAX_ATTEMPTS = 2  # a job interrupted by a crash is run once more, then the user is asked to tap Again


@dataclass(frozen=True, slots=True)
class Reaped:
    """What a sweep of expired leases found: jobs to run again are queued; these requests are ours to deliver, each
    under the epoch of its delivery we now hold."""

    requeued: int
    deliveries: list[tuple[str, int]]


class Leases(Repository):
    """Who holds a job or a delivery, and the writes only its holder may make."""

    async def renew(self, worker: str, lease: float) -> dict[str, int]:
        """Keep this process's claims (running jobs, requests it is delivering) for `lease` seconds more, never
        shortening a longer hold taken for a send; returns what it still holds: job id → epoch."""
        rows = await self._db.write(
            lambda conn: conn.execute(_RENEW, {"b_worker": worker, "v_until": time.time() + lease}).all()
        )
        return {row[0]: row[1] for row in rows}

    async def hold(self, job_id: str, epoch: int, until: float) -> None:
        """Extend one lease to at least `until` (the send gate); LeaseLost when another process holds it now."""
        if await self._db.run(_HOLD, {"b_id": job_id, "b_epoch": epoch, "v_until": until}) != 1:
            raise LeaseLost(job_id)

    async def release(self, job: Job) -> None:
        """Give a running job back to the queue (a stop): another process, or the next start, runs it."""
        await self._db.run(
            sa.update(jobs)
            .where(jobs.c.id == job.id, jobs.c.epoch == job.epoch, jobs.c.status == JobStatus.RUNNING.value)
            .values(
                status=JobStatus.QUEUED.value,
                worker=None,
                lease_until=None,
                epoch=jobs.c.epoch + 1,
                attempts=sa.case((jobs.c.attempts > 0, jobs.c.attempts - 1), else_=0),
            )
        )
        job.status = JobStatus.QUEUED

    async def holders(self) -> list[str]:
        """The workers holding leases now."""
        rows = await self._db.all(
            sa.select(jobs.c.worker)
            .distinct()
            .where(
                jobs.c.worker.is_not(None), (jobs.c.status == JobStatus.RUNNING.value) | (jobs.c.settled == DELIVERING)
            )
        )
        return [r[0] for r in rows]

    async def expire(self, workers: list[str]) -> None:
        """End the leases of workers known to be dead (their process is gone), so `reap` takes over at once."""
        await self._db.run(sa.update(jobs).where(jobs.c.worker.in_(workers)).values(lease_until=0.0))

    async def reap(self, worker: str, lease: float) -> Reaped:
        """Jobs whose process stopped renewing: run once more, or (interrupted twice) fail; deliveries left
        halfway are taken over by `worker`, which must deliver the returned groups."""
        now = time.time()

        def work(conn: sa.Connection) -> Reaped:
            deliveries: list[tuple[str, int]] = []
            self._db.lock_queue(conn)
            expired = conn.execute(
                sa.select(jobs).where(  # no lease at all: left by the first release
                    jobs.c.status == JobStatus.RUNNING.value, (jobs.c.lease_until < now) | jobs.c.lease_until.is_(None)
                )
            ).all()
            requeued = 0
            for row in expired:
                job = row_job(row)
                # Each takeover names the epoch it saw and still finds the lease expired (a renewal that got in
                # first wins), and moves the epoch on: the old holder's writes are refused from now on.
                still = (
                    jobs.c.id == job.id,
                    jobs.c.epoch == job.epoch,
                    jobs.c.status == JobStatus.RUNNING.value,
                    (jobs.c.lease_until < now) | jobs.c.lease_until.is_(None),
                )
                if job.attempts >= MAX_ATTEMPTS:
                    if (
                        conn.execute(
                            sa.update(jobs)
                            .where(*still)
                            .values(
                                status=JobStatus.FAILED.value,
                                error_kind="interrupted",
                                finished_at=now,
                                worker=None,
                                epoch=jobs.c.epoch + 1,
                            )
                        ).rowcount
                        != 1
                    ):
                        continue
                    conn.execute(sa.update(usage).where(usage.c.job_id == job.id).values(refunded=1))
                    if (epoch := self._claim_delivery(conn, job.group, worker, lease)) is not None:
                        deliveries.append((job.group, epoch))
                elif (
                    conn.execute(
                        sa.update(jobs)
                        .where(*still)
                        .values(status=JobStatus.QUEUED.value, worker=None, lease_until=None, epoch=jobs.c.epoch + 1)
                    ).rowcount
                    == 1
                ):
                    requeued += 1
            stalled = conn.execute(
                sa.select(jobs.c.id, jobs.c.group_id, jobs.c.epoch).where(
                    jobs.c.settled == DELIVERING, jobs.c.lease_until < now
                )
            ).all()
            made = conn.execute(
                sa.select(jobs.c.id, jobs.c.group_id).where(  # a crash between two writes
                    jobs.c.settled == OPEN,
                    jobs.c.variant == 1,
                    jobs.c.status.in_((*FINAL, JobStatus.MADE.value)),
                    jobs.c.worker.is_(None) | (jobs.c.lease_until < now),
                )
            ).all()
            for lead, group_id in made:
                if (epoch := self._claim_delivery(conn, group_id or lead, worker, lease)) is not None:
                    deliveries.append((group_id or lead, epoch))
            for lead, group_id, epoch in stalled:
                taken = conn.execute(
                    sa.update(jobs)
                    .where(
                        jobs.c.id == lead, jobs.c.epoch == epoch, jobs.c.settled == DELIVERING, jobs.c.lease_until < now
                    )
                    .values(worker=worker, lease_until=now + lease, epoch=jobs.c.epoch + 1)
                    .returning(jobs.c.epoch)
                ).scalar()
                if taken is not None:
                    deliveries.append((group_id or lead, taken))
            if requeued:
                self._db.notify(conn, "jobs")
            return Reaped(requeued, deliveries)

        return await self._db.write(work)

    async def finish_job(self, job: Job, worker: str, lease: float) -> int | None:
        """Record a job's result (made, failed or cancelled — then refunded) if this process still holds it
        (else LeaseLost, and nothing is written); the epoch of the request's delivery when it is now complete and
        this process must deliver it (exactly one process gets one per request), else None."""
        params = outcome(job)

        def work(conn: sa.Connection) -> int | None:
            self._db.lock_queue(conn)
            if conn.execute(_WRITE_OUTCOME, params).rowcount != 1:
                raise LeaseLost(job.id)
            if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):  # its credits back, once, in the same write
                conn.execute(REFUND, {"b_id": job.id})
            return self._claim_delivery(conn, job.group, worker, lease)

        return await self._db.write(work)

    async def claim_delivery(self, group: str, worker: str, lease: float) -> int | None:
        """Claim the delivery of a request whose jobs have all ended (e.g. cancelled while waiting): its epoch."""

        def work(conn: sa.Connection) -> int | None:
            self._db.lock_queue(conn)
            return self._claim_delivery(conn, group, worker, lease)

        return await self._db.write(work)

    def _claim_delivery(self, conn: sa.Connection, group: str, worker: str, lease: float) -> int | None:
        """The delivery of a complete request, claimed as a new epoch of its lead job (None: not complete, or
        another process has it)."""
        statuses = conn.execute(_GROUP_STATUSES, {"b_group": group}).scalars().all()
        if any(status in (JobStatus.QUEUED.value, JobStatus.RUNNING.value) for status in statuses):
            return None
        return conn.execute(
            _WIN_DELIVERY, {"b_group": group, "v_worker": worker, "v_lease": time.time() + lease}
        ).scalar()

    async def conclude(self, group: str, members: list[Job], epoch: int) -> None:
        """A request is over: every job's outcome, the refunds of those that failed, and its settled mark, in one
        transaction, by the holder of its delivery (else LeaseLost, and nothing is written)."""
        outcomes = [outcome(job, with_status_message=True) for job in members]
        refunds = [{"b_id": job.id} for job in members if job.status in (JobStatus.FAILED, JobStatus.CANCELLED)]

        def work(conn: sa.Connection) -> None:
            if conn.execute(_SETTLED, {"b_group": group, "b_epoch": epoch}).rowcount != 1:
                raise LeaseLost(group)
            conn.execute(_CONCLUDE_OUTCOME, outcomes)
            if refunds:  # what failed at delivery; once (a job refunded already stays so)
                conn.execute(REFUND, refunds)

        await self._db.write(work)

    async def record_sent(self, job: Job, epoch: int, lease: float) -> None:
        """What a delivery has sent so far, written before the next Telegram call (a crash never resends it); the
        long hold taken for the send goes back to `lease`. LeaseLost when another process holds it now."""
        if (
            await self._db.run(
                _RECORD_SENT,
                {"b_id": job.id, "b_epoch": epoch, "v_sent": json.dumps(job.sent), "v_until": time.time() + lease},
            )
            != 1
        ):
            raise LeaseLost(job.id)


_WRITE_OUTCOME = (
    sa.update(jobs).where(BY_ID, AT_EPOCH).values({name: sa.bindparam(f"v_{name}") for name in OUTCOME_COLUMNS})
)
_CONCLUDE_OUTCOME = (
    sa.update(jobs)
    .where(
        BY_ID,
        sa.and_(*(jobs.c.status != status for status in FINAL))  # no IN: it runs as executemany
        | (jobs.c.status == sa.bindparam("v_status")),
    )
    .values({name: sa.bindparam(f"v_{name}") for name in [*OUTCOME_COLUMNS, "status_message_id"]})
)
_GROUP_STATUSES = sa.select(jobs.c.status).where(IN_GROUP)
_WIN_DELIVERY = (
    sa.update(jobs)
    .where(IS_LEAD, jobs.c.settled == OPEN)
    .values(
        settled=DELIVERING, worker=sa.bindparam("v_worker"), lease_until=sa.bindparam("v_lease"), epoch=jobs.c.epoch + 1
    )
    .returning(jobs.c.epoch)
)
_SETTLED = sa.update(jobs).where(IS_LEAD, AT_EPOCH).values(settled=SETTLED)
_RECORD_SENT = (
    sa.update(jobs).where(BY_ID, AT_EPOCH).values(sent=sa.bindparam("v_sent"), lease_until=sa.bindparam("v_until"))
)
_UNTIL: sa.BindParameter[float] = sa.bindparam("v_until")
_LONGER = sa.case((jobs.c.lease_until > _UNTIL, jobs.c.lease_until), else_=_UNTIL)  # a lease is never shortened
_RENEW = (
    sa.update(jobs)
    .where(
        jobs.c.worker == sa.bindparam("b_worker"),
        (jobs.c.status == JobStatus.RUNNING.value) | (jobs.c.settled == DELIVERING),
    )
    .values(lease_until=_LONGER)
    .returning(jobs.c.id, jobs.c.epoch)
)
_HOLD = sa.update(jobs).where(BY_ID, AT_EPOCH).values(lease_until=_LONGER)
