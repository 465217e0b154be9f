"""Exactly once across repeats, crashes and a full disk: one job per update, nothing fetched is lost, a made
image is never made again, and a first-release database keeps everything."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from bot.models import JobStatus
from bot.store import make_store
from tests.test_persistence import _spawn_bot

FIXTURE = Path(__file__).with_name("fixtures") / "first-release.sqlite3"


async def test_the_same_update_twice_makes_one_job(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine one fox only --ar 1:1 --1k")
    tg.repeat_last_update()  # the same update_id, in the same getUpdates answer
    await harness.result(chat["id"])
    harness.send(chat, user, "/cancel")  # handled after both copies of the first
    await harness.reply_text(chat["id"], "nothing running")
    assert len(img.requests) == 1 and len(harness.results(chat["id"])) == 1


async def test_an_update_being_handled_when_the_bot_is_killed_is_handled_after_the_restart(
    make_settings, start_bot, harness, tg, tmp_path
):
    settings = make_settings()
    user, chat = harness.person()
    proc = await _spawn_bot(settings, tg, tmp_path)
    try:
        tg.flood(30, method="sendMessage", chat_id=chat["id"])  # its answer waits out a flood wait…
        harness.send(chat, user, "/imagine a keyboard that survives")
        await tg.wait_for(lambda: tg.refused("sendMessage"), 15, "the flood wait")
    finally:
        proc.send_signal(signal.SIGKILL)  # …and the process dies meanwhile: the update was confirmed
        await proc.wait()
    await start_bot()
    keyboard = await harness.keyboard(chat["id"], timeout=15)
    assert "a keyboard that survives" in keyboard["text"]


async def test_a_full_disk_fails_the_job_in_one_sentence_and_refunds_it(
    start_bot, harness, tg, img, make_settings, caplog
):
    settings = make_settings()
    await start_bot(user_daily_quota=5)
    originals = settings.data_dir / "originals"
    shutil.rmtree(originals)
    originals.write_text("not a folder")  # every write into it fails, as on a full disk
    user, chat = harness.person()
    for n in (1, 2):
        harness.send(chat, user, f"/imagine lost {n} --ar 1:1 --1k")
        await tg.wait_for(
            lambda n=n: sum("disk is full" in t for t in harness.texts(chat["id"])) == n, 15, f"failure sentence {n}"
        )
    harness.send(chat, user, "/usage")
    usage = await harness.reply_text(chat["id"], "Today you used")
    assert "used 0 of 5" in usage["text"]
    assert harness.results(chat["id"]) == []
    assert not list(settings.data_dir.rglob("*.part"))
    assert sum("cannot store images" in r.getMessage() for r in caplog.records) == 1  # once, with the folder
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("bot."))


async def test_a_first_release_database_is_migrated_in_place_with_nothing_lost(tmp_path, start_bot, harness, tg):
    path = tmp_path / "data" / "imagine-bot.sqlite3"
    path.parent.mkdir()
    shutil.copy(FIXTURE, path)
    store = make_store(f"sqlite:///{path}")
    await store.open()
    try:
        done = await store.jobs.get_job("oldjobdone1")
        assert done.status == JobStatus.DONE and done.photo_file_id == "PHOTO_FILE_ID" and done.width == 2752
        assert (await store.pending.get_pending("oldpending1")).prompt == "a waiting keyboard"
        prefs = await store.prefs.get_prefs("user", 4242)
        assert (prefs.aspect_ratio, prefs.size, prefs.always_original, prefs.variants) == ("4:3", "4K", True, 2)
        assert await store.credits.credits_used(day="2026-11-30", user_id=4242) == 1
    finally:
        await store.close()
    # and the bot runs on it: the queued job of the first release is made and delivered
    await start_bot()
    await tg.wait_for(
        lambda: any(c.params.get("chat_id") in (4242, "4242") for c in tg.calls_of("sendPhoto")),
        20,
        "the first release's queued job to be delivered",
    )
