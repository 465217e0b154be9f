"""Issue 25: styles (built in, and an operator's file) and presets (a group's, a person's), one mechanism — through
the fakes, end to end: the keyboard's 🎨 page, `--style`, groups (admins only), pictures bound to a preset driving an
edit, export and import; the presets' store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from PIL import Image

from bot.config import Settings, SettingsError, load_settings
from bot.store import TooManyPresets, make_store
from bot.styles import Style, StyleFileError, builtin_styles, load_library
from tests.rows import album_kept, pictures_waiting

ISSUE_STYLES = {
    "photo",
    "cinematic",
    "anime",
    "watercolour",
    "oil-painting",
    "pencil-sketch",
    "pixel-art",
    "3d-clay",
    "isometric",
    "comic",
    "cyberpunk",
    "figurine",
}


def picture(colour: tuple[int, int, int] = (200, 80, 40), size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def markup_of(tg, message: dict) -> str:
    return str((tg.message(message["chat"]["id"], message["message_id"]) or message).get("reply_markup"))


async def preset_with_two_pictures(
    harness, tg, database: str, user: dict, chat: dict, add: str, album: str, colour: tuple[int, int, int]
) -> list[dict]:
    """An album of two sent without words, then `/preset add <add>` in reply to it: the preset, saved with both
    (once the bot has kept the album and its waiting pictures, so the reply finds them whole). The album's parts."""
    step, green, blue = colour
    parts = [tg.send_photo(chat, user, picture((n * step, green, blue)), media_group_id=album) for n in range(2)]
    await harness.reply_text(chat["id"], "Got the pictures")
    await album_kept(database, chat["id"], album, 2)
    await pictures_waiting(database, chat["id"], user["id"])
    harness.send(chat, user, f"/preset add {add}", reply_to=parts[0])
    await harness.reply_text(chat["id"], f"Preset “{add.split()[0]}” saved with 2 🖼")
    return parts


def latest_keyboard(tg, chat_id: int) -> dict | None:
    return next((m for m in reversed(tg.bot_messages(chat_id)) if "Generate" in str(m.get("reply_markup"))), None)


async def markup_says(tg, message: dict, text: str) -> None:
    await tg.wait_for(lambda: text in markup_of(tg, message), 10, f"{text!r} on the keyboard")


# ---- the library ----


def test_the_built_in_library_has_the_issues_styles_in_every_language():
    styles = builtin_styles()
    assert len(styles) >= 12 and ISSUE_STYLES <= {s.name for s in styles}
    for style in styles:
        assert set(style.labels) == {"en", "zh", "zh-hant"}, style.name
        assert "{prompt}" in style.template and len(style.template) <= 2000
    anime = next(s for s in styles if s.name == "anime")
    assert anime.apply("a cat").startswith("a cat, anime illustration")
    assert anime.answers_to("动漫") and anime.answers_to("Anime") and not anime.answers_to("comic")
    figurine = next(s for s in styles if s.name == "figurine")
    assert figurine.label("zh") == "手办化" and figurine.label("zh-TW") == "手辦化"
    assert "figurine." in figurine.apply("")  # no words: no stray space where they would go
    assert Style("x", "in pastel").apply("a cat") == "a cat. in pastel"  # no slot: the words come first


def test_a_style_file_extends_or_replaces_and_names_every_mistake(tmp_path):
    (tmp_path / "desk.png").write_bytes(picture())
    good = tmp_path / "styles.toml"
    good.write_text(
        '[[style]]\nname = "desk"\ntemplate = "{prompt} on my desk"\npictures = ["desk.png"]\n'
        'labels = { en = "Desk", zh = "书桌" }\noptions = { ratio = "4:3", size = "2k" }\n'
        '[[style]]\nname = "anime"\ntemplate = "{prompt}, in our own anime look"\n',
        encoding="utf-8",
    )
    library = load_library(good)
    names = [s.name for s in library]
    assert names[-1] == "desk" and len(names) == len(builtin_styles()) + 1
    assert next(s for s in library if s.name == "anime").template == "{prompt}, in our own anime look"
    desk = library.styles[-1]
    assert dict(desk.options) == {"ratio": "4:3", "size": "2K"} and library.picture_files == {tmp_path / "desk.png"}
    good.write_text("replace = true\n" + good.read_text(encoding="utf-8"), encoding="utf-8")
    assert [s.name for s in load_library(good)] == ["desk", "anime"]

    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[style]]\nname = "two words"\ntemplate = "x"\n'
        '[[style]]\nname = "big"\ntemplate = "' + "y" * 2001 + '"\noptions = { ratio = "7:5", model = "z" }\n'
        '[[style]]\nname = "pics"\ntemplate = "{prompt}"\npictures = ["missing.png"]\nlabels = { fr = "Images" }\n',
        encoding="utf-8",
    )
    with pytest.raises(StyleFileError) as caught:
        load_library(bad)
    problems = caught.value.problems
    assert len(problems) == 6, problems
    assert any("style 1: name must be" in p for p in problems)
    assert any("style 2 (big): template has 2001 characters" in p for p in problems)
    assert any("ratio '7:5'" in p for p in problems) and any(
        "model 'z' is not one the bot knows" in p for p in problems
    )
    assert any("missing.png" in p for p in problems) and any("unknown languages fr" in p for p in problems)
    with pytest.raises(SettingsError) as settings_error:
        load_settings(Settings, _env_file=None, telegram_bot_token="1:abc", image_api_key="k", styles_file=str(bad))
    line = str(settings_error.value)
    assert "\n" not in line and line.startswith("STYLES_FILE is invalid: ") and "missing.png" in line
    assert "(big): template has 2001" in line


