"""What a new phone user meets first (issue 12): help that says what works, clear keyboards, answers that land."""

from __future__ import annotations

import asyncio
import io
import json

from PIL import Image

from bot.handlers.admin import stats_text
from bot.models import Job, JobStatus, Origin
from bot.options import AspectRatio, ImageRequest, Resolution
from bot.texts import language
from tests.rows import settled


def picture(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "JPEG")
    return out.getvalue()


async def test_start_and_help_say_what_works(bot, harness):
    user, chat = harness.person()
    harness.send(chat, user, "/start")
    start = await harness.reply_text(chat["id"], "Hi!")
    harness.send(chat, user, "/help")
    help_ = await harness.reply_text(chat["id"], "How to use me")
    for text in (start["text"], help_["text"]):
        assert "without /imagine" in text or "plain text" in text
        assert "Keep ratio" in text and "⬆" in text


async def test_a_typo_command_in_private_says_which_commands_exist(bot, harness, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagin a cat")
    answer = await harness.reply_text(chat["id"], "I don't know /imagin")
    assert "/imagine" in answer["text"] and "/help" in answer["text"]
    assert img.requests == []


async def test_keyboard_labels_how_many_and_keeps_a_long_prompt_short(bot, harness):
    user, chat = harness.person()
    long_prompt = "\n".join(f"line {n} of a very long description " + "word " * 30 for n in range(40))
    harness.send(chat, user, "/imagine " + long_prompt)
    kb = await harness.keyboard(chat["id"])
    prompt_part = kb["text"].split("\n\n")[0]
    assert len(prompt_part) <= 210 and prompt_part.count("\n") <= 2 and prompt_part.endswith("…")
    assert "how many (×1 ×2 ×4)" in kb["text"]


async def test_settings_original_switch_fits_a_button(bot, harness):
    user, chat = harness.person()
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    labels = [b["text"] for b in harness.buttons(panel)]
    original = next(label for label in labels if label.startswith("📄"))
    assert len(original) <= 24


async def test_second_tap_on_generate_says_it_is_being_made(start_bot, harness, img):
    await start_bot()
    img.delay = 3
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a slow lighthouse")
    kb = await harness.keyboard(chat["id"])
    await harness.press(kb, "Generate", user)
    await img.wait_for(lambda: img.inflight == 1)
    second = await harness.press_data(
        kb, next(b["callback_data"] for b in harness.buttons(kb) if "Generate" in b["text"]), user
    )
    assert "already being made" in second["text"]
    assert "expired" not in second["text"]
    await harness.result(chat["id"])
    # A keyboard a client still shows after the image came. The job is marked delivered just after the photo is
    # sent, so a tap in between still hears "being made": ask again until the record has caught up.
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        late = await harness.press_data(
            kb, next(b["callback_data"] for b in harness.buttons(kb) if "Generate" in b["text"]), user
        )
        if "already sent" in late["text"] or asyncio.get_running_loop().time() > deadline:
            break
        assert "already being made" in late["text"]
        await asyncio.sleep(0.1)
    assert "already sent" in late["text"]
    assert len(img.requests) == 1


async def test_editing_a_photo_preselects_its_ratio(bot, harness, tg):
    user, chat = harness.person()
    tg.send_photo(chat, user, picture(1200, 900), caption="/imagine make it a watercolour")
    kb = await harness.keyboard(chat["id"])
    assert "✓ 4:3" in str(kb["reply_markup"]) and "✓ 1:1" not in str(kb["reply_markup"])
    assert "Editing 1 image." in kb["text"] and "image(s)" not in kb["text"]


async def test_cancel_answers_in_a_group(start_bot, harness, tg, img):
    await start_bot()
    img.delay = 10
    member = tg.user(601, "Member")
    group = tg.group(-100601, "Group")
    harness.send(group, member, "/imagine a long one --ar 1:1 --1k")
    await img.wait_for(lambda: img.inflight == 1)
    harness.send(group, member, "/cancel")
    answer = await harness.reply_text(group["id"], "✖ Cancelled: 1:1 · 1K")
    assert "a long one" in answer["text"]
    await img.wait_for(lambda: img.requests[0].aborted)


async def test_reply_to_the_keyboard_takes_the_requests_prompt(bot, harness, tg):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a red fox in snow")
    kb = await harness.keyboard(chat["id"])
    harness.send(chat, user, "/imagine watercolour", reply_to=kb)

    def second_keyboard() -> dict | None:
        boards = [m for m in tg.bot_messages(chat["id"]) if "Generate" in str(m.get("reply_markup"))]
        return boards[1] if len(boards) > 1 else None

    again = await tg.wait_for(second_keyboard, 10, "a second keyboard")
    assert again["text"].startswith("🎨 a red fox in snow\nwatercolour\n\n")
    assert "Shape" not in again["text"].split("\n\n")[0]


async def test_quota_message_suggests_a_smaller_size_only_when_it_is_cheaper(start_bot, harness):
    await start_bot(user_daily_quota=1)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine first --ar 1:1 --2k")
    await harness.result(chat["id"])
    harness.send(chat, user, "/imagine second --ar 1:1 --2k")  # 1K costs the same as 2K by default
    refused = await harness.reply_text(chat["id"], "Not enough credits")
    assert "smaller size" not in refused["text"]


async def test_history_is_one_line_per_request(bot, harness, tg):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine four foxes --ar 1:1 --1k --n 4")
    await tg.wait_for(lambda: tg.calls_of("sendMediaGroup"), 15, "the album")
    await harness.reply_text(chat["id"], "🎨 ×4")
    assert await settled(bot.settings.database) == ["done"] * 4  # recorded just after the album went
    harness.send(chat, user, "/history")
    listing = await harness.reply_text(chat["id"], "Your images here")
    assert listing["text"].count("four foxes") == 1 and "×4" in listing["text"]
    assert [b["text"] for b in harness.buttons(listing)] == ["📤 1", "🔁 1"]
    await harness.press(listing, "📤 1", user)
    await tg.wait_for(lambda: len(tg.calls_of("sendMediaGroup")) == 2, 10, "the album sent again")
    buttons = await tg.wait_for(
        lambda: [m for m in tg.bot_messages(chat["id"]) if "🎨 ×4" in (m.get("text") or "")][1:],
        10,
        "its buttons again",
    )
    assert "⬆ 4 · 4K" in str(buttons[0]["reply_markup"])


def test_traditional_chinese_is_its_own_language():
    for code in ("zh-hant", "zh-TW", "zh-hk", "zh-MO", "zh-Hant-TW"):
        assert language(code) == "zh-hant"
    assert language("zh-hans") == language("zh-CN") == "zh"


async def test_traditional_chinese_users_get_traditional_texts_and_menu(bot, harness, tg):
    user, chat = harness.person(language_code="zh-hant")
    harness.send(chat, user, "/start")
    await harness.reply_text(chat["id"], "傳送 /imagine")
    scope = json.dumps({"type": "chat", "chat_id": chat["id"]}, sort_keys=True)
    menu = await tg.wait_for(lambda: tg.commands.get((scope, "")), 5, "the chat's own menu")
    assert next(c["description"] for c in menu if c["command"] == "imagine").startswith("生成圖片")
    assert all(len(lang) == 2 for _, lang in tg.commands if lang)  # language codes of menus are two letters


async def test_traditional_chinese_can_be_chosen_in_settings(bot, harness, tg):
    user, chat = harness.person(language_code="en")
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    await harness.press(panel, "繁體中文", user)
    await tg.wait_for(lambda: "預設設定" in tg.message(chat["id"], panel["message_id"])["text"])
    harness.send(chat, user, "/imagine --ar 7:5 狐狸")
    answer = await harness.reply_text(chat["id"], "7:5")
    assert "1:1、2:3" in answer["text"] and " 或 21:9" in answer["text"]


def test_stats_speak_the_users_words_in_each_language():
    origin = Origin(1, 1)
    jobs = [
        Job(
            f"j{n}",
            origin,
            ImageRequest("x", AspectRatio.SQUARE, Resolution.K1),
            status=JobStatus.FAILED,
            error_kind=kind,
        )
        for n, kind in enumerate(["reference_download", "auth", "auth"])
    ]
    english = stats_text(jobs, 0, "en")
    assert "API key refused 2, reference image could not be downloaded 1" in english
    assert "reference_download" not in english and "auth" not in english
    chinese = stats_text(jobs, 0, "zh")
    assert "API 密钥被拒绝 2、参考图无法下载 1" in chinese and "reference_download" not in chinese
