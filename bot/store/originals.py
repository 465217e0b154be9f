"""Originals every process can read (PostgreSQL): a made image's bytes, kept by the holder of its job."""

from __future__ import annotations

import time

import sqlalchemy as sa

from .backend import Repository
from .jobrows import BY_ID, LeaseLost
from .schema import jobs, originals


class SharedOriginals(Repository):
    """The `originals` table: copies of the files on disk, for processes on other machines."""

    async def save_original(self, job_id: str, epoch: int, extension: str, data: bytes) -> None:
        """Keep a made image for every process, if this process still holds its job (else LeaseLost): the job's
        row is locked meanwhile, so a takeover either finds this image or none."""
        statement = self._db.insert(originals).values(
            job_id=job_id, extension=extension, data=data, nbytes=len(data), created_at=time.time()
        )
        statement = statement.on_conflict_do_update(
            index_elements=["job_id"],
            set_={k: statement.excluded[k] for k in ("extension", "data", "nbytes", "created_at")},
        )

        def work(conn: sa.Connection) -> None:
            if conn.execute(_HOLDER, {"b_id": job_id}).scalar() != epoch:
                raise LeaseLost(job_id)
            conn.execute(statement)

        await self._db.write(work)

    async def load_original(self, job_id: str) -> tuple[str, bytes] | None:
        row = await self._one(sa.select(originals.c.extension, originals.c.data).where(originals.c.job_id == job_id))
        return (row[0], bytes(row[1])) if row else None

    async def prune_originals(self, max_age: float, max_total: int) -> int:
        """Oldest first: everything past the age, then until the total fits."""
        removed = await self._db.run(sa.delete(originals).where(originals.c.created_at < time.time() - max_age))
        rows = await self._db.all(
            sa.select(originals.c.job_id, originals.c.nbytes).order_by(originals.c.created_at.desc())
        )
        total, drop = 0, []
        for job_id, nbytes in rows:
            total += nbytes
            if total > max_total:
                drop.append(job_id)
        if drop:
            removed += await self._db.run(sa.delete(originals).where(originals.c.job_id.in_(drop)))
        return removed


_HOLDER = sa.select(jobs.c.epoch).where(BY_ID).with_for_update()
