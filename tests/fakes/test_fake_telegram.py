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

from tests.fakes.telegram import NOT_MODIFIED, QUERY_INVALID, CheckoutRefused, FakeBotAPI


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
    assert time.monotonic() - started < 3  # woken by the update, not at the poll's 5 s
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


async def test_copy_message_and_a_user_who_blocked_the_bot(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    """copyMessage: the content without its origin, a new caption for a captioned kind, a MessageId; refused for an
    unknown or protected message and a service one; a user who blocked the bot gets nothing (403)."""
    admin = fake.user(77, "Boss")
    fake.private_chat(admin)
    user = fake.user(501, "Ann")
    chat = fake.private_chat(user)
    photo = fake.send_photo(fake.private_chat(admin), admin, png(), caption="receipt")
    text = fake.send_text(fake.private_chat(admin), admin, "hello")
    params = {"chat_id": 501, "from_chat_id": 77, "message_id": photo["message_id"], "caption": "🛟\nreceipt"}
    result = (await http.post("copyMessage", json=params)).json()["result"]
    copied = fake.message(501, result["message_id"])
    assert set(result) == {"message_id"} and copied is not None and copied["from"]["is_bot"]
    assert copied["photo"] == photo["photo"] and copied["caption"] == "🛟\nreceipt" and "forward_origin" not in copied
    params = {"chat_id": 501, "from_chat_id": 77, "message_id": text["message_id"], "caption": "ignored"}
    result = (await http.post("copyMessage", json=params)).json()["result"]
    assert fake.message(501, result["message_id"])["text"] == "hello"

    async def refused(**params: object) -> tuple[int, str]:
        r = await http.post("copyMessage", json=params)
        return r.status_code, r.json()["description"]

    assert await refused(chat_id=501, from_chat_id=77, message_id=999) == (
        400,
        "Bad Request: message to copy not found",
    )
    fake._messages[501][9000] = {"message_id": 9000, "chat": chat, "date": 0, "pinned_message": photo}
    assert await refused(chat_id=77, from_chat_id=501, message_id=9000) == (
        400,
        "Bad Request: the message can't be copied",
    )
    fake.block_bot(user)
    assert await refused(chat_id=501, from_chat_id=77, message_id=text["message_id"]) == (
        403,
        "Forbidden: bot was blocked by the user",
    )
    assert (await http.post("sendMessage", json={"chat_id": 501, "text": "hi"})).status_code == 403


async def test_forward_message(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    user = fake.user(501, "Ann")
    chat = fake.private_chat(user)
    photo = fake.send_photo(chat, user, png(), caption="my receipt")
    voice = fake.send_media(chat, user, "voice")
    r = await http.post(
        "forwardMessage", data={"chat_id": "77", "from_chat_id": "501", "message_id": photo["message_id"]}
    )
    sent = r.json()["result"]
    assert sent["chat"]["id"] == 77 and sent["from"]["is_bot"] and sent["caption"] == "my receipt"
    assert sent["photo"] == photo["photo"] and "reply_to_message" not in sent
    assert sent["forward_origin"] == {"type": "user", "date": photo["date"], "sender_user": photo["from"]}
    assert fake.bot_messages(77)[-1]["message_id"] == sent["message_id"]
    params = {"chat_id": 77, "from_chat_id": 501, "message_id": voice["message_id"], "protect_content": True}
    sent = (await http.post("forwardMessage", json=params)).json()["result"]
    assert sent["voice"] == voice["voice"] and sent["has_protected_content"]

    async def refused(**params: object) -> str:
        r = await http.post("forwardMessage", json=params)
        assert r.status_code == 400
        return r.json()["description"]

    assert await refused(chat_id=77, from_chat_id=501, message_id=999) == "Bad Request: message to forward not found"
    assert await refused(chat_id=77, from_chat_id=-100999, message_id=1) == "Bad Request: chat not found"
    assert await refused(chat_id=77, message_id=1) == 'Bad Request: parameter "from_chat_id" is required'
    protected = fake.message(77, sent["message_id"])
    assert await refused(chat_id=78, from_chat_id=77, message_id=protected["message_id"]) == (
        "Bad Request: message can't be forwarded"
    )
    fake._messages[501][9000] = {"message_id": 9000, "chat": chat, "date": 0, "pinned_message": photo}
    assert await refused(chat_id=77, from_chat_id=501, message_id=9000) == "Bad Request: message can't be forwarded"

    bot = telegram.Bot(fake.token, base_url=fake.base_url)  # as the bot calls it
    async with bot:
        forwarded = await bot.forward_message(77, 501, photo["message_id"])
    assert forwarded.forward_origin is not None and forwarded.forward_origin.sender_user.id == 501  # type: ignore[attr-defined]


async def test_photo_limits(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    r = await http.post("sendPhoto", data={"chat_id": "42"}, files={"photo": ("p.png", png(11000, 100), "image/png")})
    assert r.status_code == 400
    assert r.json()["description"] == "Bad Request: PHOTO_INVALID_DIMENSIONS"

    r = await http.post("sendPhoto", data={"chat_id": "42"}, files={"photo": ("p.png", b"not an image", "image/png")})
    assert r.json()["description"] == "Bad Request: IMAGE_PROCESS_FAILED"

    r = await http.post(
        "sendPhoto", data={"chat_id": "42", "caption": "7"}, files={"photo": ("p.png", png(), "image/png")}
    )
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
    assert r.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    r = await http.post("sendMessage", data={"chat_id": "1", "text": "hi"})
    assert r.json()["ok"] is True
    assert len(fake.calls_of("sendMessage")) == 2


async def test_press_and_answer(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    bob = fake.user(7, "Bob")
    group = fake.group(-100500, "Artists")
    fake.set_admins(group["id"], [1, 7])
    r = await http.post(
        "sendMessage",
        data={
            "chat_id": str(group["id"]),
            "text": "pick",
            "reply_markup": '{"inline_keyboard":[[{"text":"A","callback_data":"a"}]]}',
        },
    )
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

        album = await bot.send_media_group(
            42, [telegram.InputMediaPhoto(png(10, 10), caption="1"), telegram.InputMediaPhoto(png(20, 20))]
        )
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
    upload = asyncio.create_task(
        http.post("sendDocument", data={"chat_id": "5"}, files={"document": ("a.bin", b"\1" * 300_000)}, timeout=30)
    )
    await asyncio.sleep(1.0)
    assert not upload.done() and fake.calls_of("sendDocument") == []  # still being taken
    r = await asyncio.wait_for(upload, 30)
    assert r.json()["ok"] is True and fake.file_bytes(r.json()["result"]["document"]["file_id"]) == b"\1" * 300_000
    fake.upload_bytes_per_second = None
    r = await http.post("sendMessage", data={"chat_id": "5", "text": "fast again"})
    assert r.json()["ok"] is True


# ---------------------------------------------------------------------------------------- payments (Telegram Stars)

STARS_PACK = {
    "title": "100 credits",
    "description": "100 images, never expiring",
    "payload": "pack:100:u10",
    "currency": "XTR",
    "prices": json.dumps([{"label": "100 credits", "amount": 50}]),
}
# ---------------------------------------------------------------------------------------------- inline mode

KEYBOARD = {"inline_keyboard": [[{"text": "✖ Cancel", "callback_data": "cancel:1"}]]}


def article(id: str = "a1", title: str = "A red fox", text: str = "a red fox", **extra: object) -> dict:
    return {"type": "article", "id": id, "title": title, "input_message_content": {"message_text": text}, **extra}


def ptb_bot(fake: FakeBotAPI) -> telegram.Bot:
    return telegram.Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url)


async def next_update(bot: telegram.Bot, kind: str, offset: int = 0, timeout: float = 5) -> telegram.Update:
    """The first pending update of `kind` (those before it are skipped), within `timeout` seconds."""

    async def first() -> telegram.Update:
        nonlocal offset
        while True:
            for update in await bot.get_updates(
                offset=offset, timeout=1, allowed_updates=["message", "pre_checkout_query"]
            ):
                offset = update.update_id + 1
                if getattr(update, kind) is not None:
                    return update

    return await asyncio.wait_for(first(), timeout)


async def send_pack_invoice(
    bot: telegram.Bot, chat_id: int, amount: int = 50, payload: str = "pack:100:u10"
) -> telegram.Message:
    return await bot.send_invoice(
        chat_id,
        "100 credits",
        "100 images, never expiring",
        payload,
        "XTR",
        [telegram.LabeledPrice("100 credits", amount)],
    )


async def test_stars_invoice_is_sent_and_linked(fake: FakeBotAPI) -> None:
    async with ptb_bot(fake) as bot:
        invoice = await send_pack_invoice(bot, 10)
        link = await bot.create_invoice_link(
            "100 credits",
            "100 images",
            "pack:100:u10",
            "XTR",
            [telegram.LabeledPrice("100 credits", 50)],
            provider_token="",
        )
    assert invoice.invoice.currency == "XTR" and invoice.invoice.total_amount == 50
    assert invoice.invoice.title == "100 credits" and invoice.invoice.start_parameter == ""
    assert [m["message_id"] for m in fake.invoices(10)] == [invoice.message_id]
    assert "payload" not in json.dumps(fake.invoices(10))  # the payload is Telegram's, never shown
    assert link.startswith("https://t.me/$")


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"currency": "USD"}, "Bad Request: PAYMENT_PROVIDER_INVALID"),
        ({"provider_token": "284685063:TEST:abc"}, "Bad Request: PAYMENT_PROVIDER_INVALID"),
        (
            {"prices": json.dumps([{"label": "a", "amount": 30}, {"label": "b", "amount": 20}])},
            "Bad Request: STARS_INVOICE_INVALID",
        ),
        ({"need_email": "true"}, "Bad Request: STARS_INVOICE_INVALID"),
        ({"prices": json.dumps([{"label": "free", "amount": 0}])}, "Bad Request: total price must be positive"),
        (
            {"prices": json.dumps([{"label": "too much", "amount": 100_001}])},
            "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID",
        ),
        ({"prices": "[]"}, "Bad Request: there must be at least one price"),
        (
            {"prices": json.dumps([{"label": "", "amount": 5}])},
            "Bad Request: can't parse labeled price: LabeledPrice label must be non-empty",
        ),
        ({"payload": "€" * 43}, "Bad Request: INVOICE_PAYLOAD_INVALID"),  # 129 bytes
        ({"payload": ""}, 'Bad Request: parameter "payload" is required'),
        ({"title": "x" * 33}, "Bad Request: TITLE_INVALID"),
        ({"description": "x" * 256}, "Bad Request: DESCRIPTION_INVALID"),
        (
            {"reply_markup": json.dumps({"inline_keyboard": [[{"text": "Help", "callback_data": "h"}]]})},
            "Bad Request: REPLY_MARKUP_BUY_EMPTY",
        ),
    ],
)
async def test_stars_invoice_refusals(
    fake: FakeBotAPI, http: httpx.AsyncClient, change: dict, description: str
) -> None:
    for method in ("sendInvoice", "createInvoiceLink")[: 1 if "reply_markup" in change else 2]:  # links: no markup
        r = await http.post(method, data={"chat_id": "10", **STARS_PACK, **change})
        assert (r.status_code, r.json()["description"]) == (400, description), method
    assert fake.invoices(10) == []


