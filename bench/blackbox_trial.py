"""Black-box trial: the finished bot, started as a user would, against an independent Bot API emulator.

Nothing of the project's own fakes is used. The Bot API is the npm package `telegram-test-api` (jehy), run with
node; the image API is a few lines below that answer DMXAPI's `/v1/images/generations` and `/v1/images/edits` as
/work/shared/API.md describes them. The bot is `uv run --project <repo> imagine-bot` in a temporary folder holding
only a `.env`, as the README tells an operator to start it.

This script installs nothing. Once, in a folder of your choice (never in the repository):

    mkdir -p /tmp/bb-emulator && (cd /tmp/bb-emulator && npm install telegram-test-api)
    TELEGRAM_TEST_API_DIR=/tmp/bb-emulator uv run python bench/blackbox_trial.py          # all scenes
    uv run python bench/blackbox_trial.py --emulator-dir /tmp/bb-emulator --scenes start,imagine-keyboard

The emulator is far from the whole Bot API (telegram-test-api 4.2: getMe, getUpdates, sendMessage,
editMessageText, editMessageReplyMarkup, deleteMessage, answerCallbackQuery, set/deleteWebhook; every other method
is an HTTP 500 `{"message": "API method '…' is not supported"}`), and some of what it answers is not the Bot API's
shape (getMe without `is_bot`, dates in milliseconds, callback queries without `chat_instance`, edits answering
`null`). So the bot reaches it through a thin adapter here, which passes every call through and repairs only
those gaps, and answers the methods the emulator lacks (sendPhoto, sendDocument, getFile, …) itself, writing a
"[photo …]" message into the emulator so the client sees it. Every repair is counted and printed per scene, so a
bot bug can be told from an emulator gap. `--raw` points the bot straight at the emulator instead (it refuses to
start: getMe is not a bot account).

What the client sees is read back from the emulator's client routes (`/sendMessage`, `/sendCommand`,
`/sendCallback`, `/getUpdatesHistory`), never from the adapter.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
TOKEN = "123456:BLACKBOXtrialTOKEN"
API_KEY = "sk-blackbox-trial"
BOT_USER = {"id": 666, "is_bot": True, "first_name": "Test First name", "username": "TestNameBot"}
SIZES = {  # API.md's table: ratio -> (1K width, height); 2K and 4K are 2x and 4x
    "1:1": (1024, 1024),
    "2:3": (848, 1264),
    "3:2": (1264, 848),
    "3:4": (896, 1200),
    "4:3": (1200, 896),
    "4:5": (928, 1152),
    "5:4": (1152, 928),
    "9:16": (768, 1376),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(out, "PNG")
    return out.getvalue()


# ---------------------------------------------------------------- the image API stub (from API.md, not the fakes)


class ImageStub:
    """`POST /v1/images/generations` and `/v1/images/edits`: Bearer key checked, one PNG of API.md's size as
    b64_json. A prompt with "slowly" in it takes 30 s (for /cancel)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.cdn: dict[str, bytes] = {}
        self.aborted: list[float] = []  # seconds into a slow request when the bot closed it

    async def generate(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return web.json_response({"error": {"message": "invalid token", "type": "auth", "code": 401}}, status=401)
        if request.content_type == "application/json":
            body = await request.json()
        else:
            form = await request.post()
            body = {k: v for k, v in form.items() if isinstance(v, str)}
            body["images"] = len(form.getall("image", []))
        self.requests.append({"path": request.path, **{k: v for k, v in body.items() if k != "prompt"}})
        ratio, size = str(body.get("aspect_ratio") or "1:1"), str(body.get("size") or "1K").upper()
        if ratio not in SIZES or size not in ("1K", "2K", "4K") or int(body.get("n", 1)) != 1:
            return web.json_response({"error": {"message": "bad parameter", "type": "invalid"}}, status=400)
        if "slowly" in str(body.get("prompt", "")):
            started = time.monotonic()
            while time.monotonic() - started < 30:
                await asyncio.sleep(0.2)
                if request.transport is None or request.transport.is_closing():  # the bot hung up: aborted
                    self.aborted.append(round(time.monotonic() - started, 1))
                    return web.Response(status=499)
        await asyncio.sleep(1.5)  # 1K takes seconds at best
        scale = {"1K": 1, "2K": 2, "4K": 4}[size]
        width, height = SIZES[ratio]
        image = png(width * scale, height * scale)
        if body.get("response_format") == "url":  # a CDN link, as the vendor's example answers
            name = f"{len(self.cdn)}.png"
            self.cdn[name] = image
            url = f"{request.scheme}://{request.host}/cdn/{name}"
            return web.json_response({"created": int(time.time()), "data": [{"url": url}]})
        return web.json_response(
            {"created": int(time.time()), "data": [{"b64_json": base64.b64encode(image).decode()}]}
        )

    async def download(self, request: web.Request) -> web.Response:
        image = self.cdn.get(request.match_info["name"])
        return web.Response(body=image, content_type="image/png") if image else web.Response(status=404)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=200 * 2**20)
        app.router.add_post("/v1/images/generations", self.generate)
        app.router.add_post("/v1/images/edits", self.generate)
        app.router.add_get("/cdn/{name}", self.download)
        return app


