"""The shared engine on both backends: claims, caps, leases, cancel flags, the inbox, credits, originals."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
import sqlalchemy as sa

from bot.models import Job, JobStatus, Origin, Reservation
from bot.options import AspectRatio, ImageRequest, Resolution
from bot.store import Caps, LeaseLost, QueueFull, StoreError, make_store
from tests.rows import insert_job

REQUEST = ImageRequest("p", AspectRatio("1:1"), Resolution("1K"))


def _job(job_id: str, user: int, **kwargs: object) -> Job:
    return Job(job_id, Origin(user, user), REQUEST, **kwargs)  # type: ignore[arg-type]


async def test_each_job_is_claimed_once_within_the_caps(store, database_url):
    for user in range(5):
        await store.queue.enqueue([_job(f"u{user}j{n}", user) for n in range(4)], 10)
    others = [make_store(database_url) for _ in range(3)]
    for other in others:
        await other.open()
    try:
        claims = await asyncio.gather(
            *(s.queue.claim(f"w{i}", Caps(total=6, per_user=1), 30) for i, s in enumerate([store, *others] * 4))
        )
    finally:
        for other in others:
            await other.close()
    got = [job for job in claims if job is not None]
    assert len(got) == 5  # one per user (per-user cap 1), under the total cap of 6
    assert len({job.id for job in got}) == len(got)
    assert len({job.origin.user_id for job in got}) == 5


async def test_round_robin_and_variants_start_together(store):
    await store.queue.enqueue([_job("a1", 1), _job("a2", 1)], 10)
    await store.queue.enqueue([_job(f"b{n}", 2, group_id="gb", variant=n, variants=4) for n in range(1, 5)], 10)
    await store.queue.enqueue([_job("c1", 3)], 10)
    order = []
    while (job := await store.queue.claim("w", Caps(total=100, per_user=1), 30)) is not None:
        order.append(job.id)
    # a1 first; then b's four variants together (a request counts once), c1, and never a2 while a1 runs
    assert order == ["a1", "b1", "b2", "b3", "b4", "c1"]


async def test_user_limit_on_waiting_jobs(store):
    await store.queue.enqueue([_job("x1", 7), _job("x2", 7)], 3)
    with pytest.raises(QueueFull):
        await store.queue.enqueue([_job("x3", 7), _job("x4", 7)], 3)


async def test_expired_lease_is_taken_over_then_fails_on_the_second_interruption(store):
    await store.queue.enqueue([_job("j", 1)], 10)
    first = await store.queue.claim("dead", Caps(10, 10), lease=0.01)
    assert first is not None and first.attempts == 1
    await asyncio.sleep(0.05)
    assert (await store.leases.reap("alive", 30)).requeued == 1
    second = await store.queue.claim("dead-too", Caps(10, 10), lease=0.01)
    assert second is not None and second.attempts == 2
    await asyncio.sleep(0.05)
    reaped = await store.leases.reap("alive", 30)
    assert reaped.requeued == 0 and [group for group, _ in reaped.deliveries] == ["j"]  # the reaper must tell the user
    job = await store.jobs.get_job("j")
    assert job.status == JobStatus.FAILED and job.error_kind == "interrupted"


async def test_a_claim_held_up_past_its_lease_still_gets_a_whole_lease(store, database_url, backend):
    """A lease runs from when its claim takes effect: a claim held up longer than the lease (the queue locked by
    another process's transaction, as when that process is cut off mid-write) is not taken back the moment it
    arrives, while its worker starts the job (the fault test's flake: the image made twice)."""
    import sqlite3

    import asyncpg

    await store.queue.enqueue([_job("held up", 1)], 10)
    lease = 2.0
    if backend == "sqlite":
        other = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
    else:
        locker = await asyncpg.connect(database_url, timeout=10)
        held = locker.transaction()
        await held.start()
        await locker.execute("SELECT pg_advisory_xact_lock(7242001)")  # bot.store.postgres.QUEUE_LOCK
    claim = asyncio.create_task(store.queue.claim("held-up", Caps(10, 10), lease))
    await asyncio.sleep(lease + 0.5)
    assert not claim.done()
    if backend == "sqlite":
        other.execute("COMMIT")
        other.close()
    else:
        await held.commit()
        await locker.close()
    job = await asyncio.wait_for(claim, 10)
    assert job is not None
    assert (await store.leases.reap("another", 30)).requeued == 0
    assert (await store.leases.renew("held-up", lease)) == {"held up": job.epoch}


async def test_cancel_flags_a_running_job_and_ends_a_waiting_one(store):
    await store.queue.enqueue(
        [_job("r", 1, group_id="g", variant=1, variants=2), _job("w", 1, group_id="g", variant=2, variants=2)], 10
    )
    await store.queue.claim("w1", Caps(1, 1), 30)
    cancelled, flagged = await store.queue.cancel("g")
    assert [j.id for j in cancelled] == ["w"] and flagged == ["r"]
    assert await store.queue.cancel_requested("w1") == ["r"]


async def test_exactly_one_process_settles_a_request(store):
    jobs = [_job(f"v{n}", 1, group_id="g", variant=n, variants=2) for n in (1, 2)]
    await store.queue.enqueue(jobs, 10)
    a = await store.queue.claim("wa", Caps(10, 10), 30)
    b = await store.queue.claim("wb", Caps(10, 10), 30)
    a.status = b.status = JobStatus.MADE
    won = await asyncio.gather(store.leases.finish_job(a, "wa", 30), store.leases.finish_job(b, "wb", 30))
    assert won.count(None) == 1
    (epoch,) = [e for e in won if e is not None]
    assert await store.leases.claim_delivery("g", "wc", 30) is None
    a.status, a.result_message_id, b.status = JobStatus.DONE, 7, JobStatus.DONE
    await store.leases.conclude("g", [a, b], epoch)  # a request's end: every job's outcome at once
    assert [(j.status, j.result_message_id) for j in await store.jobs.group_jobs("g")] == [
        (JobStatus.DONE, 7),
        (JobStatus.DONE, None),
    ]
    assert {(j.id, j.status) for j in await store.history.jobs_since(0)} == {
        ("v1", JobStatus.DONE),
        ("v2", JobStatus.DONE),
    }


async def test_an_update_is_recorded_once_and_a_chat_is_handled_in_order(store):
    assert await store.updates.record_update(1, 10, {"update_id": 1})
    assert await store.updates.record_update(2, 10, {"update_id": 2})
    assert await store.updates.record_update(3, 20, {"update_id": 3})
    assert not await store.updates.record_update(1, 10, {"update_id": 1})
    first = await store.updates.claim_update("a", 30, 10)
    assert [u for u, _ in first] == [1, 3]  # update 2 waits for update 1 of the same chat
    assert await store.updates.claim_update("b", 30, 10) == []
    await store.updates.update_done(1)
    assert [u for u, _ in await store.updates.claim_update("b", 30, 10)] == [2]


async def test_credits_are_reserved_once_under_a_race(store):
    day = "2026-12-01"
    results = await asyncio.gather(
        *(store.credits.reserve_credits(Reservation(f"q{n}", 5, 5, day, 1, 3, None)) for n in range(8))
    )
    assert sum(results) == 3 and await store.credits.credits_used(day=day, user_id=5) == 3
    winner = f"q{results.index(True)}"  # which three win the race is up to the database
    assert await store.credits.refund_credits(winner) and not await store.credits.refund_credits(winner)


async def test_originals_are_shared_through_the_database(store):
    await store.queue.enqueue([_job("j1", 1)], 10)
    job = await store.queue.claim("w", Caps(10, 10), 30)
    await store.originals.save_original("j1", job.epoch, "png", b"\x89PNG data")
    assert await store.originals.load_original("j1") == ("png", b"\x89PNG data")
    assert await store.originals.prune_originals(max_age=3600, max_total=1) == 1


async def test_a_late_writer_is_fenced_off_from_everything_about_the_job(store):
    """A worker whose lease expired (cut off, paused) comes back after another took the job over: its outcome,
    original, refund, delivery marks and lease are refused, and the row stays the new holder's."""
    await store.queue.enqueue([_job("f", 1)], 10)
    await store.credits.reserve_credits(Reservation("f", 1, 1, "2026-12-01", 1, None, None))
    late = await store.queue.claim("cut-off", Caps(10, 10), lease=0.01)
    await asyncio.sleep(0.05)
    assert (await store.leases.reap("reaper", 30)).requeued == 1
    assert await store.leases.renew("cut-off", 30) == {}  # what it still holds: nothing
    current = await store.queue.claim("taker", Caps(10, 10), 30)
    assert current.epoch == late.epoch + 2  # requeued, then claimed: a new epoch each time
    with pytest.raises(LeaseLost):
        await store.originals.save_original("f", late.epoch, "png", b"late")
    late.status, late.error_kind = JobStatus.FAILED, "internal"
    with pytest.raises(LeaseLost):
        await store.leases.finish_job(late, "cut-off", 30)
    with pytest.raises(LeaseLost):
        await store.leases.hold("f", late.epoch, 1e12)
    assert await store.credits.credits_used(day="2026-12-01", user_id=1) == 1  # its refund went with its outcome
    current.status = JobStatus.MADE
    delivery = await store.leases.finish_job(current, "taker", 30)
    assert delivery is not None and delivery > current.epoch
    with pytest.raises(LeaseLost):
        await store.leases.record_sent(current, current.epoch, 30)  # the delivery is a claim of its own
    await store.leases.hold("f", delivery, 1e12)
    # the delivery's lease is held far ahead for a send: a sweep does not take it, a renewal does not shorten it
    assert (await store.leases.reap("reaper", 30)).deliveries == []
    assert await store.leases.renew("taker", 30) == {"f": delivery}
    assert (await store.backend.all(sa.text("SELECT lease_until FROM jobs WHERE id = 'f'")))[0][0] == 1e12
    current.status, current.sent = JobStatus.DONE, {"result": 5}
    with pytest.raises(LeaseLost):
        await store.leases.conclude("f", [late], late.epoch)
    await store.leases.conclude("f", [current], delivery)
    job = await store.jobs.get_job("f")
    assert (job.status, job.sent, job.error_kind) == (JobStatus.DONE, {"result": 5}, None)
    assert await store.jobs.user_unfinished(1) == []  # no place held in the user's caps


async def test_a_postgresql_that_is_down_is_one_clear_line(pg_cluster):
    s = make_store("postgresql://postgres@127.0.0.1:1/none")
    with pytest.raises(StoreError) as exc:
        await s.open()
    assert "cannot use the PostgreSQL database 127.0.0.1:1/none" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_the_migrations_build_exactly_the_schema_the_queries_use(tmp_path):
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from bot.store import SqliteBackend
    from bot.store.schema import metadata

    backend = SqliteBackend(f"sqlite:///{tmp_path / 'schema.sqlite3'}")
    backend._migrate()  # Alembic from empty to head, as at a first start
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'schema.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    finally:
        engine.dispose()


async def test_a_sqlite_write_lock_held_by_another_process_is_waited_for_without_blocking_the_loop(tmp_path):
    """SQLite runs on the loop's thread: a lock another process holds is retried asynchronously, not slept on."""
    import sqlite3
    import time

    path = tmp_path / "shared.sqlite3"
    store = make_store(f"sqlite:///{path}")
    await store.open()
    try:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        ticks: list[float] = []

        async def tick() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        write = asyncio.create_task(store.queue.enqueue([_job("waited", 1)], 10))
        await asyncio.sleep(0.6)
        assert not write.done()
        other.execute("COMMIT")
        await asyncio.wait_for(write, 5)
        ticker.cancel()
        assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.2  # the loop kept running while it waited
        assert (await store.jobs.get_job("waited")).status == JobStatus.QUEUED
        other.close()
    finally:
        await store.close()


async def test_history_pages_keep_what_was_made_apart_from_what_was_not(store):
    now = time.time()

    def job(job_id: str, status: JobStatus, at: float, chat: int = 5, **kwargs: object) -> Job:
        return Job(
            job_id,
            Origin(chat, 9),
            REQUEST,
            status=status,
            created_at=at,
            finished_at=at,  # type: ignore[arg-type]
            **kwargs,
        )

    for n in range(7):
        await insert_job(store, job(f"ok{n}", JobStatus.DONE, now - 100 + n))
    for n in range(20):  # newer than every success: they must not push one out
        await insert_job(store, job(f"bad{n}", JobStatus.FAILED, now - 50 + n, error_kind="timeout"))
    await insert_job(store, job("v1", JobStatus.DONE, now - 10, group_id="gv", variant=1, variants=2))
    await insert_job(store, job("v2", JobStatus.FAILED, now - 10, group_id="gv", variant=2, variants=2))
    await insert_job(store, job("old", JobStatus.DONE, now - 10_000))  # its original is no longer kept
    await insert_job(store, job("elsewhere", JobStatus.DONE, now, chat=6))
    await insert_job(store, job("waiting", JobStatus.QUEUED, now))
    total, page = await store.history.history(9, 5, now - 1000, made=True, offset=0, limit=5)
    assert total == 8
    assert [[j.id for j in r] for r in page] == [["v1", "v2"], ["ok6"], ["ok5"], ["ok4"], ["ok3"]]
    total, page = await store.history.history(9, 5, now - 1000, made=True, offset=5, limit=5)
    assert [r[0].id for r in page] == ["ok2", "ok1", "ok0"]
    total, page = await store.history.history(9, 5, now - 1000, made=False, offset=0, limit=5)
    assert total == 20 and [r[0].id for r in page] == ["bad19", "bad18", "bad17", "bad16", "bad15"]
