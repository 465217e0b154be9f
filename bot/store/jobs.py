"""Reading a job and its request, and the one write about a job outside its lease: which message is its status line."""

from __future__ import annotations

import sqlalchemy as sa

from ..models import Job
from .backend import Repository
from .jobrows import BY_ID, IN_GROUP, UNFINISHED, row_job
from .schema import jobs


class Jobs(Repository):
    """Jobs as they are: one, a request's, a user's unfinished ones."""

    async def set_status_message(self, job_id: str, message_id: int | None) -> None:
        await self._db.run(_SET_STATUS_MESSAGE, {"b_id": job_id, "v_message": message_id})

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._one(sa.select(jobs).where(jobs.c.id == job_id))
        return row_job(row) if row else None

    async def group_jobs(self, group: str) -> list[Job]:
        """The jobs of one request, in variant order (a single job is its own group)."""
        rows = await self._db.all(_GROUP_JOBS, {"b_group": group})
        return [row_job(r) for r in rows]

    async def user_unfinished(self, user_id: int) -> list[Job]:
        """Unfinished jobs of a user, newest first (whichever process runs them); one already told to stop is not."""
        rows = await self._db.all(
            sa.select(jobs)
            .where(jobs.c.user_id == user_id, jobs.c.status.in_(UNFINISHED), jobs.c.cancel_requested == 0)
            .order_by(jobs.c.created_at.desc())
        )
        return [row_job(r) for r in rows]


_GROUP_JOBS = sa.select(jobs).where(IN_GROUP).order_by(jobs.c.variant)
_SET_STATUS_MESSAGE = sa.update(jobs).where(BY_ID).values(status_message_id=sa.bindparam("v_message"))
