"""Rows in a test's database: jobs written straight into it, as a finished or crashed bot left them, and jobs read
back as an operator reads them (waited for: a job's outcome is written just after its result is sent)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from bot.models import Job
from bot.store import Store, make_store
from bot.store.jobrows import FINAL, job_row
from bot.store.schema import jobs


async def insert_job(store: Store, job: Job) -> None:
    await store.backend.run(sa.insert(jobs).values(**job_row(job)))


async def settled(database_url: str, count: int = 1, timeout: float = 15) -> list[str]:
    """Every job's status (oldest first) once there are at least `count` jobs and all have their final status: a
    delivered job is recorded done just after its result is sent, so a test that saw the result waits for this."""
    store = make_store(database_url)
    await store.open()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            rows = await store.backend.all(sa.select(jobs.c.status).order_by(jobs.c.created_at, jobs.c.variant))
            seen = [row[0] for row in rows]
            if len(seen) >= count and all(status in FINAL for status in seen):
                return seen
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {count}+ jobs to settle: {seen}")
            await asyncio.sleep(0.1)
    finally:
        await store.close()


async def album_kept(database_url: str, chat_id: int, media_group_id: str, parts: int, timeout: float = 15) -> None:
    """Wait until the bot has kept `parts` parts of an album: each part is handled on its own, alongside the next
    updates, so a message replying to the album right after it is only fair once the bot has them all."""
    store = make_store(database_url)
    await store.open()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len((await store.albums.album(chat_id, media_group_id))[0]) < parts:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {parts} parts of {media_group_id}")
            await asyncio.sleep(0.05)
    finally:
        await store.close()


async def pictures_waiting(database_url: str, chat_id: int, user_id: int, timeout: float = 15) -> None:
    """Wait until pictures sent without words are kept for the next text: the bot says "Got the picture" just
    before it keeps them, alongside the next updates, so a text right after that line is only fair once they are."""
    store = make_store(database_url)
    await store.open()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while await store.pending.latest_pending(chat_id, user_id, 0, wants_prompt=True) is None:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for pictures to wait in chat {chat_id}")
            await asyncio.sleep(0.05)
    finally:
        await store.close()