def test_a_style_file_may_name_a_model_and_sizes_it_makes(tmp_path):
    path = tmp_path / "styles.toml"
    path.write_text(
        '[[style]]\nname = "glossy"\ntemplate = "{prompt}, glossy"\noptions = { model = "GPT", ratio = "4:3" }\n'
        '[[style]]\nname = "small"\ntemplate = "{prompt}"\noptions = { model = "seedream", size = "1K" }\n'
        '[[style]]\nname = "odd"\ntemplate = "{prompt}"\noptions = { model = "dall-e" }\n',
        encoding="utf-8",
    )
    with pytest.raises(StyleFileError) as caught:
        load_library(path)
    assert caught.value.problems == [
        f"{path}: style 2 (small): Seedream 4.5 has no size 1K (use 2K, 4K)",
        f"{path}: style 3 (odd): model 'dall-e' is not one the bot knows (use nano-banana-2, gemini-3-pro-image, "
        "gpt-image-2, doubao-seedream-4-5-251128)",
    ]
    path.write_text(path.read_text(encoding="utf-8").split('[[style]]\nname = "small"')[0], encoding="utf-8")
    (glossy,) = load_library(path).styles[-1:]
    assert dict(glossy.options) == {"model": "gpt-image-2", "ratio": "4:3"}


# ---- the keyboard and the flags ----


async def test_a_style_from_the_keyboard_is_sent_upstream_named_in_the_caption_and_kept_by_again(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a lighthouse")
    kb = await harness.keyboard(chat["id"])
    await harness.press(kb, "🎨 Style", user)
    await markup_says(tg, kb, "No style")
    assert "✓ No style" in markup_of(tg, kb) and "1/2" in markup_of(tg, kb)  # 12 styles: two pages of ten
    await harness.press(kb, "▶", user)
    await markup_says(tg, kb, "2/2")
    assert "Figurine" in markup_of(tg, kb)
    await harness.press(kb, "◀", user)
    await markup_says(tg, kb, "1/2")
    await harness.press(kb, "Cinematic", user)
    await markup_says(tg, kb, "🎨 Cinematic")
    shown = tg.message(chat["id"], kb["message_id"])
    assert "🎨 Style: Cinematic" in shown["text"] and "✓ 21:9" in markup_of(tg, kb)  # its default ratio
    await harness.press(kb, "16:9", user)  # the user's own choice wins over the style's
    await markup_says(tg, kb, "✓ 16:9")
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    request = img.requests[0]
    assert request.body["prompt"].startswith("a lighthouse, cinematic film still")
    assert request.body["aspect_ratio"] == "16:9"
    photo = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    assert photo["caption"].startswith("a lighthouse\n\n🎨 Cinematic · 16:9 · 1K")
    await harness.press(photo, "Again", user)
    await harness.result(chat["id"], count=2)
    assert img.requests[1].body["prompt"] == request.body["prompt"]
    harness.send(chat, user, "/history")
    await harness.reply_text(chat["id"], "🎨 Cinematic · 16:9 · 1K")

    harness.send(chat, user, "/imagine a second lighthouse")  # No style clears it
    kb = await harness.keyboard(chat["id"])
    await harness.press(kb, "🎨 Style", user)
    await markup_says(tg, kb, "No style")
    await harness.press(kb, "Anime", user)
    await markup_says(tg, kb, "🎨 Anime")
    await harness.press(kb, "🎨 Anime", user)
    await markup_says(tg, kb, "✓ Anime")
    await harness.press(kb, "No style", user)
    await markup_says(tg, kb, "🎨 Style")
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"], count=3)
    assert img.requests[2].body["prompt"] == "a second lighthouse"


async def test_style_flags_by_name_or_label_and_unknown_names_get_the_closest(bot, harness, tg, img):
    user, chat = harness.person("zh-hans")
    harness.send(chat, user, "/imagine 一只猫 --style 像素画 --ar 1:1 --1k")  # a label in the user's language
    await harness.result(chat["id"])
    assert img.requests[0].body["prompt"].startswith("一只猫, 16-bit pixel art")
    photo = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    assert "🎨 像素画 · 1:1 · 1K" in photo["caption"]
    harness.send(chat, user, "/imagine a cat --style animee")
    answer = await harness.reply_text(chat["id"], "animee")
    assert "anime" in answer["text"].split("最接近的")[1] and len(img.requests) == 1
    photo = picture((90, 90, 20))
    tg.send_photo(chat, user, photo, caption="--style figurine --ar 3:4 --1k")  # the style is the words
    await harness.result(chat["id"], count=2)
    assert img.requests[1].images == [photo] and "collectible figurine." in img.requests[1].body["prompt"]
    harness.send(chat, user, "a cat --style oil-painting")  # a private chat's plain text
    kb = await tg.wait_for(
        lambda: next((m for m in tg.bot_messages(chat["id"]) if "🎨 油画" in str(m.get("reply_markup"))), None),
        10,
        "the keyboard",
    )
    assert "🎨 风格：油画" in kb["text"]


async def test_a_style_file_brings_its_pictures_to_every_request(start_bot, harness, tg, img, tmp_path):
    desk = picture((10, 10, 200))
    (tmp_path / "desk.jpg").write_bytes(desk)
    (tmp_path / "styles.toml").write_text(
        '[[style]]\nname = "desk"\ntemplate = "put {prompt} on the desk of the picture"\npictures = ["desk.jpg"]\n',
        encoding="utf-8",
    )
    await start_bot(styles_file=str(tmp_path / "styles.toml"))
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a mug --style desk --ar 1:1 --1k")
    await harness.result(chat["id"])
    (request,) = img.requests
    assert request.path == "/v1/images/edits" and request.images == [desk]
    assert request.body["prompt"] == "put a mug on the desk of the picture"


async def test_a_styles_model_is_chosen_unless_the_user_chooses_another(start_bot, harness, tg, img, tmp_path, caplog):
    (tmp_path / "styles.toml").write_text(
        'replace = true\n[[style]]\nname = "glossy"\ntemplate = "{prompt}, glossy"\n'
        'options = { model = "gpt-image-2", ratio = "4:3" }\n'
        '[[style]]\nname = "dream"\ntemplate = "{prompt}, dreamy"\noptions = { model = "seedream" }\n',
        encoding="utf-8",
    )
    caplog.set_level("WARNING", logger="bot.style_service")
    await start_bot(image_models="nano-banana-2,gpt-image-2", styles_file=str(tmp_path / "styles.toml"))
    (said,) = [r.getMessage() for r in caplog.records if "IMAGE_MODELS does not offer" in r.getMessage()]
    assert said.startswith("style dream names model doubao-seedream-4-5-251128")
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a cat --style glossy")
    kb = await harness.keyboard(chat["id"])
    assert "✓ GPT Image 2" in markup_of(tg, kb) and "✓ 4:3" in markup_of(tg, kb)
    harness.send(chat, user, "/imagine a dog --style glossy --model banana")  # the user's own choice wins
    await tg.wait_for(lambda: "a dog" in (latest_keyboard(tg, chat["id"]) or {}).get("text", ""), 10, "its keyboard")
    kb = latest_keyboard(tg, chat["id"])
    assert "✓ 🍌 Banana 2" in markup_of(tg, kb) and "✓ 4:3" in markup_of(tg, kb)

    harness.send(chat, user, "/imagine a bird")
    await tg.wait_for(lambda: "a bird" in (latest_keyboard(tg, chat["id"]) or {}).get("text", ""), 10, "its keyboard")
    kb = latest_keyboard(tg, chat["id"])
    assert "✓ 🍌 Banana 2" in markup_of(tg, kb)
    await harness.press(kb, "🎨 Style", user)
    await markup_says(tg, kb, "No style")
    await harness.press(kb, "glossy", user)
    await markup_says(tg, kb, "✓ GPT Image 2")  # chosen with the style, shown on the keyboard
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].body["model"] == "gpt-image-2" and img.requests[0].body["prompt"] == "a bird, glossy"
    harness.send(chat, user, "/imagine a fish --style dream --ar 1:1 --1k")  # its model is not offered: the usual
    await harness.result(chat["id"], count=2)
    assert img.requests[1].body["model"] == "nano-banana-2" and img.requests[1].body["prompt"] == "a fish, dreamy"

    harness.send(chat, user, "/preset add sleek {prompt}, sleek --model gpt --ar 16:9")
    await harness.reply_text(chat["id"], "Preset “sleek” saved")
    harness.send(chat, user, "/preset show sleek")
    shown = await harness.reply_text(chat["id"], "your preset")
    assert "16:9 · GPT Image 2" in shown["text"]
    harness.send(chat, user, "/imagine a car --style sleek --1k")
    await tg.wait_for(lambda: "a car" in (latest_keyboard(tg, chat["id"]) or {}).get("text", ""), 10, "its keyboard")
    assert "✓ GPT Image 2" in markup_of(tg, latest_keyboard(tg, chat["id"]))
    harness.send(chat, user, "/preset add tiny {prompt} --model seedream")  # not offered here
    await harness.reply_text(chat["id"], "I don't know the model “seedream”")


