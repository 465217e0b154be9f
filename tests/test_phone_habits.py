"""Habits of people on phones (issue 19): pictures first and words after, files "without compression", long
prompts the app splits, edited prompts, other bots' flags, things that are no picture, a cancelled keyboard."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from tests.rows import album_kept, pictures_waiting


def jpeg(width: int, height: int, colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG")
    return out.getvalue()


def animated_webp() -> bytes:
    out = io.BytesIO()
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    return out.getvalue()


async def test_a_file_is_measured_at_intake_and_keep_ratio_works(bot, harness, tg, img):
    user, chat = harness.person()
    tg.send_document(chat, user, jpeg(1200, 900), "IMG_2024.jpg", "image/jpeg", caption="/imagine make it night")
    kb = await harness.keyboard(chat["id"])
    assert "✓ 4:3" in str(kb["reply_markup"])  # its own shape preselected, like a photo's
    await harness.press(kb, "16:9", user)
    await tg.wait_for(lambda: "✓ 16:9" in str(tg.message(chat["id"], kb["message_id"])["reply_markup"]))
    answer = await harness.press(kb, "Keep ratio", user)
    assert "wrong" not in (answer.get("text") or "")
    await tg.wait_for(
        lambda: "✓ 4:3" in str(tg.message(chat["id"], kb["message_id"])["reply_markup"]), what="Keep ratio back on 4:3"
    )
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    (request,) = img.requests
    assert request.body["aspect_ratio"] == "4:3" and request.images


async def test_a_picture_without_words_waits_for_the_next_text(bot, harness, tg, img):
    user, chat = harness.person()
    tg.send_photo(chat, user, jpeg(900, 1200))
    await harness.reply_text(chat["id"], "Now send what to do with it")
    await pictures_waiting(bot.settings.database, chat["id"], user["id"])  # kept just after that line
    assert img.requests == []
    harness.send(chat, user, "make it a watercolour")
    kb = await harness.keyboard(chat["id"])
    assert "Editing 1 image" in kb["text"] and "✓ 3:4" in str(kb["reply_markup"])
    assert "Without the picture" in str(kb["reply_markup"])
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    (request,) = img.requests
    assert request.path.endswith("/edits") and request.body["prompt"] == "make it a watercolour"
    # taken once: the next text is a new image of its own
    harness.send(chat, user, "a lighthouse --ar 1:1 --1k")
    await harness.result(chat["id"], count=2)
    assert img.requests[1].path.endswith("/generations")


async def test_words_sent_right_after_a_picture_are_its_instruction(bot, harness, tg, img):
    """A photo and then its words at once (two messages shared together, or typed quickly): the words are handled
    after the photo, in the chat's order, so they find it instead of making a new image without it."""
    user, chat = harness.person()
    for n in range(3):
        tg.send_photo(chat, user, jpeg(900, 1200))
        harness.send(chat, user, f"make it a watercolour {n}")
        kb = await tg.wait_for(
            lambda n=n: next(
                (m for m in tg.bot_messages(chat["id"]) if f"watercolour {n}" in (m.get("text") or "")), None
            ),
            10,
            "its keyboard",
        )
        assert "Editing 1 image" in kb["text"] and "✓ 3:4" in str(kb["reply_markup"])


async def test_words_sent_right_after_an_album_take_the_whole_album(bot, harness, tg, img):
    """An album and then its words at once: the album's first part is kept waiting for words before the text is
    handled, and the text takes the album once it is whole."""
    user, chat = harness.person()
    photos = [jpeg(900 + 10 * n, 1200) for n in range(4)]
    for p in photos:
        tg.send_photo(chat, user, p, media_group_id="shared-4")
    harness.send(chat, user, "make them one watercolour --ar 3:4 --1k")
    await harness.result(chat["id"])
    (request,) = img.requests
    assert request.images == photos and request.body["prompt"] == "make them one watercolour"


async def test_the_waiting_picture_can_be_dropped_for_a_new_image(bot, harness, tg, img):
    user, chat = harness.person()
    tg.send_document(chat, user, jpeg(800, 800), "scan.jpg", "image/jpeg")
    await harness.reply_text(chat["id"], "Now send what to do with it")
    await pictures_waiting(bot.settings.database, chat["id"], user["id"])
    harness.send(chat, user, "a castle on a hill")
    kb = await harness.keyboard(chat["id"])
    await harness.press(kb, "Without the picture", user)
    kb = await tg.wait_for(lambda: (m := tg.message(chat["id"], kb["message_id"])) and m["text"].startswith("🎨") and m)
    assert "Without the picture" not in str(kb["reply_markup"])
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].path.endswith("/generations")


async def test_an_album_without_words_is_answered_once_and_used_whole(bot, harness, tg, img):
    user, chat = harness.person()
    for colour in ((200, 0, 0), (0, 200, 0), (0, 0, 200)):
        tg.send_photo(chat, user, jpeg(640, 480, colour), media_group_id="holiday")
    await harness.reply_text(chat["id"], "Got the pictures")
    await album_kept(bot.settings.database, chat["id"], "holiday", 3)  # every part handled: any second answer sent
    await pictures_waiting(bot.settings.database, chat["id"], user["id"])
    await asyncio.sleep(0.5)
    assert sum("Got the pictures" in text for text in harness.texts(chat["id"])) == 1
    harness.send(chat, user, "one poster of all three --ar 16:9 --1k")
    await harness.result(chat["id"])
    (request,) = img.requests
    assert len(request.images) == 3


