"""Editing with reference pictures, albums, variants, upscale and honest originals — through the fakes."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from PIL import Image

from tests.processes import bot_env, spawn
from tests.rows import album_kept


def picture(
    width: int = 320, height: int = 240, colour: tuple[int, int, int] = (200, 80, 40), fmt: str = "JPEG"
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, fmt)
    return out.getvalue()


def _data(call) -> bytes:
    ((_, data, _),) = call.files.values()
    return data


async def test_photo_with_caption_is_edited(bot, harness, tg, img):
    user, chat = harness.person()
    photo = picture()
    img.delay = 0.5
    tg.send_photo(chat, user, photo, caption="/imagine make it a watercolour --ar 4:3 --1k")
    await img.wait_for(lambda: img.inflight == 1)
    (waiting,) = (bot.settings.data_dir / "spool").glob("ref-*")
    assert waiting.read_bytes() == photo
    await harness.result(chat["id"])
    (request,) = img.requests
    assert request.path == "/v1/images/edits"
    assert request.images == [photo]
    assert request.body["prompt"] == "make it a watercolour"
    assert (request.body["aspect_ratio"], request.body["size"], request.body["n"]) == ("4:3", "1K", "1")
    # the picture waited in a file of the spool folder while the job ran (not in memory), and is gone after it
    assert not list((bot.settings.data_dir / "spool").glob("ref-*"))


async def test_reply_to_photo_and_again_keeps_the_references(bot, harness, tg, img):
    user, chat = harness.person()
    photo = picture(colour=(10, 200, 30))
    sent = tg.send_photo(chat, user, photo, caption="my garden")
    harness.send(chat, user, "/imagine at night --ar 1:1 --1k", reply_to=sent)
    await harness.result(chat["id"])
    assert img.requests[0].images == [photo] and img.requests[0].body["prompt"] == "at night"
    result = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    await harness.press(result, "Again", user)
    await harness.result(chat["id"], count=2)
    assert img.requests[1].path == "/v1/images/edits" and img.requests[1].images == [photo]


async def test_reply_to_an_album_of_three(bot, harness, tg, img):
    user, chat = harness.person()
    photos = [picture(colour=(30 * i, 20, 20)) for i in range(3)]
    parts = [tg.send_photo(chat, user, p, media_group_id="album-3") for p in photos]
    await album_kept(bot.settings.database, chat["id"], "album-3", 3)  # the bot has seen the album go by
    harness.send(chat, user, "/imagine put them in one scene --ar 16:9 --2k", reply_to=parts[1])
    await harness.result(chat["id"])
    assert img.requests[0].images == photos


async def test_album_of_five_arriving_over_time_is_counted_and_used_whole(bot, harness, tg, img):
    user, chat = harness.person()
    photos = [picture(colour=(20, 40 * i, 90)) for i in range(5)]
    tg.send_photo(chat, user, photos[0], caption="/imagine a collage --ar 1:1 --1k", media_group_id="album-5")
    for p in photos[1:]:
        await asyncio.sleep(0.375)
        tg.send_photo(chat, user, p, media_group_id="album-5")
    await harness.result(chat["id"], timeout=15)
    (request,) = img.requests
    assert request.images == photos
    counts = [c.params.get("text", "") for c in tg.calls if "Pictures received" in c.params.get("text", "")]
    assert counts[0].startswith("📥 Pictures received: 1 (up to 14")
    assert any(x.startswith("📥 Pictures received: 5 (") for x in counts)


async def test_fifteen_pictures_use_fourteen_and_say_so(bot, harness, tg, img):
    user, chat = harness.person()
    photos = [picture(64, 64, (i * 15, 0, 0)) for i in range(15)]
    tg.send_photo(chat, user, photos[0], caption="/imagine a grid --ar 1:1 --1k", media_group_id="album-15")
    for p in photos[1:]:
        tg.send_photo(chat, user, p, media_group_id="album-15")
    await harness.result(chat["id"], timeout=15)
    assert img.requests[0].images == photos[:14]
    await harness.reply_text(chat["id"], "You sent 15 images; I used the first 14.")


async def test_uncompressed_photo_document_is_a_reference(bot, harness, tg, img):
    user, chat = harness.person()
    png = picture(fmt="PNG")
    tg.send_document(chat, user, png, "holiday.png", "image/png", caption="/imagine brighter --ar 3:2 --1k")
    await harness.result(chat["id"])
    assert img.requests[0].images == [png]


async def test_a_file_sent_for_an_edit_is_downloaded_once(bot, harness, tg, img):
    """Measured at intake and used by the job: the file server serves it once, not once for each."""
    user, chat = harness.person()
    png = picture(fmt="PNG")
    message = tg.send_document(chat, user, png, "holiday.png", "image/png", caption="/imagine brighter")
    kb = await harness.keyboard(chat["id"])
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].images == [png]
    file_id = message["document"]["file_id"]
    assert [served for served in tg.downloads if served[0] == file_id] == [(file_id, len(png))]


async def test_unusable_references_are_named(bot, harness, tg, img):
    user, chat = harness.person()
    tg.send_document(
        chat, user, b"%PDF-1.4 not a picture", "notes.pdf", "application/pdf", caption="/imagine a poster --ar 1:1 --1k"
    )
    await harness.reply_text(chat["id"], "Reference 1 (notes.pdf) is not a picture")
    tg.send_document(
        chat, user, b"\xff" * (21 * 1024 * 1024), "huge.jpg", "image/jpeg", caption="/imagine a poster --ar 1:1 --1k"
    )
    await harness.reply_text(chat["id"], "Reference image 1 (huge.jpg) is larger than 20 MB")
    tg.send_document(
        chat,
        user,
        b"this is text with an image name",
        "fake.png",
        "image/png",
        caption="/imagine a poster --ar 1:1 --1k",
    )
    await harness.status_says(chat["id"], "is not a picture; send PNG")
    assert img.requests == []


async def test_keep_original_ratio(bot, harness, tg, img):
    user, chat = harness.person()
    tg.send_photo(chat, user, picture(1600, 900), caption="/imagine as a painting")
    kb = await harness.keyboard(chat["id"])
    assert "Editing 1 image" in kb["text"]
    await harness.press(kb, "Keep ratio", user)
    await tg.wait_for(lambda: "✓ 16:9" in str(tg.message(chat["id"], kb["message_id"])["reply_markup"]))
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].body["aspect_ratio"] == "16:9"


async def test_restart_mid_edit_resumes_with_the_same_references(start_bot, harness, tg, img):
    first = await start_bot(shutdown_grace_seconds=0)
    user, chat = harness.person()
    photo = picture(colour=(1, 2, 3))
    img.delay_next(30)
    tg.send_photo(chat, user, photo, caption="/imagine restored --ar 1:1 --1k")
    await img.wait_for(lambda: img.inflight == 1 and img.requests[0].images)  # uploaded, now being made
    await first.stop()
    await start_bot()
    await harness.result(chat["id"])
    assert [r.images for r in img.requests] == [[photo], [photo]]


async def test_variants_run_in_parallel_and_arrive_as_one_album(start_bot, harness, tg, img):
    await start_bot(user_max_running=4, user_daily_quota=10)
    img.delay = 0.5
    user, chat = harness.person()
    harness.send(chat, user, "/imagine four foxes --ar 3:2 --1k --n 4")
    albums = await tg.wait_for(lambda: tg.calls_of("sendMediaGroup"), 15)
    assert img.max_inflight == 4 and len(img.requests) == 4
    (album,) = albums
    assert len(album.files) == 4
    sent = sorted(album.files.values(), key=lambda f: f[0])
    served = {img.image_for(r) for r in img.requests}
    assert {data for _, data, _ in sent} == served
    buttons = await harness.reply_text(chat["id"], "🎨 ×4")
    labels = [b["text"] for b in harness.buttons(buttons)]
    assert [x for x in labels if x.startswith("⬆")] == ["⬆ 1 · 4K", "⬆ 2 · 4K", "⬆ 3 · 4K", "⬆ 4 · 4K"]
    assert [x for x in labels if x.startswith("📄")] == ["📄 1", "📄 2", "📄 3", "📄 4"]
    harness.send(chat, user, "/usage")
    await harness.reply_text(chat["id"], "Today you used 4 of 10")


async def test_one_failing_variant_is_refunded_and_named(start_bot, harness, tg, img):
    await start_bot(user_max_running=4, user_daily_quota=10)
    img.fail_next(400)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine four owls --ar 1:1 --1k --n 4")
    await tg.wait_for(lambda: tg.calls_of("sendMediaGroup"), 15)
    (album,) = tg.calls_of("sendMediaGroup")
    assert len(album.files) == 3
    note = await harness.reply_text(chat["id"], "1 of 4 failed")
    assert "refused this request as invalid" in note["text"]
    harness.send(chat, user, "/usage")
    await harness.reply_text(chat["id"], "Today you used 3 of 10")


async def test_cancel_stops_every_variant(start_bot, harness, tg, img):
    await start_bot(user_max_running=2)
    img.delay = 10
    user, chat = harness.person()
    harness.send(chat, user, "/imagine slow variants --ar 1:1 --1k --n 4")
    await img.wait_for(lambda: img.inflight == 4)  # the variants of one request start together
    status = await harness.status_says(chat["id"], "Generating")
    await harness.press(status, "Cancel", user)
    await img.wait_for(lambda: all(r.aborted for r in img.requests))
    await harness.status_says(chat["id"], "Cancelled")
    assert len(img.requests) == 4 and tg.calls_of("sendMediaGroup") == []


async def test_upscale_uses_the_result_as_the_only_reference(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a small house --ar 16:9 --1k")
    await harness.result(chat["id"])
    result = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    labels = [b["text"] for b in harness.buttons(result)]
    assert "⬆ 2K" in labels and "⬆ 4K" in labels
    await harness.press(result, "⬆ 4K", user)
    await harness.result(chat["id"], count=2)
    upscale = img.requests[1]
    assert upscale.path == "/v1/images/edits"
    assert upscale.images == [img.image_for(img.requests[0])]
    assert (upscale.body["size"], upscale.body["aspect_ratio"]) == ("4K", "16:9")
    assert upscale.body["prompt"].startswith("a small house") and "higher resolution" in upscale.body["prompt"]
    big = next(m for m in reversed(tg.bot_messages(chat["id"])) if m.get("photo"))
    assert "a small house" in big["caption"] and "higher resolution" not in big["caption"]
    assert not [b for b in harness.buttons(big) if b["text"].startswith("⬆")]  # nothing above 4K


async def test_size_mismatch_retry_when_enabled(start_bot, harness, tg, img):
    await start_bot(retry_on_size_mismatch=True, user_daily_quota=5, quota_credits_4k=2)
    img.size_next(1024, 1024)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine wide sea --ar 16:9 --4k")
    (upload,) = await harness.result(chat["id"])
    assert len(img.requests) == 2
    assert "⚠️" not in upload.params["caption"] and "5504×3072" in upload.params["caption"]
    harness.send(chat, user, "/usage")
    await harness.reply_text(chat["id"], "Today you used 4 of 5")  # the retry was charged like any job


async def test_originals_in_the_topic_with_a_safe_name(bot, harness, tg, img):
    user = tg.user(71, "Topic")
    forum = tg.group(-100900, "Forum", is_forum=True)
    tg.set_admins(forum["id"], [user["id"]])
    harness.send(forum, user, "/settings", message_thread_id=5)
    panel = await harness.reply_text(forum["id"], "Defaults")
    await harness.press(panel, "Always original", user)
    await tg.wait_for(lambda: ": on" in str(tg.message(forum["id"], panel["message_id"])["reply_markup"]))
    harness.send(forum, user, "/imagine Red fox, in snow! --ar 16:9 --4k --n 2", message_thread_id=5)
    await tg.wait_for(lambda: len(tg.calls_of("sendMediaGroup")) == 2, 15)
    photos, documents = tg.calls_of("sendMediaGroup")
    names = sorted(name for name, _, _ in documents.files.values())
    assert names == ["red-fox-in-snow_16x9_4K_1.png", "red-fox-in-snow_16x9_4K_2.png"]
    assert int(documents.params["message_thread_id"]) == 5
    assert all(m.get("disable_content_type_detection") for m in documents.params["media"])
    assert documents.params["media"][0]["caption"] == photos.params["media"][0]["caption"]


async def test_cli_with_two_images(img, tmp_path):
    first, second = tmp_path / "a.png", tmp_path / "b.jpg"
    first.write_bytes(picture(fmt="PNG"))
    second.write_bytes(picture(colour=(0, 0, 255)))
    proc = await spawn(
        "generate",
        "merge them",
        "--ar",
        "1:1",
        "--size",
        "1K",
        "--image",
        str(first),
        "--image",
        str(second),
        env=bot_env(img=img, TELEGRAM_BOT_TOKEN="123:unused"),
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    (request,) = img.requests
    assert request.path == "/v1/images/edits" and request.images == [first.read_bytes(), second.read_bytes()]
    assert Path(out.decode().split()[0]).name.endswith("_merge-them_1x1_1K.png")


async def test_reply_to_a_result_edits_it_with_its_own_prompt(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a paper boat --ar 1:1 --1k")
    await harness.result(chat["id"])
    result = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    harness.send(chat, user, "/imagine --ar 1:1 --1k", reply_to=result)
    await harness.result(chat["id"], count=2)
    edit = img.requests[1]
    assert edit.path == "/v1/images/edits" and edit.body["prompt"] == "a paper boat"
    assert len(edit.images) == 1