STUB = ImageStub()
PATIENCE = [1.0]  # --patience: how much longer than usual a scene waits for `until` (with --refuse, say)


# ---------------------------------------------------------------- the adapter in front of the emulator


@dataclass
class Adapter:
    """Passes the bot's calls to the emulator and repairs only where the emulator is not the Bot API; each repair
    is one entry in `gaps` (method: what), read and cleared per scene."""

    emulator: str
    gaps: dict[str, int] = field(default_factory=dict)
    chats: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse: frozenset[str] = frozenset()  # methods whose emulator refusal goes to the bot as it is (--refuse)
    toasts: list[str] = field(default_factory=list)  # answerCallbackQuery texts: the emulator shows them nowhere
    session: aiohttp.ClientSession | None = None

    def gap(self, what: str) -> None:
        self.gaps[what] = self.gaps.get(what, 0) + 1

    async def emu(self, method: str, params: dict[str, Any]) -> tuple[int, Any]:
        assert self.session is not None
        async with self.session.post(f"{self.emulator}/bot{TOKEN}/{method}", json=params) as resp:
            return resp.status, await resp.json(content_type=None)

    def message(self, raw: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """A Message as the Bot API gives it: date in seconds, the bot as `from`, the chat as it really is."""
        msg = {k: v for k, v in raw.items() if k not in ("chat_id", "reply_markup", "parse_mode", "entities")}
        if isinstance(raw.get("date"), int) and raw["date"] > 10**11:
            self.gap("dates in milliseconds")
            msg["date"] = raw["date"] // 1000
        chat_id = str(params.get("chat_id", raw.get("chat", {}).get("id")))
        msg["chat"] = self.chats.get(chat_id, raw.get("chat") or {"id": int(chat_id), "type": "private"})
        msg["from"] = BOT_USER
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        return msg

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        files: dict[str, tuple[str, bytes]] = {}
        if request.content_type == "application/json":
            params = await request.json()
        elif request.can_read_body:
            for key, value in (await request.post()).items():
                if isinstance(value, str):
                    params[key] = value
                elif isinstance(value, web.FileField):
                    files[key] = (value.filename, value.file.read())
        if method == "getMe":
            status, answer = await self.emu(method, params)
            if "is_bot" not in answer.get("result", {}):
                self.gap("getMe: no is_bot")
            return web.json_response({"ok": True, "result": {**answer.get("result", {}), **BOT_USER}})
        if method == "getUpdates":
            return web.json_response({"ok": True, "result": await self.updates(params)})
        if method == "sendMessage":
            status, answer = await self.emu(method, params)
            return web.json_response({"ok": True, "result": self.message(answer["result"], params)})
        if method == "answerCallbackQuery" and params.get("text"):
            self.toasts.append(str(params["text"]))
        if method in ("editMessageText", "editMessageReplyMarkup", "deleteMessage", "answerCallbackQuery"):
            status, answer = await self.emu(method, params)
            if not answer.get("ok"):  # deleteMessage of a message it never stored: the Bot API's own refusal
                return web.json_response(answer, status=answer.get("error_code", 400))
            if method in ("deleteMessage", "answerCallbackQuery"):
                if answer.get("result") is not True:
                    self.gap(f"{method}: answers null, not true")
                return web.json_response({"ok": True, "result": True})
            self.gap(f"{method}: answers null, not the Message")
            raw = {"message_id": int(params["message_id"]), "date": int(time.time())}
            if method == "editMessageText":
                raw["text"] = params.get("text", "")
            return web.json_response({"ok": True, "result": self.message(raw, params)})
        if method in ("deleteWebhook", "setWebhook"):
            status, answer = await self.emu(method, params)
            return web.json_response({"ok": True, "result": True})
        return await self.missing(method, params, files)

    async def updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The emulator ignores `timeout` and `offset` (it marks what it hands out as read): wait a little here
        so polling is not a busy loop, and add what the Bot API always sends."""
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        while True:
            status, answer = await self.emu("getUpdates", {})
            result: list[dict[str, Any]] = answer.get("result", [])
            if result or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
        for update in result:
            message = update.get("message") or (update.get("callback_query") or {}).get("message") or {}
            message.pop("botToken", None)
            if "chat" in message:
                self.chats[str(message["chat"]["id"])] = message["chat"]
            if "callback_query" in update and "chat_instance" not in update["callback_query"]:
                self.gap("callback_query: no chat_instance")
                update["callback_query"]["chat_instance"] = f"ci{message.get('chat', {}).get('id', 0)}"
        return result

    async def missing(self, method: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> web.Response:
        """A method the emulator does not have: asked first (to quote its refusal), then answered here."""
        status, answer = await self.emu(method, {})
        if method in self.refuse:
            self.gap(f"{method}: emulator {status} 'not supported' (relayed to the bot, --refuse)")
            return web.json_response(answer, status=status)
        self.gap(f"{method}: emulator {status} 'not supported' (answered by the adapter)")
        if method in ("sendPhoto", "sendDocument"):
            kind = "photo" if method == "sendPhoto" else "document"
            return web.json_response({"ok": True, "result": await self.upload(kind, params, files.get(kind))})
        if method == "sendMediaGroup":
            media = json.loads(params.get("media", "[]"))
            sent = []
            for item in media:
                attached = str(item.get("media", "")).removeprefix("attach://")
                one = {**params, "caption": item.get("caption", "")}
                sent.append(await self.upload(item.get("type", "photo"), one, files.get(attached)))
            return web.json_response({"ok": True, "result": sent})
        if method == "getFile":
            file_id = params.get("file_id", "x")
            return web.json_response(
                {
                    "ok": True,
                    "result": {"file_id": file_id, "file_unique_id": file_id, "file_path": f"photos/{file_id}.png"},
                }
            )
        if method == "getChatMember":
            user = {"id": int(params.get("user_id", 1)), "is_bot": False, "first_name": "TestName"}
            return web.json_response({"ok": True, "result": {"status": "member", "user": user}})
        return web.json_response({"ok": True, "result": True})  # setMyCommands, sendChatAction, …

    async def upload(self, kind: str, params: dict[str, Any], upload: tuple[str, bytes] | None) -> dict[str, Any]:
        """A photo or file, written into the emulator as a "[photo PNG 2752×1536, 60 kB] caption" message."""
        name, blob = upload or ("", b"")
        described = f"{len(blob) // 1024} kB"
        with contextlib.suppress(Exception):
            img = Image.open(io.BytesIO(blob))
            described = f"{img.format} {img.width}×{img.height}, {described}"
        if kind == "document" and name:
            described += f", {name}"
        params = {k: v for k, v in params.items() if k not in ("photo", "document", "media")}
        _, sent = await self.emu("sendMessage", {**params, "text": f"[{kind} {described}] {params.get('caption', '')}"})
        msg = self.message(sent["result"], params)
        msg.pop("text", None)
        msg["caption"] = params.get("caption", "")
        ids = {"file_id": f"f{msg['message_id']}", "file_unique_id": f"u{msg['message_id']}"}
        msg[kind] = [{**ids, "width": 1, "height": 1}] if kind == "photo" else ids
        return msg

    async def file(self, request: web.Request) -> web.Response:
        self.gap("file download (emulator has no /file route)")
        return web.Response(body=png(512, 512), content_type="image/png")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=200 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self.handle)
        app.router.add_get("/file/bot{token}/{path:.*}", self.file)
        return app


# ---------------------------------------------------------------- the user's side: the emulator's client routes


def buttons(markup: Any) -> list[list[tuple[str, str]]]:
    if isinstance(markup, str):
        markup = json.loads(markup)
    if not isinstance(markup, dict):
        return []
    return [
        [(b.get("text", ""), b.get("callback_data") or b.get("url") or "") for b in row]
        for row in markup.get("inline_keyboard", [])
    ]


@dataclass
class Seen:
    """One bot message as the emulator holds it now."""

    message_id: int
    text: str
    keyboard: list[list[tuple[str, str]]]

    def show(self) -> str:
        rows = " / ".join(" ".join(f"[{label}]" for label, _ in row) for row in self.keyboard)
        return self.text.replace("\n", " ⏎ ") + (f"   {rows}" if rows else "")


class Client:
    """A person in one chat, through telegram-test-api's client routes."""

    def __init__(self, session: aiohttp.ClientSession, emulator: str, chat: dict[str, Any], user_id: int = 1) -> None:
        self.session, self.emulator, self.chat = session, emulator, chat
        self.user = {"id": user_id, "is_bot": False, "first_name": "Ann", "username": "ann", "language_code": "en"}
        self.known: dict[int, Seen] = {}

    async def post(self, route: str, body: dict[str, Any]) -> Any:
        async with self.session.post(f"{self.emulator}/{route}", json=body) as resp:
            return await resp.json(content_type=None)

    def base(self) -> dict[str, Any]:
        return {"botToken": TOKEN, "date": int(time.time()), "from": self.user, "chat": self.chat}

    async def say(self, text: str, **extra: Any) -> None:
        body = {**self.base(), "text": text, **extra}
        if text.startswith("/"):
            body["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
            await self.post("sendCommand", body)
        else:
            await self.post("sendMessage", body)

    async def send(self, **message: Any) -> None:
        await self.post("sendMessage", {**self.base(), **message})

    async def tap(self, seen: Seen, label: str) -> bool:
        data = next((d for row in seen.keyboard for text, d in row if label in text), None)
        if data is None:
            return False
        message = {"message_id": seen.message_id, "date": int(time.time()), "chat": self.chat, "text": seen.text}
        await self.post("sendCallback", {**self.base(), "message": message, "data": data})
        return True

    async def state(self) -> dict[int, Seen]:
        history = await self.post("getUpdatesHistory", {"token": TOKEN})
        now: dict[int, Seen] = {}
        for item in history.get("result", []):
            msg = item.get("message", {})
            if "chat_id" in msg and str(msg["chat_id"]) == str(self.chat["id"]):
                now[item["messageId"]] = Seen(
                    item["messageId"], str(msg.get("text", "")), buttons(msg.get("reply_markup"))
                )
        return now

    async def settle(self, quiet: float = 1.5, timeout: float = 20.0, until: str = "") -> list[str]:
        """Wait until the chat stops changing (and `until` shows, if given); what changed, as lines."""
        deadline = time.monotonic() + timeout * PATIENCE[0]
        lines: list[str] = []
        last, last_change = await self.state(), time.monotonic()
        lines += self.changes(last)
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            now = await self.state()
            if now != last:
                last, last_change = now, time.monotonic()
                lines += self.changes(now)
            shown = " ".join(s.show() for s in now.values())
            if time.monotonic() - last_change >= quiet and (not until or until in shown):
                break
        return lines

    def changes(self, now: dict[int, Seen]) -> list[str]:
        """Every state the client saw, in order: a status line's steps are edits of one message."""
        lines = []
        for mid, seen in now.items():
            old = self.known.get(mid)
            if old is None:
                lines.append(f"new  #{mid}: {seen.show()}")
            elif old != seen:
                lines.append(f"edit #{mid}: {seen.show()}")
        lines += [f"gone #{mid}: {old.show()[:60]}" for mid, old in self.known.items() if mid not in now]
        self.known = now
        return lines

    def latest(self, needle: str = "") -> Seen | None:
        found = [s for s in self.known.values() if needle in s.show()]
        return found[-1] if found else None


# ---------------------------------------------------------------- scenes: what a new user does, and what USING.md promises

Check = tuple[str, bool]


def has(lines: list[str], *needles: str) -> bool:
    text = "\n".join(lines)
    return all(n in text for n in needles)


async def generate_from_keyboard(c: Client, out: list[str], taps: tuple[str, ...]) -> list[str]:
    for label in taps:
        board = c.latest("Generate")
        if board is None or not await c.tap(board, label):
            out.append(f"(no button {label!r} to tap)")
            return out
        out.append(f"tap {label}")
        out += await c.settle(quiet=1.0, until="[photo" if "Generate" in label else "")
    return out


async def scene_start(c: Client, out: list[str]) -> list[Check]:
    await c.say("/start")
    out += await c.settle()
    return [("/start answers and names /imagine", has(out, "/imagine"))]


async def scene_help(c: Client, out: list[str]) -> list[Check]:
    await c.say("/help")
    out += await c.settle()
    return [("/help has ⚙️ Options and 📋 Commands buttons", has(out, "Options", "Commands"))]


async def scene_imagine_keyboard(c: Client, out: list[str]) -> list[Check]:
    await c.say("/imagine a red fox in fresh snow, golden hour")
    out += await c.settle()
    keyboard = has(out, "[16:9]", "[2K]", "Generate", "Cancel")
    await generate_from_keyboard(c, out, ("16:9", "2K", "Generate"))
    return [
        ("keyboard with shapes, sizes, Generate, Cancel", keyboard),
        ("✓ moves to 16:9 and 2K", has(out, "✓ 16:9", "✓ 2K")),
        ("status line: Queued/Generating", has(out, "Queued") or has(out, "Generating")),
        ("photo captioned 16:9 · 2K · 2752×1536", has(out, "[photo", "16:9 · 2K · 2752×1536")),
        ("result buttons Again / Change", has(out, "Again", "Change")),
    ]


async def scene_flags(c: Client, out: list[str]) -> list[Check]:
    await c.say("/imagine a cat --ar 3:4 --2k")
    out += await c.settle(until="[photo")
    return [
        ("no keyboard, starts at once", not has(out, "Generate")),
        ("photo captioned 3:4 · 2K · 1792×2400", has(out, "[photo", "3:4 · 2K · 1792×2400")),
    ]


async def scene_plain_text(c: Client, out: list[str]) -> list[Check]:
    await c.say("a lighthouse at dusk")
    out += await c.settle()
    return [("plain text in a private chat gets the keyboard", has(out, "a lighthouse at dusk", "Generate"))]


async def scene_photo_edit(c: Client, out: list[str]) -> list[Check]:
    caption = "/imagine make the sky purple --ar 1:1 --1k"
    photo = [{"file_id": "userphoto1", "file_unique_id": "up1", "width": 512, "height": 512, "file_size": 4000}]
    entities = [{"offset": 0, "length": 8, "type": "bot_command"}]
    await c.send(photo=photo, caption=caption, caption_entities=entities)
    out += await c.settle(until="[photo")
    if not has(out, "[photo") and c.latest("Generate"):
        await generate_from_keyboard(c, out, ("Generate",))
    return [("a photo with an /imagine caption comes back edited", has(out, "[photo"))]


async def scene_settings(c: Client, out: list[str]) -> list[Check]:
    await c.say("/settings")
    out += await c.settle()
    board = c.latest("9:16")
    tapped = board is not None and await c.tap(board, "9:16")
    out.append("tap 9:16")
    out += await c.settle()
    return [
        ("/settings shows shape buttons", board is not None),
        ("tap moves ✓ to 9:16", tapped and has(out, "✓ 9:16")),
    ]


async def scene_history(c: Client, out: list[str]) -> list[Check]:
    await c.say("/history")
    out += await c.settle()
    return [("/history lists earlier requests", has(out, "red fox") or has(out, "cat"))]


async def scene_usage(c: Client, out: list[str]) -> list[Check]:
    await c.say("/usage")
    out += await c.settle()
    return [("/usage says credits left", has(out, "credit"))]


async def scene_cancel(c: Client, out: list[str]) -> list[Check]:
    await c.say("/imagine a tortoise crossing the road slowly --ar 1:1 --1k")
    out += await c.settle(until="Generating", timeout=15)
    await c.say("/cancel")
    out.append("/cancel")
    out += await c.settle(timeout=15)
    return [
        ("status says Generating", has(out, "Generating")),
        ("/cancel answers in the chat: ✖ Cancelled: 1:1 · 1K · …", has(out, "✖ Cancelled: 1:1 · 1K")),
        ("the upstream request is aborted", bool(STUB.aborted)),
    ]


async def scene_keyboard_cancel(c: Client, out: list[str]) -> list[Check]:
    await c.say("/imagine a paper boat on a pond")
    out += await c.settle()
    await generate_from_keyboard(c, out, ("Cancel",))
    board = c.latest("paper boat")
    again = board is not None and await c.tap(board, "Start again")
    out.append("tap ↩ Start again")
    out += await c.settle()
    return [
        ("✖ Cancel keeps the prompt: ✖ Cancelled.", has(out, "Cancelled.", "paper boat")),
        ("↩ Start again brings the keyboard back", again and has(out, "Generate")),
    ]


async def scene_double_generate(c: Client, out: list[str]) -> list[Check]:
    await c.say("/imagine two taps on one keyboard")
    out += await c.settle()
    board = c.latest("Generate")
    assert board is not None, "no keyboard"
    await c.tap(board, "Generate")
    await c.tap(board, "Generate")
    out.append("tap ✨ Generate twice on the same keyboard")
    out += await c.settle(until="[photo")
    photos = sum(line.count("[photo") for line in out if line.startswith("new"))
    return [("two taps make one image", photos == 1)]


async def scene_unknown(c: Client, out: list[str]) -> list[Check]:
    await c.say("/imagin a cat")
    out += await c.settle()
    return [("a mistyped command gets the list of commands", has(out, "/imagine"))]


async def scene_sticker(c: Client, out: list[str]) -> list[Check]:
    sticker = {
        "file_id": "st1",
        "file_unique_id": "stu1",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    await c.send(sticker=sticker)
    out += await c.settle()
    return [("a sticker is answered by name", has(out, "sticker"))]


SCENES = {
    "start": scene_start,
    "help": scene_help,
    "imagine-keyboard": scene_imagine_keyboard,
    "flags": scene_flags,
    "plain-text": scene_plain_text,
    "photo-edit": scene_photo_edit,
    "settings": scene_settings,
    "history": scene_history,
    "usage": scene_usage,
    "cancel": scene_cancel,
    "keyboard-cancel": scene_keyboard_cancel,
    "double-generate": scene_double_generate,
    "unknown-command": scene_unknown,
    "sticker": scene_sticker,
}


async def scene_group(c: Client, out: list[str]) -> list[Check]:
    await c.say("a lighthouse in a group, no command")
    out += await c.settle(quiet=2.0)
    silent = not out
    await c.say("/imagine@TestNameBot a fox in a group --ar 1:1 --size 1K")
    out += await c.settle(until="[photo")
    return [("plain text in a group is ignored", silent), ("/imagine@bot in a group makes a photo", has(out, "[photo"))]


GROUP_SCENES = {"group": scene_group}


# ---------------------------------------------------------------- running it all


async def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def start_emulator(folder: Path, port: int) -> subprocess.Popen[bytes]:
    if not (folder / "node_modules" / "telegram-test-api").is_dir():
        sys.exit(f"no node_modules/telegram-test-api in {folder}: run `npm install telegram-test-api` there first")
    code = (
        "const S = require('telegram-test-api');"
        f"const s = new S({{port: {port}, host: '127.0.0.1', storeTimeout: 3600}});"
        "s.start().then(() => console.log('emulator up'));"
    )
    return subprocess.Popen(["node", "-e", code], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bot_log_news(log: Path, offset: int) -> tuple[list[str], int]:
    text = log.read_text(errors="replace")
    lines = [line for line in text[offset:].splitlines() if re.search(r"WARNING|ERROR|CRITICAL|Traceback|Error:", line)]
    return lines, len(text)


async def trial(args: argparse.Namespace) -> int:
    emu_port, adapter_port, image_port = free_port(), free_port(), free_port()
    emulator = start_emulator(Path(args.emulator_dir), emu_port)
    emulator_url = f"http://127.0.0.1:{emu_port}"
    runners: list[web.AppRunner] = []
    bot: subprocess.Popen[bytes] | None = None
    failed = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        try:
            await wait_port(emu_port)
            adapter, stub = Adapter(emulator_url, session=session, refuse=frozenset(args.refuse)), STUB
            for app, port in ((adapter.app(), adapter_port), (stub.app(), image_port)):
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", port).start()
                runners.append(runner)
            api = emulator_url if args.raw else f"http://127.0.0.1:{adapter_port}"
            folder = Path(tempfile.mkdtemp(prefix="imagine-blackbox-"))
            (folder / ".env").write_text(
                f"TELEGRAM_BOT_TOKEN={TOKEN}\nTELEGRAM_API_BASE_URL={api}/bot\nTELEGRAM_FILE_BASE_URL={api}/file/bot\n"
                f"IMAGE_API_KEY={API_KEY}\nIMAGE_API_BASE_URL=http://127.0.0.1:{image_port}\n"
                "TELEGRAM_STARTUP_WAIT_SECONDS=5\n"
            )
            log = folder / "bot.log"
            with log.open("wb") as sink:
                bot = subprocess.Popen(
                    ["uv", "run", "--project", str(REPO), "imagine-bot"], cwd=folder, stdout=sink, stderr=sink
                )
            print(f"emulator {emulator_url}, adapter :{adapter_port}, image stub :{image_port}, bot in {folder}")
            if args.raw:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    bot.wait(60)
                print(f"bot exit code {bot.returncode}; its output:\n{log.read_text()}")
                return 0
            for _ in range(150):  # the bot is up once it polls
                if any(k.startswith("getMe") for k in adapter.gaps) and bot.poll() is None:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(2)
            print(f"start-up repairs: {adapter.gaps}")
            adapter.gaps.clear()
            offset = 0
            _, offset = bot_log_news(log, offset)
            private = Client(
                session, emulator_url, {"id": 1, "type": "private", "first_name": "Ann", "username": "ann"}
            )
            group = Client(session, emulator_url, {"id": -1001234, "type": "supergroup", "title": "Test group"})
            chosen = args.scenes.split(",") if args.scenes else [*SCENES, *GROUP_SCENES]
            for name in chosen:
                scene = SCENES.get(name) or GROUP_SCENES[name]
                client = group if name in GROUP_SCENES else private
                out: list[str] = []
                print(f"\n=== {name}")
                try:
                    checks = await scene(client, out)
                except Exception as exc:  # a scene that breaks is reported, the others still run
                    checks = [(f"scene ran ({type(exc).__name__}: {exc})", False)]
                for line in out:
                    print(f"  {line}")
                for what, ok in checks:
                    failed += not ok
                    print(f"  {'PASS' if ok else 'FAIL'}  {what}")
                for toast in adapter.toasts:
                    print(f"  toast (answerCallbackQuery, seen by the adapter): {toast}")
                adapter.toasts.clear()
                if adapter.gaps:
                    print(f"  emulator gaps filled: {adapter.gaps}")
                    adapter.gaps.clear()
                news, offset = bot_log_news(log, offset)
                for line in news:
                    print(f"  bot log: {line[:300]}")
            print(f"\nimage API calls: {stub.requests}")
        finally:
            if bot is not None and bot.poll() is None:
                bot.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    bot.wait(30)
                if bot.poll() is None:
                    bot.kill()
            for runner in runners:
                await runner.cleanup()
            emulator.terminate()
            emulator.wait(10)
    print(f"\n{failed} check(s) failed")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--emulator-dir",
        default=os.environ.get("TELEGRAM_TEST_API_DIR", ""),
        help="a folder where `npm install telegram-test-api` was run (or TELEGRAM_TEST_API_DIR)",
    )
    parser.add_argument("--scenes", default="", help=f"comma-separated, of: {', '.join([*SCENES, *GROUP_SCENES])}")
    parser.add_argument(
        "--refuse",
        action="append",
        default=[],
        metavar="METHOD",
        help="relay the emulator's own HTTP 500 for this missing method (sendPhoto, say) to the bot: how it copes",
    )
    parser.add_argument("--patience", type=float, default=1.0, help="wait this many times longer in each scene")
    parser.add_argument("--raw", action="store_true", help="the bot straight at the emulator, no adapter")
    args = parser.parse_args()
    if not args.emulator_dir:
        parser.error("name the folder with telegram-test-api: --emulator-dir or TELEGRAM_TEST_API_DIR")
    PATIENCE[0] = args.patience
    return asyncio.run(trial(args))


if __name__ == "__main__":
    sys.exit(main())
