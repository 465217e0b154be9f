"""Reads of what was made: a user's requests page by page (/history), a week of jobs (/stats)."""

from __future__ import annotations

import sqlalchemy as sa

from ..models import Job, JobStatus
from .backend import Repository
from .jobrows import UNFINISHED, row_job
from .schema import jobs


class History(Repository):
    """Ended requests and jobs, read only."""

    async def history(
        self, user_id: int, chat_id: int, since: float, *, made: bool, offset: int, limit: int
    ) -> tuple[int, list[list[Job]]]:
        """A page of a user's ended requests in a chat since `since`, newest first, each its jobs in variant order:
        those that made an image (`made`), or those that made none (failed or cancelled), so neither kind can
        push the other out; and how many of that kind there are in all."""
        group = sa.func.coalesce(jobs.c.group_id, jobs.c.id)
        done = sa.func.sum(sa.case((jobs.c.status == JobStatus.DONE.value, 1), else_=0))
        open_ = sa.func.sum(sa.case((jobs.c.status.in_(UNFINISHED), 1), else_=0))
        requests = (
            sa.select(group.label("request"), sa.func.max(jobs.c.created_at).label("at"))
            .where(
                jobs.c.user_id == user_id,
                jobs.c.chat_id == chat_id,
                sa.func.coalesce(jobs.c.finished_at, jobs.c.created_at) >= since,
            )
            .group_by(group)
            .having(done > 0 if made else sa.and_(done == 0, open_ == 0))
        )
        total = await self._one(sa.select(sa.func.count()).select_from(requests.subquery()))
        page = [
            r[0]
            for r in await self._db.all(
                requests.order_by(sa.desc("at"), sa.desc("request")).offset(offset).limit(limit)
            )
        ]
        if not page:
            return (total[0] if total else 0), []
        rows = await self._db.all(
            sa.select(jobs).where(jobs.c.user_id == user_id, group.in_(page)).order_by(jobs.c.variant)
        )
        members: dict[str, list[Job]] = {request: [] for request in page}
        for row in rows:
            job = row_job(row)
            members[job.group].append(job)
        return (total[0] if total else 0), list(members.values())

    async def jobs_since(self, since: float) -> list[Job]:
        """A week of jobs for /stats: tens of thousands of rows on a busy bot, so read off the event loop."""
        statement = sa.select(jobs).where(jobs.c.created_at >= since).order_by(jobs.c.created_at)
        return await self._db.large_read(statement, row_job)
