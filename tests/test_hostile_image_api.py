"""The image service misbehaving: endless, dripping and oversized answers, pixel bombs, odd base64, broken shapes.
Each ends with one sentence on the status line (never "something went wrong on my side"), and the bot stays up."""

from __future__ import annotations

import logging

import pytest

from bot.imagegen import MAX_IMAGE_BYTES
from tests.fakes.imageapi import B64_STYLES, pixel_bomb_png

BROKEN = "sent a broken answer"


async def _ask(harness, text: str = "/imagine a lamp --ar 1:1 --1k") -> dict:
    user, chat = harness.person()
    harness.send(chat, user, text)
    return chat


async def _still_works(harness, bot=None) -> None:
    """Another request gets its image; and nothing a refused answer brought is left in the spool folder."""
    chat = await _ask(harness, "/imagine after the storm --ar 1:1 --1k")
    await harness.result(chat["id"])
    if bot is not None:
        assert list((bot.settings.data_dir / "spool").iterdir()) == []


@pytest.mark.parametrize("kind", ["endless", "endless_url"])
async def test_an_endless_answer_is_cut_off_at_the_cap(bot, harness, img, kind):
    img.response_format = "b64_json" if kind == "endless" else "url"
    img.stream_next(kind)
    chat = await _ask(harness)
    msg = await harness.status_says(chat["id"], BROKEN, timeout=30)
    assert msg["text"].startswith("⚠️") and harness.results(chat["id"]) == []
    assert len(img.requests) == 1  # a broken answer is paid for: not asked again
    await _still_works(harness, bot)


async def test_a_b64_image_is_held_to_the_download_cap(bot, harness, img):
    """Under the cap of the JSON answer, but over the image cap once decoded."""
    img.response_format = "b64_json"
    img.stream_next("big_b64", size=MAX_IMAGE_BYTES + 256 * 1024)
    chat = await _ask(harness)
    await harness.status_says(chat["id"], BROKEN, timeout=30)
    await _still_works(harness, bot)


@pytest.mark.parametrize("kind", ["drip", "drip_url"])
async def test_a_dripping_answer_ends_at_the_total_deadline(start_bot, harness, img, kind):
    await start_bot(image_request_timeout=2)
    img.response_format = "b64_json" if kind == "drip" else "url"
    img.drip_interval = 0.5  # faster than the read timeout: only a total deadline ends it
    img.stream_next(kind)
    chat = await _ask(harness)
    await harness.status_says(chat["id"], "took too long", timeout=20)
    assert len(img.requests) == 1


@pytest.mark.parametrize("fmt", ["url", "b64_json"])
async def test_a_pixel_bomb_is_refused_unopened(bot, harness, img, fmt):
    img.response_format = fmt
    img.image_next(pixel_bomb_png())  # 17 KB of PNG, 144 Mpx once decoded
    chat = await _ask(harness)
    await harness.status_says(chat["id"], "far larger than any size", timeout=20)
    assert harness.results(chat["id"]) == []
    await _still_works(harness, bot)


async def test_a_long_thin_pixel_bomb_is_refused_too(bot, harness, img):
    img.image_next(pixel_bomb_png(20_000, 100))  # few pixels, but a side far beyond any in the table
    chat = await _ask(harness)
    await harness.status_says(chat["id"], "far larger than any size", timeout=20)


@pytest.mark.parametrize("style", B64_STYLES)
async def test_lenient_base64_is_accepted(bot, harness, img, style):
    img.response_format, img.b64_style = "b64_json", style
    chat = await _ask(harness)
    (upload,) = await harness.result(chat["id"])
    ((_, data, _),) = upload.files.values()
    assert data == img.image_for(img.requests[-1])


@pytest.mark.parametrize(
    "kind",
    [
        "url_broken",
        "url_not_string",
        "url_ftp",
        "b64_not_string",
        "data_not_list",
        "item_not_object",
        "deep_json",
        "not_object",
    ],
)
async def test_answers_of_the_wrong_shape_are_a_bad_answer(bot, harness, img, caplog, kind):
    img.junk_next(kind)
    with caplog.at_level(logging.WARNING):
        chat = await _ask(harness)
        msg = await harness.status_says(chat["id"], BROKEN)
    assert "on my side" not in msg["text"]
    assert len(img.requests) == 1
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a bad answer"
    await _still_works(harness)


async def test_the_image_a_size_retry_replaces_leaves_no_file(start_bot, harness, img):
    running = await start_bot(retry_on_size_mismatch=True)
    img.size_next(1024, 1024)  # asked 16:9: the first is wrong, the retry is right
    chat = await _ask(harness, "/imagine a wide valley --ar 16:9 --1k")
    await harness.result(chat["id"])
    assert len(img.requests) == 2
    assert list((running.settings.data_dir / "spool").iterdir()) == []


async def test_a_spool_folder_that_cannot_be_written_is_one_sentence(bot, harness, img, caplog):
    spool = bot.settings.data_dir / "spool"
    spool.rmdir()
    spool.write_text("not a folder")  # every file the client makes in it now fails, as on a full disk
    with caplog.at_level(logging.WARNING):
        chat = await _ask(harness)
        await harness.status_says(chat["id"], "Something went wrong on my side")
    assert not [r for r in caplog.records if r.exc_info]
    assert any(str(spool) in r.getMessage() for r in caplog.records)
    spool.unlink()
    spool.mkdir()
    await _still_works(harness, bot)
