"""Photo when Telegram takes it, preview plus the untouched original when it doesn't, and the result buttons."""

from __future__ import annotations

import io

from PIL import Image, PngImagePlugin

from bot.delivery import caption, fits_photo, safe_filename
from bot.store import make_store


def _uploaded(call) -> bytes:
    ((_, data, _),) = call.files.values()
    return data


async def test_oversize_image_becomes_preview_and_original_document(bot, harness, tg, img):
    img.noise = True  # a 2K noise PNG is over Telegram's 10 MB photo limit
    user, chat = harness.person()
    harness.send(chat, user, "/imagine static on an old tv --ar 16:9 --2k")
    photo, document = await harness.result(chat["id"], count=2, timeout=30)
    served = img.image_for(img.requests[0])
    assert len(served) > 10 * 1024 * 1024
    assert photo.method == "sendPhoto" and document.method == "sendDocument"
    preview = Image.open(io.BytesIO(_uploaded(photo)))
    assert preview.format == "JPEG" and len(_uploaded(photo)) < 10 * 1024 * 1024
    assert abs(preview.width / preview.height - 2752 / 1536) < 0.01
    assert _uploaded(document) == served  # byte for byte
    assert document.params["disable_content_type_detection"] is True
    ((name, _, _),) = document.files.values()
    assert name == "static-on-an-old-tv_16x9_2K.png"
    # the preview carries the prompt; the file under it says what it is, not the same caption again
    assert photo.params["caption"].startswith("static on an old tv")
    assert document.params["caption"] == "📄 Original file · 16:9 · 2K · 2752×1536"
    # the original already went out, so no 📄 button under the preview
    assert "Original" not in str(photo.params["reply_markup"])


