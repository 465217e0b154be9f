"""Inline mode (`@bot a red fox` in any chat) and guest mode (the bot mentioned where it is not a member), end to end
against the fakes: the answer, the chosen result as the request, its progress, the image put into the inline
message through the storage chat, 🔁 📐 ✖ 📄 there, failures, and guest messages kept from the ordinary handlers."""

from __future__ import annotations

import io

from PIL import Image

from tests.fakes.telegram import FakeBotAPI

STORAGE = -100_555


def picture(width: int = 320, height: int = 240) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 90, 200)).save(out, "JPEG")
    return out.getvalue()


def buttons(message: dict) -> list[dict]:
    return [b for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]


def button(message: dict, label: str) -> dict:
    for b in buttons(message):
        if label in b["text"]:
            return b
    raise AssertionError(f"no button {label!r} in {[b['text'] for b in buttons(message)]}")


def words(message: dict | None) -> str:
    return (message or {}).get("text") or (message or {}).get("caption") or ""


async def answered(tg: FakeBotAPI, query_id: str) -> dict:
    return await tg.wait_for(lambda: tg.inline_answers.get(query_id), 10, "the inline answer")


async def choose(tg: FakeBotAPI, user: dict, query: str, result_id: str | None = None, chat: dict | None = None):
    query_id = tg.send_inline_query(user, query, chat_type="supergroup")
    answer = await answered(tg, query_id)
    result = answer["results"][0]["id"] if result_id is None else result_id
    return tg.choose_inline_result(user, query_id, result, chat=chat)


async def press(tg: FakeBotAPI, inline_id: str, label: str, user: dict) -> dict:
    data = button(tg.inline_message(inline_id), label)["callback_data"]
    query_id = tg.press_inline(inline_id, data, user)
    return await tg.wait_for(lambda: tg.answered.get(query_id), 10, f"the answer to {label!r}")


async def image_in(tg: FakeBotAPI, inline_id: str, count: int = 1, timeout: float = 15) -> dict:
    def done() -> dict | None:
        media = [c for c in tg.calls_of("editMessageMedia") if c.params.get("inline_message_id") == inline_id]
        message = tg.inline_message(inline_id)
        return message if len(media) >= count and message and ("photo" in message or "document" in message) else None

    return await tg.wait_for(done, timeout, "the image in the inline message")


async def says(tg: FakeBotAPI, inline_id: str, fragment: str, timeout: float = 15) -> dict:
    return await tg.wait_for(
        lambda: fragment in words(tg.inline_message(inline_id)) and tg.inline_message(inline_id),
        timeout,
        f"the inline message to say {fragment!r}",
    )


async def test_without_a_storage_chat_inline_queries_get_one_hint(bot, harness, tg, img):
    user, _ = harness.person()
    query_id = tg.send_inline_query(user, "a red fox --ar 16:9")
    answer = await answered(tg, query_id)
    (hint,) = answer["results"]
    assert hint["title"] == "Inline mode is not set up" and "owner" in hint["input_message_content"]["message_text"]
    assert answer["cache_time"] <= 10 and answer["is_personal"] is True
    updates = tg.calls_of("getUpdates")[-1].params["allowed_updates"]
    assert {"inline_query", "chosen_inline_result", "guest_message"} <= set(updates)
    assert img.requests == []


async def test_inline_answers_name_what_they_make_and_hint_otherwise(start_bot, harness, tg, img):
    await start_bot(inline_storage_chat_id=STORAGE, default_size="2K")
    user, _ = harness.person()
    answer = await answered(tg, tg.send_inline_query(user, "a red fox at dawn --ar 16:9 --size 2K"))
    (result,) = answer["results"]
    assert result["title"] == "🎨 16:9 · 2K" and "2752×1536" in result["description"]
    assert result["reply_markup"]["inline_keyboard"] and answer["cache_time"] <= 10 and answer["is_personal"]

    answer = await answered(tg, tg.send_inline_query(user, "a red fox at dawn"))
    titles = [r["title"] for r in answer["results"]]
    assert titles == ["🎨 1:1 · 2K", "🎨 1:1 · 1K", "🎨 1:1 · 4K"]  # the user's default size first

    for query in ("", "--ar 16:9", "a fox --ar 7:5"):
        (hint,) = (await answered(tg, tg.send_inline_query(user, query)))["results"]
        assert hint["id"] == "hint" and "reply_markup" not in hint, query
    assert img.requests == []  # answering never calls the image API