async def test_what_is_no_picture_is_named_at_once(bot, harness, tg, img):
    user, chat = harness.person()
    for kind, named in (
        ("sticker", "stickers"),
        ("voice", "voice messages"),
        ("video", "videos"),
        ("animation", "GIFs"),
    ):
        tg.send_media(chat, user, kind)
        await harness.reply_text(chat["id"], f"I can't use {named}")
    tg.send_document(chat, user, b"%PDF-1.4 not a picture", "menu.pdf", "application/pdf")
    await harness.reply_text(chat["id"], "menu.pdf")
    assert img.requests == []


async def test_an_animated_picture_is_refused_before_anything_is_reserved(bot, harness, tg, img):
    user, chat = harness.person()
    tg.send_document(chat, user, animated_webp(), "loop.webp", "image/webp", caption="/imagine make it blue")
    await harness.reply_text(chat["id"], "(loop.webp) moves")
    tg.send_media(chat, user, "animation", caption="/imagine make it blue")
    await harness.reply_text(chat["id"], "I can't use GIFs")
    assert img.requests == [] and not any("Generate" in str(m.get("reply_markup")) for m in tg.bot_messages(chat["id"]))


async def test_a_long_prompt_split_by_the_app_is_one_request(bot, harness, tg, img):
    user, chat = harness.person()
    head = "/imagine " + "a very detailed castle " * 180  # over 4,000 characters, as the app cuts at 4,096
    tail = "with a dragon on the tower --ar 16:9"
    assert len(head) > 4000
    harness.send(chat, user, head)
    harness.send(chat, user, tail)
    await tg.wait_for(
        lambda: (
            (kb := [m for m in tg.bot_messages(chat["id"]) if "Generate" in str(m.get("reply_markup"))])
            and "✓ 16:9" in str(kb[-1]["reply_markup"])
        ),
        what="one keyboard with the tail's flag",
    )
    await asyncio.sleep(0.5)
    keyboards = [m for m in tg.bot_messages(chat["id"]) if "Generate" in str(m.get("reply_markup"))]
    assert len(keyboards) == 1
    await harness.press(keyboards[0], "Generate", user)
    await harness.result(chat["id"])
    (request,) = img.requests
    assert request.body["prompt"].endswith("castle with a dragon on the tower")
    assert request.body["prompt"].startswith("a very detailed castle")


async def test_an_edited_prompt_changes_the_open_keyboard(bot, harness, tg, img):
    user, chat = harness.person()
    mine = harness.send(chat, user, "/imagine a red fxo in snow")
    kb = await harness.keyboard(chat["id"])
    tg.edit_text(mine, "/imagine a red fox in snow")
    await tg.wait_for(
        lambda: "a red fox in snow" in tg.message(chat["id"], kb["message_id"])["text"],
        what="the keyboard's prompt line to change",
    )
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].body["prompt"] == "a red fox in snow"
    sent = len(tg.calls)
    tg.edit_text(mine, "/imagine a blue fox")  # after Generate: nothing changes, nothing is said
    harness.send(chat, user, "/id")  # handled after the edit (the chat's order): its answer is the only message
    await harness.reply_text(chat["id"], "Your user id")
    said = [c.params["text"] for c in tg.calls[sent:] if c.method == "sendMessage"]
    assert len(img.requests) == 1 and len(said) == 1 and said[0].startswith("Your user id"), said


async def test_other_bots_flags_are_named_and_left_out(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a koi pond -- at dusk --v 6 --no text --seed 42")
    kb = await harness.keyboard(chat["id"])
    assert kb["text"].startswith("Not options here: --v 6, --no text, --seed 42")
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].body["prompt"] == "a koi pond -- at dusk"
    harness.send(chat, user, "/imagine a heron --stylize 250 --ar 2:3 --2k")  # starts at once: said in a line
    await harness.result(chat["id"], count=2)
    await harness.reply_text(chat["id"], "Not options here: --stylize 250")
    assert img.requests[1].body["prompt"] == "a heron"


async def test_a_broken_flag_in_a_split_prompts_tail_is_said_and_left_out(bot, harness, tg, img):
    user, chat = harness.person()
    head = "/imagine " + "a very detailed castle " * 180
    harness.send(chat, user, head)
    harness.send(chat, user, "with a dragon on the tower --ar 7:3 --size 2K")
    await harness.reply_text(chat["id"], "7:3")
    keyboards = [m for m in tg.bot_messages(chat["id"]) if "Generate" in str(m.get("reply_markup"))]
    assert len(keyboards) == 1
    await harness.press(keyboards[0], "Generate", user)
    await harness.result(chat["id"])
    (request,) = img.requests
    assert request.body["prompt"].endswith("castle with a dragon on the tower")
