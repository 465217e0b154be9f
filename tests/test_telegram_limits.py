"""Telegram under load: flood waits stay with their chat, results go first, transient failures never lose an image,
replicas share the rate, and a stop is never held by a flood wait."""

from __future__ import annotations

import asyncio
import logging
import signal

import pytest

from bot.app import build_application
from tests.fakes.test_fake_telegram import png
from tests.processes import bot_env, spawn


async def test_a_flood_wait_on_one_chat_does_not_delay_another(bot, harness, tg):
    flooded_user, flooded = harness.person()
    user, chat = harness.person()
    tg.flood(30, method="sendMessage", chat_id=flooded["id"])
    harness.send(flooded, flooded_user, "/imagine a storm")
    await tg.wait_for(lambda: tg.refused("sendMessage"), 10, "the 429")
    harness.send(chat, user, "/imagine calm water")
    await harness.keyboard(chat["id"], timeout=8)  # PTB's limiter held every chat for the 30 s
    assert harness.texts(flooded["id"]) == []  # still waiting out its own flood wait


async def test_a_huge_retry_after_is_not_waited_out(bot, harness, tg, caplog):
    flooded_user, flooded = harness.person()
    user, chat = harness.person()
    tg.flood(3600, method="sendMessage", chat_id=flooded["id"])
    with caplog.at_level(logging.WARNING, logger="bot"):
        harness.send(flooded, flooded_user, "/help")
        await tg.wait_for(lambda: "TELEGRAM_MAX_RETRY_AFTER" in caplog.text, 10, "the log line")
        harness.send(flooded, flooded_user, "/help")  # the chat is still under its flood wait: not even tried
        await tg.wait_for(lambda: "under a flood wait" in caplog.text, 10, "the second log line")
    harness.send(chat, user, "/help")
    await harness.reply_text(chat["id"], "/imagine", timeout=8)
    assert len(tg.calls_of("sendMessage")) == 2  # the flooded one once, the other chat's once
    assert "Traceback" not in caplog.text


async def test_a_502_on_the_photo_is_retried_and_delivered_once(bot, harness, tg):
    user, chat = harness.person()
    tg.fail_next("sendPhoto", 502, "Bad Gateway")
    harness.send(chat, user, "/imagine a lighthouse --ar 1:1 --1k")
    await tg.wait_for(lambda: [m for m in tg.bot_messages(chat["id"]) if m.get("photo")], 15, "the photo")
    await tg.wait_for(lambda: not any("Generating" in t for t in harness.texts(chat["id"])), 10, "status gone")
    photos = [m for m in tg.bot_messages(chat["id"]) if m.get("photo")]
    assert len(photos) == 1 and len(tg.calls_of("sendPhoto")) == 2
    assert not any("refused" in t for t in harness.texts(chat["id"]))


async def test_a_connection_reset_mid_upload_is_retried(bot, harness, tg):
    user, chat = harness.person()
    tg.reset_next("sendPhoto")
    harness.send(chat, user, "/imagine a lighthouse --ar 1:1 --1k")
    await tg.wait_for(lambda: [m for m in tg.bot_messages(chat["id"]) if m.get("photo")], 15, "the photo")
    await asyncio.sleep(0.3)  # nothing else may follow
    assert len([m for m in tg.bot_messages(chat["id"]) if m.get("photo")]) == 1
    assert not any("refused" in t for t in harness.texts(chat["id"]))


async def test_a_final_status_is_retried_through_a_bot_api_outage(bot, harness, tg, img):
    user, chat = harness.person()
    img.fail_next(400)
    tg.fail_next("editMessageText", 502, "Bad Gateway", times=3)
    tg.fail_next("sendMessage", 503, "Service Unavailable", times=2)
    harness.send(chat, user, "/imagine a lighthouse --ar 1:1 --1k")
    msg = await harness.status_says(chat["id"], "invalid", timeout=20)  # not left at "Generating…"
    assert msg["text"].startswith("⚠️")
    assert len(tg.bot_messages(chat["id"])) == 1  # one status line, retried, never sent twice


async def test_a_refusal_ends_the_delivery_without_retries(bot, harness, tg):
    user, chat = harness.person()
    tg.fail_next("sendPhoto", 403, "Forbidden: bot was blocked by the user")
    tg.fail_next("sendDocument", 403, "Forbidden: bot was blocked by the user")
    harness.send(chat, user, "/imagine a lighthouse --ar 1:1 --1k")
    await harness.status_says(chat["id"], "Telegram refused")
    assert len(tg.calls_of("sendPhoto")) == 1


