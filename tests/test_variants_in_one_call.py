"""Variants of a model that makes several images a call (gpt-image-2's `n`) come from one call, on SQLite and
PostgreSQL: the fake image API refuses an `n` the model does not take, so one request with `n` = the count proves the
call valid. Each variant is still its own job — delivered once, refunded once — through a failure and a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
import sqlalchemy as sa

from bot.imagegen import ImageClient
from bot.options import ImageRequest
from bot.store import make_store
from bot.store.schema import jobs

NANO, GPT = "nano-banana-2", "gpt-image-2"
MODELS = f"{NANO},{GPT}"


async def _statuses(settings) -> list[str]:
    """Every job's status, as an operator reads the database."""
    store = make_store(settings.database)
    await store.open()
    try:
        rows = await store.backend.all(sa.select(jobs.c.status).order_by(jobs.c.created_at, jobs.c.variant))
        return [row[0] for row in rows]
    finally:
        await store.close()


async def _used(harness, chat, user, says: str = "Used today") -> str:
    harness.send(chat, user, "/usage")
    return (await harness.reply_text(chat["id"], says))["text"]


async def test_gpt_image_variants_are_one_call_with_n_and_each_delivered_once(start_bot, harness, tg, img):
    await start_bot(image_models=MODELS)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine four foxes --model gpt --n 4 --ar 1:1 --1k")
    (album,) = await tg.wait_for(lambda: tg.calls_of("sendMediaGroup"), 20, "the album")
    (rec,) = img.requests
    assert rec.status == 200 and rec.model == GPT and rec.body["n"] == 4
    served = img.images_for(rec)
    assert len(served) == 4 and len(set(served)) == 4
    assert sorted(data for _, data, _ in album.files.values()) == sorted(served)  # each image once, none twice
    summary = await harness.reply_text(chat["id"], "🎨 ×4")
    assert [b["text"] for row in summary["reply_markup"]["inline_keyboard"] for b in row if "📄" in b["text"]] == [
        "📄 1",
        "📄 2",
        "📄 3",
        "📄 4",
    ]
    assert "Used today: 8 credits" in await _used(harness, chat, user)  # 4 × medium (2)


async def test_a_one_image_model_still_makes_one_call_per_variant(start_bot, harness, tg, img):
    await start_bot(image_models=MODELS, user_max_running=2)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine two owls --model banana --n 2 --ar 1:1 --1k")
    await tg.wait_for(lambda: tg.calls_of("sendMediaGroup"), 20, "the album")
    assert len(img.requests) == 2 and all(r.body["n"] == 1 for r in img.requests)


async def test_a_failed_call_fails_and_refunds_each_variant_once(start_bot, harness, tg, img):
    running = await start_bot(image_models=MODELS, user_daily_quota=20)
    img.fail_next(400)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine two owls --model gpt --n 2 --ar 1:1 --1k")
    note = await harness.reply_text(chat["id"], "refused this request as invalid", timeout=20)
    (rec,) = img.requests
    assert rec.body["n"] == 2 and rec.status == 400
    assert tg.calls_of("sendMediaGroup") == [] and not harness.results(chat["id"])
    assert sum("refused this request as invalid" in text for text in harness.texts(chat["id"])) == 1, note
    assert "Today you used 0 of 20" in await _used(harness, chat, user, "Today you used")
    assert await _statuses(running.settings) == ["failed"] * 2


def _env(settings) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "TELEGRAM_BOT_TOKEN": settings.telegram_bot_token.get_secret_value(),
        "IMAGE_API_KEY": settings.image_api_key.get_secret_value(),
        "IMAGE_API_BASE_URL": settings.image_api_base_url,
        "TELEGRAM_API_BASE_URL": settings.telegram_api_base_url,
        "TELEGRAM_FILE_BASE_URL": settings.telegram_file_base_url,
        "DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": settings.database,
        "IMAGE_MODELS": MODELS,
        "USER_DAILY_QUOTA": "20",
        "SHUTDOWN_GRACE_SECONDS": "0.5",
    }


async def test_a_crash_mid_call_makes_them_again_in_one_call_and_delivers_each_once(
    make_settings, start_bot, harness, tg, img, tmp_path
):
    settings = make_settings(image_models=MODELS, user_daily_quota=20)
    user, chat = harness.person()
    polls = len(tg.calls_of("getUpdates"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=_env(settings),
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await tg.wait_for(
            lambda: proc.returncode is not None or len(tg.calls_of("getUpdates")) > polls, 20, "the bot to poll"
        )
        assert proc.returncode is None
        img.delay_next(30)
        harness.send(chat, user, "/imagine four cranes --model gpt --n 4 --ar 16:9 --1k")
        await img.wait_for(lambda: img.inflight == 1, 15, "the call to start")
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert (await _statuses(settings)).count("running") == 4  # all four in the one call that died

    await start_bot(image_models=MODELS, user_daily_quota=20)
    (album,) = await tg.wait_for(lambda: tg.calls_of("sendMediaGroup"), 20, "the album")
    first, second = img.requests
    assert first.aborted and first.body["n"] == 4
    assert second.status == 200 and second.body["n"] == 4
    assert sorted(data for _, data, _ in album.files.values()) == sorted(img.images_for(second))
    await asyncio.sleep(1)  # nothing more arrives
    assert len(tg.calls_of("sendMediaGroup")) == 1
    assert "Today you used 8 of 20" in await _used(harness, chat, user, "Today you used")
    assert await _statuses(settings) == ["done"] * 4


@pytest.mark.parametrize("count", [0, 11])
async def test_the_client_refuses_a_count_the_model_cannot_make_in_one_call(img, tmp_path, count):
    client = ImageClient(img.base_url, img.api_key, {GPT: GPT}, spool_dir=tmp_path)
    client.open()
    try:
        with pytest.raises(ValueError, match="1 to 10"):
            await client.generate_many(ImageRequest("x", model=GPT), count)
        with pytest.raises(ValueError, match="1 to 1"):
            await client.generate_many(ImageRequest("x", model=NANO), 2)
    finally:
        await client.aclose()
    assert img.requests == []