async def test_photo_refused_falls_back_to_document(bot, harness, tg, img):
    tg.fail_next("sendPhoto", 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a tall tower --ar 9:16 --1k")
    (upload,) = await tg.wait_for(lambda: [c for c in harness.results(chat["id"]) if c.method == "sendDocument"])
    assert _uploaded(upload) == img.image_for(img.requests[0])
    assert "a tall tower" in upload.params["caption"]


async def test_original_button_sends_the_file_and_says_when_gone(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a garden --ar 4:5 --1k")
    (photo_call,) = await harness.result(chat["id"])
    photo_msg = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    answer = await harness.press(photo_msg, "Original", user)
    assert "file" in answer["text"]
    _, document = await harness.result(chat["id"], count=2)
    assert document.method == "sendDocument"
    assert _uploaded(document) == img.image_for(img.requests[0])
    assert document.params["reply_parameters"]["message_id"] == photo_msg["message_id"]

    for path in (bot.settings.data_dir / "originals").iterdir():
        path.unlink()
    store = make_store(bot.settings.database)  # and from the database, where PostgreSQL keeps them too
    await store.open()
    await store.originals.prune_originals(max_age=0, max_total=0)
    await store.close()
    answer = await harness.press(photo_msg, "Original", user)
    assert "no longer kept" in answer["text"] and answer["show_alert"] is True


async def test_again_and_change_under_a_result(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a kite --ar 3:4 --2k")
    await harness.result(chat["id"])
    photo_msg = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    await harness.press(photo_msg, "Again", user)
    await harness.result(chat["id"], count=2)
    assert [(r.body["prompt"], r.body["aspect_ratio"], r.body["size"]) for r in img.requests] == [
        ("a kite", "3:4", "2K")
    ] * 2
    await harness.press(photo_msg, "Change", user)
    kb = await harness.keyboard(chat["id"])
    assert "✓ 3:4" in str(kb["reply_markup"]) and "✓ 2K" in str(kb["reply_markup"])
    assert "a kite" in kb["text"]


async def test_result_buttons_refuse_other_users(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a mask --ar 1:1 --1k")
    await harness.result(chat["id"])
    photo_msg = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    answer = await harness.press(photo_msg, "Again", tg.user(777, "Other"))
    assert "someone else" in answer["text"]
    assert len(img.requests) == 1


def test_photo_limits():
    assert fits_photo(5_000_000, 5504, 3072)  # 8576 ≤ 10,000
    assert not fits_photo(10 * 1024 * 1024 + 1, 1024, 1024)
    assert not fits_photo(1000, 6336, 4000)
    assert not fits_photo(1000, 2100, 100)  # ratio 21 > 20


def test_caption_fits_telegram():
    text = caption("y" * 5000, "16:9 · 4K · 5504×3072")
    assert len(text) <= 1024 and text.endswith("16:9 · 4K · 5504×3072") and "…" in text


def test_safe_filename():
    assert safe_filename("Red fox, in snow!", "16:9", "4K", "png") == "red-fox-in-snow_16x9_4K.png"
    assert safe_filename("../../etc/passwd", "1:1", "1K", "png") == "etc-passwd_1x1_1K.png"
    # any script keeps its words (Telegram shows Unicode file names); nothing but separators is "image"
    assert safe_filename("雪地里的小狐狸，黄昏", "3:4", "1K", "png") == "雪地里的小狐狸-黄昏_3x4_1K.png"
    assert safe_filename("नमस्ते दुनिया", "1:1", "1K", "png") == "नमस्ते-दुनिया_1x1_1K.png"
    assert safe_filename("\x00/\\:*?", "1:1", "2K", "jpg") == "image_1x1_2K.jpg"


async def test_status_line_says_done_where_it_cannot_be_deleted(bot, harness, tg, img):
    tg.fail_next("deleteMessage", 400, "Bad Request: message can't be deleted")
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a lantern --ar 1:1 --1k")
    await harness.result(chat["id"])
    await harness.status_says(chat["id"], "✅ Done · 1:1 · 1K")


async def test_an_original_larger_than_the_whole_folder_limit_is_still_delivered(start_bot, harness, tg, img):
    await start_bot(originals_max_total_mb=1)
    img.noise = True  # a 1K noise PNG is about 3 MB, over the 1 MB the folder may hold
    user, chat = harness.person()
    harness.send(chat, user, "/imagine static --ar 1:1 --1k")
    (upload,) = await harness.result(chat["id"])
    ((_, data, _),) = upload.files.values()
    assert data == img.image_for(img.requests[0])


def _compressible_png_with_metadata(width: int, height: int) -> bytes:
    """A picture that compresses well, stored without compression and with a large text chunk: ~3 MB at 1K."""
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "x" * 200_000)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=0, pnginfo=info)
    return out.getvalue()


async def test_an_original_over_the_upload_limit_goes_with_the_same_pixels_when_it_can(start_bot, harness, tg, img):
    running = await start_bot(telegram_max_upload_mb=1)
    tg.upload_max_bytes = 1024 * 1024  # the Bot API agrees: anything over 1 MB would be a 413
    served = _compressible_png_with_metadata(1024, 1024)
    assert len(served) > 3 * 1024 * 1024
    img.image_next(served)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a soft gradient --ar 1:1 --1k")
    photo, document = await harness.result(chat["id"], count=2, timeout=20)  # over 1 MB: a preview, then the file
    assert photo.method == "sendPhoto" and document.method == "sendDocument" and document.error is None
    ((name, data, _),) = document.files.values()
    assert name.endswith(".png") and len(data) <= 1024 * 1024
    with Image.open(io.BytesIO(data)) as sent, Image.open(io.BytesIO(served)) as original:
        assert sent.tobytes() == original.convert(sent.mode).tobytes()  # lossless
    assert "JPEG" not in document.params["caption"]
    spool = running.settings.data_dir / "spool"
    await tg.wait_for(lambda: not list(spool.glob("fit-*")), 15, "the copy gone after its upload")


async def test_an_original_that_cannot_shrink_goes_as_a_full_resolution_jpeg_after_its_preview(
    start_bot, harness, tg, img
):
    running = await start_bot(telegram_max_upload_mb=5)
    tg.upload_max_bytes = 5 * 1024 * 1024
    img.noise = True  # a 2K noise PNG: ~12 MB, incompressible
    user, chat = harness.person("zh-hans")
    harness.send(chat, user, "/imagine static --ar 16:9 --2k")
    photo, document = await harness.result(chat["id"], count=2, timeout=30)
    assert photo.method == "sendPhoto" and document.method == "sendDocument" and document.error is None
    ((name, data, _),) = document.files.values()
    assert name == "static_16x9_2K.jpg" and len(data) <= 5 * 1024 * 1024
    with Image.open(io.BytesIO(data)) as sent:
        assert sent.format == "JPEG" and sent.size == (2752, 1536)  # full resolution
    assert "全分辨率的 JPEG" in document.params["caption"] and "5 MB" in document.params["caption"]
    spool = running.settings.data_dir / "spool"
    await tg.wait_for(lambda: not list(spool.glob("fit-*")), 15, "the copy gone after its upload")