async def test_progress_edits_are_coalesced_and_never_go_before_a_result(tg, make_settings):
    app = build_application(make_settings(telegram_max_messages_per_second=2))
    async with app:
        status = await app.bot.send_message(42, "Queued — 5 ahead")  # the overall budget: 2 → 1
        progress = [
            app.bot.edit_message_text(
                f"Queued — {n} ahead", chat_id=42, message_id=status.message_id, rate_limit_args={"progress": True}
            )
            for n in (4, 3, 2, 1)
        ]
        tasks = [asyncio.create_task(p) for p in progress]
        await asyncio.sleep(0)  # the edits are waiting, each newer one in place of the older
        photo = asyncio.create_task(app.bot.send_photo(43, photo=png()))
        action = asyncio.create_task(app.bot.send_chat_action(42, "upload_photo"))
        results = await asyncio.wait_for(asyncio.gather(*tasks, photo, action), 10)
    assert results[:3] == [True, True, True] and results[-1] is True  # dropped ones answer like Telegram
    edits = tg.calls_of("editMessageText")
    assert [c.params["text"] for c in edits] == ["Queued — 1 ahead"]  # only the newest text is sent
    assert tg.calls_of("sendPhoto")[0].at < edits[0].at  # the result went first
    assert tg.calls_of("sendChatAction") == []  # skipped under pressure


async def test_a_final_edit_is_not_overwritten_by_an_older_progress_edit(tg, make_settings):
    app = build_application(make_settings(telegram_max_messages_per_second=2))
    async with app:
        status = await app.bot.send_message(42, "Generating… 1 s")
        stale = asyncio.create_task(
            app.bot.edit_message_text(
                "Generating… 2 s", chat_id=42, message_id=status.message_id, rate_limit_args={"progress": True}
            )
        )
        await asyncio.sleep(0)
        await asyncio.wait_for(app.bot.edit_message_text("Done", chat_id=42, message_id=status.message_id), 10)
        assert await asyncio.wait_for(stale, 10) is True
    assert tg.message(42, status.message_id)["text"] == "Done"
    assert [c.params["text"] for c in tg.calls_of("editMessageText")] == ["Done"]


async def test_replicas_share_the_overall_rate(tg, make_settings):
    """4 a second split over 2 processes: this one sends 2 a second (burst 2). Over 3 s at most 2×3+2 calls."""
    app = build_application(make_settings(telegram_max_messages_per_second=4, telegram_rate_share=2))
    async with app:
        sends = [asyncio.create_task(app.bot.send_message(100 + i, "hello")) for i in range(14)]
        try:
            await tg.wait_for(
                lambda: (c := tg.calls_of("sendMessage")) and c[-1].at - c[0].at >= 3.0, 15, "3 s of sending"
            )
        finally:
            for task in sends:
                task.cancel()
            await asyncio.gather(*sends, return_exceptions=True)
    calls = tg.calls_of("sendMessage")
    in_window = [c for c in calls if c.at - calls[0].at < 3.0]
    assert len(in_window) <= 2 * 3 + 2


async def test_replicas_share_the_group_rate(tg, make_settings):
    """20 a minute per group over 2 processes: this one sends a burst of 10, then one every 6 s."""
    app = build_application(make_settings(telegram_rate_share=2))
    async with app:
        sends = [asyncio.create_task(app.bot.send_message(-100123, f"hello {i}")) for i in range(12)]
        try:
            await tg.wait_for(lambda: len(tg.calls_of("sendMessage")) >= 10, 10, "the burst")
            await asyncio.sleep(1.0)  # the 11th may go only 6 s after the burst
        finally:
            for task in sends:
                task.cancel()
            await asyncio.gather(*sends, return_exceptions=True)
    assert len(tg.calls_of("sendMessage")) == 10


async def test_a_flooding_user_is_not_flooded_back_and_others_are_answered(start_bot, harness, tg, img):
    tg.limit_chats(per_second=1, burst=3)
    img.delay = 5
    await start_bot(user_max_running=1, user_max_waiting=1)
    flooder, flooded = harness.person()
    user, chat = harness.person()
    for n in range(10):
        harness.send(flooded, flooder, f"/imagine spam {n} --ar 1:1 --1k")
    await harness.reply_text(flooded["id"], "images in progress", timeout=10)
    harness.send(chat, user, "/help")
    await harness.reply_text(chat["id"], "/imagine", timeout=10)

    def refusals() -> list[str]:
        return [t for t in harness.texts(flooded["id"]) if "images in progress" in t]

    await tg.wait_for(lambda: len(refusals()) >= 2, 10, "the second refusal")
    await asyncio.sleep(1.5)  # the other refusals would have been sent by now
    assert len(refusals()) == 2  # eight "no"s: two messages, then one per 5 s
    assert len(tg.refused()) <= 1  # the bot paced that chat itself instead of running into Telegram's limit