async def test_stars_invoice_limits_accepted(http: httpx.AsyncClient) -> None:
    edge = {
        "payload": "é" * 64,
        "title": "x" * 32,
        "description": "y" * 255,  # 128 bytes, 32 and 255 chars
        "prices": json.dumps([{"label": "max", "amount": 100_000}]),
        "provider_token": "",
        "reply_markup": json.dumps({"inline_keyboard": [[{"text": "Pay 100000", "pay": True}]]}),
    }
    r = await http.post("sendInvoice", data={"chat_id": "10", **STARS_PACK, **edge})
    assert r.json()["ok"] is True and r.json()["result"]["invoice"]["total_amount"] == 100_000


async def test_payment_answered_ok_is_charged_once(fake: FakeBotAPI) -> None:
    alice = fake.user(10, "Alice")
    async with ptb_bot(fake) as bot:
        invoice = await send_pack_invoice(bot, 10)
        paying = asyncio.create_task(fake.pay(alice, fake.invoices(10)[0]))
        update = await next_update(bot, "pre_checkout_query")
        query = update.pre_checkout_query
        assert (query.from_user.id, query.currency, query.total_amount, query.invoice_payload) == (
            10,
            "XTR",
            50,
            "pack:100:u10",
        )
        assert await bot.answer_pre_checkout_query(query.id, ok=True) is True
        charge_id = await asyncio.wait_for(paying, 5)
        paid = await next_update(bot, "message", update.update_id + 1)
        balance = await bot.get_my_star_balance()

        again = asyncio.create_task(fake.pay(alice, invoice.to_dict()))  # an invoice can be paid again
        second = await next_update(bot, "pre_checkout_query", paid.update_id + 1)
        await bot.answer_pre_checkout_query(second.pre_checkout_query.id, ok=True)
        second_charge = await asyncio.wait_for(again, 5)
    payment = paid.message.successful_payment
    assert paid.message.chat.type == "private" and paid.message.from_user.id == 10
    assert (payment.currency, payment.total_amount, payment.invoice_payload) == ("XTR", 50, "pack:100:u10")
    assert payment.telegram_payment_charge_id == charge_id and charge_id.startswith("stxFake")
    assert payment.provider_payment_charge_id == ""
    assert balance == telegram.StarAmount(50) and fake.star_balance == 100
    assert second_charge != charge_id and set(fake.star_payments) == {charge_id, second_charge}


