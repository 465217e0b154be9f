"""Concurrency, the queue, cancel and a graceful stop — through the fakes."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from bot.models import AspectRatio, ImageRequest, Job, JobStatus, Origin, Resolution
from bot.store import make_store
from bot.store.leases import Leases
from bot.store.queue import Queue
from bot.store.schema import jobs
from tests.rows import insert_job


def _data(call) -> bytes:
    ((_, data, _),) = call.files.values()
    return data


async def test_two_users_overlap_and_get_their_own_images(bot, harness, tg, img):
    img.delay = 0.6
    (alice, a_chat), (bob, b_chat) = harness.person(), harness.person()
    harness.send(a_chat, alice, "/imagine alice's cat --ar 1:1 --1k")
    harness.send(b_chat, bob, "/imagine bob's dog --ar 16:9 --1k")
    (a_upload,) = await harness.result(a_chat["id"])
    (b_upload,) = await harness.result(b_chat["id"])
    assert img.max_inflight == 2  # both upstream calls were open at the same time
    by_prompt = {r.body["prompt"]: img.image_for(r) for r in img.requests}
    assert _data(a_upload) == by_prompt["alice's cat"] and "alice's cat" in a_upload.params["caption"]
    assert _data(b_upload) == by_prompt["bob's dog"] and "bob's dog" in b_upload.params["caption"]


async def test_bot_answers_while_a_generation_runs(bot, harness, tg, img):
    img.delay = 20  # far longer than the answer may take on a loaded machine: the check below tells them apart
    user, chat = harness.person()
    harness.send(chat, user, "/imagine slow one --ar 1:1 --1k")
    await img.wait_for(lambda: img.inflight == 1)
    other, other_chat = harness.person()
    harness.send(other_chat, other, "/help")
    await harness.reply_text(other_chat["id"], "How to use me", timeout=15)
    assert img.inflight == 1 and not harness.results(chat["id"])  # answered while the image is still being made


async def test_global_cap_queues_the_rest(start_bot, harness, tg, img):
    await start_bot(max_concurrent_generations=2)
    img.delay = 0.5
    people = [harness.person() for _ in range(5)]
    for user, chat in people[:4]:
        harness.send(chat, user, f"/imagine job of {user['id']} --ar 1:1 --1k")
    await tg.wait_for(lambda: len(tg.calls_of("sendMessage")) >= 4)
    (last, last_chat) = people[-1]
    harness.send(last_chat, last, f"/imagine job of {last['id']} --ar 1:1 --1k")
    await tg.wait_for(
        lambda: any(
            "Queued — 2 ahead of you" in c.params.get("text", "") and int(c.params["chat_id"]) == last_chat["id"]
            for c in tg.calls
        ),
        what="the last job's queue position",
    )
    for _, chat in people:
        await harness.result(chat["id"], timeout=15)
    assert img.max_inflight == 2


async def test_a_waiting_line_is_edited_when_its_place_moves_and_pacing_allows(start_bot, harness, tg, img):
    await start_bot(max_concurrent_generations=1)
    img.delay = 4
    people = [harness.person() for _ in range(3)]
    for user, chat in people:
        harness.send(chat, user, f"/imagine place of {user['id']} --ar 1:1 --1k")
        await asyncio.sleep(0.2)
    last_chat = people[-1][1]["id"]

    def texts() -> list[str]:
        return [
            c.params.get("text", "")
            for c in tg.calls
            if c.method in ("sendMessage", "editMessageText") and int(c.params.get("chat_id", 0)) == last_chat
        ]

    def moved_up() -> bool:
        seen = texts()
        ahead = next((i for i, x in enumerate(seen) if "1 ahead of you" in x), None)
        return ahead is not None and any(x.startswith("⏳ Queued — you are next ·") for x in seen[ahead + 1 :])

    # The first job ends at 4 s; pacing lets the line change 5 s after its first text, while it still waits (8 s).
    await tg.wait_for(moved_up, 8, "its place in line moving up")


async def test_cancel_waiting_and_running_jobs(start_bot, harness, tg, img):
    await start_bot(max_concurrent_generations=1)
    img.delay = 10
    user, chat = harness.person()
    harness.send(chat, user, "/imagine first --ar 1:1 --1k")
    await img.wait_for(lambda: img.inflight == 1)
    await harness.reply_text(chat["id"], "Generating")
    harness.send(chat, user, "/imagine second --ar 1:1 --1k")
    waiting = await harness.reply_text(chat["id"], "Queued")
    assert "second" in waiting["text"]
    answer = await harness.press(waiting, "Cancel", user)
    assert answer["text"] == "Cancelled."
    await tg.wait_for(lambda: "Cancelled" in tg.message(chat["id"], waiting["message_id"])["text"])

    running = await harness.reply_text(chat["id"], "Generating")
    await harness.press(running, "Cancel", user)
    await img.wait_for(lambda: img.requests[0].aborted, what="the upstream request to be aborted")
    msg = await tg.wait_for(
        lambda: (m := tg.message(chat["id"], running["message_id"])) and "Cancelled" in m["text"] and m
    )
    assert "Again" in str(msg["reply_markup"])
    assert len(img.requests) == 1  # the waiting one never reached the API
    assert harness.results(chat["id"]) == []


async def test_cancel_command(bot, harness, tg, img):
    img.delay = 10
    user, chat = harness.person()
    harness.send(chat, user, "/imagine patience --ar 1:1 --1k")
    await img.wait_for(lambda: img.inflight == 1)
    harness.send(chat, user, "/cancel")
    await img.wait_for(lambda: img.requests[0].aborted)
    await harness.status_says(chat["id"], "Cancelled")
    harness.send(chat, user, "/cancel")
    await harness.reply_text(chat["id"], "nothing running")


async def test_status_line_shows_elapsed_time(start_bot, harness, tg, img):
    await start_bot()
    img.delay = 6.5
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a slow sunrise --ar 21:9 --4k")
    msg = await harness.status_says(chat["id"], "Generating 21:9 · 4K… 5 s", timeout=10)
    assert "a slow sunrise" in msg["text"]
    await harness.result(chat["id"])


async def test_stop_finishes_quick_jobs_and_pauses_slow_ones(start_bot, harness, tg, img):
    running_bot = await start_bot(shutdown_grace_seconds=5)  # room for the quick one on a loaded machine
    user, chat = harness.person()
    img.delay_next(0.3)
    img.delay_next(30)
    harness.send(chat, user, "/imagine quick --ar 1:1 --1k")
    harness.send(chat, user, "/imagine very slow --ar 1:1 --1k")
    await img.wait_for(lambda: img.inflight == 2)
    await running_bot.stop()
    assert len(harness.results(chat["id"])) == 1  # the quick one finished within the grace period
    await harness.status_says(chat["id"], "restarting; your image continues", timeout=1)
    await img.wait_for(lambda: img.requests[1].aborted)
    # the next start picks the paused job up again and delivers it
    await start_bot()
    await harness.result(chat["id"], count=2)
    assert [r.body["prompt"] for r in img.requests] == ["quick", "very slow", "very slow"]


async def test_after_a_renewal_held_up_past_the_lease_a_live_process_keeps_its_job(
    start_bot, harness, tg, img, database_url, monkeypatch
):
    """The database stalls for longer than a lease: every process's renewal waits, and every lease looks run out
    when it answers. The process whose renewal comes back first gives the others a lease to renew before it takes
    anything over, as after an outage, so a live process's job is not made a second time."""
    lease = 2.0
    other = make_store(database_url)
    await other.open()
    real = Leases.renew
    stall = asyncio.Event()
    stalled: list[float] = []

    async def renew(self, worker, lease_seconds):
        if worker != "another-process" and stall.is_set() and not stalled:
            stalled.append(lease_seconds)
            await asyncio.sleep(1.5 * lease_seconds)  # the stall; the other process's leases run out meanwhile
        return await real(self, worker, lease_seconds)

    monkeypatch.setattr(Leases, "renew", renew)
    try:
        user, chat = harness.person()
        theirs = Job(
            "theirs01",
            Origin(chat["id"], user["id"]),
            ImageRequest("made by a live process", AspectRatio("1:1"), Resolution("1K")),
            status=JobStatus.RUNNING,
        )
        await insert_job(other, theirs)
        await other.backend.run(sa.update(jobs).where(jobs.c.id == theirs.id).values(worker="another-process"))
        await other.leases.renew("another-process", lease)  # its lease, as a live process holds it
        await start_bot(job_lease_seconds=lease)
        stall.set()
        await tg.wait_for(lambda: stalled, 10, "the stalled renewal")
        await asyncio.sleep(1.5 * lease + lease / 3)  # the stall is over; the other process renews in its turn
        await other.leases.renew("another-process", lease)
        for _ in range(4):  # a whole lease more of its renewals
            await asyncio.sleep(lease / 3)
            await other.leases.renew("another-process", lease)
        rows = await other.backend.all(sa.select(jobs.c.worker, jobs.c.status).where(jobs.c.id == theirs.id))
        assert [tuple(r) for r in rows] == [("another-process", "running")]
        assert img.requests == []
    finally:
        await other.close()