async def test_a_style_in_the_tail_of_a_split_prompt_is_read(bot, harness, tg, img):
    user, chat = harness.person()
    head = "/imagine " + "a very detailed castle " * 180  # over 4,000 characters: the app sends the rest apart
    harness.send(chat, user, head)
    harness.send(chat, user, "with a dragon on the tower --style cinematic")
    await tg.wait_for(lambda: "🎨 Cinematic" in str(latest_keyboard(tg, chat["id"])), 10, "the style on its keyboard")
    kb = latest_keyboard(tg, chat["id"])
    assert "✓ 21:9" in markup_of(tg, kb)  # the style's own ratio
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    sent = img.requests[0].body["prompt"]
    assert sent.startswith("a very detailed castle") and "tower, cinematic film still" in sent

    other, other_chat = harness.person()
    harness.send(other_chat, other, head)
    harness.send(other_chat, other, "with a moat --style animee --ar 1:1 --1k")  # said, and nothing made yet
    answer = await harness.reply_text(other_chat["id"], "“animee”")
    assert "Generate" in str(answer.get("reply_markup")) or latest_keyboard(tg, other_chat["id"]) is not None
    await asyncio.sleep(4)  # the head's own wait for a next part (2.5 s, from before the answer) is over by now
    assert len(img.requests) == 1


# ---- presets ----


