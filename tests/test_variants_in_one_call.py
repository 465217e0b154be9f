"""Variants of a model that makes several images a call (gpt-image-2's `n`) come from one call, on SQLite and
PostgreSQL: the fake image API refuses an `n` the model does not take, so one request with `n` = the count proves the
call valid. Each variant is still its own job — delivered once, refunded once — through a failure and a crash."""

from __future__ import annotations

import asyncio
import io
import signal

import pytest
import sqlalchemy as sa
from PIL import Image

from bot import imagemodels
from bot.imagegen import ImageClient
from bot.imagemodels import Profile, References, gpt_image_2
from bot.imagemodels.profile import ratio_option, size_option
from bot.options import ImageRequest
from bot.store import make_store
from bot.store.schema import jobs
from tests.processes import settings_env, spawn_polling

NANO, GPT = "nano-banana-2", "gpt-image-2"
MODELS = f"{NANO},{GPT}"


async def _settle(settings, expected: list[str], timeout: float = 15) -> None:
    """The jobs reach `expected`: a job's outcome is written just after its delivery, so under load a moment later."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (seen := await _statuses(settings)) != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
    assert seen == expected


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
    await _settle(running.settings, ["failed"] * 2)


def _env(settings) -> dict[str, str]:
    return settings_env(
        settings,
        DATABASE_URL=settings.database,
        IMAGE_MODELS=MODELS,
        USER_DAILY_QUOTA="20",
        SHUTDOWN_GRACE_SECONDS="0.5",
    )


async def _killed_mid_call(settings, harness, tg, img, cwd, user, chat) -> None:
    """A bot process asked for four variants in one call, killed (SIGKILL) while that call is in flight."""
    proc = await spawn_polling(_env(settings), tg, cwd)
    try:
        img.delay_next(30)
        harness.send(chat, user, "/imagine four cranes --model gpt --n 4 --ar 16:9 --1k")
        # the call read whole (in flight from its headers on): killed before its body, it would have no `n`
        await img.wait_for(lambda: img.inflight == 1 and img.requests[0].body.get("n") == 4, 15, "the call to start")
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()


async def test_a_crash_mid_call_makes_them_again_in_one_call_and_delivers_each_once(
    make_settings, start_bot, harness, tg, img, tmp_path
):
    settings = make_settings(image_models=MODELS, user_daily_quota=20)
    user, chat = harness.person()
    await _killed_mid_call(settings, harness, tg, img, tmp_path, user, chat)
    assert (await _statuses(settings)).count("running") == 4  # all four in the one call that died

    await start_bot(image_models=MODELS, user_daily_quota=20)
    (album,) = await tg.wait_for(lambda: tg.calls_of("sendMediaGroup"), 20, "the album")
    first, second = img.requests
    assert first.aborted and first.body["n"] == 4
    assert second.status == 200 and second.body["n"] == 4
    assert sorted(data for _, data, _ in album.files.values()) == sorted(img.images_for(second))
    await _settle(settings, ["done"] * 4)  # every outcome written: what comes after it would be a second delivery
    await asyncio.sleep(1)  # nothing more arrives
    assert len(tg.calls_of("sendMediaGroup")) == 1
    assert "Today you used 8 of 20" in await _used(harness, chat, user, "Today you used")


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


async def _album(tg, count: int = 1) -> list:
    return await tg.wait_for(lambda: (a := tg.calls_of("sendMediaGroup")) and len(a) >= count and a, 20, "the album")


async def test_an_answer_with_fewer_images_than_n_fails_the_rest_once_each_and_refunds_them(
    start_bot, harness, tg, img
):
    running = await start_bot(image_models=MODELS, user_daily_quota=20)
    img.fewer_next(2)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine four herons --model gpt --n 4 --ar 1:1 --1k")
    (album,) = await _album(tg)
    (rec,) = img.requests
    assert rec.body["n"] == 4 and len(img.images_for(rec)) == 2
    assert sorted(data for _, data, _ in album.files.values()) == sorted(img.images_for(rec))
    sentence = "No image came back"
    await tg.wait_for(lambda: any(sentence in text for text in harness.texts(chat["id"])), 10, repr(sentence))
    await _settle(running.settings, ["done", "done", "failed", "failed"])
    await asyncio.sleep(1)  # nothing more arrives
    texts = harness.texts(chat["id"])
    (said,) = [text for text in texts if sentence in text]  # once, for both
    assert "2 of 4 failed" in said
    assert "Today you used 4 of 20" in await _used(harness, chat, user, "Today you used")  # 2 × medium (2)


DUO = Profile(  # a made-up model whose call makes two images at most, served by the gateway's gpt-image-2
    name="toy-duo-1",
    label="Toy Duo",
    aliases=("duo",),
    options=(ratio_option(("1:1", "16:9")), size_option(("1K", "2K"))),
    pixels={k: v for k, v in gpt_image_2.PIXELS.items() if k[0] in ("1:1", "16:9") and k[1] != "4K"},
    credits={},
    api="images",
    path="/v1/images/generations",
    edit_path="/v1/images/edits",
    fields=lambda options, pixels, count: {"n": count, "size": f"{pixels[0]}x{pixels[1]}"},
    references=References("multipart", 16),
    max_outputs=2,
)


@pytest.fixture
def duo(monkeypatch):
    monkeypatch.setitem(imagemodels.PROFILES, DUO.name, DUO)  # "naming it in the registry"
    return DUO


async def test_more_variants_than_a_call_makes_split_into_several_calls(duo, start_bot, harness, tg, img):
    running = await start_bot(image_models=f"{NANO},{DUO.name}={GPT}", user_daily_quota=20)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine four geese --model duo --n 4 --ar 16:9 --1k")
    (album,) = await _album(tg)
    assert len(img.requests) == 2 and [r.body["n"] for r in img.requests] == [2, 2]
    assert all(r.status == 200 and r.body["size"] == "1360x768" for r in img.requests)
    served = [data for rec in img.requests for data in img.images_for(rec)]
    assert sorted(data for _, data, _ in album.files.values()) == sorted(served) and len(set(served)) == 4
    await _settle(running.settings, ["done"] * 4)
    await asyncio.sleep(1)  # nothing more arrives
    assert len(tg.calls_of("sendMediaGroup")) == 1
    assert "Today you used 4 of 20" in await _used(harness, chat, user, "Today you used")


def _png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


async def test_a_run_again_asks_only_for_the_variants_without_their_image(
    make_settings, start_bot, harness, tg, img, tmp_path
):
    settings = make_settings(image_models=MODELS, user_daily_quota=20)
    user, chat = harness.person()
    await _killed_mid_call(settings, harness, tg, img, tmp_path, user, chat)
    # What a process killed while keeping the call's images leaves: the first two variants' files on its disk.
    store = make_store(settings.database)
    await store.open()
    try:
        ids = [row[0] for row in await store.backend.all(sa.select(jobs.c.id).order_by(jobs.c.variant))]
    finally:
        await store.close()
    assert len(ids) == 4
    kept = {ids[0]: _png(1360, 768, (200, 30, 30)), ids[1]: _png(1360, 768, (30, 200, 30))}
    originals = settings.data_dir / "originals"
    originals.mkdir(parents=True, exist_ok=True)
    for job_id, data in kept.items():
        (originals / f"{job_id}.png").write_bytes(data)

    await start_bot(image_models=MODELS, user_daily_quota=20)
    (album,) = await _album(tg)
    first, second = img.requests
    assert first.aborted and first.body["n"] == 4
    assert second.status == 200 and second.body["n"] == 2  # only the two without their image
    sent = sorted(data for _, data, _ in album.files.values())
    assert sent == sorted([*kept.values(), *img.images_for(second)])
    await _settle(settings, ["done"] * 4)
    await asyncio.sleep(1)  # nothing more arrives
    assert len(tg.calls_of("sendMediaGroup")) == 1 and len(img.requests) == 2
    assert "Today you used 8 of 20" in await _used(harness, chat, user, "Today you used")  # each charged once