async def test_sigterm_stops_in_time_under_a_pending_flood_wait(tmp_path, tg, img):
    """A 55 s flood wait (under the 60 s bound, so waited for in line) must not hold a stop."""
    env = bot_env(tg, img, DATA_DIR=str(tmp_path / "data"), SHUTDOWN_GRACE_SECONDS="1")
    proc = await spawn(env=env, cwd=tmp_path)
    try:
        await tg.wait_for(lambda: tg.calls_of("getUpdates") or proc.returncode is not None, 30, "the bot to poll")
        user = tg.user(4242, "Flooded")
        tg.flood(55, method="sendMessage", chat_id=user["id"])
        tg.send_text(tg.private_chat(user), user, "/help")
        await tg.wait_for(lambda: tg.refused("sendMessage"), 15, "the 429")
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 1 + 3 + 10)  # grace + slack + start-up noise
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()


@pytest.mark.parametrize("share", [0, 101])
def test_rate_share_bounds(make_settings, share):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        make_settings(telegram_rate_share=share)


async def test_a_413_is_final_at_once_and_no_delivery_waits_behind_it(bot, harness, tg, img):
    """A Bot API whose limit is below TELEGRAM_MAX_UPLOAD_MB answers 413 (nginx's HTML page): not retried for two
    minutes while other results wait, but final at once; the preview is there and the user is told why the file
    is not."""
    tg.upload_max_bytes = 5 * 1024 * 1024  # the bot believes in 50 MB
    img.noise = True  # a 2K noise PNG: ~12 MB, so a preview and the original as a file
    user, chat = harness.person()
    other_user, other = harness.person()
    harness.send(chat, user, "/imagine static --ar 16:9 --2k")
    await tg.wait_for(lambda: tg.refused("sendDocument"), 20, "the 413")
    harness.send(other, other_user, "/imagine static too --ar 16:9 --2k")
    await harness.reply_text(chat["id"], "larger than Telegram lets a bot send", timeout=10)
    await tg.wait_for(lambda: len(tg.refused("sendDocument")) == 2, 20, "the other's 413")
    assert [c.error for c in tg.calls_of("sendDocument")] == [413, 413]  # each tried once
    assert len([m for m in tg.bot_messages(chat["id"]) if m.get("photo")]) == 1  # the preview stays


async def test_a_tap_is_redrawn_ahead_of_a_crowds_status_lines(start_bot, harness, tg, img):
    """Under a tiny overall budget (2 messages a second) a crowd's new status lines wait their turn; the keyboard a
    person just tapped is redrawn (and the tap answered) before them, in the order the fake Bot API received."""
    img.delay = 30  # the crowd's jobs stay queued or running: no results, only their status lines
    await start_bot(telegram_max_messages_per_second=2)
    tapper, chat = harness.person()
    harness.send(chat, tapper, "/imagine a fox")
    keyboard = await harness.keyboard(chat["id"])
    crowd = [harness.person() for _ in range(10)]
    for n, (user, their_chat) in enumerate(crowd):
        harness.send(their_chat, user, f"/imagine crowd {n} --ar 1:1 --1k")
    crowd_chats = {their_chat["id"] for _, their_chat in crowd}

    def lines_sent() -> list:
        return [c for c in tg.calls_of("sendMessage") if int(c.params["chat_id"]) in crowd_chats]

    await tg.wait_for(lambda: len(lines_sent()) >= 2, 10, "the crowd's first status lines")
    await harness.press(keyboard, "16:9", tapper)
    redraw = (
        await tg.wait_for(
            lambda: [
                c for c in tg.calls if c.method.startswith("editMessage") and int(c.params["chat_id"]) == chat["id"]
            ],
            15,
            "the redraw",
        )
    )[0]
    await tg.wait_for(lambda: len(lines_sent()) == len(crowd), 15, "every status line of the crowd")
    after = [c for c in lines_sent() if c.at > redraw.at]
    assert len(after) >= len(crowd) // 2  # without the tap's priority it went after all of them
    assert "✓ 16:9" in str(tg.message(chat["id"], keyboard["message_id"])["reply_markup"])