async def test_group_presets_are_the_admins_and_private_ones_the_persons(bot, harness, tg, img):
    alice, admin = tg.user(21, "Alice"), tg.user(22, "Admin")
    group = tg.group(-100300, "Painters")
    tg.set_admins(group["id"], [admin["id"]])
    harness.send(group, alice, "/preset add sunny a sunny {prompt} --ar 16:9")
    await harness.reply_text(group["id"], "Only the group's admins")
    harness.send(group, admin, "/preset add sunny a sunny {prompt} at noon --ar 16:9")
    await harness.reply_text(group["id"], "Preset “sunny” saved")
    harness.send(group, admin, "/preset add bad!name x")
    await harness.reply_text(group["id"], "“bad!name” is not")
    harness.send(group, admin, "/preset add long " + "z" * 2001)
    await harness.reply_text(group["id"], "at most 2,000")

    harness.send(group, alice, "/imagine@imagine_test_bot a dog --style sunny")  # a member uses it
    kb = await harness.keyboard(group["id"])
    assert "✓ 16:9" in markup_of(tg, kb) and "🎨 sunny" in markup_of(tg, kb)
    await harness.press(kb, "Generate", alice)
    await harness.result(group["id"])
    assert img.requests[0].body["prompt"] == "a sunny a dog at noon"

    alice_private = tg.private_chat(alice)
    harness.send(alice_private, alice, "/preset add mine {prompt} in blue")
    await harness.reply_text(alice_private["id"], "Preset “mine” saved")
    harness.send(group, alice, "/presets")
    listing = await harness.reply_text(group["id"], "tap one to use it")
    assert "1 of this group, 1 of yours" in listing["text"]
    assert [b["text"] for b in harness.buttons(listing)] == ["👥 sunny", "👤 mine"]
    await harness.press(listing, "👤 mine", alice)
    asked = await harness.reply_text(group["id"], "Alice, reply to this message with what to make with “mine”")
    force = next(c for c in tg.calls if c.method == "sendMessage" and "with “mine”" in c.params["text"])
    assert force.params["reply_markup"] == {"force_reply": True, "selective": True}
    assert force.params["entities"][0]["type"] == "text_mention" and force.params["entities"][0]["user"]["id"] == 21
    harness.send(group, admin, "a ship", reply_to=asked)  # not the one asked: nothing happens
    harness.send(group, alice, "a boat", reply_to=asked)
    kb = await tg.wait_for(
        lambda: next((m for m in tg.bot_messages(group["id"]) if "a boat" in str(m.get("text"))), None),
        10,
        "a preset's keyboard",
    )
    assert "🎨 mine" in markup_of(tg, kb) and "Generate" in markup_of(tg, kb)
    await harness.press(kb, "Generate", alice)
    await harness.result(group["id"], count=2)
    assert img.requests[1].body["prompt"] == "a boat in blue" and len(img.requests) == 2

    harness.send(group, admin, "/preset show sunny")
    shown = await harness.reply_text(group["id"], "this group's preset")
    assert "a sunny {prompt} at noon" in shown["text"] and "16:9" in shown["text"]
    harness.send(group, alice, "/preset del sunny")
    await tg.wait_for(lambda: len([t for t in harness.texts(group["id"]) if "Only the group's admins" in t]) == 2)
    harness.send(group, admin, "/preset del sunny")
    await harness.reply_text(group["id"], "Preset “sunny” removed.")
    harness.send(group, alice, "/imagine@imagine_test_bot a cat --style sunny")
    await harness.reply_text(group["id"], "I don't know the style “sunny”")


async def test_a_tapped_preset_asks_what_to_make_unless_it_needs_no_words(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/preset add kite {prompt} flying high --ar 16:9")
    await harness.reply_text(chat["id"], "Preset “kite” saved")
    harness.send(chat, user, "/preset add sunset a sunset over the sea")  # no {prompt}: the template is the prompt
    await harness.reply_text(chat["id"], "Preset “sunset” saved")
    harness.send(chat, user, "/presets")
    listing = await harness.reply_text(chat["id"], "tap one to use it")
    await harness.press(listing, "👤 kite", user)
    await harness.reply_text(chat["id"], "Send what to make with “kite”")
    harness.send(chat, user, "a red dragon")  # the next text, no reply needed in a private chat
    kb = await tg.wait_for(
        lambda: next((m for m in tg.bot_messages(chat["id"]) if "a red dragon" in str(m.get("text"))), None),
        10,
        "its keyboard",
    )
    assert "🎨 kite" in markup_of(tg, kb) and "✓ 16:9" in markup_of(tg, kb)
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].body["prompt"] == "a red dragon flying high"
    harness.send(chat, user, "a blue whale")  # asked once: the next text is a request of its own
    await tg.wait_for(lambda: "a blue whale" in str(latest_keyboard(tg, chat["id"])), 10, "a plain keyboard")
    assert "🎨 Style" in markup_of(tg, latest_keyboard(tg, chat["id"]))

    await harness.press(listing, "👤 sunset", user)  # needs no words: its keyboard at once
    await tg.wait_for(lambda: "🎨 sunset" in str(latest_keyboard(tg, chat["id"])), 10, "the preset's keyboard")
    assert "Send what to make with “sunset”" not in str(harness.texts(chat["id"]))


async def test_pictures_bound_to_a_preset_no_longer_wait_for_words(bot, harness, tg, img):
    user, chat = harness.person()
    await preset_with_two_pictures(
        harness, tg, bot.settings.database, user, chat, "duo {prompt} between these two", "bound", (40, 60, 90)
    )
    harness.send(chat, user, "a lone tree")  # a new image, not an edit of the preset's pictures
    kb = await harness.keyboard(chat["id"])
    assert "a lone tree" in kb["text"] and "Editing" not in kb["text"]


async def test_pictures_bound_to_a_preset_make_an_edit_and_travel_in_its_export(bot, harness, tg, img):
    user, chat = harness.person()
    photos = [picture((30, 150, 60)), picture((150, 30, 60))]
    parts = [tg.send_photo(chat, user, p, media_group_id="preset-album") for p in photos]
    await album_kept(bot.settings.database, chat["id"], "preset-album", 2)
    await harness.reply_text(chat["id"], "")  # the album was answered (pictures waiting for words)
    harness.send(chat, user, "/preset add fig turn it into a figurine {prompt} --size 2K", reply_to=parts[0])
    await harness.reply_text(chat["id"], "Preset “fig” saved with 2 🖼")
    harness.send(chat, user, "/imagine on a shelf --style fig --ar 1:1")
    kb = await harness.keyboard(chat["id"])
    assert "✓ 2K" in markup_of(tg, kb) and "Editing 2 images" in kb["text"]  # the preset's size, its pictures
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    request = img.requests[0]
    assert request.path == "/v1/images/edits" and request.images == photos
    assert request.body["prompt"] == "turn it into a figurine on a shelf" and request.body["size"] == "2K"
    result = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    await harness.press(result, "Again", user)  # its pictures come once, not twice
    await harness.result(chat["id"], count=2)
    assert img.requests[1].images == photos

    own = [tg.send_photo(chat, user, picture((i * 18, 90, 90)), media_group_id="thirteen") for i in range(13)]
    await album_kept(bot.settings.database, chat["id"], "thirteen", 13)
    harness.send(chat, user, "/imagine all of them --style fig", reply_to=own[0])
    await harness.reply_text(chat["id"], "“fig” brings 2 pictures and your request has 13")

    harness.send(chat, user, "/preset export")
    exported = await tg.wait_for(
        lambda: next((m for m in tg.bot_messages(chat["id"]) if m.get("document")), None), 10, "the export"
    )
    data = tg.file_bytes(exported["document"]["file_id"])
    assert [p["name"] for p in json.loads(data)["presets"]] == ["fig"]

    other, other_chat = harness.person()
    tg.send_document(other_chat, other, data, "presets.json", "application/json", caption="/preset import")
    await harness.reply_text(other_chat["id"], "Imported 1 presets: fig")
    harness.send(other_chat, other, "/imagine a tin robot --style fig --ar 1:1 --1k")
    await harness.result(other_chat["id"])
    assert img.requests[-1].images == photos and img.requests[-1].body["prompt"].endswith("figurine a tin robot")

    admin = tg.user(31, "Admin")
    group = tg.group(-100400, "Club")
    tg.set_admins(group["id"], [admin["id"]])
    file_message = tg.send_document(group, admin, data, "presets.json", "application/json")
    harness.send(group, admin, "/preset import", reply_to=file_message)
    await harness.reply_text(group["id"], "Imported 1 presets: fig")
    junk = tg.send_document(group, admin, b'{"not": 1}', "junk.json", "application/json")
    harness.send(group, admin, "/preset import", reply_to=junk)
    await harness.reply_text(group["id"], "not an export of presets")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