async def test_a_chosen_result_becomes_the_image_in_its_message(start_bot, harness, tg, img):
    await start_bot(inline_storage_chat_id=STORAGE, user_daily_quota=5)
    user, _ = harness.person()
    group = tg.group(-100_777, "Friends")
    img.delay = 0.6
    sent = await choose(tg, user, "a red fox in snow --ar 16:9 --size 1K", chat=group)
    inline_id = sent.inline_message_id
    working = await says(tg, inline_id, "Generating")
    assert "Cancel" in str(working["reply_markup"]) and "a red fox in snow" in working["text"]
    done = await image_in(tg, inline_id)
    assert done["caption"].endswith("16:9 · 1K · 1376×768") and done["caption"].startswith("a red fox in snow")
    assert [b["text"] for b in buttons(done)] == ["🔁 Again", "📐 Change", "📄 Original"]
    (edit,) = tg.calls_of("editMessageMedia")
    assert not edit.files  # by the storage chat's file id: Telegram takes no upload into an inline message
    kept = await tg.wait_for(
        lambda: len(tg.bot_messages(STORAGE)) == 2 and tg.bot_messages(STORAGE),
        10,
        "the original kept beside the photo",
    )
    assert kept[0]["photo"][-1]["file_id"] == done["photo"][-1]["file_id"] and "document" in kept[1]
    assert tg.bot_messages(group["id"]) == [] and tg.bot_messages(user["id"]) == []  # nothing said beside it
    (request,) = img.requests
    assert (request.body["prompt"], request.body["aspect_ratio"]) == ("a red fox in snow", "16:9")

    # 🔁 Again: the same message shows the progress in its caption, then the new picture
    await press(tg, inline_id, "Again", user)
    await image_in(tg, inline_id, count=2)
    assert len(img.requests) == 2

    # 📐 Change: the options in the same message; 4:3 and Generate make a third one there
    await press(tg, inline_id, "Change", user)
    options = await tg.wait_for(
        lambda: "Generate" in str(tg.inline_message(inline_id).get("reply_markup")) and tg.inline_message(inline_id),
        10,
        "the options in the message",
    )
    assert "×2" not in str(options["reply_markup"]) and "Generate" in str(options["reply_markup"])
    await press(tg, inline_id, "4:3", user)
    await press(tg, inline_id, "Generate", user)
    third = await image_in(tg, inline_id, count=3)
    assert "4:3 · 1K" in third["caption"] and img.requests[-1].body["aspect_ratio"] == "4:3"

    # someone else's press is refused; credits were taken as for any request (3 of 5)
    other, _ = harness.person()
    assert (await press(tg, inline_id, "Again", other))["text"] == "These buttons belong to someone else's request."
    harness.send(tg.private_chat(user), user, "/usage")
    assert "3" in (await harness.reply_text(user["id"], "5"))["text"]


async def test_original_goes_to_the_private_chat_or_by_deep_link(start_bot, harness, tg, img):
    await start_bot(inline_storage_chat_id=STORAGE)
    user, chat = harness.person()
    sent = await choose(tg, user, "a lighthouse --ar 1:1 --size 1K")
    inline_id = sent.inline_message_id
    await image_in(tg, inline_id)

    answer = await press(tg, inline_id, "Original", user)
    assert answer["text"] == "Original sent to our private chat."
    (file,) = [m for m in tg.bot_messages(chat["id"]) if "document" in m]
    assert tg.file_bytes(file["document"]["file_id"]) == img.image_for(img.requests[0])

    stranger, _ = harness.person()
    tg._not_member.add(stranger["id"])  # has never started the bot: Telegram refuses a first message
    sent = await choose(tg, stranger, "a boat --ar 1:1 --size 1K")
    await image_in(tg, sent.inline_message_id)
    answer = await press(tg, sent.inline_message_id, "Original", stranger)
    assert answer["url"].startswith(f"https://t.me/{tg.username}?start=o_")
    tg._not_member.discard(stranger["id"])  # opening the link starts the bot
    tg.start_with_payload(stranger, answer["url"].split("start=", 1)[1])
    await tg.wait_for(lambda: any("document" in m for m in tg.bot_messages(stranger["id"])), 10, "the original")
    assert not any("Hi!" in words(m) for m in tg.bot_messages(stranger["id"]))  # the link's, not the greeting


async def test_cancel_and_failures_end_in_the_inline_message(start_bot, harness, tg, img):
    await start_bot(inline_storage_chat_id=STORAGE)
    user, _ = harness.person()
    img.delay = 5
    sent = await choose(tg, user, "a slow fox --ar 1:1 --size 1K")
    await says(tg, sent.inline_message_id, "Generating")
    await press(tg, sent.inline_message_id, "Cancel", user)
    cancelled = await says(tg, sent.inline_message_id, "a slow fox")
    await tg.wait_for(
        lambda: "Again" in str(tg.inline_message(sent.inline_message_id).get("reply_markup")),
        10,
        "🔁 under the cancelled request",
    )
    assert "photo" not in cancelled

    img.delay = 0
    img.fail_next(401)
    failed = await choose(tg, user, "a fox --ar 1:1 --size 1K")
    message = await says(tg, failed.inline_message_id, "API key was refused")
    assert message["text"].startswith("⚠️") and "Again" in str(message["reply_markup"])