async def test_payment_answered_no_is_not_charged(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    bob = fake.user(11, "Bob")
    async with ptb_bot(fake) as bot:
        await send_pack_invoice(bot, 11, payload="pack:100:u11")
        paying = asyncio.create_task(fake.pay(bob, fake.invoices(11)[0], ok_expected=False))
        query = (await next_update(bot, "pre_checkout_query")).pre_checkout_query
        r = await http.post("answerPreCheckoutQuery", data={"pre_checkout_query_id": query.id, "ok": "false"})
        assert (r.status_code, r.json()["description"]) == (400, 'Bad Request: parameter "error_message" is required')
        assert await bot.answer_pre_checkout_query(query.id, ok=False, error_message="This pack is gone.")
        refused = await asyncio.wait_for(paying, 5)
        with pytest.raises(telegram.error.BadRequest, match="(?i)query is too old"):
            await bot.answer_pre_checkout_query(query.id, ok=True)  # answered already
        updates = await bot.get_updates(timeout=0)
    assert refused == CheckoutRefused(query.id, "This pack is gone.")
    assert fake.pre_checkout_answers[query.id] == {"ok": False, "error_message": "This pack is gone."}
    assert not any(u.message and u.message.successful_payment for u in updates)
    assert fake.star_balance == 0 and fake.star_payments == {} and fake.star_transactions == []


async def test_late_or_unknown_answer_fails_the_payment(fake: FakeBotAPI) -> None:
    carol = fake.user(12, "Carol")
    fake.pre_checkout_timeout = 0.3
    async with ptb_bot(fake) as bot:
        await send_pack_invoice(bot, 12)
        paying = asyncio.create_task(fake.pay(carol, fake.invoices(12)[0], ok_expected=False))
        query = (await next_update(bot, "pre_checkout_query")).pre_checkout_query
        refused = await asyncio.wait_for(paying, 5)
        with pytest.raises(telegram.error.BadRequest, match="^Query is too old and response timeout expired"):
            await bot.answer_pre_checkout_query(query.id, ok=True)
        with pytest.raises(telegram.error.BadRequest, match="(?i)query is too old"):
            await bot.answer_pre_checkout_query("123456789", ok=True)
        with pytest.raises(AssertionError, match="expected to go through"):
            await fake.pay(carol, fake.invoices(12)[0])  # nobody answers
    assert refused.timed_out and refused.error_message is None
    assert fake.star_balance == 0 and fake.star_payments == {}


async def test_pre_checkout_needs_allowed_updates(fake: FakeBotAPI) -> None:
    dave = fake.user(13, "Dave")
    fake.pre_checkout_timeout = 0.5
    async with ptb_bot(fake) as bot:
        await send_pack_invoice(bot, 13)
        await bot.get_updates(timeout=0, allowed_updates=["message", "callback_query"])
        paying = asyncio.create_task(fake.pay(dave, fake.invoices(13)[0], ok_expected=False))
        await asyncio.sleep(0.1)
        assert await bot.get_updates(timeout=0, allowed_updates=["message", "callback_query"]) == ()
        refused = await asyncio.wait_for(paying, 5)
    assert refused.timed_out


async def test_refunds_by_the_bot_and_by_telegram(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    erin = fake.user(14, "Erin")
    async with ptb_bot(fake) as bot:
        await send_pack_invoice(bot, 14, amount=50, payload="pack:100:u14")
        first_pay = asyncio.create_task(fake.pay(erin, fake.invoices(14)[0]))
        update = await next_update(bot, "pre_checkout_query")
        await bot.answer_pre_checkout_query(update.pre_checkout_query.id, ok=True)
        first = await asyncio.wait_for(first_pay, 5)
        await send_pack_invoice(bot, 14, amount=140, payload="pack:300:u14")
        second_pay = asyncio.create_task(fake.pay(erin, fake.invoices(14)[1]))
        update = await next_update(bot, "pre_checkout_query", update.update_id + 1)
        await bot.answer_pre_checkout_query(update.pre_checkout_query.id, ok=True)
        second = await asyncio.wait_for(second_pay, 5)
        assert fake.star_balance == 190

        assert await bot.refund_star_payment(14, first) is True
        refunded = await next_update(bot, "message", update.update_id + 1)
        while refunded.message.refunded_payment is None:
            refunded = await next_update(bot, "message", refunded.update_id + 1)
        with pytest.raises(telegram.error.BadRequest, match="(?i)^charge_already_refunded$"):
            await bot.refund_star_payment(14, first)
        with pytest.raises(telegram.error.BadRequest, match="(?i)^charge_not_found$"):
            await bot.refund_star_payment(14, "stxNoSuchCharge")
        with pytest.raises(telegram.error.BadRequest, match="(?i)^charge_not_found$"):
            await bot.refund_star_payment(99, second)  # someone else's charge
        r = await http.post("refundStarPayment", data={"telegram_payment_charge_id": second})
        assert r.json()["description"] == "Bad Request: invalid user_id specified"

        disputed = fake.refund_by_telegram(second)
        telegram_refund = await next_update(bot, "message", refunded.update_id + 1)
        with pytest.raises(telegram.error.BadRequest, match="(?i)^charge_already_refunded$"):
            await bot.refund_star_payment(14, second)
        balance = await bot.get_my_star_balance()
        transactions = (await bot.get_star_transactions()).transactions
        page = (await bot.get_star_transactions(offset=1, limit=2)).transactions
    refund = refunded.message.refunded_payment
    assert refunded.message.chat.id == 14 and refunded.message.from_user.id == 14
    assert (refund.currency, refund.total_amount, refund.invoice_payload, refund.telegram_payment_charge_id) == (
        "XTR",
        50,
        "pack:100:u14",
        first,
    )
    assert telegram_refund.message.refunded_payment.telegram_payment_charge_id == second
    assert disputed["refunded_payment"]["total_amount"] == 140
    assert {c: p.refunded_by for c, p in fake.star_payments.items()} == {first: "bot", second: "telegram"}
    assert balance == telegram.StarAmount(0) and fake.star_balance == 0
    assert [(t.id, t.amount, bool(t.source), bool(t.receiver)) for t in transactions] == [
        (first, 50, True, False),
        (second, 140, True, False),
        (first, 50, False, True),
        (second, 140, False, True),
    ]
    partner = transactions[0].source
    assert partner.transaction_type == "invoice_payment" and partner.user.id == 14
    assert partner.invoice_payload == "pack:100:u14" and transactions[2].receiver.invoice_payload == "pack:100:u14"
    assert [t.id for t in page] == [second, first]


async def test_successful_payment_redelivered(fake: FakeBotAPI) -> None:
    frank = fake.user(15, "Frank")
    async with ptb_bot(fake) as bot:
        await send_pack_invoice(bot, 15)
        paying = asyncio.create_task(fake.pay(frank, fake.invoices(15)[0]))
        update = await next_update(bot, "pre_checkout_query")
        await bot.answer_pre_checkout_query(update.pre_checkout_query.id, ok=True)
        charge_id = await asyncio.wait_for(paying, 5)
        first = await next_update(bot, "message", update.update_id + 1)
        again = fake.redeliver(fake.star_payments[charge_id].update)
        repeat = await next_update(bot, "message", first.update_id + 1)
    assert repeat.update_id == again["update_id"] > first.update_id
    assert repeat.message.message_id == first.message.message_id
    assert repeat.message.successful_payment == first.message.successful_payment
    assert fake.star_balance == 50  # delivered twice, charged once


async def answer(http: httpx.AsyncClient, query_id: str, results: object, **params: object) -> httpx.Response:
    return await http.post("answerInlineQuery", json={"inline_query_id": query_id, "results": results, **params})


async def test_inline_query_answered_in_time_once(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    alice = fake.user(10, "Alice")
    query_id = fake.send_inline_query(alice, "a red fox --ar 16:9", chat_type="supergroup")
    async with ptb_bot(fake) as bot:
        assert (await bot.get_me()).supports_inline_queries is True
        update = (await bot.get_updates(timeout=1))[-1]
        query = update.inline_query
        assert (query.id, query.query, query.offset, query.chat_type) == (
            query_id,
            "a red fox --ar 16:9",
            "",
            "supergroup",
        )
        assert query.from_user.id == 10 and update.effective_user.id == 10
        result = telegram.InlineQueryResultArticle(
            "r16x9",
            "16:9 · 2K",
            telegram.InputTextMessageContent("🎨 a red fox"),
            description="2752×1536",
            reply_markup=telegram.InlineKeyboardMarkup.from_button(
                telegram.InlineKeyboardButton("✖ Cancel", callback_data="cancel:1")
            ),
        )
        assert await query.answer([result], cache_time=10, is_personal=True) is True
        recorded = fake.inline_answers[query_id]
        assert recorded["results"][0]["title"] == "16:9 · 2K" and recorded["cache_time"] == 10
        assert recorded["is_personal"] is True

        with pytest.raises(telegram.error.BadRequest, match="(?i)query is too old"):  # answered already
            await query.answer([result])
    r = await answer(http, "123", [article()])
    assert r.status_code == 400 and r.json()["description"] == QUERY_INVALID

    fake.inline_answer_timeout = 0.05
    late = fake.send_inline_query(alice, "a red fox")
    await asyncio.sleep(0.1)
    r = await answer(http, late, [article()])
    assert r.status_code == 400 and r.json()["description"] == QUERY_INVALID
    assert late not in fake.inline_answers


async def test_inline_results_refused_as_telegram_does(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    alice = fake.user(10, "Alice")
    photo = (await http.post("sendPhoto", data={"chat_id": "-100777"}, files={"photo": ("p.png", png())})).json()
    photo_id = photo["result"]["photo"][-1]["file_id"]
    doc = (await http.post("sendDocument", data={"chat_id": "-100777"}, files={"document": ("a.png", png())})).json()
    doc_id = doc["result"]["document"]["file_id"]
    query_id = fake.send_inline_query(alice, "fox")
    parse = "Bad Request: can't parse inline query result: "
    cases = [
        ({"not": "a list"}, "Bad Request: expected an Array of inline query results"),
        ([article(str(i)) for i in range(51)], "Bad Request: too many inline query results specified"),
        (["text"], parse + "Inline query result must be an object"),
        ([{"id": "1", "title": "t"}], parse + 'Can\'t find field "type"'),
        (
            [{"type": "article", "id": "1", "input_message_content": {"message_text": "x"}}],
            parse + 'Can\'t find field "title"',
        ),
        ([{"type": "article", "id": "1", "title": "t"}], parse + 'Can\'t find field "message_text"'),
        ([article(text="")], parse + "Input message content is not specified"),
        ([{"type": "photo", "id": "1"}], parse + 'Can\'t find field "photo_file_id"'),
        (
            [{"type": "document", "id": "1", "title": "t", "document_url": "http://x/a.pdf"}],
            parse + 'Can\'t find field "mime_type"',
        ),
        ([{"type": "document", "id": "1", "title": "t"}], parse + 'Can\'t find field "document_file_id"'),
        ([{"type": "banana", "id": "1"}], parse + 'type "banana" is unsupported for the inline query result'),
        (
            [{"type": "photo", "id": "1", "photo_file_id": "AgACnope"}],
            "Bad Request: wrong remote file identifier specified: can't unserialize it",
        ),
        (
            [{"type": "photo", "id": "1", "photo_file_id": doc_id}],
            "Bad Request: can't use file of type Document as Photo",
        ),
        (
            [{"type": "document", "id": "1", "title": "t", "document_url": "http://x/a.png", "mime_type": "image/png"}],
            "Bad Request: unallowed document MIME type",
        ),
        ([article(title=" ")], "Bad Request: ARTICLE_TITLE_EMPTY"),
        ([{"type": "photo", "id": "1", "photo_url": "http://x/a.jpg"}], "Bad Request: PHOTO_THUMB_URL_EMPTY"),
        ([article("1"), article("1")], "Bad Request: RESULT_ID_DUPLICATE"),
        ([article("x" * 65)], "Bad Request: RESULT_ID_INVALID"),
        ([article("")], "Bad Request: RESULT_ID_EMPTY"),
        ([article(text="x" * 4097)], "Bad Request: MESSAGE_TOO_LONG"),
        (
            [article(reply_markup={"inline_keyboard": [[{"text": "B", "callback_data": "d" * 65}]]})],
            "Bad Request: BUTTON_DATA_INVALID",
        ),
    ]
    for results, description in cases:
        r = await answer(http, query_id, results)
        assert (r.status_code, r.json()["description"]) == (400, description), results
    r = await answer(http, query_id, [article()], next_offset="o" * 65)
    assert r.json()["description"] == "Bad Request: NEXT_OFFSET_INVALID"
    r = await answer(http, query_id, [article()], button={"text": "Set up", "start_parameter": "no spaces"})
    assert r.json()["description"] == "Bad Request: unallowed characters in start_parameter are used"
    r = await answer(http, query_id, [article()], button={"start_parameter": "setup"})
    assert r.json()["description"] == (
        "Bad Request: can't parse inline query results button: Can't find field \"text\""
    )
    assert query_id not in fake.inline_answers  # refusals leave the query open

    good = [
        article(reply_markup=KEYBOARD),
        {"type": "photo", "id": "p", "photo_file_id": photo_id},
        {"type": "document", "id": "d", "title": "original", "document_file_id": doc_id},
        {"type": "photo", "id": "u", "photo_url": "http://x/a.jpg", "thumbnail_url": "http://x/t.jpg"},
    ]
    r = await answer(http, query_id, good, button={"text": "Set up", "start_parameter": "setup"})
    assert r.json() == {"ok": True, "result": True}
    assert [res["id"] for res in fake.inline_answers[query_id]["results"]] == ["a1", "p", "d", "u"]


async def test_chosen_result_gets_inline_message_id_only_with_a_keyboard(
    fake: FakeBotAPI, http: httpx.AsyncClient
) -> None:
    alice, bob = fake.user(10, "Alice"), fake.user(11, "Bob")
    group = fake.group(-100500, "Artists")
    query_id = fake.send_inline_query(alice, "fox", chat_type="supergroup")
    r = await answer(http, query_id, [article("plain"), article("keyed", reply_markup=KEYBOARD)])
    assert r.json()["result"] is True

    plain = fake.choose_inline_result(alice, query_id, "plain", chat=group)
    assert plain.inline_message_id is None
    assert plain.message["via_bot"]["id"] == fake.bot_user["id"] and plain.message["from"]["id"] == 10
    assert fake.message(group["id"], plain.message["message_id"])["text"] == "a red fox"
    keyed = fake.choose_inline_result(alice, query_id, "keyed", chat=group)
    assert keyed.inline_message_id and fake.inline_message(keyed.inline_message_id)["reply_markup"] == KEYBOARD
    assert fake.bot_messages(group["id"]) == []  # sent by the user, via the bot

    async with ptb_bot(fake) as bot:
        updates = await bot.get_updates(timeout=1)
        chosen = [u.chosen_inline_result for u in updates if u.chosen_inline_result]
        assert [(c.result_id, c.query, c.from_user.id, c.inline_message_id) for c in chosen] == [
            ("plain", "fox", 10, None),
            ("keyed", "fox", 10, keyed.inline_message_id),
        ]
        via = [u.message for u in updates if u.message]  # a group the bot is in: "messages sent via this bot"
        assert [m.via_bot.id for m in via] == [fake.bot_user["id"]] * 2 and via[1].reply_markup.to_dict() == KEYBOARD

        pressed = fake.press_inline(keyed.inline_message_id, "cancel:1", bob)
        update = (await bot.get_updates(offset=updates[-1].update_id + 1, timeout=1))[-1]
        callback = update.callback_query
        assert (callback.id, callback.inline_message_id, callback.message, callback.data) == (
            pressed,
            keyed.inline_message_id,
            None,
            "cancel:1",
        )
        assert callback.chat_instance and callback.from_user.id == 11
        assert await callback.answer("Cancelled") is True
        with pytest.raises(AssertionError, match="no button"):
            fake.press_inline(keyed.inline_message_id, "again:1", bob)

        fake.inline_feedback = False  # /setinlinefeedback off: the message is sent, the bot hears nothing
        fake.choose_inline_result(alice, query_id, "keyed", chat=group)
        later = await bot.get_updates(offset=update.update_id + 1, timeout=0)
        assert [u.message.via_bot.id for u in later] == [fake.bot_user["id"]]  # no chosen_inline_result


async def test_edit_inline_message_text_caption_markup(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    alice = fake.user(10, "Alice")
    query_id = fake.send_inline_query(alice, "fox")
    await answer(http, query_id, [article(reply_markup=KEYBOARD)])
    inline_id = fake.choose_inline_result(alice, query_id, "a1").inline_message_id
    async with ptb_bot(fake) as bot:
        assert (
            await bot.edit_message_text(
                "⏳ queued",
                inline_message_id=inline_id,
                reply_markup=telegram.InlineKeyboardMarkup.from_button(
                    telegram.InlineKeyboardButton("✖", callback_data="cancel:1")
                ),
            )
            is True
        )
        message = fake.inline_message(inline_id)
        assert message["text"] == "⏳ queued" and "edit_date" in message
        with pytest.raises(telegram.error.BadRequest, match="(?i)message is not modified"):
            await bot.edit_message_text(
                "⏳ queued",
                inline_message_id=inline_id,
                reply_markup=telegram.InlineKeyboardMarkup.from_button(
                    telegram.InlineKeyboardButton("✖", callback_data="cancel:1")
                ),
            )
        with pytest.raises(telegram.error.BadRequest, match="(?i)there is no caption in the message to edit"):
            await bot.edit_message_caption(inline_message_id=inline_id, caption="x")
        assert await bot.edit_message_reply_markup(inline_message_id=inline_id) is True
        assert "reply_markup" not in fake.inline_message(inline_id)
    r = await http.post("editMessageText", data={"inline_message_id": "AgAAAnope", "text": "x"})
    assert r.json()["description"] == "Bad Request: MESSAGE_ID_INVALID"
    r = await http.post("editMessageText", data={"inline_message_id": "not base64!", "text": "x"})
    assert r.json()["description"] == "Bad Request: invalid inline message identifier specified"
    r = await http.post("editMessageText", data={"text": "x"})
    assert r.json()["description"] == "Bad Request: message identifier is not specified"
    r = await http.post(
        "editMessageReplyMarkup",
        json={
            "inline_message_id": inline_id,
            "reply_markup": {"inline_keyboard": [[{"text": "B", "callback_data": "d" * 65}]]},
        },
    )
    assert r.json()["description"] == "Bad Request: BUTTON_DATA_INVALID"


async def test_edit_inline_media_refuses_uploads_takes_file_ids(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    alice = fake.user(10, "Alice")
    query_id = fake.send_inline_query(alice, "fox")
    await answer(http, query_id, [article(reply_markup=KEYBOARD)])
    inline_id = fake.choose_inline_result(alice, query_id, "a1").inline_message_id
    async with ptb_bot(fake) as bot:
        with pytest.raises(telegram.error.BadRequest, match="(?i)^invalid message content specified$"):
            await bot.edit_message_media(telegram.InputMediaPhoto(png(), caption="16:9"), inline_message_id=inline_id)
        assert fake.calls_of("editMessageMedia")[-1].files  # it was a real multipart upload
        assert fake.inline_message(inline_id)["text"] == "a red fox"

        stored = await bot.send_photo(-100777, png(), caption="storage")  # the storage chat's upload
        file_id = stored.photo[-1].file_id
        keyboard = telegram.InlineKeyboardMarkup.from_button(telegram.InlineKeyboardButton("🔁", callback_data="again"))
        assert (
            await bot.edit_message_media(
                telegram.InputMediaPhoto(file_id, caption="16:9 · 1376×768"),
                inline_message_id=inline_id,
                reply_markup=keyboard,
            )
            is True
        )
        message = fake.inline_message(inline_id)
        assert message["photo"] == [p.to_dict() for p in stored.photo] and message["caption"] == "16:9 · 1376×768"
        assert "text" not in message and message["reply_markup"] == keyboard.to_dict()
        with pytest.raises(telegram.error.BadRequest, match="(?i)there is no text in the message to edit"):
            await bot.edit_message_text("x", inline_message_id=inline_id)
        assert await bot.edit_message_caption(inline_message_id=inline_id, caption="done") is True

        document = await bot.send_document(-100777, png(), filename="fox.png")
        assert (
            await bot.edit_message_media(
                telegram.InputMediaDocument(document.document.file_id), inline_message_id=inline_id
            )
            is True
        )
        message = fake.inline_message(inline_id)
        assert message["document"]["file_name"] == "fox.png" and "photo" not in message and "caption" not in message
        with pytest.raises(telegram.error.BadRequest, match="(?i)can't use file of type Photo as Document"):
            await bot.edit_message_media(telegram.InputMediaDocument(file_id), inline_message_id=inline_id)
        with pytest.raises(telegram.error.BadRequest, match="(?i)^media_empty$"):
            await bot.edit_message_media(telegram.InputMediaPhoto("AgACnope"), inline_message_id=inline_id)

        # by URL: Telegram fetches it (the fake reaches 127.0.0.1 only); photos up to 5 MB
        url = (await bot.get_file(file_id)).file_path  # PTB makes it the full download URL
        assert url.startswith("http://127.0.0.1:")
        assert await bot.edit_message_media(telegram.InputMediaPhoto(url), inline_message_id=inline_id) is True
        assert fake.file_bytes(fake.inline_message(inline_id)["photo"][-1]["file_id"]) == png()
        big = await bot.send_document(-100777, b"\0" * (5 * 1024 * 1024 + 1), filename="big.png")
        big_url = (await bot.get_file(big.document.file_id)).file_path
        with pytest.raises(telegram.error.BadRequest, match="(?i)^media_empty$"):
            await bot.edit_message_media(telegram.InputMediaPhoto(big_url), inline_message_id=inline_id)
        with pytest.raises(telegram.error.BadRequest, match="(?i)failed to get http url content"):
            await bot.edit_message_media(
                telegram.InputMediaPhoto("https://example.com/fox.png"), inline_message_id=inline_id
            )

        # a chat message takes a new upload and answers the Message
        sent = await bot.send_message(42, "⏳ generating")
        edited = await bot.edit_message_media(
            telegram.InputMediaPhoto(png(), caption="1:1"), chat_id=42, message_id=sent.message_id
        )
        assert edited.photo[-1].width == 64 and edited.caption == "1:1" and edited.text is None
    r = await http.post("editMessageMedia", json={"inline_message_id": inline_id, "media": {"type": "photo"}})
    assert r.json()["description"] == "Bad Request: can't parse InputMedia: media not found"


# ---------------------------------------------------------------------------------------------- guest mode


async def test_guest_message_answered_then_edited(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    bob = fake.user(11, "Bob")
    group = fake.group(-100900, "Friends")
    photo = fake.send_photo(group, bob, png(), caption="my cat")
    async with ptb_bot(fake) as bot:
        assert (await bot.get_me()).supports_guest_queries is True
        seen = await bot.get_updates(timeout=1)
        sent = fake.send_guest_message(group, bob, "@imagine_test_bot make it blue --ar 16:9", reply_to=photo)
        update = (await bot.get_updates(offset=seen[-1].update_id + 1, timeout=1))[-1]
        guest = update.guest_message
        assert guest is not None and update.message is None and update.effective_message is guest
        assert guest.guest_query_id == sent["guest_query_id"] and guest.chat.id == group["id"]
        assert guest.text == "@imagine_test_bot make it blue --ar 16:9"
        assert guest.entities[0].type == "mention" and guest.entities[0].length == len("@imagine_test_bot")
        assert guest.reply_to_message.photo[-1].width == 64 and guest.reply_to_message.caption == "my cat"

        with pytest.raises(telegram.error.Forbidden, match="(?i)bot is not a member of the supergroup chat"):
            await bot.send_message(group["id"], "hello")
        with pytest.raises(telegram.error.BadRequest, match="(?i)^article_title_empty$"):
            await bot.answer_guest_query(
                guest.guest_query_id, telegram.InlineQueryResultArticle("g", "", telegram.InputTextMessageContent("⏳"))
            )
        result = telegram.InlineQueryResultArticle(
            "g",
            "Making it blue",
            telegram.InputTextMessageContent("⏳ queued"),
            reply_markup=telegram.InlineKeyboardMarkup.from_button(
                telegram.InlineKeyboardButton("✖ Cancel", callback_data="cancel:7")
            ),
        )
        answered = await bot.answer_guest_query(guest.guest_query_id, result)
        assert isinstance(answered, telegram.SentGuestMessage) and answered.inline_message_id
        assert fake.guest_answers[guest.guest_query_id]["result"]["title"] == "Making it blue"
        posted = fake.inline_message(answered.inline_message_id)
        assert posted["text"] == "⏳ queued" and posted["from"]["id"] == fake.bot_user["id"]
        assert posted["guest_bot_caller_user"]["id"] == 11 and posted["chat"]["id"] == group["id"]
        with pytest.raises(telegram.error.BadRequest, match="(?i)query is too old"):  # answered once only
            await bot.answer_guest_query(guest.guest_query_id, result)

        inline_id = answered.inline_message_id
        assert await bot.edit_message_text("🎨 generating", inline_message_id=inline_id) is True
        with pytest.raises(telegram.error.BadRequest, match="(?i)invalid message content specified"):
            await bot.edit_message_media(telegram.InputMediaPhoto(png()), inline_message_id=inline_id)
        stored = await bot.send_photo(-100777, png())
        assert (
            await bot.edit_message_media(
                telegram.InputMediaPhoto(stored.photo[-1].file_id, caption="16:9"), inline_message_id=inline_id
            )
            is True
        )
        assert fake.inline_message(inline_id)["caption"] == "16:9"

    r = await http.post("answerGuestQuery", json={"guest_query_id": sent["guest_query_id"]})
    assert r.json()["description"] == "Bad Request: result isn't specified"
    r = await http.post("answerGuestQuery", json={"guest_query_id": "1", "result": {"type": "article", "id": "1"}})
    assert r.json()["description"] == 'Bad Request: can\'t find field "message_text"'  # no "can't parse" prefix
    fake.guest_answer_timeout = 0.05
    late = fake.send_guest_message(group, bob, "@imagine_test_bot a fox")
    await asyncio.sleep(0.1)
    r = await http.post("answerGuestQuery", json={"guest_query_id": late["guest_query_id"], "result": article()})
    assert r.status_code == 400 and r.json()["description"] == QUERY_INVALID


# ---------------------------------------------------------------------------------------------- allowed_updates


async def test_allowed_updates_must_name_inline_and_guest_updates(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    alice = fake.user(10, "Alice")
    group = fake.group(-100900, "Friends")
    query_id = fake.send_inline_query(alice, "fox")
    await answer(http, query_id, [article(reply_markup=KEYBOARD)])
    fake.choose_inline_result(alice, query_id, "a1")
    fake.send_guest_message(group, alice, "@imagine_test_bot a fox")
    fake.send_text(fake.private_chat(alice), alice, "/start")
    r = await http.post("getUpdates", json={"allowed_updates": ["message", "callback_query"]})
    kinds = [next(k for k in u if k != "update_id") for u in r.json()["result"]]
    assert kinds == ["message", "message"]  # the result sent via the bot in its private chat, and /start

    wanted = ["message", "callback_query", "inline_query", "chosen_inline_result", "guest_message"]
    query_id = fake.send_inline_query(alice, "fox")
    await answer(http, query_id, [article(reply_markup=KEYBOARD)])
    fake.choose_inline_result(alice, query_id, "a1")
    fake.send_guest_message(group, alice, "@imagine_test_bot a fox")
    r = await http.post(
        "getUpdates", json={"offset": r.json()["result"][-1]["update_id"] + 1, "allowed_updates": wanted}
    )
    assert [next(k for k in u if k != "update_id") for u in r.json()["result"]] == [
        "inline_query",
        "message",
        "chosen_inline_result",
        "guest_message",
    ]


async def test_deep_link_start_payload(fake: FakeBotAPI, http: httpx.AsyncClient) -> None:
    alice = fake.user(10, "Alice")
    sent = fake.start_with_payload(alice, "orig-42_x")
    assert sent["text"] == "/start orig-42_x" and sent["chat"]["id"] == 10
    assert sent["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    with pytest.raises(ValueError):
        fake.start_with_payload(alice, "not allowed!")
