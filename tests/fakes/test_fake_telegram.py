"""Self-tests of the fake Telegram Bot API server."""

from __future__ import annotations

import asyncio
import io
import json
import time

import httpx
import pytest
import telegram
from PIL import Image

from tests.fakes.telegram import NOT_MODIFIED, FakeBotAPI


def png(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
async def fake():
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def http(fake: FakeBotAPI):
    async with httpx.AsyncClient(base_url=f"{fake.base_url}{fake.token}/", timeout=5) as client:
        yield client


async def test_get_me_and_wrong_token(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    r = await http.get("getMe")
    assert r.status_code == 200
    assert r.json()["result"]["username"] == "imagine_test_bot"

    async with httpx.AsyncClient() as client:
        r = await client.post(f"{fake.base_url}1:WRONG/getMe")
    assert r.status_code == 401
    assert r.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}

    r = await http.post("noSuchMethod")
    assert r.status_code == 404
    assert r.json()["description"] == "Not Found: method not found"


async def test_long_poll_wakes_up_and_offset_confirms(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    alice = fake.user(10, "Alice")
    started = time.monotonic()
    poll = asyncio.create_task(http.post("getUpdates", data={"timeout": "5", "offset": "0"}))
    await asyncio.sleep(0.05)
    sent = fake.send_text(fake.private_chat(alice), alice, "/imagine@imagine_test_bot a red cat")
    updates = (await poll).json()["result"]
    assert time.monotonic() - started < 1
    assert [u["message"]["message_id"] for u in updates] == [sent["message_id"]]
    message = updates[0]["message"]
    assert message["from"]["id"] == 10 and message["chat"]["type"] == "private"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 25}]

    r = await http.post("getUpdates", data={"offset": str(updates[0]["update_id"] + 1), "timeout": "0"})
    assert r.json() == {"ok": True, "result": []}

    channel = fake.channel(-1001, "News")
    fake.send_text(channel, None, "hello")
    r = await http.post("getUpdates", json={"timeout": 1})
    post = r.json()["result"][0]["channel_post"]
    assert "from" not in post and post["sender_chat"]["id"] == -1001


