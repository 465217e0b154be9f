"""Input as phones and keyboards make it: invisible prompts, control characters, MPO JPEGs, EXIF rotation."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.imagegen import inspect_image
from bot.options import parse_prompt
from tests.fakes.imageapi import pixel_bomb_png


def mpo(width: int = 640, height: int = 480) -> bytes:
    """What many phones save: a JPEG followed by a second picture (Pillow reads it as format MPO)."""
    out = io.BytesIO()
    first, second = Image.new("RGB", (width, height), (30, 120, 200)), Image.new("RGB", (width, height), (0, 0, 0))
    first.save(out, "MPO", save_all=True, append_images=[second])
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).format == "MPO"
    return data


def rotated_jpeg(width: int, height: int) -> bytes:
    """A landscape JPEG whose EXIF says: turn me 90° clockwise to show me (orientation 6)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.new("L", (width, height), 128).save(out, "JPEG", exif=exif, quality=50)
    return out.getvalue()


@pytest.mark.parametrize("text", ["\u200b", "\u200b\u200c\u200d\ufeff", " \u2060 \u3164 ", "\ufeff--ar 1:1"])
def test_a_prompt_of_invisible_characters_is_empty(text):
    assert parse_prompt(text).prompt == ""


def test_control_characters_go_and_visible_joiners_stay():
    assert parse_prompt("a\x00 red\x07 fox\nat\tdusk\x1b").prompt == "a red fox\nat dusk"
    family = "👨\u200d👩\u200d👧 at the beach"
    assert parse_prompt(family).prompt == family


async def test_an_invisible_prompt_gets_the_usage_answer(bot, harness, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine \u200b\u200d\ufeff --ar 1:1 --1k")
    await harness.reply_text(chat["id"], "Tell me what to draw")
    assert img.requests == []


async def test_control_characters_never_reach_the_service(bot, harness, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a\x07 red\x00 fox\nat dusk --ar 1:1 --1k")
    await harness.result(chat["id"])
    assert img.requests[0].body["prompt"] == "a red fox\nat dusk"


def test_mpo_is_read_as_a_jpeg():
    assert inspect_image(mpo()) == ("JPEG", 640, 480)


async def test_an_mpo_reference_is_sent_upstream_as_a_jpeg(bot, harness, tg, img):
    user, chat = harness.person()
    data = mpo()
    tg.send_document(chat, user, data, "IMG_0001.jpg", "image/jpeg", caption="/imagine brighter --ar 4:3 --1k")
    await harness.result(chat["id"])
    (request,) = img.requests
    assert request.path == "/v1/images/edits" and request.images == [data]
    assert request.image_types == ["image/jpeg"]


async def test_an_mpo_result_is_delivered_as_a_jpeg(bot, harness, tg, img):
    data = mpo(1024, 1024)
    img.image_next(data, "image/jpeg")
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a lake --ar 1:1 --1k")
    (photo,) = await harness.result(chat["id"])
    ((_, sent, _),) = photo.files.values()
    assert sent == data
    message = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    await harness.press(message, "Original", user)
    document = await tg.wait_for(lambda: next(iter(tg.calls_of("sendDocument")), None), 10, "the original")
    ((name, original, mime),) = document.files.values()
    assert original == data and name.endswith(".jpg") and mime == "image/jpeg"


async def test_a_rotated_jpeg_gets_a_preview_turned_the_same_way(bot, harness, tg, img):
    data = rotated_jpeg(9000, 1100)  # width + height over 10,000: Telegram wants a preview
    img.image_next(data, "image/jpeg")
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a tall tower --ar 9:16 --1k")
    photo, document = await harness.result(chat["id"], count=2)
    ((_, preview, _),) = photo.files.values()
    with Image.open(io.BytesIO(preview)) as shown:
        assert shown.height > shown.width  # turned upright, as a viewer shows the original
    ((_, original, _),) = document.files.values()
    assert original == data


async def test_a_pixel_bomb_reference_is_refused_by_name(bot, harness, tg, img):
    user, chat = harness.person()
    tg.send_document(chat, user, pixel_bomb_png(), "tiny.png", "image/png", caption="/imagine brighter --ar 1:1 --1k")
    await harness.status_says(chat["id"], "Reference image 1 (tiny.png) has far too many pixels")  # at intake, by name
    assert img.requests == []
