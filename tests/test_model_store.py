"""Jobs, pending requests and preferences keep their model and options as one JSON value (schema 0007), on both
backends: what a model's own knobs chose survives the database, and rows written before the upgrade (the first
release's, or at revision 0006) become nano-banana-2 with their ratio and size — a job queued then is delivered."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from bot.models import Job, JobStatus, Origin, PendingRequest, Prefs
from bot.options import AspectRatio, ImageRequest, Resolution
from bot.store import make_store
from bot.store import migrate as migrations
from tests.rows import insert_job

GPT, SEEDREAM = "gpt-image-2", "doubao-seedream-4-5-251128"
FIXTURE = Path(__file__).with_name("fixtures") / "first-release.sqlite3"


async def test_a_models_own_choices_survive_the_database(store):
    request = ImageRequest("a fox", model=GPT, options={"ratio": "16:9", "size": "4K", "quality": "high"})
    await insert_job(store, Job("gptjob", Origin(7, 7), request))
    job = await store.jobs.get_job("gptjob")
    assert job.request == request and job.request.cost() == 8
    (row,) = await store.backend.all(sa.text("SELECT request, aspect_ratio, size FROM jobs WHERE id = 'gptjob'"))
    assert json.loads(row[0]) == json.loads(request.to_json()) and (row[1], row[2]) == ("16:9", "4K")

    pending = PendingRequest("pend1", Origin(7, 7), "a fox", AspectRatio("1:1"), Resolution("1K"))
    pending.use(SEEDREAM, pending.options)  # no 1K there: its smallest size
    await store.pending.save_pending(pending)
    back = await store.pending.get_pending("pend1")
    assert (back.model, back.options) == (SEEDREAM, {"ratio": "1:1", "size": "2K"})
    pending.use(GPT, {"ratio": "9:16", "size": "2K", "quality": "low"})
    await store.pending.save_pending(pending)
    assert (await store.pending.take_pending("pend1")).request == pending.request

    await store.prefs.save_prefs("chat", -100, Prefs(AspectRatio("4:3"), None, model=GPT, extra={"quality": "high"}))
    prefs = await store.prefs.get_prefs("chat", -100)
    assert (prefs.model, prefs.aspect_ratio, prefs.size, prefs.extra) == (GPT, "4:3", None, {"quality": "high"})
    assert (await store.prefs.get_prefs("user", 1)).model is None


async def test_rows_written_at_0006_become_nano_banana_2_with_their_choices(database_url):
    """The database of the release before this one, its rows as that release wrote them, then migrated."""

    def write_at_0006(connection: sa.Connection) -> None:
        command.upgrade(migrations._config(connection), "0006")
        origin = "chat_id, user_id, lang"
        connection.execute(
            sa.text(
                f"INSERT INTO jobs (id, {origin}, prompt, aspect_ratio, size, status, created_at) "
                "VALUES ('old6', 4343, 4343, 'en', 'a queued fox', '21:9', '2K', 'queued', 1.0)"
            )
        )
        connection.execute(
            sa.text(
                f"INSERT INTO pending (id, {origin}, prompt, aspect_ratio, size, created_at) "
                f"VALUES ('oldpend', 4343, 4343, 'en', 'a waiting fox', '3:4', '4K', {time.time()})"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO prefs (scope, scope_id, aspect_ratio, size, variants) VALUES ('user', 4343, '5:4', NULL, 2)"
            )
        )

    if database_url.startswith("sqlite"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(database_url)
        try:
            with engine.begin() as connection:
                write_at_0006(connection)
        finally:
            engine.dispose()
    else:
        engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://", 1))
        try:
            async with engine.begin() as connection:
                await connection.run_sync(write_at_0006)
        finally:
            await engine.dispose()
    store = make_store(database_url)
    await store.open()  # migrates to head
    try:
        job = await store.jobs.get_job("old6")
        assert job.status == JobStatus.QUEUED and job.request == ImageRequest("a queued fox", "21:9", "2K")
        pending = await store.pending.get_pending("oldpend")
        assert (pending.model, pending.options) == ("nano-banana-2", {"ratio": "3:4", "size": "4K"})
        prefs = await store.prefs.get_prefs("user", 4343)
        assert (prefs.model, prefs.aspect_ratio, prefs.size, prefs.variants) == (None, "5:4", None, 2)
        (value,) = await store.backend.all(sa.text("SELECT request FROM jobs WHERE id = 'old6'"))
        assert json.loads(value[0]) == {"model": "nano-banana-2", "options": {"ratio": "21:9", "size": "2K"}}
        (value,) = await store.backend.all(sa.text("SELECT request FROM prefs WHERE scope_id = 4343"))
        assert json.loads(value[0]) == {"options": {"ratio": "5:4"}}
    finally:
        await store.close()


async def test_a_row_an_older_version_changes_after_the_upgrade_reads_its_columns(store):
    """During a rolling upgrade an older process writes ratio and size, not the JSON: those two win."""
    request = ImageRequest("a fox", model=GPT, options={"ratio": "16:9", "size": "2K", "quality": "high"})
    await insert_job(store, Job("rolling", Origin(7, 7), request))
    await store.backend.run(sa.text("UPDATE jobs SET aspect_ratio = '1:1', size = '4K' WHERE id = 'rolling'"))
    job = await store.jobs.get_job("rolling")
    assert (job.request.model, dict(job.request.options)) == (GPT, {"ratio": "1:1", "size": "4K", "quality": "high"})


async def test_a_first_release_database_queued_job_is_nano_banana_2(tmp_path):
    path = tmp_path / "first.sqlite3"
    shutil.copy(FIXTURE, path)
    store = make_store(f"sqlite:///{path}")
    await store.open()
    try:
        queued = await store.jobs.get_job("oldjobqueue")
        assert queued.request == ImageRequest("a lighthouse at night", "9:16", "1K")
        assert (await store.pending.get_pending("oldpending1")).model == "nano-banana-2"
        prefs = await store.prefs.get_prefs("user", 4242)
        assert (prefs.aspect_ratio, prefs.size, prefs.model) == ("4:3", "4K", None)
    finally:
        await store.close()
