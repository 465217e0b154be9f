"""Every model on the key, from the chat: the keyboard's model row (switching keeps the closest choice, GPT Image's
Quality row, the cost on ✨ Generate), `--model` and the models' own flags, an unknown model, variants, edits,
upscale where a model has a larger size, honest sizes, credits, /settings, /models, /help, /history and /stats —
each request checked by the fake image API that enforces its vendor's rules."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.rows import settled

NANO, PRO, GPT, SEEDREAM = "nano-banana-2", "gemini-3-pro-image", "gpt-image-2", "doubao-seedream-4-5-251128"
ALL = f"{NANO},{PRO},{GPT},{SEEDREAM}"


def picture(width: int = 320, height: int = 240) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, "JPEG")
    return out.getvalue()


def labels(message: dict) -> list[str]:
    return [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


def checked(message: dict) -> list[str]:
    return [label[2:] for label in labels(message) if label.startswith("✓ ")]


def current(tg, message: dict) -> dict:
    return tg.message(message["chat"]["id"], message["message_id"])


async def press_until(harness, tg, message: dict, label: str, user: dict, shows: str) -> dict:
    """Press a button, then wait for the message to show `shows` (the callback is answered before the edit)."""
    await harness.press(message, label, user)
    return await tg.wait_for(lambda: (m := current(tg, message)) and shows in str(m) and m, 10, repr(shows))


async def many(start_bot, **overrides: object):
    return await start_bot(image_models=ALL, **overrides)


async def test_the_keyboard_switches_models_keeping_the_closest_choice(start_bot, harness, tg, img):
    await many(start_bot)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a fox in snow --ar 16:9")
    keyboard = await harness.keyboard(chat["id"])
    assert labels(keyboard)[:4] == ["✓ 🍌 Banana 2", "🍌 Banana Pro", "GPT Image 2", "Seedream 4.5"]
    assert checked(keyboard) == ["🍌 Banana 2", "16:9", "1K", "×1"]
    assert "✨ Generate (credits: 1)" in labels(keyboard)

    seedream = await press_until(harness, tg, keyboard, "Seedream 4.5", user, "✓ Seedream 4.5")
    assert checked(seedream) == ["Seedream 4.5", "16:9", "2K", "×1"]  # no 1K there: its smallest size
    assert "1K" not in labels(seedream) and "✨ Generate (credits: 2)" in labels(seedream)

    gpt = await press_until(harness, tg, seedream, "GPT Image 2", user, "✓ GPT Image 2")
    assert checked(gpt) == ["GPT Image 2", "16:9", "2K", "Medium", "×1"]  # its Quality row, only for it
    await press_until(harness, tg, gpt, "High", user, "✨ Generate (credits: 4)")

    await harness.press(current(tg, keyboard), "✨ Generate", user)
    (call,) = await harness.result(chat["id"])
    (rec,) = img.requests
    assert rec.status == 200 and rec.path == "/v1/images/generations"
    assert (rec.body["model"], rec.body["size"], rec.body["quality"]) == (GPT, "2048x1152", "high")
    assert "GPT Image 2 · 16:9 · 2K · high · 2048×1152" in call.params["caption"]
    harness.send(chat, user, "/usage")
    usage = await harness.reply_text(chat["id"], "Used today")
    assert "Used today: 4 credits" in usage["text"]
    assert "Your default now, 🍌 Banana 2 · 1:1 · 1K, costs 1 credits" in usage["text"]


FLAGS = [
    (NANO, "--model banana --ar 3:2 --2k", "/v1/images/generations", (2528, 1696)),
    (PRO, "--model pro --ar 21:9 --1k", f"/v1beta/models/{PRO}:generateContent", (1584, 672)),
    (GPT, "--model gpt --ar 9:16 --2k --quality low", "/v1/images/generations", (1152, 2048)),
    (SEEDREAM, "--model seedream --ar 4:3 --2k", "/v1/images/generations", (2304, 1728)),
]


@pytest.mark.parametrize(("model", "flags", "path", "pixels"), FLAGS, ids=[f[0] for f in FLAGS])
async def test_each_model_from_the_prompts_flags(start_bot, harness, img, model, flags, path, pixels):
    running = await many(start_bot)
    user, chat = harness.person()
    harness.send(chat, user, f"/imagine a lighthouse {flags}")
    (call,) = await harness.result(chat["id"])
    (rec,) = img.requests
    assert rec.status == 200 and rec.path == path and rec.model == model and rec.prompt == "a lighthouse"
    assert f"{pixels[0]}×{pixels[1]}" in call.params["caption"] and "⚠️" not in call.params["caption"]
    await settled(running.settings.database)  # done is recorded just after the photo went
    harness.send(chat, user, "/history")
    label = {NANO: "🍌 Banana 2", PRO: "🍌 Banana Pro", GPT: "GPT Image 2", SEEDREAM: "Seedream 4.5"}[model]
    history = await harness.reply_text(chat["id"], f"1. ✅ {label} · ")
    assert "a lighthouse" in history["text"]


async def test_a_flag_the_model_does_not_take_is_named_and_left_out(start_bot, harness, tg, img):
    await many(start_bot)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a cat --quality high --ar 1:1 --1k")  # nano-banana-2 has no quality
    await harness.result(chat["id"])
    assert any("Not options here: --quality high" in text for text in harness.texts(chat["id"]))
    (rec,) = img.requests
    assert rec.model == NANO and "quality" not in rec.body and rec.body["prompt"] == "a cat"


async def test_a_size_the_model_does_not_have_is_one_line_and_nothing_is_made(start_bot, harness, img):
    await many(start_bot)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a cat --model seedream --ar 1:1 --1k")
    line = await harness.reply_text(chat["id"], "Seedream 4.5 has no --size")
    assert "“1K”" in line["text"] and "2K or 4K" in line["text"]
    assert img.requests == []


async def test_an_unknown_model_names_those_on_offer_and_waits_for_a_pick(start_bot, harness, tg, img):
    await many(start_bot)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a cat --model dalle --ar 1:1 --2k")  # shape and size alone would start it
    keyboard = await harness.keyboard(chat["id"])
    assert "I don't know the model “dalle”" in keyboard["text"] and GPT in keyboard["text"]
    assert img.requests == []
    chosen = await press_until(harness, tg, keyboard, "Seedream 4.5", user, "✓ Seedream 4.5")
    await harness.press(chosen, "✨ Generate", user)
    await harness.result(chat["id"])
    (rec,) = img.requests
    assert rec.model == SEEDREAM and rec.body["size"] == "2048x2048"


async def test_variants_of_gpt_image_are_one_call_and_one_job_each(start_bot, harness, tg, img):
    await many(start_bot)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine two foxes --model gpt --n 2 --ar 1:1 --1k")
    await tg.wait_for(lambda: len(tg.calls_of("sendMediaGroup")) == 1, 20, "the album")
    (rec,) = img.requests
    assert rec.model == GPT and rec.body["n"] == 2
    summary = await harness.reply_text(chat["id"], "🎨 ×2")
    assert "GPT Image 2 · 1:1 · 1K · medium · 1024×1024" in summary["text"]
    assert [x for x in labels(summary) if x.startswith("⬆")] == ["⬆ 1 · 4K", "⬆ 2 · 4K"]
    harness.send(chat, user, "/usage")
    assert "Used today: 4 credits" in (await harness.reply_text(chat["id"], "Used today"))["text"]


async def test_an_edit_with_banana_pro_sends_the_picture_inline(start_bot, harness, tg, img):
    await many(start_bot)
    user, chat = harness.person()
    photo = picture()
    tg.send_photo(chat, user, photo, caption="/imagine make it night --model pro --ar 4:3 --1k")
    await harness.result(chat["id"])
    (rec,) = img.requests
    assert rec.path == f"/v1beta/models/{PRO}:generateContent" and rec.images == [photo]


async def test_upscale_is_offered_only_up_to_the_models_largest_size(start_bot, harness, tg, img):
    await many(start_bot)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a small house --model seedream --ar 16:9 --2k")
    (call,) = await harness.result(chat["id"])
    result = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo") or m.get("document"))
    assert [x for x in labels(result) if x.startswith("⬆")] == ["⬆ 4K"]
    await harness.press(result, "⬆ 4K", user)
    await harness.result(chat["id"], count=2)
    upscale = img.requests[1]
    assert upscale.model == SEEDREAM and upscale.path == "/v1/images/generations"
    assert upscale.body["size"] == "5504x3040" and upscale.images == [img.image_for(img.requests[0])]
    final = [m for m in tg.bot_messages(chat["id"]) if m.get("photo") or m.get("document")][-1]
    assert not [x for x in labels(final) if x.startswith("⬆")]  # 4K is Seedream's largest


async def test_a_size_other_than_asked_is_told_with_the_model(start_bot, harness, img):
    await many(start_bot)
    user, chat = harness.person()
    img.size_next(1024, 1024)
    harness.send(chat, user, "/imagine a cat --model gpt --ar 16:9 --2k")
    (call,) = await harness.result(chat["id"])
    assert "⚠️" in call.params["caption"] and "GPT Image 2 · 16:9 · 2K · medium" in call.params["caption"]


async def test_settings_remember_a_default_model(start_bot, harness, tg, img):
    await many(start_bot)
    user, chat = harness.person()
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    assert "🎨 Model: 🍌 Banana 2" in panel["text"] and "✓ 🍌 Banana 2" in labels(panel)
    await press_until(harness, tg, panel, "GPT Image 2", user, "🎨 Model: GPT Image 2")
    harness.send(chat, user, "/imagine a bird --ar 1:1 --1k")
    await harness.result(chat["id"])
    assert img.requests[0].model == GPT
    harness.send(chat, user, "/imagine a bird")
    keyboard = await harness.keyboard(chat["id"])
    assert "GPT Image 2" in checked(keyboard) and "✨ Generate (credits: 2)" in labels(keyboard)


async def test_models_help_and_stats_name_the_models(start_bot, harness, tg, img):
    running = await many(start_bot, admin_user_ids="4242")
    admin = tg.user(4242, "Boss", language_code="en")
    chat = tg.private_chat(admin)
    harness.send(chat, admin, "/models")
    listed = await harness.reply_text(chat["id"], "Image models here")
    text = listed["text"]
    assert all(label in text for label in ("✓ 🍌 Banana 2", "🍌 Banana Pro", "GPT Image 2", "Seedream 4.5"))
    assert "Quality: Low, Medium or High" in text
    assert "1K 1/2/4 · 2K 1/2/4 · 4K 2/4/8 (Low/Medium/High)" in text  # gpt-image-2's credits
    assert "2K 2 · 4K 3" in text  # Seedream's
    harness.send(chat, admin, "/help")
    helped = await harness.reply_text(chat["id"], "/models shows")
    assert "GPT Image 2 (--model gpt)" in helped["text"]
    harness.send(chat, admin, "/imagine a cat --model seedream --ar 1:1 --2k")
    await harness.result(chat["id"])
    await settled(running.settings.database)  # /stats counts images recorded done, just after the photo went
    harness.send(chat, admin, "/stats")
    stats = await harness.reply_text(chat["id"], "By model")
    assert "By model (7 days): Seedream 4.5 1" in stats["text"]
    menus = [c.params for c in tg.calls_of("setMyCommands")]
    assert any("models" in str(m["commands"]) for m in menus)


async def test_zh_models_list_is_in_the_users_language(start_bot, harness, tg, img):
    await many(start_bot)
    user, chat = harness.person("zh-hans")
    harness.send(chat, user, "/models")
    listed = await harness.reply_text(chat["id"], "图像模型")
    assert "画质" in listed["text"] or "品質" in listed["text"] or "质量" in listed["text"]


async def test_with_one_model_nothing_about_models_is_shown(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a fox --model gpt --ar 1:1 --1k")  # nobody's flag with one model
    (call,) = await harness.result(chat["id"])
    assert any("Not options here: --model gpt" in text for text in harness.texts(chat["id"]))
    assert img.requests[0].model == NANO and "Banana" not in call.params["caption"]
    assert not any("models" in str(c.params.get("commands")) for c in tg.calls_of("setMyCommands"))