async def test_media_refused_in_the_message_gives_the_deep_link(start_bot, harness, tg, img):
    await start_bot(inline_storage_chat_id=STORAGE)
    user, _ = harness.person()
    tg.fail_next("editMessageMedia", 400, "Bad Request: CHAT_SEND_PHOTOS_FORBIDDEN", times=2)
    sent = await choose(tg, user, "a fox --ar 1:1 --size 1K")
    message = await says(tg, sent.inline_message_id, "takes no pictures")
    link = buttons(message)[0]
    assert link["url"].startswith(f"https://t.me/{tg.username}?start=o_") and "1:1 · 1K" in message["text"]


async def test_guest_mention_replying_to_a_photo_edits_it(start_bot, harness, tg, img):
    await start_bot(inline_storage_chat_id=STORAGE)
    user, _ = harness.person()
    group = tg.group(-100_900, "Not the bot's")
    photo = tg.send_photo(group, user, picture(), caption="my cat")
    guest = tg.send_guest_message(group, user, f"@{tg.username} make it blue --ar 16:9 --size 1K", reply_to=photo)
    answer = await tg.wait_for(lambda: tg.guest_answers.get(guest["guest_query_id"]), 10, "the guest answer")
    assert answer["result"]["title"] == "🎨 16:9 · 1K" and answer["result"]["reply_markup"]
    inline_id = next(iter(tg._inline_messages))
    done = await image_in(tg, inline_id)
    assert "16:9 · 1K" in done["caption"]
    (request,) = img.requests
    assert request.path == "/v1/images/edits" and request.body["prompt"] == "make it blue"
    assert tg.refused() == []  # never a message into the chat the bot is not in

    # a guest message that looks like a command is no ordinary /imagine: one answer, one job
    guest = tg.send_guest_message(group, user, f"/imagine@{tg.username} a red fox --ar 1:1 --size 1K")
    await tg.wait_for(lambda: tg.guest_answers.get(guest["guest_query_id"]), 10, "the second guest answer")
    await tg.wait_for(lambda: len(img.requests) == 2, 15, "the second image")
    assert img.requests[1].body["prompt"] == "a red fox" and tg.refused() == []

    empty = tg.send_guest_message(group, user, f"@{tg.username}")
    hint = await tg.wait_for(lambda: tg.guest_answers.get(empty["guest_query_id"]), 10, "the hint")
    assert hint["result"]["id"] == "hint" and len(img.requests) == 2


async def test_a_result_chosen_in_the_private_chat_is_not_a_prompt(start_bot, harness, tg, img):
    await start_bot(inline_storage_chat_id=STORAGE)
    user, chat = harness.person()
    sent = await choose(tg, user, "a red fox --ar 1:1 --size 1K")  # into the private chat: the bot sees it too
    await image_in(tg, sent.inline_message_id)
    assert len(img.requests) == 1 and tg.bot_messages(chat["id"]) == []


async def test_people_not_allowed_are_told_where_they_asked(start_bot, harness, tg, img):
    await start_bot(inline_storage_chat_id=STORAGE, allowed_user_ids="1")
    user, _ = harness.person()
    (refusal,) = (await answered(tg, tg.send_inline_query(user, "a fox --ar 1:1 --size 1K")))["results"]
    assert str(user["id"]) in refusal["title"]
    group = tg.group(-100_901, "Elsewhere")
    guest = tg.send_guest_message(group, user, f"@{tg.username} a fox")
    answer = await tg.wait_for(lambda: tg.guest_answers.get(guest["guest_query_id"]), 10, "the guest answer")
    assert str(user["id"]) in answer["result"]["title"]
    assert img.requests == [] and tg.refused() == []


async def test_a_style_in_an_inline_query_makes_the_image_in_that_style(start_bot, harness, tg, img):
    await start_bot(inline_storage_chat_id=STORAGE)
    user, _ = harness.person()
    sent = await choose(tg, user, "--style anime a cat on a roof --ar 1:1 --size 1K")
    await image_in(tg, sent.inline_message_id)
    (request,) = img.requests
    assert request.body["prompt"].startswith("a cat on a roof, anime illustration")
    assert "Anime" in words(tg.inline_message(sent.inline_message_id))

    sent = await choose(tg, user, "--style nosuchstyle a cat --ar 1:1 --size 1K")
    await says(tg, sent.inline_message_id, "nosuchstyle")
    assert len(img.requests) == 1
