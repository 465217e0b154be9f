"""The default model everywhere a user reads their defaults: /start's and /help's quota line give its costs (as
/usage does), /settings' ratio and size rows are its own (Seedream 4.5 has no 1K; a model with fewer ratios shows
only those), keeping the closest remembered choice when the default model changes; and a group's remembered Quality
starts its keyboard's Quality row — through the fakes."""

from __future__ import annotations

import pytest

from bot import imagemodels
from bot.imagemodels import Profile, nano_banana_2
from bot.imagemodels.profile import ratio_option, size_option

NANO, GPT, SEEDREAM = "nano-banana-2", "gpt-image-2", "doubao-seedream-4-5-251128"
ALL = f"{NANO},gemini-3-pro-image,{GPT},{SEEDREAM}"


def labels(message: dict) -> list[str]:
    return [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


def checked(message: dict) -> list[str]:
    return [label[2:] for label in labels(message) if label.startswith("✓ ")]


def ratio_and_size_labels(message: dict) -> list[str]:
    return [label.removeprefix("✓ ") for label in labels(message) if label.removeprefix("✓ ")[:1].isdigit()]


async def press_until(harness, tg, message: dict, label: str, user: dict, shows: str) -> dict:
    await harness.press(message, label, user)
    chat, mid = message["chat"]["id"], message["message_id"]
    return await tg.wait_for(lambda: (m := tg.message(chat, mid)) and shows in str(m) and m, 10, repr(shows))


async def said(harness, chat: dict, user: dict, command: str, contains: str) -> str:
    before = len(harness.texts(chat["id"]))
    harness.send(chat, user, command)
    await harness.tg.wait_for(
        lambda: any(contains in text for text in harness.texts(chat["id"])[before:]), 10, f"the {command} answer"
    )
    return next(text for text in harness.texts(chat["id"])[before:] if contains in text)


# ---- 1. /start and /help: the default model's costs ----


async def test_with_one_model_the_quota_line_is_as_before(start_bot, harness, tg):
    await start_bot(user_daily_quota=20)
    user, chat = harness.person()
    text = await said(harness, chat, user, "/start", "Today:")
    assert "Today: 20 of 20 credits left (1K = 1, 2K = 1, 4K = 2)." in text
    assert "Today: 20 of 20 credits left (1K = 1, 2K = 1, 4K = 2)." in await said(harness, chat, user, "/help", "Today")


async def test_the_quota_line_gives_the_default_models_costs(start_bot, harness, tg):
    await start_bot(image_models=ALL, user_daily_quota=20)
    user, chat = harness.person()
    assert "(🍌 Banana 2: 1K = 1, 2K = 1, 4K = 2)." in await said(harness, chat, user, "/start", "Today:")
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    panel = await press_until(harness, tg, panel, "GPT Image 2", user, "Quality: Medium")
    await press_until(harness, tg, panel, "High", user, "Quality: High")
    line = "Today: 20 of 20 credits left (GPT Image 2 · high: 1K = 4, 2K = 4, 4K = 8)."
    assert line in await said(harness, chat, user, "/start", "Today:")
    assert line in await said(harness, chat, user, "/help", "Today:")


async def test_the_quota_line_of_a_default_model_without_1k(start_bot, harness, tg):
    await start_bot(image_models=f"{SEEDREAM},{NANO}", user_daily_quota=20)
    user, chat = harness.person()
    text = await said(harness, chat, user, "/start", "Today:")
    assert "Today: 20 of 20 credits left (Seedream 4.5: 2K = 2, 4K = 3)." in text and "1K" not in text


# ---- 2. /settings: the default model's own ratios and sizes ----


async def test_settings_sizes_follow_the_default_model_and_keep_the_remembered_choice(start_bot, harness, tg):
    await start_bot(image_models=f"{NANO},{SEEDREAM}")
    user, chat = harness.person()
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    panel = await press_until(harness, tg, panel, "1K", user, "Resolution: 1K")
    one_k = harness.button(panel, "1K")["callback_data"]
    panel = await press_until(harness, tg, panel, "Seedream 4.5", user, "Model: Seedream 4.5")
    assert "Resolution: 2K" in panel["text"]  # 1K where there is none: the smallest tier, as a request starts
    assert "1K" not in ratio_and_size_labels(panel) and {"2K", "4K"} <= set(ratio_and_size_labels(panel))
    assert "2K" in checked(panel)
    answer = await harness.press_data(panel, one_k, user)  # a 1K button from before Seedream became the default
    assert "expired" in str(answer).lower() or "no longer" in str(answer).lower()

    harness.send(chat, user, "/imagine a harbour")
    keyboard = await harness.keyboard(chat["id"])
    assert "2K" in checked(keyboard)

    panel = await press_until(harness, tg, panel, "🍌 Banana 2", user, "Model: 🍌 Banana 2")
    assert "Resolution: 1K" in panel["text"] and "1K" in checked(panel)  # what was remembered, back again


TOY_RATIOS = ("1:1", "16:9")
TOY = Profile(  # a model with fewer ratios, served with nano-banana-2's request shape (the gateway id mapping)
    name="toy-wide-1",
    label="Toy Wide",
    aliases=("toywide",),
    options=(ratio_option(TOY_RATIOS), size_option(("1K", "2K"))),
    pixels={k: v for k, v in nano_banana_2.PIXELS.items() if k[0] in TOY_RATIOS and k[1] != "4K"},
    credits={},
    api="images",
    path="/v1/images/generations",
    edit_path="/v1/images/edits",
    fields=nano_banana_2.PROFILE.fields,
)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(imagemodels.PROFILES, TOY.name, TOY)
    return TOY


async def test_settings_ratios_follow_the_default_model(toy, start_bot, harness, tg, img):
    await start_bot(image_models=f"{NANO},{TOY.name}={NANO}")
    user, chat = harness.person()
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    assert "21:9" in ratio_and_size_labels(panel)
    panel = await press_until(harness, tg, panel, "21:9", user, "Shape: 21:9")
    panel = await press_until(harness, tg, panel, "Toy Wide", user, "Model: Toy Wide")
    assert "Shape: 16:9" in panel["text"] and "16:9" in checked(panel)  # the closest it has
    assert ratio_and_size_labels(panel) == ["1:1", "16:9", "1K", "2K"]
    harness.send(chat, user, "/imagine a long beach")
    keyboard = await harness.keyboard(chat["id"])
    assert "16:9" in checked(keyboard)


# ---- 3. a group's Quality default starts the keyboard's Quality row ----


async def test_a_groups_quality_default_starts_the_keyboards_quality_row(start_bot, harness, tg, img):
    await start_bot(image_models=ALL)
    admin, _ = harness.person()
    member, _ = harness.person()
    group = tg.group(-100723, "Painters")
    tg.set_admins(group["id"], [admin["id"]])
    harness.send(group, admin, "/settings")
    panel = await harness.reply_text(group["id"], "Defaults for /imagine in this chat")
    panel = await press_until(harness, tg, panel, "GPT Image 2", admin, "Quality: Medium")
    await press_until(harness, tg, panel, "High", admin, "Quality: High")

    harness.send(group, member, "/imagine a heron at dawn")
    keyboard = await harness.keyboard(group["id"])
    assert {"GPT Image 2", "High"} <= set(checked(keyboard)) and "✨ Generate (credits: 4)" in labels(keyboard)
    await harness.press(keyboard, "✨ Generate", member)
    await harness.result(group["id"])
    assert img.requests[-1].model == GPT and img.requests[-1].body["quality"] == "high"
