"""A status line says what is happening — queued with its place, generating, editing, upscaling, sending — in the
user's language, and only moves forward (the several-process case is in test_processes.py)."""

from __future__ import annotations

import asyncio

from bot.app import run_bot
from tests.status_stages import QUEUED, SENDING, WORKING, assert_forward, line_history
from tests.test_edits_and_variants import picture


async def test_an_edit_in_chinese_waits_says_editing_once_the_api_works_and_counts_in_chinese(
    start_bot, harness, tg, img
):
    await start_bot(max_concurrent_generations=1)
    first, first_chat = harness.person()
    user, chat = harness.person(language_code="zh-hans")
    img.delay_next(4)  # the first user's image holds the only slot: the edit waits, next in line
    img.delay_next(7)  # the edit itself: long enough for its seconds to be shown
    harness.send(first_chat, first, "/imagine first in line --ar 1:1 --1k")
    await img.wait_for(lambda: img.inflight == 1)
    tg.flood(2, method="getFile")  # its reference takes a while to fetch: that is not the image being made
    tg.send_photo(chat, user, picture(), caption="/imagine 改成水彩 --ar 4:3 --1k")
    await harness.result(chat["id"], timeout=30)

    history = line_history(tg, chat["id"])
    assert_forward(history)
    queued = [text for stage, text, _ in history if stage == QUEUED]
    assert queued and all("下一个就轮到你" in text for text in queued), queued  # only a running job is ahead
    working = [(text, at) for stage, text, at in history if stage == WORKING]
    edit_call = img.requests[1]
    assert edit_call.path == "/v1/images/edits"
    assert all(at >= edit_call.started for _, at in working)  # not before the image API had the request
    assert all(text.startswith("🖌 正在编辑 4:3 · 1K…") for text, _ in working), working
    counted = [text for text, _ in working if "秒" in text]
    assert counted and not any(" s\n" in text for text, _ in working), working
    assert any(stage == SENDING and "正在发送" in text for stage, text, _ in history)


async def test_an_upscale_says_upscaling(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a small house --ar 1:1 --1k")
    await harness.result(chat["id"])
    result = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    img.delay = 6
    await harness.press(result, "⬆ 2K", user)
    await harness.result(chat["id"], count=2, timeout=20)
    since = next(i for i, c in enumerate(tg.calls) if c.method == "answerCallbackQuery")
    texts = [c.params.get("text", "") for c in tg.calls[since:] if c.method in ("sendMessage", "editMessageText")]
    working = [text for text in texts if text.startswith("⬆")]
    assert working and all(text.startswith("⬆ Upscaling to 2K…") for text in working), texts
    assert not any("Generating" in text for text in texts), texts


async def test_a_status_line_the_database_did_not_take_is_recorded_on_a_retry(
    start_bot, make_settings, pg_cluster, harness, tg, img, monkeypatch
):
    """An intake's line is ended by a worker in another process, found by its message id in the database: a line
    sent while the database was away must still get there, or it keeps its ✖ for ever (seen in the PostgreSQL
    outage fault test)."""
    from bot.store.jobs import Jobs

    failed: list[int] = []
    record = Jobs.set_status_message

    async def away_once(self: Jobs, job_id: str, message_id: int | None) -> None:
        if message_id is not None and not failed:
            failed.append(message_id)
            raise ConnectionError("the database is away")
        await record(self, job_id, message_id)

    monkeypatch.setattr(Jobs, "set_status_message", away_once)
    url = pg_cluster.new_database()
    await start_bot(database_url=url, worker_concurrency=0)  # an intake: its lines are ended by the worker
    stop = asyncio.Event()
    worker = asyncio.create_task(run_bot(make_settings(database_url=url), stop, intake=False))
    try:
        user, chat = harness.person()
        img.delay_next(4)
        harness.send(chat, user, "/imagine a lighthouse --ar 1:1 --1k")
        await harness.result(chat["id"], timeout=30)

        def left() -> list[str | None]:
            return [m.get("text") for m in tg.bot_messages(chat["id"]) if m.get("reply_markup") and not m.get("photo")]

        await tg.wait_for(lambda: not left(), 10, "the status line to end, just after the photo")
        assert failed
    finally:
        stop.set()
        await asyncio.wait_for(worker, 15)
