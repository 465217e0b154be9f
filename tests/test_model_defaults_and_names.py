"""A model's own options as remembered defaults (/settings' Quality row for GPT Image 2), the model named on status
lines and in the job's log line when several are offered (never with one), and /usage's costs of the default model
— through the fakes, each request checked by the fake image API against its vendor's rules."""

from __future__ import annotations

import logging

NANO, PRO, GPT, SEEDREAM = "nano-banana-2", "gemini-3-pro-image", "gpt-image-2", "doubao-seedream-4-5-251128"
ALL = f"{NANO},{PRO},{GPT},{SEEDREAM}"


def labels(message: dict) -> list[str]:
    return [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


def checked(message: dict) -> list[str]:
    return [label[2:] for label in labels(message) if label.startswith("✓ ")]


async def press_until(harness, tg, message: dict, label: str, user: dict, shows: str) -> dict:
    await harness.press(message, label, user)
    chat, mid = message["chat"]["id"], message["message_id"]
    return await tg.wait_for(lambda: (m := tg.message(chat, mid)) and shows in str(m) and m, 10, repr(shows))


async def usage(harness, chat: dict, user: dict) -> str:
    def answers() -> list[str]:
        return [text for text in harness.texts(chat["id"]) if "Costs" in text]

    before = len(answers())
    harness.send(chat, user, "/usage")
    await harness.tg.wait_for(lambda: len(answers()) > before, 10, "the /usage answer")
    return answers()[-1]


async def test_settings_remember_the_default_models_quality(start_bot, harness, tg, img):
    await start_bot(image_models=ALL)
    user, chat = harness.person()
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    assert "Quality" not in panel["text"] and "Medium" not in labels(panel)  # Banana 2 has no such option
    panel = await press_until(harness, tg, panel, "GPT Image 2", user, "Quality: Medium")
    assert {"GPT Image 2", "Medium"} <= set(checked(panel)) and {"Low", "High"} <= set(labels(panel))
    panel = await press_until(harness, tg, panel, "High", user, "Quality: High")
    assert "High" in checked(panel)

    harness.send(chat, user, "/imagine a heron")
    keyboard = await harness.keyboard(chat["id"])
    assert "High" in checked(keyboard) and "✨ Generate (credits: 4)" in labels(keyboard)
    await harness.press(keyboard, "✨ Generate", user)
    await harness.result(chat["id"])
    assert img.requests[-1].body["quality"] == "high"

    harness.send(chat, user, "/imagine a heron --quality low --ar 1:1 --1k")  # the flag still wins
    await harness.result(chat["id"], count=2)
    assert img.requests[-1].body["quality"] == "low"

    text = await usage(harness, chat, user)
    assert "Costs with GPT Image 2 · high: 1K = 4, 2K = 4, 4K = 8 credits." in text
    assert "Your default now, GPT Image 2 · 1:1 · 1K · high, costs 4 credits" in text

    panel = await press_until(harness, tg, panel, "🍌 Banana 2", user, "Model: 🍌 Banana 2")
    assert "Quality" not in panel["text"] and "High" not in labels(panel)
    text = await usage(harness, chat, user)
    assert "Costs with 🍌 Banana 2: 1K = 1, 2K = 1, 4K = 2 credits." in text


async def test_a_stale_quality_button_changes_nothing(start_bot, harness, tg, img):
    await start_bot(image_models=ALL)
    user, chat = harness.person()
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    gpt = await press_until(harness, tg, panel, "GPT Image 2", user, "Quality: Medium")
    high = harness.button(gpt, "High")["callback_data"]
    await press_until(harness, tg, gpt, "🍌 Banana 2", user, "Model: 🍌 Banana 2")
    answer = await harness.press_data(gpt, high, user)  # a Quality button from before Banana 2 became the default
    assert "expired" in str(answer).lower() or "no longer" in str(answer).lower()
    await press_until(harness, tg, gpt, "GPT Image 2", user, "Quality: Medium")


async def test_one_model_with_its_own_option_has_the_row_and_no_word_of_models(start_bot, harness, tg, img):
    await start_bot(image_models=GPT)
    user, chat = harness.person()
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    assert "Model" not in panel["text"] and "GPT Image 2" not in labels(panel)
    panel = await press_until(harness, tg, panel, "Low", user, "Quality: Low")
    assert "Costs: 1K = 1, 2K = 1, 4K = 2 credits." in await usage(harness, chat, user)


async def test_status_lines_and_the_log_line_name_the_model_when_several_are_offered(
    start_bot, harness, tg, img, caplog
):
    caplog.set_level(logging.INFO, logger="bot")
    await start_bot(image_models=ALL)
    img.delay = 1.5
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a lighthouse --model gpt --ar 1:1 --1k")
    await harness.status_says(chat["id"], "🎨 Generating GPT Image 2 · 1:1 · 1K · medium…")
    await harness.result(chat["id"])
    await tg.wait_for(lambda: "gpt-image-2 1:1 · 1K · medium: done" in caplog.text, 10, "the job's log line")
    (record,) = [r for r in caplog.records if "medium: done" in r.getMessage()]
    assert record.model == GPT  # type: ignore[attr-defined]


async def test_with_one_model_status_lines_and_the_log_line_say_nothing_of_it(bot, harness, tg, img, caplog):
    caplog.set_level(logging.INFO, logger="bot")
    img.delay = 1.5
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a lighthouse --ar 1:1 --1k")
    line = await harness.status_says(chat["id"], "🎨 Generating 1:1 · 1K…")
    assert "Banana" not in line["text"]
    await harness.result(chat["id"])
    await tg.wait_for(lambda: " 1:1 · 1K: done" in caplog.text, 10, "the job's log line")
    assert NANO not in caplog.text.split(" 1:1 · 1K: done")[0].splitlines()[-1]
    text = await usage(harness, chat, user)
    assert "Costs: 1K = 1, 2K = 1, 4K = 2 credits. Credits reset" in text  # as before models came


async def test_usage_costs_follow_a_default_model_without_1k(start_bot, harness, tg, img):
    await start_bot(image_models=f"{SEEDREAM},{NANO}", model_credits="doubao-seedream-4-5-251128:4K=5")
    user, chat = harness.person()
    assert "Costs with Seedream 4.5: 2K = 2, 4K = 5 credits." in await usage(harness, chat, user)