async def test_presets_are_kept_in_the_database_within_their_limit(database_url):
    store = make_store(database_url)
    await store.open()
    try:
        repo = store.presets
        fig = Style("fig", "a figurine of {prompt}", options={"ratio": "3:4"}, pictures=("tg:AAA", "tg:BBB"))
        assert await repo.save_preset("chat", -5, fig, by=7) is True
        assert await repo.save_preset("chat", -5, Style("FIG", "changed {prompt}"), by=7) is False
        assert await repo.save_preset("user", 7, Style("mine", "{prompt} in blue"), by=7, limit=1) is True
        with pytest.raises(TooManyPresets):
            await repo.save_preset("user", 7, Style("more", "{prompt}"), by=7, limit=1)
        (kept,) = await repo.list_presets("chat", -5)
        assert (kept.name, kept.template, kept.pictures, kept.owner) == ("fig", "changed {prompt}", (), "chat")
    finally:
        await store.close()
    store = make_store(database_url)  # another process, or after a restart
    await store.open()
    try:
        assert [s.name for s in await store.presets.list_presets("user", 7)] == ["mine"]
        assert await store.presets.delete_preset("chat", -5, "Fig") is True
        assert await store.presets.list_presets("chat", -5) == []
    finally:
        await store.close()


async def test_only_the_style_files_own_pictures_are_read_by_path(tmp_path):
    from bot.references import UnusableReference
    from bot.telegram_references import ReferenceFetcher

    allowed, other = tmp_path / "desk.jpg", tmp_path / "secret.jpg"
    allowed.write_bytes(picture())
    other.write_bytes(picture((1, 2, 3)))
    spool = tmp_path / "spool"
    spool.mkdir()
    fetcher = ReferenceFetcher(None, None, spool, frozenset({allowed}))  # type: ignore[arg-type]
    async with fetcher.fetched((f"file:{allowed}",)) as (path,):
        assert path.read_bytes() == allowed.read_bytes()
    assert allowed.exists() and not list(spool.iterdir())
    with pytest.raises(UnusableReference) as refused:
        async with fetcher.fetched((f"file:{other}",)):
            pass
    assert refused.value.kind == "gone"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
async def test_the_preset_cap_holds_when_two_processes_add_at_once(database_url):
    """Two processes (two stores on one database), each adding presets as fast as it can: never past the cap."""
    stores = [make_store(database_url), make_store(database_url)]
    for store in stores:
        await store.open()
    try:

        async def add(store, number: int) -> bool:
            try:
                return await store.presets.save_preset("chat", -9, Style(f"p{number}", "{prompt}"), by=1, limit=10)
            except TooManyPresets:
                return False

        for attempt in range(3):  # a race lost once may be won the next time: three rounds of 24 at once
            names = range(attempt * 100, attempt * 100 + 24)
            added = await asyncio.gather(*(add(stores[n % 2], n) for n in names))
            kept = await stores[0].presets.list_presets("chat", -9)
            assert len(kept) == 10 and sum(added) == (10 if attempt == 0 else 0), (attempt, len(kept))
    finally:
        for store in stores:
            await store.close()


async def test_preset_show_sends_every_picture_in_albums_telegram_takes(bot, harness, tg, img):
    """sendMediaGroup takes 2–10 items: 14 pictures go as 10 and 4, 11 as 10 and a photo; files as files."""

    async def shown(count: int, files: bool = False) -> list[tuple[str, int]]:
        """A preset of `count` pictures made in a chat of its own (Telegram paces each chat), then shown."""
        user, chat = harness.person()
        group = f"album-{count}"
        if files:
            parts = [
                tg.send_document(chat, user, picture((n * 9, 60, 90)), f"{n}.jpg", "image/jpeg", media_group_id=group)
                for n in range(count)
            ]
        else:
            parts = [tg.send_photo(chat, user, picture((n * 9, 60, 90)), media_group_id=group) for n in range(count)]
        await album_kept(bot.settings.database, chat["id"], group, count)
        harness.send(chat, user, "/preset add many {prompt} in a row", reply_to=parts[0])
        await harness.reply_text(chat["id"], f"Preset “many” saved with {count} 🖼", timeout=30)
        harness.send(chat, user, "/preset show many")
        await harness.reply_text(chat["id"], "{prompt} in a row")

        def sent() -> list[tuple[str, int]]:
            return [
                (c.method, len(c.params["media"]) if "media" in c.params else 1)
                for c in tg.calls
                if c.method in ("sendMediaGroup", "sendPhoto", "sendDocument")
                and c.params.get("chat_id") in (chat["id"], str(chat["id"]))
                and not c.error
            ]

        await tg.wait_for(lambda: sum(n for _, n in sent()) == count, 30, f"{count} pictures shown")
        return sent()

    fourteen, eleven, files = await asyncio.gather(shown(14), shown(11), shown(3, files=True))
    assert fourteen == [("sendMediaGroup", 10), ("sendMediaGroup", 4)]
    assert eleven == [("sendMediaGroup", 10), ("sendPhoto", 1)]
    assert files == [("sendDocument", 1)] * 3  # refused as photos (a file id keeps its type), sent as files
    refused = [c.method for c in tg.calls if c.error]
    assert sorted(refused) == ["sendMediaGroup", "sendPhoto", "sendPhoto", "sendPhoto"]


