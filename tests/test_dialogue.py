"""The /imagine dialogue through the fake Bot API and fake image API, as a user meets it."""

from __future__ import annotations

import io

from PIL import Image

from bot.options import PIXELS, AspectRatio, Resolution


async def test_keyboard_pick_and_generate(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a red fox in fresh snow")
    kb = await harness.keyboard(chat["id"])
    labels = [b["text"] for b in harness.buttons(kb)]
    for ratio in AspectRatio:
        assert any(label.endswith(ratio.value) for label in labels), ratio
    assert "✓ 1:1" in labels and "✓ 1K" in labels  # defaults preselected
    assert all(len(b["callback_data"].encode()) <= 64 for b in harness.buttons(kb))

    await harness.press(kb, "16:9", user)
    await tg.wait_for(lambda: "✓ 16:9" in str(tg.message(chat["id"], kb["message_id"])["reply_markup"]))
    await harness.press(kb, "2K", user)
    edited = await tg.wait_for(
        lambda: (m := tg.message(chat["id"], kb["message_id"])) and "✓ 2K" in str(m["reply_markup"]) and m
    )
    assert "✓ 1:1" not in str(edited["reply_markup"]) and "✓ 1K" not in str(edited["reply_markup"])
    assert len(tg.calls_of("sendMessage")) == 1  # the same message was edited, never a new one

    await harness.press(kb, "Generate", user)
    (upload,) = await harness.result(chat["id"])
    (request,) = img.requests
    assert request.body["aspect_ratio"] == "16:9" and request.body["size"] == "2K"
    assert request.body["n"] == 1 and request.body["model"] == "nano-banana-2"
    assert request.body["prompt"] == "a red fox in fresh snow"
    assert request.headers["Authorization"] == f"Bearer {img.api_key}"

    assert upload.method == "sendPhoto"
    ((_, data, _),) = upload.files.values()
    assert data == img.image_for(request)
    assert Image.open(io.BytesIO(data)).size == PIXELS[(AspectRatio("16:9"), Resolution("2K"))]
    assert "a red fox in fresh snow" in upload.params["caption"] and "16:9 · 2K" in upload.params["caption"]
    labels = [b["text"] for row in upload.params["reply_markup"]["inline_keyboard"] for b in row]
    assert any("Again" in x for x in labels) and any("Change" in x for x in labels)
    assert any("Original" in x for x in labels)
    # the status line is gone, every callback was answered, the upload_photo action was shown
    await tg.wait_for(lambda: tg.message(chat["id"], kb["message_id"]) is None, what="status line removed")
    assert len(tg.answered) == 3
    assert any(c.params.get("action") == "upload_photo" for c in tg.calls_of("sendChatAction"))


async def test_flags_start_at_once_and_b64_answer(bot, harness, tg, img):
    img.response_format = "b64_json"
    user, chat = harness.person()
    harness.send(chat, user, "/imagine@imagine_test_bot a lighthouse at night —ar 9:16 --4K")
    (upload,) = await harness.result(chat["id"])
    (request,) = img.requests
    assert (request.body["aspect_ratio"], request.body["size"]) == ("9:16", "4K")
    assert request.body["prompt"] == "a lighthouse at night"
    ((_, data, _),) = upload.files.values()
    assert data == img.image_for(request)
    assert not any("Generate" in str(m.get("reply_markup")) for m in tg.bot_messages(chat["id"]))


async def test_one_flag_preselects_it_on_the_keyboard(bot, harness):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a castle --size 4k")
    kb = await harness.keyboard(chat["id"])
    assert "✓ 4K" in str(kb["reply_markup"]) and "✓ 1:1" in str(kb["reply_markup"])
    assert kb["text"].startswith("🎨 a castle")


async def test_empty_prompt_gets_usage(bot, harness):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine")
    await harness.reply_text(chat["id"], "Tell me what to draw")


async def test_unknown_values_list_the_valid_ones(bot, harness, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a cat --ar 7:3")
    msg = await harness.reply_text(chat["id"], "7:3")
    assert "16:9" in msg["text"] and "21:9" in msg["text"]
    harness.send(chat, user, "/imagine a cat --size 8k")
    msg = await harness.reply_text(chat["id"], "8k")
    assert "1K, 2K or 4K" in msg["text"]
    assert img.requests == []


async def test_prompt_over_the_api_limit_is_refused(bot, harness, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine " + "x" * 32_001)
    msg = await harness.reply_text(chat["id"], "32,000")
    assert "32,001" in msg["text"]
    assert img.requests == []


async def test_edited_command_is_not_run_again(bot, harness, tg):
    user, chat = harness.person()
    msg = harness.send(chat, user, "/imagine a tree")
    await harness.keyboard(chat["id"])
    tg.edit_text(msg, "/imagine a different tree")
    harness.send(chat, user, "/help")
    await harness.reply_text(chat["id"], "How to use me")
    assert sum("Generate" in str(m.get("reply_markup")) for m in tg.bot_messages(chat["id"])) == 1


async def test_reply_to_a_message_uses_its_text(bot, harness, tg, img):
    user, chat = harness.person()
    original = harness.send(chat, user, "an old mill by a river")
    harness.send(chat, user, "/imagine watercolour --ar 3:2 --1k", reply_to=original)
    await harness.result(chat["id"])
    assert img.requests[0].body["prompt"] == "an old mill by a river\nwatercolour"


async def test_cancel_keyboard(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a boat")
    kb = await harness.keyboard(chat["id"])
    await harness.press(kb, "Cancel", user)
    msg = await tg.wait_for(lambda: (m := tg.message(chat["id"], kb["message_id"])) and "Cancelled" in m["text"] and m)
    assert "a boat" in msg["text"]  # the prompt is kept…
    assert [b["text"] for b in harness.buttons(msg)] == ["↩ Start again"]  # …and one tap brings the choices back
    assert img.requests == []
    await harness.press(msg, "Start again", user)
    kb = await tg.wait_for(lambda: (m := tg.message(chat["id"], kb["message_id"])) and "Generate" in str(m) and m)
    assert kb["text"].startswith("🎨 a boat")
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].body["prompt"] == "a boat"


async def test_stale_junk_and_foreign_callbacks(bot, harness, tg, img):
    owner, chat = harness.person()
    stranger = tg.user(4242, "Stranger")
    harness.send(chat, owner, "/imagine a bridge")
    kb = await harness.keyboard(chat["id"])
    answer = await harness.press(kb, "Generate", stranger)
    assert "someone else" in answer["text"]
    answer = await harness.press_data(kb, "g:nonexistent", owner)
    assert "expired" in answer["text"]
    answer = await harness.press_data(kb, "something-from-an-old-version", owner)
    assert "expired" in answer["text"]
    answer = await harness.press_data(kb, "r:" + "x" * 8 + ":99x1", owner)
    assert "expired" in answer["text"]
    assert img.requests == []
    # Generate twice fast: one job only
    data = harness.button(kb, "Generate")["callback_data"]
    first, second = tg.press(kb, data, owner), tg.press(kb, data, owner)
    await tg.wait_for(lambda: first in tg.answered and second in tg.answered)
    await harness.result(chat["id"])
    assert len(img.requests) == 1


async def test_every_ratio_and_size_reaches_the_api(start_bot, harness, tg, img):
    """All 30 combinations asked by flags (by ten users, three each: one chat would be paced at about a message a
    second, as Telegram asks); each request carries exactly what was asked."""
    await start_bot(user_max_waiting=30)
    combos = [(r, s) for r in AspectRatio for s in Resolution]
    people = [harness.person() for _ in AspectRatio]
    for (ratio, size), (user, chat) in zip(combos, [p for p in people for _ in Resolution]):
        harness.send(chat, user, f"/imagine test {ratio}-{size} --ar {ratio} --size {size.lower()}")
    for _, chat in people:
        await harness.result(chat["id"], count=len(Resolution), timeout=60)
    seen = {(r.body["aspect_ratio"], r.body["size"]) for r in img.requests}
    assert seen == {(r.value, s.value) for r, s in combos}
    for r in img.requests:
        assert r.body["prompt"] == f"test {r.body['aspect_ratio']}-{r.body['size']}"


async def test_plain_text_in_a_private_chat_is_a_prompt(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "a cosy cabin in the woods --ar 4:5 --2k")
    await harness.result(chat["id"])
    assert img.requests[0].body["prompt"] == "a cosy cabin in the woods"
    group = tg.group(-100123, "Chatty")
    harness.send(group, user, "just chatting in a group")
    harness.send(group, user, "/help")
    await harness.reply_text(group["id"], "How to use me")
    assert len(img.requests) == 1 and len(tg.bot_messages(group["id"])) == 1


async def test_quick_taps_are_handled_in_order(bot, harness, tg, img):
    """16:9, 4K, then Generate, tapped faster than the bot answers: the image is 16:9 · 4K, never the defaults."""
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a fast thumb")
    kb = await harness.keyboard(chat["id"])
    for label in ("16:9", "4K", "Generate"):
        tg.press(kb, harness.button(kb, label)["callback_data"], user)
    await harness.result(chat["id"])
    assert (img.requests[0].body["aspect_ratio"], img.requests[0].body["size"]) == ("16:9", "4K")
    assert len(tg.answered) == 3


async def test_a_keyboard_too_old_to_edit_still_works(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine an old keyboard")
    kb = await harness.keyboard(chat["id"])
    tg.fail_next("editMessageReplyMarkup", 400, "Bad Request: message can't be edited")
    await harness.press(kb, "9:16", user)
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].body["aspect_ratio"] == "9:16"  # the choice counted, though the ✓ could not move
    assert not any("went wrong" in x for x in harness.texts(chat["id"]))