async def test_a_claim_answered_after_its_lease_ran_out_makes_its_image_once(
    start_bot, harness, tg, img, database_url, monkeypatch
):
    """A claim whose answer comes back a lease late (a partition, a stall: the fault test's flake) may have been
    taken over meanwhile: the worker finds that out before it pays for the image, so the image is made once."""
    lease = 2.0
    other = make_store(database_url)  # another process, which takes the job over while the answer is on its way
    real = Queue.claim_many
    late: list = []

    async def claim_many(self, worker, caps, lease_seconds, limit):
        jobs = await real(self, worker, caps, lease_seconds, limit)
        if jobs and not late:
            late.extend(jobs)
            await other.leases.expire([worker])
            assert (await other.leases.reap("another-process", lease_seconds)).requeued == len(jobs)
            await asyncio.sleep(lease_seconds + 0.2)
        return jobs

    monkeypatch.setattr(Queue, "claim_many", claim_many)
    await start_bot(job_lease_seconds=lease)
    await other.open()
    try:
        img.delay = 2.0  # the first attempt would still be making its image when the job is claimed again
        user, chat = harness.person()
        harness.send(chat, user, "/imagine a fox claimed late --ar 1:1 --1k")
        await harness.result(chat["id"], timeout=20)
        await asyncio.sleep(lease)  # a second image would be asked for by now
        assert late and len(harness.results(chat["id"])) == 1
        assert [r.body["prompt"] for r in img.requests] == ["a fox claimed late"]
    finally:
        await other.close()