# ---- the last gaps: an edit said on the keyboard, the limit of the model used, pictures answering a preset ----


async def test_a_presets_pictures_make_the_keyboard_an_edit_counted_with_the_requests_own(bot, harness, tg, img):
    user, chat = harness.person()
    await preset_with_two_pictures(
        harness, tg, bot.settings.database, user, chat, "duo {prompt} between these --ar 1:1", "duo", (60, 40, 40)
    )
    harness.send(chat, user, "/presets")
    listing = await harness.reply_text(chat["id"], "tap one to use it")
    await harness.press(listing, "👤 duo", user)  # pictures of its own: its keyboard at once, an edit of them
    await tg.wait_for(lambda: "🎨 duo" in str(latest_keyboard(tg, chat["id"])), 10, "the preset's keyboard")
    assert "Editing 2 images" in latest_keyboard(tg, chat["id"])["text"]
    own = tg.send_photo(chat, user, picture((9, 9, 200)))
    await harness.reply_text(chat["id"], "Got the picture")
    await pictures_waiting(bot.settings.database, chat["id"], user["id"])
    harness.send(chat, user, "/imagine a cat --style duo", reply_to=own)
    await tg.wait_for(lambda: "a cat" in str(latest_keyboard(tg, chat["id"])), 10, "its keyboard")
    assert "Editing 3 images" in latest_keyboard(tg, chat["id"])["text"]
    harness.send(chat, user, "/imagine a dog", reply_to=own)  # chosen on the 🎨 page: counted there too
    await tg.wait_for(lambda: "a dog" in str(latest_keyboard(tg, chat["id"])), 10, "its keyboard")
    kb = latest_keyboard(tg, chat["id"])
    assert "Editing 1 image" in kb["text"]
    await harness.press(kb, "🎨 Style", user)
    await markup_says(tg, kb, "No style")
    await harness.press(kb, "👤 duo", user)
    await tg.wait_for(lambda: "Editing 3 images" in tg.message(chat["id"], kb["message_id"])["text"], 10, "3 images")


async def test_without_the_picture_sets_a_preset_with_pictures_aside_for_a_new_image(bot, harness, tg, img):
    user, chat = harness.person()
    await preset_with_two_pictures(
        harness, tg, bot.settings.database, user, chat, "duo {prompt} between these --ar 1:1", "duo", (60, 40, 40)
    )
    own = tg.send_photo(chat, user, picture((9, 9, 200)))
    await harness.reply_text(chat["id"], "Got the picture")
    await pictures_waiting(bot.settings.database, chat["id"], user["id"])
    harness.send(chat, user, "/imagine --style duo", reply_to=own)  # no words: the preset's pictures are all
    await tg.wait_for(lambda: "🎨 duo" in str(latest_keyboard(tg, chat["id"])), 10, "its keyboard")
    kb = latest_keyboard(tg, chat["id"])
    answer = await harness.press(kb, "Without the picture", user)
    assert answer.get("show_alert") and "there is nothing to make" in answer.get("text", "")
    assert "Editing 3 images" in tg.message(chat["id"], kb["message_id"])["text"]

    harness.send(chat, user, "/imagine a cat --style duo", reply_to=own)
    await tg.wait_for(lambda: "a cat" in str(latest_keyboard(tg, chat["id"])), 10, "its keyboard")
    kb = latest_keyboard(tg, chat["id"])
    assert "Editing 3 images" in kb["text"]
    await harness.press(kb, "Without the picture", user)  # a new image: the preset's pictures go with the style
    shown = await tg.wait_for(
        lambda: (m := tg.message(chat["id"], kb["message_id"])) and "set aside" in m["text"] and m, 10, "the new image"
    )
    assert "Editing" not in shown["text"] and "🎨 Style: duo" not in shown["text"]
    assert "🎨 Style" in str(shown["reply_markup"]) and "🎨 duo" not in str(shown["reply_markup"])
    assert "Without the picture" not in str(shown["reply_markup"])
    await harness.press(shown, "Generate", user)
    await harness.result(chat["id"])
    (request,) = img.requests
    assert request.path.endswith("/generations") and request.body["prompt"] == "a cat"


async def test_without_the_picture_on_a_style_that_works_on_it_and_no_words_changes_nothing(bot, harness, tg, img):
    user, chat = harness.person()
    tg.send_photo(chat, user, picture((90, 90, 20)), caption="--style figurine")  # no ratio or size: a keyboard
    kb = await tg.wait_for(
        lambda: next(
            (m for m in tg.bot_messages(chat["id"]) if "Without the picture" in str(m.get("reply_markup"))), None
        ),
        10,
        "the keyboard",
    )
    answer = await harness.press(kb, "Without the picture", user)
    assert answer.get("show_alert") and "without the picture there is nothing to make" in answer.get("text", "")
    assert "Without the picture" in str(tg.message(chat["id"], kb["message_id"])["reply_markup"])  # unchanged
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    (request,) = img.requests
    assert request.path.endswith("/edits") and "collectible figurine." in request.body["prompt"]


