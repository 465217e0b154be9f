"""Fair queue, limits, restart recovery (even after SIGKILL), remembered defaults, history, database errors."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time

import pytest

from bot.app import run_bot
from bot.models import Job, JobStatus, Origin
from bot.options import AspectRatio, ImageRequest, Resolution
from bot.store import StoreError, make_store
from tests.processes import settings_env, spawn, spawn_polling
from tests.rows import insert_job


def _env(settings) -> dict[str, str]:
    return settings_env(settings, SHUTDOWN_GRACE_SECONDS="0.5")


async def _spawn_bot(settings, tg, cwd, **extra_env: str):
    return await spawn_polling({**_env(settings), **extra_env}, tg, cwd)


def _prompts(img) -> list[str]:
    return [r.body.get("prompt", "") for r in img.requests]


def _statuses(settings) -> list[str]:
    with sqlite3.connect(settings.data_dir / "imagine-bot.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT status FROM jobs ORDER BY created_at")]


async def test_round_robin_across_users(start_bot, harness, img):
    await start_bot(max_concurrent_generations=1, user_max_waiting=5)
    img.delay = 0.3
    (a, a_chat), (b, b_chat), (c, c_chat) = harness.person(), harness.person(), harness.person()
    harness.send(a_chat, a, "/imagine a1 --ar 1:1 --1k")
    await img.wait_for(lambda: img.inflight == 1)
    for n in (2, 3, 4):
        harness.send(a_chat, a, f"/imagine a{n} --ar 1:1 --1k")
    await harness.tg.wait_for(lambda: len(harness.tg.calls_of("sendMessage")) >= 4)
    harness.send(b_chat, b, "/imagine b1 --ar 1:1 --1k")
    await harness.reply_text(b_chat["id"], "Queued")  # b's request is in line before c's
    harness.send(c_chat, c, "/imagine c1 --ar 1:1 --1k")
    await harness.result(a_chat["id"], count=4, timeout=20)
    await harness.result(c_chat["id"])
    assert [r.body["prompt"] for r in img.requests] == ["a1", "b1", "c1", "a2", "a3", "a4"]


async def test_user_over_the_limit_is_told_at_once(start_bot, harness, img):
    await start_bot(user_max_running=1, user_max_waiting=1)
    img.delay = 5
    user, chat = harness.person()
    harness.send(chat, user, "/imagine one --ar 1:1 --1k")
    harness.send(chat, user, "/imagine two --ar 1:1 --1k")
    await harness.tg.wait_for(lambda: img.inflight == 1 and len(harness.tg.calls_of("sendMessage")) >= 2)
    harness.send(chat, user, "/imagine three --ar 1:1 --1k")
    await harness.reply_text(chat["id"], "You already have 2 images in progress")
    assert [r.body["prompt"] for r in img.requests] == ["one"]
    assert not any("three" in (m.get("text") or "") for m in harness.tg.bot_messages(chat["id"]))


async def test_sigkill_mid_job_resumes_exactly_once_and_old_buttons_work(
    make_settings, start_bot, harness, tg, img, tmp_path
):
    settings = make_settings()
    user, chat = harness.person()
    proc = await _spawn_bot(settings, tg, tmp_path)
    try:
        harness.send(chat, user, "/imagine finished before --ar 4:3 --1k")
        await harness.result(chat["id"])
        # recorded as delivered just after the photo went: killed before that, it would be delivered once more
        await tg.wait_for(lambda: _statuses(settings) == ["done"], 15, "the first job recorded as delivered")
        harness.send(chat, user, "/imagine keyboard before")
        kb = await harness.keyboard(chat["id"])
        img.delay_next(30)
        harness.send(chat, user, "/imagine killed mid-job --ar 16:9 --2k")
        # the whole request read (a request counts as in flight from its headers on, before its body)
        await img.wait_for(lambda: _prompts(img) == ["finished before", "killed mid-job"] and img.inflight == 1, 15)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert "running" in _statuses(settings)

    await start_bot()
    await harness.result(chat["id"], count=2, timeout=20)
    killed = [r for r in img.requests if r.body.get("prompt") == "killed mid-job"]
    assert len(killed) == 2 and not killed[1].aborted
    await img.wait_for(lambda: killed[0].aborted, 10, "the killed process's request seen cut off")
    assert sum("killed mid-job" in c.params.get("caption", "") for c in harness.results(chat["id"])) == 1

    # a result button and a keyboard from the killed process still work
    photo = next(m for m in tg.bot_messages(chat["id"]) if "finished before" in (m.get("caption") or ""))
    await harness.press(photo, "Again", user)
    await harness.result(chat["id"], count=3)
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"], count=4)
    await tg.wait_for(lambda: all(s == "done" for s in _statuses(settings)), what="every job done")


async def test_job_interrupted_twice_is_told_once(make_settings, start_bot, harness, tg):
    settings = make_settings()
    user, chat = harness.person()
    store = make_store(settings.database)
    await store.open()
    job = Job(
        "stuckjob1",
        Origin(chat["id"], user["id"]),
        ImageRequest("stuck", AspectRatio("1:1"), Resolution("1K")),
        status=JobStatus.RUNNING,
        attempts=2,
    )
    await insert_job(store, job)
    await store.close()
    await start_bot()
    msg = await harness.reply_text(
        chat["id"], "interrupted by a restart", timeout=8
    )  # at start, not a lease-third (10 s) later
    assert "Again" in str(msg["reply_markup"])
    assert _statuses(settings) == ["failed"]


async def test_retry_after_is_waited_out(bot, harness, tg):
    tg.fail_next("sendMessage", retry_after=1)
    user, chat = harness.person()
    started = time.monotonic()
    harness.send(chat, user, "/imagine patience")
    await harness.keyboard(chat["id"])
    assert time.monotonic() - started >= 1.0
    assert not any("wrong" in t.lower() for t in harness.texts(chat["id"]))


async def test_settings_persist_across_restarts(start_bot, harness, tg, img):
    first = await start_bot()
    user, chat = harness.person()
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    await harness.press(panel, "16:9", user)
    await harness.press(panel, "4K", user)
    await harness.press(panel, "Always original", user)
    current = await tg.wait_for(
        lambda: (m := tg.message(chat["id"], panel["message_id"])) and ": on" in str(m["reply_markup"]) and m
    )
    assert "✓ 16:9" in str(current["reply_markup"]) and "✓ 4K" in str(current["reply_markup"])
    assert "Shape: 16:9\nResolution: 4K\nHow many: ×1\n📄 Original file with every image: on" in current["text"]
    await first.stop()

    await start_bot()
    harness.send(chat, user, "/imagine remembered")
    kb = await harness.keyboard(chat["id"])
    assert "✓ 16:9" in str(kb["reply_markup"]) and "✓ 4K" in str(kb["reply_markup"])
    await harness.press(kb, "Generate", user)
    photo, document = await harness.result(chat["id"], count=2)
    assert (photo.method, document.method) == ("sendPhoto", "sendDocument")  # always the original too
    ((_, data, _),) = document.files.values()
    assert data == img.image_for(img.requests[0])
    # a flag still wins for one request
    harness.send(chat, user, "/imagine just once --ar 1:1")
    kb = await harness.keyboard(chat["id"])
    assert "✓ 1:1" in str(kb["reply_markup"]) and "✓ 4K" in str(kb["reply_markup"])


async def test_group_settings_are_for_admins(bot, harness, tg):
    admin, member = tg.user(501, "Admin"), tg.user(502, "Member")
    group = tg.group(-100777, "Group")
    tg.set_admins(group["id"], [admin["id"]])
    harness.send(group, member, "/settings")
    await harness.reply_text(group["id"], "Only the chat's admins")
    harness.send(group, admin, "/settings")
    panel = await harness.reply_text(group["id"], "Defaults for /imagine in this chat")
    answer = await harness.press(panel, "2:3", member)
    assert "admins" in answer["text"]
    await harness.press(panel, "2:3", admin)
    await tg.wait_for(lambda: "✓ 2:3" in str(tg.message(group["id"], panel["message_id"])["reply_markup"]))


async def test_history_resends_by_file_id_and_regenerates(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine first picture --ar 1:1 --1k")
    await harness.result(chat["id"])
    img.fail_next(400)
    harness.send(chat, user, "/imagine second picture --ar 3:2 --1k")
    await harness.status_says(chat["id"], "invalid")
    harness.send(chat, user, "/history")
    listing = await harness.reply_text(chat["id"], "Your images here")
    # finished images on their pages; the failed one on a page of its own, behind a button
    assert "1. ✅ 1:1 · 1K — first picture" in listing["text"] and "second picture" not in listing["text"]
    labels = [b["text"] for b in harness.buttons(listing)]
    assert labels == ["📤 1", "🔁 1", "⚠️ Not made · 1"]
    await harness.press(listing, "📤 1", user)
    resent = await tg.wait_for(lambda: [c for c in tg.calls_of("sendPhoto") if isinstance(c.params.get("photo"), str)])
    assert not resent[0].files and "first picture" in resent[0].params["caption"]
    assert "⬆ 2K" in str(resent[0].params["reply_markup"]) and "⬆ 4K" in str(resent[0].params["reply_markup"])
    assert len(img.requests) == 2  # nothing regenerated
    await harness.press(listing, "Not made", user)
    others = await tg.wait_for(
        lambda: (m := tg.message(chat["id"], listing["message_id"])) and "Not made here" in m["text"] and m
    )
    assert "1. ⚠️ 3:2 · 1K — second picture (refused as invalid)" in others["text"]
    await harness.press(others, "🔁 1", user)
    await img.wait_for(lambda: len(img.requests) == 3)
    assert img.requests[-1].body["prompt"] == "second picture"


async def test_cancel_all(start_bot, harness, img):
    await start_bot(user_max_running=1)
    img.delay = 10
    user, chat = harness.person()
    for n in range(3):
        harness.send(chat, user, f"/imagine job {n} --ar 1:1 --1k")
    await harness.tg.wait_for(lambda: img.inflight == 1 and len(harness.tg.calls_of("sendMessage")) >= 3)
    harness.send(chat, user, "/cancel all")
    await harness.tg.wait_for(lambda: sum("✖ Cancelled ·" in t for t in harness.texts(chat["id"])) == 3)
    await harness.reply_text(chat["id"], "✖ Cancelled 3 requests.")  # said in the chat, not only far up
    await img.wait_for(lambda: img.requests[0].aborted)
    assert len(img.requests) == 1


async def test_database_folder_is_created(make_settings, tmp_path):
    settings = make_settings(database_url=f"sqlite:///{tmp_path}/new/dir/bot.sqlite3")
    store = make_store(settings.database)
    await store.open()
    await store.close()
    assert (tmp_path / "new/dir/bot.sqlite3").exists()


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        ("corrupt", "corrupt or not a SQLite file"),
        ("readonly", "read-only"),
    ],
)
async def test_unusable_database_stops_the_start_clearly(make_settings, tmp_path, prepare, message):
    path = tmp_path / "bot.sqlite3"
    if prepare == "corrupt":
        path.write_bytes(b"this is not a database, it is a text file that somebody put here" * 100)
        url = f"sqlite:///{path}"
    else:
        store = make_store(f"sqlite:///{path}")
        await store.open()
        await store.close()
        url = f"sqlite:///{path}?mode=ro"
    before = path.read_bytes()
    settings = make_settings(database_url=url)
    with pytest.raises(StoreError, match=message):
        await asyncio.wait_for(run_bot(settings, asyncio.Event(), poll_timeout=1), 10)
    if prepare == "corrupt":
        assert path.read_bytes() == before  # never overwritten


async def test_corrupt_database_exits_2_with_one_line(make_settings, tg, img, tmp_path):
    settings = make_settings()
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "imagine-bot.sqlite3").write_bytes(b"garbage" * 1000)
    proc = await spawn(env=_env(settings), cwd=tmp_path)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "corrupt" in err.decode() and "Traceback" not in err.decode()


async def test_sigterm_lets_running_jobs_finish_then_exits(make_settings, harness, tg, img, tmp_path):
    settings = make_settings()
    env_grace = 6.0  # the quick job (1 s) is made and delivered within it even on a loaded machine
    user, chat = harness.person()
    proc = await _spawn_bot(settings, tg, tmp_path, SHUTDOWN_GRACE_SECONDS=str(env_grace))
    img.delay_next(1.0)
    img.delay_next(60)
    harness.send(chat, user, "/imagine finishes in the grace period --ar 1:1 --1k")
    harness.send(chat, user, "/imagine too slow for it --ar 1:1 --1k")
    await img.wait_for(lambda: img.inflight == 2, 15)
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.wait(), env_grace + 15)
    assert proc.returncode == 0
    assert [c.params["caption"].split("\n")[0] for c in harness.results(chat["id"])] == ["finishes in the grace period"]
    await harness.status_says(chat["id"], "restarting; your image continues", timeout=1)
    assert sorted(_statuses(settings)) == ["done", "queued"]
