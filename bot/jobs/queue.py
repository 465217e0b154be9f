"""The queue as the handlers see it: submit a request, cancel it, list a user's jobs — all in the database.

Caps and round-robin order are decided by the store when a worker claims a job (`Store.claim`), so they hold over
every process sharing the database. Credits are reserved as the jobs are stored, in the same transaction, and
refunded exactly once (the usage row is keyed by job id).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..models import Job
from ..quota import Quota
from ..store import CreditsShort, QueueFull, Store
from .interface import Presentation

log = logging.getLogger(__name__)

__all__ = ["JobQueue", "QueueFull", "ShuttingDown"]


class ShuttingDown(Exception):
    """This process is stopping and takes no new jobs."""


class JobQueue:
    def __init__(
        self,
        store: Store,
        quota: Quota,
        presentation: Presentation,
        *,
        owner: str,
        lease: float,
        user_max_running: int,
        user_max_waiting: int,
    ) -> None:
        self._store = store
        self._owner, self._lease = owner, lease
        self._quota = quota
        self._presentation = presentation
        self._user_limit = user_max_running + user_max_waiting
        self._closing = False
        self._listeners: list[Callable[[], None]] = []
        self._cancel_listeners: list[Callable[[list[str]], None]] = []

    def on_submit(self, callback: Callable[[], None]) -> None:
        """A local worker hears of new jobs at once (other processes are woken by the store)."""
        self._listeners.append(callback)

    def on_cancel(self, callback: Callable[[list[str]], None]) -> None:
        """A local worker stops the running jobs of a cancel at once (others learn it from the store)."""
        self._cancel_listeners.append(callback)

    def close(self) -> None:
        self._closing = True

    async def submit(self, *jobs: Job) -> None:
        """Store the job(s) of one request and show its status line.

        Raises ShuttingDown while stopping, QueueFull when the user is at their limit, and QuotaExceeded when the
        credits are not there; nothing is queued or charged then.
        """
        if self._closing:
            raise ShuttingDown
        lead = jobs[0]
        self._presentation.submitted(list(jobs))
        try:  # the jobs and their credits in one transaction: both or neither
            await self._store.queue.enqueue(list(jobs), self._user_limit, [self._quota.reservation(j) for j in jobs])
        except CreditsShort:
            self._presentation.queued(lead.group, ok=False)
            raise await self._quota.exceeded(lead.origin, sum(self._quota.cost(j.request) for j in jobs)) from None
        except BaseException:
            self._presentation.queued(lead.group, ok=False)
            raise
        self._presentation.queued(lead.group, ok=True)
        for listener in self._listeners:
            listener()

    async def cancel(self, job_id: str) -> bool:
        """Cancel the request `job_id` belongs to, wherever it runs: waiting jobs end at once, running ones are
        stopped by their process (it watches the flag; the upstream request is aborted)."""
        job = await self._store.jobs.get_job(job_id)
        if job is None:
            return False
        cancelled, running = await self._store.queue.cancel(job.group)
        for member in cancelled:
            await self._quota.refund(member)
        for job_id in running:  # credits back now; the worker's own refund later finds nothing left to do
            await self._store.credits.refund_credits(job_id)
        for listener in self._cancel_listeners:
            listener(running)
        if (
            cancelled
            and (epoch := await self._store.leases.claim_delivery(job.group, self._owner, self._lease)) is not None
        ):
            await self._presentation.deliver(job.group, epoch)
        return bool(cancelled or running)

    async def job(self, job_id: str) -> Job | None:
        return await self._store.jobs.get_job(job_id)

    async def request_jobs(self, group: str) -> list[Job]:
        """The jobs of one request, in variant order."""
        return await self._store.jobs.group_jobs(group)

    async def user_jobs(self, user_id: int) -> list[Job]:
        """Unfinished jobs of a user, newest first."""
        return await self._store.jobs.user_unfinished(user_id)