async def test_the_picture_limit_is_the_model_the_preset_names_said_when_picked(start_bot, harness, tg, img):
    running = await start_bot(
        image_models="nano-banana-2,gemini-3-pro-image"
    )  # 🍌 Banana Pro takes 11 pictures, not 14
    user, chat = harness.person()
    await preset_with_two_pictures(
        harness, tg, running.settings.database, user, chat, "gem {prompt} in gems --model pro", "gems", (60, 40, 40)
    )
    own = [tg.send_photo(chat, user, picture((n * 20, 90, 90)), media_group_id="ten") for n in range(10)]
    await album_kept(running.settings.database, chat["id"], "ten", 10)
    said = (
        "“gem” brings 2 pictures and your request has 10: 🍌 Banana Pro takes at most 11 together. Send fewer pictures."
    )
    harness.send(chat, user, "/imagine all of these --style gem", reply_to=own[0])
    await harness.reply_text(chat["id"], said)
    harness.send(chat, user, "/imagine all of these", reply_to=own[0])  # 🍌 Banana 2 takes them; then the preset
    kb = await harness.keyboard(chat["id"])
    await harness.press(kb, "🎨 Style", user)
    await markup_says(tg, kb, "No style")
    answer = await harness.press(kb, "👤 gem", user)
    assert answer.get("text") == said and answer.get("show_alert") and "✓ No style" in markup_of(tg, kb)
    assert img.requests == [] and "🎨 gem" not in str([m.get("reply_markup") for m in tg.bot_messages(chat["id"])])


async def test_a_model_that_takes_fewer_than_the_request_and_its_presets_pictures_is_refused_at_the_tap(
    start_bot, harness, tg, img
):
    running = await start_bot(image_models="nano-banana-2,gemini-3-pro-image")  # 🍌 Banana Pro takes 11, not 14
    user, chat = harness.person()
    await preset_with_two_pictures(
        harness, tg, running.settings.database, user, chat, "pair {prompt} with these two", "pair", (60, 40, 40)
    )
    own = [tg.send_photo(chat, user, picture((n * 20, 90, 90)), media_group_id="ten") for n in range(10)]
    await album_kept(running.settings.database, chat["id"], "ten", 10)
    harness.send(chat, user, "/imagine all of these --style pair", reply_to=own[0])  # 🍌 Banana 2 takes the 12
    kb = await harness.keyboard(chat["id"])
    assert "Editing 12 images" in kb["text"] and "✓ 🍌 Banana 2" in markup_of(tg, kb)
    answer = await harness.press(kb, "🍌 Banana Pro", user)
    said = "“pair” brings 2 pictures and your request has 10: 🍌 Banana Pro takes at most 11 together. Send fewer pictures."
    assert answer.get("text") == said and answer.get("show_alert")
    assert "✓ 🍌 Banana 2" in markup_of(tg, kb) and "✓ 🍌 Banana Pro" not in markup_of(tg, kb)
    await harness.press(kb, "Generate", user)  # the switch was not made: what the keyboard shows is made
    await harness.result(chat["id"])
    (request,) = img.requests
    assert request.body["model"] == "nano-banana-2" and len(request.images) == 12


async def test_a_photo_sent_after_tapping_a_preset_is_its_request(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/preset add kite {prompt} flying high --ar 16:9")
    await harness.reply_text(chat["id"], "Preset “kite” saved")
    harness.send(chat, user, "/presets")
    listing = await harness.reply_text(chat["id"], "tap one to use it")
    await harness.press(listing, "👤 kite", user)
    await harness.reply_text(chat["id"], "Send what to make with “kite”")
    dog = picture((200, 200, 10))
    tg.send_photo(chat, user, dog, caption="my dog")  # its caption the words, the photo its picture
    await tg.wait_for(lambda: "my dog" in str(latest_keyboard(tg, chat["id"])), 10, "the preset's keyboard")
    kb = latest_keyboard(tg, chat["id"])
    assert "🎨 kite" in markup_of(tg, kb) and "Editing 1 image" in kb["text"] and "✓ 16:9" in markup_of(tg, kb)
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].images == [dog] and img.requests[0].body["prompt"] == "my dog flying high"

    await harness.press(listing, "👤 kite", user)  # an album without words: the template alone, all its pictures
    await tg.wait_for(
        lambda: harness.texts(chat["id"]).count("✍️ Send what to make with “kite”, e.g. a cat on a sofa.") == 2
    )
    album = [picture((n * 70, 10, 10)) for n in range(3)]
    for data in album:
        tg.send_photo(chat, user, data, media_group_id="kites")
    await tg.wait_for(lambda: "Editing 3 images" in str(latest_keyboard(tg, chat["id"])), 10, "the album's keyboard")
    kb = latest_keyboard(tg, chat["id"])
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"], count=2)
    assert img.requests[1].images == album and img.requests[1].body["prompt"] == "flying high"
    assert not any("Got the picture" in m for m in harness.texts(chat["id"]))

    admin = tg.user(41, "Ada")
    group = tg.group(-100500, "Kites")
    tg.set_admins(group["id"], [admin["id"]])
    harness.send(group, admin, "/preset add glide {prompt} gliding")
    await harness.reply_text(group["id"], "Preset “glide” saved")
    harness.send(group, admin, "/presets")
    listing = await harness.reply_text(group["id"], "tap one to use it")
    await harness.press(listing, "👥 glide", admin)
    asked = await harness.reply_text(group["id"], "reply to this message with what to make with “glide”")
    bird = picture((10, 120, 240))
    tg.send_photo(group, admin, bird, caption="a gull", reply_to=asked)
    await tg.wait_for(lambda: "a gull" in str(latest_keyboard(tg, group["id"])), 10, "the group's keyboard")
    await harness.press(latest_keyboard(tg, group["id"]), "Generate", admin)
    await harness.result(group["id"])
    assert img.requests[2].images == [bird] and img.requests[2].body["prompt"] == "a gull gliding"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
