"""Rows written straight into a test's database: jobs in any state, as a finished or crashed bot left them."""

from __future__ import annotations

import sqlalchemy as sa

from bot.models import Job
from bot.store import Store
from bot.store.jobrows import job_row
from bot.store.schema import jobs


async def insert_job(store: Store, job: Job) -> None:
    await store.backend.run(sa.insert(jobs).values(**job_row(job)))
