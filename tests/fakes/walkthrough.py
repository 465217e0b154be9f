"""A user's walk through the bot: the real `imagine-bot` process against both fakes, printed as chat transcripts.

    uv run python -m tests.fakes.walkthrough            # every scene
    uv run python -m tests.fakes.walkthrough files id   # some of them (names below)

Not a test (nothing is asserted): what a person would see on their phone, scene by scene, for trying the bot as a
user before a release. The bot runs as `python -m bot` from a folder holding only a `.env`, as a new user starts
it; its log is printed at the end (start line, job lines), so an operator's view is there too.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from PIL import Image

from tests.fakes.imageapi import FakeImageAPI
from tests.fakes.telegram import FakeBotAPI

ROOT = Path(__file__).resolve().parents[2]
Scene = Callable[["Walk"], Awaitable[None]]
SCENES: dict[str, Scene] = {}
SCENE_ENV: dict[str, str] = {}  # a scene's own .env lines (IMAGE_MODELS=…): it runs on a bot started with them
_PEOPLE = iter(range(7001, 8000))
ADMIN_ID = 8999  # ADMIN_USER_IDS: payment support writes to them


def scene(fn: Scene) -> Scene:
    SCENES[fn.__name__] = fn
    return fn


def scene_with(env: str) -> Callable[[Scene], Scene]:
    """A scene that needs settings of its own (`IMAGE_MODELS=…`): a bot with them is started for it."""

    def register(fn: Scene) -> Scene:
        SCENE_ENV[fn.__name__] = env
        return scene(fn)

    return register


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(out, "JPEG")
    return out.getvalue()


class Walk:
    def __init__(self, tg: FakeBotAPI, img: FakeImageAPI) -> None:
        self.tg, self.img = tg, img
        self._seen: dict[int, int] = {}
        self._forwarded = 0

    def person(self, name: str, lang: str = "en") -> tuple[dict, dict]:
        user = self.tg.user(next(_PEOPLE), name, language_code=lang)
        return user, self.tg.private_chat(user)

    async def settle(self, seconds: float = 1.5) -> None:
        await asyncio.sleep(seconds)

    def show(self, chat: dict, title: str) -> None:
        """Every call the bot made to this chat since the last look, as a phone would show it."""
        print(f"\n  -- {title}")
        start = self._seen.get(chat["id"], 0)
        calls = [c for c in self.tg.calls if str(c.params.get("chat_id")) == str(chat["id"])]
        for call in calls[start:]:
            text = call.params.get("text") or call.params.get("caption") or call.params.get("title") or ""
            if call.method == "forwardMessage":
                sent = self.tg.bot_messages(chat["id"])
                copy = next((m for m in sent if "forward_origin" in m and m["message_id"] > self._forwarded), None)
                if copy is not None:
                    self._forwarded = copy["message_id"]
                    kind = next(k for k in ("text", "photo", "document", "voice", "video", "sticker") if k in copy)
                    who = copy["forward_origin"].get("sender_user", {}).get("first_name", "?")
                    text = f"(from {who}) [{kind}] {copy.get('text') or copy.get('caption') or ''}".strip()
            markup = call.params.get("reply_markup") or {}
            if isinstance(markup, str):
                import json

                markup = json.loads(markup)
            buttons = " ".join(f"[{b['text']}]" for row in markup.get("inline_keyboard", []) for b in row)
            what = {
                "sendMessage": "bot",
                "editMessageText": "bot (edits)",
                "sendPhoto": "bot [photo]",
                "sendDocument": "bot [file]",
                "deleteMessage": "bot (deletes a message)",
                "editMessageReplyMarkup": "bot (redraws buttons)",
                "sendMediaGroup": "bot [album]",
                "sendInvoice": "bot [invoice]",
                "forwardMessage": "bot [forwarded]",
                "sendChatAction": None,
            }.get(call.method, call.method)
            if what is None:
                continue
            error = f"  ⛔ {call.error}" if getattr(call, "error", None) else ""
            lines = (text.replace("\n", "\n" + " " * 26) + ("  " + buttons if buttons else "")).strip()
            print(f"     {what:<20} {lines}{error}")
        self._seen[chat["id"]] = len(calls)

    def keyboard(self, chat: dict) -> dict | None:
        for m in reversed(self.tg.bot_messages(chat["id"])):
            if (m.get("reply_markup") or {}).get("inline_keyboard"):
                return m
        return None

    async def tap(self, chat: dict, user: dict, label: str) -> None:
        message = self.keyboard(chat)
        assert message is not None, "no buttons to tap"
        for b in (x for row in message["reply_markup"]["inline_keyboard"] for x in row):
            if label in b["text"]:
                query = self.tg.press(message, b["callback_data"], user)
                await self.tg.wait_for(lambda query=query: self.tg.answered.get(query), 10, f"answer to {label}")
                answer = self.tg.answered[query].get("text")
                print(f"     you tap [{b['text']}]" + (f"  → toast: {answer}" if answer else ""))
                return
        raise AssertionError(f"no button {label!r}")


@scene
async def files(w: Walk) -> None:
    user, chat = w.person("Fay")
    print("\n== 1. A picture sent as a file, then 🖼 Keep ratio")
    w.tg.send_document(chat, user, jpeg(1200, 900), "IMG_2044.jpg", "image/jpeg", caption="/imagine make it night")
    print("     you send IMG_2044.jpg (1200×900, as a file): /imagine make it night")
    await w.settle()
    w.show(chat, "keyboard")
    await w.tap(chat, user, "16:9")
    await w.tap(chat, user, "Keep ratio")
    await w.settle(0.5)
    await w.tap(chat, user, "Generate")
    await w.settle(3)
    w.show(chat, "after Generate")


@scene
async def picture_first(w: Walk) -> None:
    user, chat = w.person("Pia")
    print("\n== 2. A photo without words, then the words")
    w.tg.send_photo(chat, user, jpeg(900, 1200))
    print("     you send a photo (900×1200), no caption")
    await w.settle()
    w.show(chat, "the bot's answer")
    w.tg.send_text(chat, user, "make it a watercolour")
    print("     you: make it a watercolour")
    await w.settle()
    w.show(chat, "keyboard")
    print("\n== 2b. A photo and its words shared together (two messages at once)")
    w.tg.send_photo(chat, user, jpeg(1200, 900))
    w.tg.send_text(chat, user, "turn it into a pencil sketch")
    print("     you share a photo (1200×900) and, at once, turn it into a pencil sketch")
    await w.settle()
    w.show(chat, "keyboard")


@scene
async def unusable(w: Walk) -> None:
    user, chat = w.person("Uli")
    print("\n== 3. Stickers, voice, video, a GIF, a PDF")
    for kind in ("sticker", "voice", "video", "animation"):
        w.tg.send_media(chat, user, kind)
        print(f"     you send a {kind}")
    w.tg.send_document(chat, user, b"%PDF-1.4", "menu.pdf", "application/pdf")
    print("     you send menu.pdf")
    await w.settle(2)
    w.show(chat, "answers")


@scene
async def habits(w: Walk) -> None:
    user, chat = w.person("Hal")
    print("\n== 6-8. A split long prompt, an edited prompt, other bots' flags")
    head = "/imagine " + "an intricate gothic cathedral, " * 140
    w.tg.send_text(chat, user, head)
    w.tg.send_text(chat, user, "at dawn --ar 16:9")
    print(f"     you paste a {len(head) + 17}-character prompt; the app sends it as two messages")
    await w.settle(3.5)
    w.show(chat, "one keyboard")
    mine = w.tg.send_text(chat, user, "/imagine a red fxo in snow --v 6 --seed 42")
    print("     you: /imagine a red fxo in snow --v 6 --seed 42")
    await w.settle()
    w.show(chat, "keyboard with a note")
    w.tg.edit_text(mine, "/imagine a red fox in snow")
    print("     you edit your message: /imagine a red fox in snow")
    await w.settle()
    w.show(chat, "the keyboard follows the edit")
    await w.tap(chat, user, "Cancel")
    await w.settle(0.5)
    w.show(chat, "cancelled, prompt kept")
    await w.tap(chat, user, "Start again")
    await w.settle(0.5)
    w.show(chat, "back")


@scene
async def results(w: Walk) -> None:
    user, chat = w.person("Rio")
    print("\n== 4, 11, 14. A 4K image too big for a photo, status lines, /history")
    w.img.noise = True
    w.img.delay = 2.5
    w.tg.send_text(chat, user, "/imagine static on an old tv --ar 16:9 --2k")
    print("     you: /imagine static on an old tv --ar 16:9 --2k")
    await w.settle(6)
    w.img.noise, w.img.delay = False, 0
    w.show(chat, "status line, then the result")
    w.tg.send_text(chat, user, "/history")
    await w.settle()
    w.show(chat, "/history")


@scene
async def groups(w: Walk) -> None:
    print("\n== 10, 13. A group: /start, a request, an admin's cancel; /id")
    alice = w.tg.user(8101, "Alice", language_code="en")
    ada = w.tg.user(8102, "Ada", language_code="en")
    group = w.tg.group(-1008100, "Friends")
    w.tg.set_admins(group["id"], [ada["id"]])
    w.tg.send_text(group, alice, "/start")
    w.tg.send_text(group, alice, "/id")
    await w.settle()
    w.show(group, "/start and /id in a group")
    w.img.delay = 8
    w.tg.send_text(group, alice, "/imagine a picnic --ar 1:1 --1k")
    await w.settle(2.5)
    await w.tap(group, ada, "Cancel")
    await w.settle()
    w.img.delay = 0
    w.show(group, "the request and the admin's cancel")


@scene
async def settings_help(w: Walk) -> None:
    user, chat = w.person("Sol", "zh-hans")
    print("\n== 14. /settings and /help (in Chinese)")
    w.tg.send_text(chat, user, "/settings")
    await w.settle()
    w.show(chat, "/settings")
    w.tg.send_text(chat, user, "/help")
    await w.settle()
    w.show(chat, "/help")


@scene_with("IMAGE_MODELS=nano-banana-2,gemini-3-pro-image,gpt-image-2,doubao-seedream-4-5-251128\n")
async def models(w: Walk) -> None:
    user, chat = w.person("Max")
    print("\n== Several models: /settings' Quality for GPT Image 2, four variants in one call, /usage")
    w.tg.send_text(chat, user, "/settings")
    await w.settle()
    w.show(chat, "/settings")
    await w.tap(chat, user, "GPT Image 2")
    await w.settle(0.5)
    await w.tap(chat, user, "High")
    await w.settle(0.5)
    w.show(chat, "GPT Image 2 the default, Quality High")
    calls = len(w.img.requests)
    w.img.delay = 2.5
    w.tg.send_text(chat, user, "/imagine four paper cranes --n 4 --ar 1:1 --1k")
    print("     you: /imagine four paper cranes --n 4 --ar 1:1 --1k")
    await w.settle(6)
    w.img.delay = 0
    w.show(chat, "status line, then the album")
    made = [f"{r.model} n={r.body.get('n')} quality={r.body.get('quality')}" for r in w.img.requests[calls:]]
    print(f"     (the image API saw {len(made)} call(s): {'; '.join(made)})")
    w.tg.send_text(chat, user, "/usage")
    await w.settle()
    w.show(chat, "/usage")
    w.tg.send_text(chat, user, "/settings")
    await w.settle()
    await w.tap(chat, user, "Seedream 4.5")
    await w.settle(0.5)
    w.show(chat, "Seedream 4.5 the default: its own sizes (no 1K)")
    w.tg.send_text(chat, user, "/start")
    await w.settle()
    w.show(chat, "/start: the default model's costs")


@scene
async def paysupport(w: Walk) -> None:
    user, chat = w.person("Mia")
    admin = w.tg.user(ADMIN_ID, "Boss")
    admin_chat = w.tg.private_chat(admin)
    print("\n== Payments: /buy, pay, /paysupport with a screenshot; the admin's view and answer; /cancel")
    w.tg.send_text(chat, user, "/buy")
    await w.settle()
    await w.tap(chat, user, "100 credits")
    await w.settle()
    invoice = w.tg.invoices(chat["id"])[-1]
    print("     you pay the invoice (50 ⭐)")
    await w.tg.pay(user, invoice)
    await w.settle()
    w.show(chat, "/buy, a pack, paid")
    w.tg.send_text(chat, user, "/paysupport")
    await w.settle()
    print("     you: (a screenshot of the receipt)")
    w.tg.send_photo(chat, user, jpeg(480, 800))
    await w.settle()
    w.show(chat, "/paysupport, then a screenshot")
    w.show(admin_chat, "what the admin gets")
    note = w.tg.bot_messages(admin_chat["id"])[-1]
    print("     the admin replies to the note: Refunded your 50 ⭐, sorry for the trouble.")
    w.tg.send_text(admin_chat, admin, "Refunded your 50 ⭐, sorry for the trouble.", reply_to=note)
    await w.settle()
    w.show(admin_chat, "the admin's reply to the note")
    w.show(chat, "the buyer gets the admin's answer")
    w.tg.send_text(chat, user, "/paysupport")
    await w.settle()
    print("     you: /cancel")
    w.tg.send_text(chat, user, "/cancel")
    await w.settle()
    print("     you: a red apple")
    w.tg.send_text(chat, user, "a red apple")
    await w.settle()
    w.show(chat, "/paysupport, /cancel, then a prompt")


def _helper_reply(plan) -> str:
    """The fake chat model in the helper scene: a translation of the one Chinese prompt, else a rewrite."""
    words = plan.user.split("\n")[1]
    if "into English" in plan.system:
        return {"雪地里的红狐狸": "a red fox in the snow"}.get(words, words)
    return f"{words}, golden hour, soft rim light, 35 mm"


@scene
async def helper(w: Walk) -> None:
    user, chat = w.person("Mei")
    print("\n== 27. The prompt helper: ✨ Improve, translation, 🔁 Again and /history with the user's words")
    w.img.chat_reply = _helper_reply
    w.tg.send_text(chat, user, "/imagine a red kite over the sea")
    print("     you: /imagine a red kite over the sea")
    await w.settle()
    await w.tap(chat, user, "Improve")
    await w.settle()
    await w.tap(chat, user, "Use it")
    await w.settle(1)
    await w.tap(chat, user, "Generate")
    await w.settle(3)
    w.show(chat, "✨ Improve, ✓ Use it, Generate")
    w.tg.send_text(chat, user, "/settings")
    await w.settle()
    await w.tap(chat, user, "Translate my prompts")
    await w.settle(1)
    w.tg.send_text(chat, user, "/imagine 雪地里的红狐狸 --ar 16:9 --1k")
    print("     you: /imagine 雪地里的红狐狸 --ar 16:9 --1k")
    await w.settle(3)
    photo = next(m for m in reversed(w.tg.bot_messages(chat["id"])) if m.get("photo"))
    again = next(b for row in photo["reply_markup"]["inline_keyboard"] for b in row if "Again" in b["text"])
    w.tg.press(photo, again["callback_data"], user)
    print("     you tap [🔁 Again]")
    await w.settle(3)
    w.tg.send_text(chat, user, "/history")
    await w.settle()
    w.show(chat, "translate on; 🔁 Again; /history")


@scene
async def presets(w: Walk) -> None:
    user, chat = w.person("Pam")
    print("\n== 25. Presets: a tap asks what to make; 11 pictures shown; --style in a split prompt's tail")
    w.tg.send_text(chat, user, "/preset add kite {prompt} flying high on a windy beach --ar 16:9")
    print("     you: /preset add kite {prompt} flying high on a windy beach --ar 16:9")
    w.tg.send_text(chat, user, "/presets")
    print("     you: /presets")
    await w.settle()
    w.show(chat, "saved, and the list")
    await w.tap(chat, user, "kite")
    await w.settle(0.5)
    w.show(chat, "the bot asks")
    w.tg.send_text(chat, user, "a red dragon")
    print("     you: a red dragon")
    await w.settle()
    w.show(chat, "the keyboard, with the preset")
    await w.tap(chat, user, "Generate")
    await w.settle(3)
    w.show(chat, "the result")
    parts = [w.tg.send_photo(chat, user, jpeg(300 + n, 200), media_group_id="eleven") for n in range(11)]
    print("     you send an album of 11 photos")
    await w.settle()
    w.tg.send_text(chat, user, "/preset add shelf put {prompt} on the shelf of these pictures", reply_to=parts[0])
    print("     you reply to it: /preset add shelf put {prompt} on the shelf of these pictures")
    await w.settle()
    w.tg.send_text(chat, user, "/preset show shelf")
    print("     you: /preset show shelf")
    await w.settle(4)
    w.show(chat, "the album's answer, saved, and shown")
    w.tg.send_text(chat, user, "/imagine a blue vase --style shelf")
    print("     you: /imagine a blue vase --style shelf")
    await w.settle()
    w.show(chat, "the keyboard says it is an edit of the preset's 11 pictures")
    w.tg.send_text(chat, user, "/presets")
    print("     you: /presets")
    await w.settle()
    await w.tap(chat, user, "kite")
    await w.settle(0.5)
    w.tg.send_photo(chat, user, jpeg(320, 240), caption="my dog")
    print("     you send a photo with the caption: my dog")
    await w.settle()
    w.show(chat, "the photo answers the preset: an edit with it")
    head = "/imagine " + "a quiet harbour town, " * 190
    w.tg.send_text(chat, user, head)
    w.tg.send_text(chat, user, "boats at rest --style watercolour")
    print(f"     you paste a {len(head) + 34}-character prompt ending in --style watercolour (two messages)")
    await w.settle(3.5)
    w.show(chat, "one keyboard, the style read from the second part")

    alice = w.tg.user(8201, "Alice", language_code="en")
    ada = w.tg.user(8202, "Ada", language_code="en")
    group = w.tg.group(-1008200, "Makers")
    w.tg.set_admins(group["id"], [ada["id"]])
    w.tg.send_text(group, ada, "/preset add poster a retro travel poster of {prompt}")
    w.tg.send_text(group, alice, "/presets")
    print("     in a group: Ada (admin) adds a preset; Alice sends /presets")
    await w.settle()
    w.show(group, "the group's preset")
    await w.tap(group, alice, "poster")
    await w.settle(0.5)
    w.show(group, "the bot asks Alice")
    asked = next(m for m in reversed(w.tg.bot_messages(group["id"])) if "poster" in (m.get("text") or ""))
    w.tg.send_text(group, alice, "Lisbon at sunset", reply_to=asked)
    print("     Alice replies: Lisbon at sunset")
    await w.settle()
    w.show(group, "her keyboard")


async def main(names: list[str]) -> int:
    chosen = names or list(SCENES)
    async with FakeBotAPI() as tg, FakeImageAPI() as img:
        for extra in dict.fromkeys(SCENE_ENV.get(name, "") for name in chosen):  # one bot per set of settings
            await _run_bot(tg, img, extra, [name for name in chosen if SCENE_ENV.get(name, "") == extra])
    return 0


async def _run_bot(tg: FakeBotAPI, img: FakeImageAPI, extra: str, names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, ".env").write_text(
            f"TELEGRAM_BOT_TOKEN={tg.token}\nIMAGE_API_KEY={img.api_key}\nIMAGE_API_BASE_URL={img.base_url}\n"
            f"TELEGRAM_API_BASE_URL={tg.base_url}\nTELEGRAM_FILE_BASE_URL={tg.base_file_url}\n"
            "ALLOWED_USER_IDS=\nUSER_DAILY_QUOTA=50\nPROMPT_MODEL=gpt-4o-mini\n"
            f"STARS_PACKS=100:50,300:140\nADMIN_USER_IDS={ADMIN_ID}\n{extra}"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "IMAGE_"))}
        env["PYTHONPATH"] = str(ROOT)
        log = Path(folder, "bot.log").open("w+")
        polls = len(tg.calls_of("getUpdates"))
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=folder, env=env, stdout=log, stderr=log
        )
        try:
            await tg.wait_for(lambda: len(tg.calls_of("getUpdates")) > polls, 30, "the bot to poll")
            for name in names:
                await SCENES[name](Walk(tg, img))
        finally:
            bot.terminate()
            await asyncio.wait_for(bot.wait(), 30)
            log.seek(0)
            print("\n== the operator's log\n" + "".join("     " + line for line in log))


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