async def test_an_album_answering_a_preset_shows_its_count_while_it_is_collected(bot, harness, tg, img):
    user, chat = harness.person()
    harness.send(chat, user, "/preset add kite {prompt} flying high --ar 16:9")
    await harness.reply_text(chat["id"], "Preset “kite” saved")
    harness.send(chat, user, "/presets")
    listing = await harness.reply_text(chat["id"], "tap one to use it")
    await harness.press(listing, "👤 kite", user)
    await harness.reply_text(chat["id"], "Send what to make with “kite”")
    album = [picture((n * 50, 10, 10)) for n in range(4)]
    tg.send_photo(chat, user, album[0], caption="three kites", media_group_id="kites")
    for data in album[1:]:
        await asyncio.sleep(0.375)
        tg.send_photo(chat, user, data, media_group_id="kites")
    await tg.wait_for(lambda: "Editing 4 images" in str(latest_keyboard(tg, chat["id"])), 10, "the album's keyboard")
    counts = [c.params.get("text", "") for c in tg.calls if "Pictures received" in c.params.get("text", "")]
    assert counts[0].startswith("📥 Pictures received: 1 (up to 14")
    assert any(x.startswith("📥 Pictures received: 4 (") for x in counts)
    kb = latest_keyboard(tg, chat["id"])
    assert "🎨 kite" in markup_of(tg, kb) and not any("Pictures received" in m for m in harness.texts(chat["id"]))
    await harness.press(kb, "Generate", user)  # the count's message became the keyboard, then the result's status
    await harness.result(chat["id"])
    assert img.requests[0].images == album and img.requests[0].body["prompt"] == "three kites flying high"


async def test_a_preset_whose_model_is_dropped_is_made_with_the_usual_one(start_bot, harness, tg, img, caplog):
    first = await start_bot(image_models="nano-banana-2,gpt-image-2")
    user, chat = harness.person()
    harness.send(chat, user, "/preset add sleek {prompt}, sleek --model gpt --ar 16:9")
    await harness.reply_text(chat["id"], "Preset “sleek” saved")
    await first.stop()
    caplog.set_level("WARNING", logger="bot.request_service")
    await start_bot(image_models="nano-banana-2")  # IMAGE_MODELS no longer offers GPT Image 2
    said = "“sleek” was saved with GPT Image 2, which this bot no longer offers: it is made with 🍌 Banana 2."
    harness.send(chat, user, "/imagine a car --style sleek")
    kb = await harness.keyboard(chat["id"])
    assert kb["text"].startswith(said + "\n\n") and "✓ 16:9" in markup_of(tg, kb)
    harness.send(chat, user, "/imagine a bus")
    await tg.wait_for(lambda: "a bus" in str(latest_keyboard(tg, chat["id"])), 10, "its keyboard")
    kb = latest_keyboard(tg, chat["id"])
    await harness.press(kb, "🎨 Style", user)
    await markup_says(tg, kb, "No style")
    await harness.press(kb, "👤 sleek", user)
    await tg.wait_for(lambda: said in tg.message(chat["id"], kb["message_id"])["text"], 10, "the line on the 🎨 pick")
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].body["model"] == "nano-banana-2" and img.requests[0].body["prompt"] == "a bus, sleek"
    logged = [r.getMessage() for r in caplog.records if "names model gpt-image-2" in r.getMessage()]
    assert len(logged) == 1 and "sleek" in logged[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
async def test_a_presets_model_options_are_kept_shown_and_used(start_bot, harness, tg, img):
    await start_bot(image_models="nano-banana-2,gpt-image-2")
    user, chat = harness.person()
    harness.send(chat, user, "/preset add crisp {prompt}, crisp --model gpt --quality high --ar 4:3")
    saved = await harness.reply_text(chat["id"], "Preset “crisp” saved")
    assert "Not options here" not in saved["text"]
    harness.send(chat, user, "/preset show crisp")
    shown = await harness.reply_text(chat["id"], "your preset")
    assert "Options: 4:3 · GPT Image 2 · Quality High" in shown["text"]
    harness.send(chat, user, "/imagine a pear --style crisp --1k")
    await tg.wait_for(lambda: "a pear" in str(latest_keyboard(tg, chat["id"])), 10, "its keyboard")
    kb = latest_keyboard(tg, chat["id"])
    assert "✓ High" in markup_of(tg, kb) and "✓ GPT Image 2" in markup_of(tg, kb)
    await harness.press(kb, "Generate", user)
    await harness.result(chat["id"])
    assert img.requests[0].body["quality"] == "high" and img.requests[0].body["model"] == "gpt-image-2"

    harness.send(chat, user, "/preset add fine {prompt}, fine --quality low")  # no model: one of the bot's takes it
    saved = await harness.reply_text(chat["id"], "Preset “fine” saved")
    assert "Not options here" not in saved["text"]
    harness.send(chat, user, "/preset add odd {prompt} --quality ultra")
    await harness.reply_text(chat["id"], "GPT Image 2 has no --quality “ultra”")
    harness.send(chat, user, "/imagine a plum --model gpt")  # picked on the 🎨 page: the request takes it
    await tg.wait_for(lambda: "a plum" in str(latest_keyboard(tg, chat["id"])), 10, "its keyboard")
    kb = latest_keyboard(tg, chat["id"])
    assert "✓ Medium" in markup_of(tg, kb)
    await harness.press(kb, "🎨 Style", user)
    await markup_says(tg, kb, "No style")
    await harness.press(kb, "👤 fine", user)
    await markup_says(tg, kb, "✓ Low")

    harness.send(chat, user, "/preset export")  # and they travel in an export
    exported = await tg.wait_for(
        lambda: next((m for m in tg.bot_messages(chat["id"]) if m.get("document")), None), 10, "the export"
    )
    data = tg.file_bytes(exported["document"]["file_id"])
    other, other_chat = harness.person()
    tg.send_document(other_chat, other, data, "presets.json", "application/json", caption="/preset import")
    await harness.reply_text(other_chat["id"], "Imported 2 presets: crisp, fine")
    harness.send(other_chat, other, "/preset show crisp")
    assert "Quality High" in (await harness.reply_text(other_chat["id"], "your preset"))["text"]