async def test_send_edit_delete_message(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    markup = {"inline_keyboard": [[{"text": "Again", "callback_data": "again:1"}]]}
    r = await http.post("sendMessage", data={"chat_id": "42", "text": "123", "reply_markup": json.dumps(markup)})
    sent = r.json()["result"]
    assert sent["text"] == "123" and sent["reply_markup"] == markup and sent["from"]["is_bot"]

    edit = {"chat_id": "42", "message_id": str(sent["message_id"]), "text": "done"}
    r = await http.post("editMessageText", data=edit)
    assert r.json()["result"]["text"] == "done"
    current = fake.message(42, sent["message_id"])
    assert current["text"] == "done" and "reply_markup" not in current and "edit_date" in current

    r = await http.post("editMessageText", data=edit)
    assert r.status_code == 400 and r.json()["description"] == NOT_MODIFIED

    r = await http.post("sendMessage", data={"chat_id": "42", "text": "x" * 4097})
    assert r.json()["description"] == "Bad Request: message is too long"

    assert (await http.post("deleteMessage", data=edit)).json()["result"] is True
    assert fake.message(42, sent["message_id"]) is None and fake.bot_messages(42) == []
    r = await http.post("deleteMessage", data=edit)
    assert r.json()["description"] == "Bad Request: message to delete not found"


async def test_photo_limits(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    r = await http.post("sendPhoto", data={"chat_id": "42"}, files={"photo": ("p.png", png(11000, 100), "image/png")})
    assert r.status_code == 400
    assert r.json()["description"] == "Bad Request: PHOTO_INVALID_DIMENSIONS"

    r = await http.post("sendPhoto", data={"chat_id": "42"}, files={"photo": ("p.png", b"not an image", "image/png")})
    assert r.json()["description"] == "Bad Request: IMAGE_PROCESS_FAILED"

    r = await http.post("sendPhoto", data={"chat_id": "42", "caption": "7"},
                        files={"photo": ("p.png", png(), "image/png")})
    message = r.json()["result"]
    assert message["caption"] == "7"
    thumb, full = message["photo"]
    assert (full["width"], full["height"]) == (64, 48) and thumb["width"] <= 90
    assert fake.file_bytes(full["file_id"]) == png()
    assert fake.calls_of("sendPhoto")[-1].files["photo"][0] == "p.png"


async def test_fail_next_retry_after(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    fake.fail_next("sendMessage", retry_after=3)
    r = await http.post("sendMessage", data={"chat_id": "1", "text": "hi"})
    assert r.status_code == 429
    assert r.json() == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
                        "parameters": {"retry_after": 3}}
    r = await http.post("sendMessage", data={"chat_id": "1", "text": "hi"})
    assert r.json()["ok"] is True
    assert len(fake.calls_of("sendMessage")) == 2


async def test_press_and_answer(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    bob = fake.user(7, "Bob")
    group = fake.group(-100500, "Artists")
    fake.set_admins(group["id"], [1, 7])
    r = await http.post("sendMessage", data={"chat_id": str(group["id"]), "text": "pick",
                                             "reply_markup": '{"inline_keyboard":[[{"text":"A","callback_data":"a"}]]}'})
    query_id = fake.press(r.json()["result"], "a", bob)
    update = (await http.post("getUpdates")).json()["result"][-1]["callback_query"]
    assert update["id"] == query_id and update["message"]["text"] == "pick" and update["data"] == "a"

    r = await http.post("answerCallbackQuery", data={"callback_query_id": query_id, "text": "ok"})
    assert r.json()["result"] is True and fake.answered[query_id]["text"] == "ok"
    r = await http.post("answerCallbackQuery", data={"callback_query_id": query_id})
    assert r.status_code == 400

    r = await http.post("getChatMember", data={"chat_id": str(group["id"]), "user_id": "7"})
    assert r.json()["result"]["status"] == "administrator"
    with pytest.raises(AssertionError, match="timed out waiting for nothing"):
        await fake.wait_for(lambda: False, timeout=0.05, what="nothing")


async def test_real_ptb_bot(fake: FakeBotAPI) -> None:
    bot = telegram.Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url)
    async with bot:
        me = await bot.get_me()
        assert me.username == "imagine_test_bot"
        keyboard = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("Go", callback_data="go")]])
        sent = await bot.send_message(42, "hello <b>world</b>", parse_mode="HTML", reply_markup=keyboard)
        assert sent.text == "hello <b>world</b>" and sent.reply_markup == keyboard

        photo = await bot.send_photo(42, photo=png(), caption="a cat", reply_to_message_id=sent.message_id)
        assert photo.photo[-1].width == 64 and photo.reply_to_message.message_id == sent.message_id
        assert fake.calls_of("sendPhoto")[0].params["reply_parameters"] == {"message_id": sent.message_id}

        doc = await bot.send_document(42, document=png(), filename="cat.png", disable_content_type_detection=True)
        assert doc.document.file_name == "cat.png" and doc.document.file_size == len(png())
        assert fake.calls_of("sendDocument")[0].params["disable_content_type_detection"] is True

        album = await bot.send_media_group(42, [telegram.InputMediaPhoto(png(10, 10), caption="1"),
                                                telegram.InputMediaPhoto(png(20, 20))])
        assert len({m.media_group_id for m in album}) == 1 and album[0].caption == "1"

        file = await bot.get_file(photo.photo[-1].file_id)
        assert bytes(await file.download_as_bytearray()) == png()

        with pytest.raises(telegram.error.BadRequest, match="(?i)photo_invalid_dimensions"):
            await bot.send_photo(42, photo=png(100, 2500))

        await bot.set_my_commands([("imagine", "Draw a picture")], language_code="en")
        assert fake.commands[(None, "en")] == [{"command": "imagine", "description": "Draw a picture"}]
    assert [m["message_id"] for m in fake.bot_messages(42)] == [1, 2, 3, 4, 5]


async def test_load_faults(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    fake.flood(7, method="sendMessage", chat_id=2)
    r = await http.post("sendMessage", data={"chat_id": "1", "text": "hi"})
    assert r.json()["ok"] is True  # another chat
    r = await http.post("sendMessage", data={"chat_id": "2", "text": "hi"})
    assert r.status_code == 429 and r.json()["parameters"] == {"retry_after": 7}
    assert [c.params["chat_id"] for c in fake.refused("sendMessage")] == [2]

    fake.limit_chats(per_second=1, burst=2)
    codes = [(await http.post("sendMessage", data={"chat_id": "3", "text": "x"})).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert (await http.post("sendChatAction", data={"chat_id": "3", "action": "typing"})).status_code == 200
    assert (await http.post("sendMessage", data={"chat_id": "4", "text": "x"})).status_code == 200

    fake.reset_next("sendDocument")
    with pytest.raises(httpx.TransportError):
        await http.post("sendDocument", data={"chat_id": "5"}, files={"document": ("a.bin", b"\0" * 200_000)})
    assert fake.calls_of("sendDocument") == [] and fake.bot_messages(5) == []
    r = await http.post("sendDocument", data={"chat_id": "5"}, files={"document": ("a.bin", b"\0" * 10)})
    assert r.json()["ok"] is True


async def test_uploads_taken_slowly(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    fake.upload_bytes_per_second = 100_000  # 300 KB: 3 s
    upload = asyncio.create_task(http.post("sendDocument", data={"chat_id": "5"},
                                           files={"document": ("a.bin", b"\1" * 300_000)}, timeout=30))
    await asyncio.sleep(1.0)
    assert not upload.done() and fake.calls_of("sendDocument") == []  # still being taken
    r = await asyncio.wait_for(upload, 30)
    assert r.json()["ok"] is True and fake.file_bytes(r.json()["result"]["document"]["file_id"]) == b"\1" * 300_000
    fake.upload_bytes_per_second = None
    r = await http.post("sendMessage", data={"chat_id": "5", "text": "fast again"})
    assert r.json()["ok"] is True
