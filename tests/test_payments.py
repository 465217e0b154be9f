"""Credits bought with Telegram Stars (issue 26), against the fake Bot API's payments: /buy and its invoice, the
pre-checkout answer, a payment credited once however often it arrives, spending free credits first, a failed
job's refund to purchased credits, refunds by an admin (and forced) and by Telegram, /paysupport, /payments."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
import time
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.ext.asyncio import create_async_engine

from bot import inbox
from bot.config import Settings
from bot.stars import Pack, parse_packs
from bot.texts import t
from tests.fakes.telegram import CheckoutRefused
from tests.fleet import free_port
from tests.netfaults import Blackhole
from tests.postgres import remove_cluster, start_cluster
from tests.test_service import sample

PACKS = "100:50,300:140"
BOSS_ID = 77
INBOX_SLOTS = 64  # updates one process handles at once (bot/inbox.py)


async def buy(harness, tg, user, chat, label: str = "100 credits") -> str:
    """/buy, a pack, its invoice paid: the charge id, once the bot said thank you for it."""
    thanked = sum("credits added" in x for x in harness.texts(chat["id"]))
    invoices = len(tg.invoices(chat["id"]))
    harness.send(chat, user, "/buy")
    offer = await tg.wait_for(
        lambda: next(
            (m for m in reversed(tg.bot_messages(chat["id"])) if "Choose a pack" in (m.get("text") or "")), None
        ),
        10,
        "the packs",
    )
    await harness.press(offer, label, user)
    invoice = await tg.wait_for(
        lambda: len(tg.invoices(chat["id"])) > invoices and tg.invoices(chat["id"])[-1], 10, "the invoice"
    )
    charge = await tg.pay(user, invoice)
    await tg.wait_for(
        lambda: sum("credits added" in x for x in harness.texts(chat["id"])) > thanked, 10, "the thank-you"
    )
    return charge


async def usage(harness, chat, user) -> str:
    """/usage's answer (a new one)."""
    before = sum("Today you used" in x for x in harness.texts(chat["id"]))
    harness.send(chat, user, "/usage")
    await harness.tg.wait_for(
        lambda: sum("Today you used" in x for x in harness.texts(chat["id"])) > before, 10, "/usage"
    )
    return [x for x in harness.texts(chat["id"]) if "Today you used" in x][-1]


def test_stars_packs_are_checked_with_every_mistake_named():
    assert parse_packs("") == ()
    assert parse_packs(" 300:140, 100:50 ") == (Pack(100, 50), Pack(300, 140))
    with pytest.raises(ValueError) as exc:
        parse_packs("100:50,abc,0:5,100:60,5:200000")
    message = str(exc.value)
    assert "'abc': write credits:stars" in message and "'0:5': credits and stars must be 1 or more" in message
    assert "listed twice" in message and "at most 100000 Stars" in message and "\n" not in message


async def test_buy_pays_once_however_often_telegram_says_so(start_bot, harness, tg, backend):
    port = free_port()
    await start_bot(stars_packs=PACKS, user_daily_quota=2, http_port=port)
    user, chat = harness.person()
    charge = await buy(harness, tg, user, chat)

    (call,) = tg.calls_of("sendInvoice")
    assert call.params["currency"] == "XTR" and not call.params.get("provider_token")
    assert json.loads(call.params["prices"]) if isinstance(call.params["prices"], str) else call.params["prices"]
    payload = call.params["payload"]
    assert len(payload.encode()) <= 128 and str(user["id"]) in payload and "100" in payload
    assert tg.pre_checkout_answers and all(a["ok"] for a in tg.pre_checkout_answers.values())
    assert "purchased" in (await usage(harness, chat, user)).lower()

    # Telegram sends the same payment again (a new update id, and a webhook-style repeat of the same id)
    tg.redeliver(tg.star_payments[charge].update)
    tg.redeliver(tg.star_payments[charge].update, same_id=True)
    text = await usage(harness, chat, user)  # the chat's updates are handled in order: the repeats came first
    assert "Purchased: 100 credits" in text
    assert sum("credits added" in x for x in harness.texts(chat["id"])) == 1
    assert "you now have 100 purchased credits" in next(x for x in harness.texts(chat["id"]) if "added" in x)

    async with httpx.AsyncClient(timeout=10) as http:
        exposition = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    assert sample(exposition, "imagine_stars_received_total") == 50
    assert sample(exposition, "imagine_credits_purchased_total") == 100
    assert sample(exposition, "imagine_stars_refunded_total") == 0


async def test_a_pre_checkout_is_refused_with_a_reason_in_the_buyers_language(start_bot, harness, tg, backend):
    await start_bot(stars_packs=PACKS, user_daily_quota=2, admin_user_ids=str(BOSS_ID))
    user, chat = harness.person()
    harness.send(chat, user, "/buy")
    offer = await harness.reply_text(chat["id"], "Choose a pack")
    await harness.press(offer, "300 credits", user)
    invoice = await tg.wait_for(lambda: tg.invoices(chat["id"]) and tg.invoices(chat["id"])[-1], 10, "the invoice")

    # someone else pays the invoice made for this user
    other = tg.user(4321, "Other", language_code="zh-hans")
    refused = await tg.pay(other, invoice, ok_expected=False)
    assert isinstance(refused, CheckoutRefused) and not refused.timed_out
    assert refused.error_message == t("pay_not_yours", "zh")

    # the buyer is blocked by an admin meanwhile
    boss = tg.user(BOSS_ID, "Boss")
    boss_chat = tg.private_chat(boss)
    harness.send(boss_chat, boss, f"/block {user['id']}")
    await harness.reply_text(boss_chat["id"], str(user["id"]))
    refused = await tg.pay(user, invoice, ok_expected=False)
    assert refused.error_message == t("pay_blocked", "en")
    assert not tg.star_payments


async def test_a_pack_no_longer_on_sale_is_refused(start_bot, harness, tg):
    bot = await start_bot(stars_packs=PACKS, user_daily_quota=2)
    user, chat = harness.person()
    harness.send(chat, user, "/buy")
    offer = await harness.reply_text(chat["id"], "Choose a pack")
    await harness.press(offer, "100 credits", user)
    invoice = await tg.wait_for(lambda: tg.invoices(chat["id"]) and tg.invoices(chat["id"])[-1], 10, "the invoice")
    await bot.stop()
    await start_bot(stars_packs="100:60,300:140", user_daily_quota=2)  # the price went up
    refused = await tg.pay(user, invoice, ok_expected=False)
    assert refused.error_message == t("pay_pack_gone", "en")


async def test_the_pre_checkout_is_answered_at_once_whatever_the_load(start_bot, harness, tg):
    """A pre-checkout is handled as it arrives: not behind a crowd whose updates fill every handling slot of the
    inbox (each stuck behind a flood wait), nor behind the buyer's own chat; the payment then takes its turn in
    that chat."""
    await start_bot(stars_packs=PACKS, user_daily_quota=2)
    user, chat = harness.person()
    harness.send(chat, user, "/buy")
    offer = await harness.reply_text(chat["id"], "Choose a pack")
    await harness.press(offer, "100 credits", user)
    invoice = await tg.wait_for(lambda: tg.invoices(chat["id"]) and tg.invoices(chat["id"])[-1], 10, "the invoice")
    tg.pre_checkout_timeout = 3.0
    crowd = [harness.person() for _ in range(INBOX_SLOTS + 6)]
    tg.flood(8, method="sendMessage", times=len(crowd) + 1)
    harness.send(chat, user, "/help")  # the buyer's chat is busy too
    for person, their_chat in crowd:
        harness.send(their_chat, person, "/help")
    await tg.wait_for(lambda: len(tg.refused("sendMessage")) >= INBOX_SLOTS, 15, "every slot held by a flood wait")
    charge = await tg.pay(user, invoice)  # answered within 3 s
    await harness.reply_text(chat["id"], "100 credits added", timeout=30)
    assert charge in tg.star_payments


async def invoice_for(harness, tg, user, chat) -> dict:
    harness.send(chat, user, "/buy")
    offer = await tg.wait_for(
        lambda: next((m for m in tg.bot_messages(chat["id"]) if "⭐" in str(m)), None), 10, "packs"
    )
    await harness.press(offer, "100", user)
    return await tg.wait_for(lambda: tg.invoices(chat["id"]) and tg.invoices(chat["id"])[-1], 10, "the invoice")


async def test_a_pre_checkout_without_its_database_is_answered_in_time(start_bot, harness, tg, backend, database_url):
    """PostgreSQL silent (a partition), then stopped, while the buyer pays: "try again in a minute", in their
    language, within Telegram's 10 s (never a hang, never an unchecked ok), nothing charged; once it is back, the
    same invoice goes through.
    SQLite whose write lock another process holds for longer than Telegram waits: the pre-checkout cannot be
    recorded, yet is checked (reads go on) and answered in time; the payment is credited once the lock is gone."""
    if backend == "sqlite":
        await start_bot(stars_packs=PACKS, user_daily_quota=2)
        user, chat = harness.person()
        invoice = await invoice_for(harness, tg, user, chat)
        holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        try:
            charge = await tg.pay(user, invoice)  # within tg.pre_checkout_timeout (10 s)
            assert time.monotonic() - started < 8
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await harness.reply_text(chat["id"], "100 credits added", timeout=40)
        assert charge in tg.star_payments
        return
    cluster, why = start_cluster(given=False)  # of its own: stopping the session's would break other tests
    if cluster is None:
        pytest.fail(f"PostgreSQL is required here: {why}")
    hole = Blackhole(cluster.new_database())
    await hole.start()
    bot = None
    try:
        bot = await start_bot(database_url=hole.url, stars_packs=PACKS, user_daily_quota=2)
        user, chat = harness.person(language_code="zh-hans")
        invoice = await invoice_for(harness, tg, user, chat)
        for fault, back in ((hole.cut, hole.heal), (cluster.stop, cluster.start)):  # silent, then stopped
            await asyncio.to_thread(fault)
            started = time.monotonic()
            refused = await tg.pay(user, invoice, ok_expected=False)
            took = time.monotonic() - started
            assert isinstance(refused, CheckoutRefused) and not refused.timed_out
            assert refused.error_message == t("pay_try_again", "zh") and took < 6
            assert not tg.star_payments and not any(a["ok"] for a in tg.pre_checkout_answers.values())
            await asyncio.to_thread(back)

        harness.send(chat, user, "/usage")  # answered once the bot has its database again
        await harness.reply_text(chat["id"], "今日已用", timeout=30)
        paid = await tg.pay(user, invoice)
        await harness.reply_text(chat["id"], "100", timeout=20)
        assert paid in tg.star_payments
    finally:
        if bot is not None:
            await bot.stop()
        await hole.stop()
        remove_cluster(cluster)


async def test_free_credits_are_spent_first_and_purchased_ones_never_expire(start_bot, harness, tg, img, backend):
    now = [datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC).timestamp()]
    await start_bot(clock=lambda: now[0], stars_packs=PACKS, user_daily_quota=2)
    user, chat = harness.person()
    await buy(harness, tg, user, chat)
    for n in range(3):
        harness.send(chat, user, f"/imagine picture {n} --ar 1:1 --1k")
        await harness.result(chat["id"], count=n + 1)
    text = await usage(harness, chat, user)
    assert "used 2 of 2 credits; 0 left" in text and "Purchased: 99 credits" in text
    now[0] += 24 * 3600  # the next day: free credits again, the purchased ones are still there
    harness.send(chat, user, "/imagine next day --ar 1:1 --1k")
    await harness.result(chat["id"], count=4)
    text = await usage(harness, chat, user)
    assert "used 1 of 2 credits; 1 left" in text and "Purchased: 99 credits" in text

    # out of both: the refusal offers 🛒, which shows the packs
    harness.send(chat, user, "/imagine huge --ar 1:1 --4k")  # 2 credits: 1 free + 1 purchased
    await harness.result(chat["id"], count=5)
    assert "Purchased: 98 credits" in await usage(harness, chat, user)


async def test_a_refused_request_offers_the_packs(start_bot, harness, tg, img):
    await start_bot(stars_packs=PACKS, user_daily_quota=1)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine first --ar 1:1 --1k")
    await harness.result(chat["id"])
    harness.send(chat, user, "/imagine second --ar 1:1 --1k")
    refusal = await harness.reply_text(chat["id"], "Not enough credits")
    assert "Tap 🛒 to buy more" in refusal["text"]
    await harness.press(refusal, "🛒 Buy credits", user)
    offer = await harness.reply_text(chat["id"], "Choose a pack")
    assert [b["text"] for b in harness.buttons(offer)] == ["100 credits · 50 ⭐", "300 credits · 140 ⭐"]


async def test_a_failed_job_gives_purchased_credits_back(start_bot, harness, tg, img, backend):
    await start_bot(stars_packs=PACKS, user_daily_quota=1)
    user, chat = harness.person()
    await buy(harness, tg, user, chat)
    harness.send(chat, user, "/imagine free one --ar 1:1 --1k")
    await harness.result(chat["id"])
    img.fail_next(400)
    harness.send(chat, user, "/imagine paid one --ar 1:1 --1k")
    await tg.wait_for(lambda: len(img.requests) == 2, 10, "the second request upstream")
    text = ""
    for _ in range(50):  # the refund lands with the failure's outcome
        text = await usage(harness, chat, user)
        if "Purchased: 100 credits" in text:
            break
    assert "used 1 of 1 credits; 0 left" in text and "Purchased: 100 credits" in text


async def test_a_cancelled_job_gives_purchased_credits_back(start_bot, harness, tg, img, backend):
    """Free allowance spent, a pack bought, a request paid with purchased credits, cancelled while it runs (✖ on
    its status line) and one cancelled with /cancel while waiting: the purchased credits come back, not free ones."""
    await start_bot(stars_packs=PACKS, user_daily_quota=1, max_concurrent_generations=1)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine free one --ar 1:1 --1k")
    await harness.result(chat["id"])
    await buy(harness, tg, user, chat)
    img.delay = 10
    harness.send(chat, user, "/imagine paid one --ar 1:1 --1k")  # 1 purchased credit
    await img.wait_for(lambda: img.inflight == 1)
    spent = await usage(harness, chat, user)
    assert "used 1 of 1 credits; 0 left" in spent and "Purchased: 100 credits" not in spent
    running = await harness.reply_text(chat["id"], "Generating")
    await harness.press(running, "Cancel", user)
    await img.wait_for(lambda: img.requests[-1].aborted, what="the upstream request to be aborted")
    text = ""
    for _ in range(50):  # the refund lands with the cancelled job's outcome
        text = await usage(harness, chat, user)
        if "Purchased: 100 credits" in text:
            break
    assert "used 1 of 1 credits; 0 left" in text and "Purchased: 100 credits" in text

    harness.send(chat, user, "/imagine paid two --ar 1:1 --1k")
    await img.wait_for(lambda: img.inflight == 1)
    assert "Purchased: 99 credits" in await usage(harness, chat, user)
    harness.send(chat, user, "/cancel")
    await harness.reply_text(chat["id"], "Cancelled: ")
    for _ in range(50):
        text = await usage(harness, chat, user)
        if "Purchased: 100 credits" in text:
            break
    assert "used 1 of 1 credits; 0 left" in text and "Purchased: 100 credits" in text


async def test_an_admin_refunds_and_is_told_when_credits_were_spent(start_bot, harness, tg, img, backend):
    port = free_port()
    await start_bot(stars_packs=PACKS, user_daily_quota=1, admin_user_ids=str(BOSS_ID), http_port=port)
    boss = tg.user(BOSS_ID, "Boss")
    boss_chat = tg.private_chat(boss)
    user, chat = harness.person()
    whole = await buy(harness, tg, user, chat)
    harness.send(boss_chat, boss, f"/refund {whole}")
    await harness.reply_text(boss_chat["id"], f"Refunded 50 ⭐ of {whole}: 100 credits taken back")
    assert tg.star_payments[whole].refunded_by == "bot"
    await harness.reply_text(chat["id"], "was refunded")
    assert "Purchased: 0 credits" in await usage(harness, chat, user)
    harness.send(boss_chat, boss, f"/refund {whole}")  # again: told, nothing more happens
    await harness.reply_text(boss_chat["id"], "was refunded already")

    # some of a pack spent: the admin is told, and decides with force
    spent = await buy(harness, tg, user, chat)
    harness.send(chat, user, "/imagine free --ar 1:1 --1k")
    harness.send(chat, user, "/imagine paid --ar 1:1 --1k")
    await harness.result(chat["id"], count=2)
    harness.send(boss_chat, boss, f"/refund {spent}")
    await harness.reply_text(boss_chat["id"], f"Payment {spent}: 1 of its 100 credits are spent, 99 left")
    assert not tg.star_payments[spent].refunded_by
    harness.send(boss_chat, boss, f"/refund {spent} force")
    await harness.reply_text(boss_chat["id"], f"Refunded 50 ⭐ of {spent}: 99 credits taken back")
    assert "Purchased: 0 credits" in await usage(harness, chat, user)
    assert sum("was refunded" in x for x in harness.texts(chat["id"])) == 2  # once per refund

    # Telegram says it was refunded already: that is a success
    third = await buy(harness, tg, user, chat)
    tg.fail_next("refundStarPayment", 400, "Bad Request: CHARGE_ALREADY_REFUNDED")
    harness.send(boss_chat, boss, f"/refund {third}")
    await harness.reply_text(boss_chat["id"], f"Refunded 50 ⭐ of {third}: 100 credits taken back")

    harness.send(boss_chat, boss, "/payments")
    listing = await harness.reply_text(boss_chat["id"], "Star balance")
    assert f"Star balance: {tg.star_balance} ⭐" in listing["text"] and tg.star_balance == 50  # the third's
    assert all(charge in listing["text"] for charge in (whole, spent, third))
    assert "refunded (admin), 99 credits taken back" in listing["text"] or "refunded (telegram), 99" in listing["text"]
    async with httpx.AsyncClient(timeout=10) as http:
        exposition = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    assert sample(exposition, "imagine_stars_refunded_total") == 150


async def test_a_pack_refunded_while_a_job_holds_its_credits_stays_refunded_when_the_job_fails(
    start_bot, harness, tg, img, backend
):
    """A forced /refund takes what is left of a pack while a job holds one of its credits; that job then fails:
    its refund gives the buyer nothing of the refunded pack back (the ledger said 0 left)."""
    await start_bot(stars_packs=PACKS, user_daily_quota=1, admin_user_ids=str(BOSS_ID))
    boss = tg.user(BOSS_ID, "Boss")
    boss_chat = tg.private_chat(boss)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine free one --ar 1:1 --1k")
    await harness.result(chat["id"])
    charge = await buy(harness, tg, user, chat)
    img.delay_next(8)  # still running when the admin's /refund (several round trips) has been answered
    img.fail_next(400)
    harness.send(chat, user, "/imagine paid one --ar 1:1 --1k")  # 1 purchased credit, held while it runs
    await img.wait_for(lambda: img.inflight == 1)
    harness.send(boss_chat, boss, f"/refund {charge} force")
    await harness.reply_text(boss_chat["id"], f"Refunded 50 ⭐ of {charge}: 99 credits taken back")
    await harness.reply_text(chat["id"], "⚠️ The image service refused", timeout=20)  # failed: credits refunded
    for _ in range(5):  # a refund that gave them back would show by now
        assert "Purchased: 0 credits" in await usage(harness, chat, user)
    harness.send(chat, user, "/buy")
    assert "You have 0 purchased credits" in (await harness.reply_text(chat["id"], "Choose a pack"))["text"]


async def test_a_refund_telegram_makes_by_itself_is_applied_once(start_bot, harness, tg, backend):
    await start_bot(stars_packs=PACKS, user_daily_quota=1)
    user, chat = harness.person()
    charge = await buy(harness, tg, user, chat, "300 credits")
    tg.refund_by_telegram(charge)
    await harness.reply_text(chat["id"], "Your payment of 140 ⭐ was refunded; 300 purchased credits were taken back")
    tg.redeliver(tg.star_payments[charge].refund_update)
    assert "Purchased: 0 credits" in await usage(harness, chat, user)
    assert sum("was refunded" in x for x in harness.texts(chat["id"])) == 1


def picture() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


async def ask_support(harness, chat, user, lang: str = "en") -> dict:
    """/paysupport: its question."""
    asked = sum(x == t("paysupport", lang) for x in harness.texts(chat["id"]))
    harness.send(chat, user, "/paysupport")
    await harness.tg.wait_for(
        lambda: sum(x == t("paysupport", lang) for x in harness.texts(chat["id"])) > asked, 10, "the question"
    )
    return harness.tg.bot_messages(chat["id"])[-1]


async def said(harness, chat, text: str, before: int) -> list[str]:
    """The bot's messages in the chat after the first `before`, once one of them is `text`."""
    await harness.tg.wait_for(lambda: text in harness.texts(chat["id"])[before:], 10, repr(text))
    return harness.texts(chat["id"])[before:]


def forwarded(tg, admin_id: int) -> list[dict]:
    return [m for m in tg.bot_messages(admin_id) if "forward_origin" in m]


async def test_paysupport_forwards_the_buyers_next_message_whatever_it_is(start_bot, harness, tg, img, backend):
    """The message after /paysupport (a photo, a voice message, a document: not a prompt, not an edit) is forwarded
    as it is to every admin, followed by who sent it and their payments; the buyer hears one line. Commands are
    answered meanwhile; /cancel ends the wait; a reply to the question always goes; then the intake has them again."""
    await start_bot(stars_packs=PACKS, user_daily_quota=1, admin_user_ids=f"{BOSS_ID},{BOSS_ID + 1}")
    user, chat = harness.person()
    charge = await buy(harness, tg, user, chat)
    sent = t("paysupport_sent", "en")

    question = await ask_support(harness, chat, user)
    (call,) = [c for c in tg.calls_of("sendMessage") if c.params.get("text") == question["text"]]
    assert "force_reply" in str(call.params["reply_markup"])
    before = len(harness.texts(chat["id"]))
    photo = tg.send_photo(chat, user, picture())
    assert await said(harness, chat, sent, before) == [sent]  # one line, and nothing of the intake
    for admin in (BOSS_ID, BOSS_ID + 1):
        (copy,) = await tg.wait_for(lambda a=admin: forwarded(tg, a), 10, "the forwarded photo")
        assert copy["photo"] == photo["photo"] and copy["forward_origin"]["sender_user"]["id"] == user["id"]
        note = await harness.reply_text(admin, "the message above is from")
        assert f"(user {user['id']})" in note["text"] and user["first_name"] in note["text"] and charge in note["text"]
        assert note["reply_to_message"]["message_id"] == copy["message_id"]
    assert not img.requests

    # a voice message; a command meanwhile is answered, and support still waits
    await ask_support(harness, chat, user)
    assert "Purchased: 100 credits" in await usage(harness, chat, user)
    before = len(harness.texts(chat["id"]))
    tg.send_media(chat, user, "voice")
    assert await said(harness, chat, sent, before) == [sent]
    assert "voice" in forwarded(tg, BOSS_ID)[-1]

    # /cancel: nothing sent, the next message is a prompt again
    await ask_support(harness, chat, user)
    before = len(harness.texts(chat["id"]))
    harness.send(chat, user, "/cancel")
    assert await said(harness, chat, t("paysupport_cancelled", "en"), before) == [t("paysupport_cancelled", "en")]
    harness.send(chat, user, "a red apple")
    await harness.keyboard(chat["id"])
    harness.send(chat, user, "/cancel")  # nothing waits: /cancel as usual
    await harness.reply_text(chat["id"], t("nothing_to_cancel", "en"))

    # a reply to the question goes, whenever it comes (a document, this time)
    before = len(harness.texts(chat["id"]))
    tg.send_document(chat, user, b"%PDF-1.4 receipt", "receipt.pdf", "application/pdf", reply_to=question)
    assert await said(harness, chat, sent, before) == [sent]
    assert forwarded(tg, BOSS_ID)[-1]["document"]["file_name"] == "receipt.pdf"
    assert len(forwarded(tg, BOSS_ID)) == 3 and len(tg.calls_of("forwardMessage")) == 6

    harness.send(chat, user, "/terms")
    terms = await harness.reply_text(chat["id"], "Terms:")
    assert "100 credits · 50 ⭐" in terms["text"] and "/paysupport" in terms["text"]


async def test_an_admin_answers_the_buyer_by_replying_even_after_a_restart(start_bot, harness, tg, img, backend):
    """An admin's reply to the forwarded message (a text) or to the note under it (a photo, copied) reaches the
    buyer after one line in the buyer's language, though the bot restarted in between; the admin hears it was
    delivered. The buyer's next message is theirs again: support takes it only after another /paysupport."""
    settings = {"stars_packs": PACKS, "user_daily_quota": 1, "admin_user_ids": str(BOSS_ID)}
    bot = await start_bot(**settings)
    boss = tg.user(BOSS_ID, "Boss")
    boss_chat = tg.private_chat(boss)
    user, chat = harness.person("zh")
    await ask_support(harness, chat, user, "zh")
    before = len(harness.texts(chat["id"]))
    harness.send(chat, user, "I paid but got nothing")
    await said(harness, chat, t("paysupport_sent", "zh"), before)
    (copy,) = forwarded(tg, BOSS_ID)
    note = await harness.reply_text(BOSS_ID, "the message above is from")
    assert "Reply to it or to this note" in note["text"]
    await bot.stop()
    await start_bot(**settings)

    before = len(harness.texts(chat["id"]))
    tg.send_text(boss_chat, boss, "Sorry, refunded: see /refund", reply_to=copy)
    answer = f"{t('paysupport_answer', 'zh')}\nSorry, refunded: see /refund"
    assert await said(harness, chat, answer, before) == [answer]
    await harness.reply_text(BOSS_ID, t("paysupport_answered", "en", user_id=user["id"]))

    photo = tg.send_photo(boss_chat, boss, picture(), caption="Your receipt", reply_to=note)
    copied = await tg.wait_for(lambda: "photo" in tg.bot_messages(chat["id"])[-1] and tg.bot_messages(chat["id"])[-1])
    assert copied["photo"] == photo["photo"] and "forward_origin" not in copied
    assert copied["caption"] == f"{t('paysupport_answer', 'zh')}\nYour receipt"
    await tg.wait_for(
        lambda: harness.texts(BOSS_ID).count(t("paysupport_answered", "en", user_id=user["id"])) == 2, 10, "two"
    )
    assert len(tg.calls_of("copyMessage")) == 1 and not img.requests

    harness.send(chat, user, "a red apple")  # no /paysupport since: a prompt, not for the admins
    await harness.reply_text(chat["id"], "🎨 a red apple")
    assert len(forwarded(tg, BOSS_ID)) == 1


async def test_an_answer_to_a_buyer_who_blocked_the_bot_says_so_and_others_replies_change_nothing(
    start_bot, harness, tg, img, backend
):
    """Only an admin's reply is an answer: a non-admin replying to the same message id is a prompt as usual. A
    buyer who blocked the bot: the admin is told so in one line."""
    await start_bot(stars_packs=PACKS, user_daily_quota=1, admin_user_ids=str(BOSS_ID))
    boss = tg.user(BOSS_ID, "Boss")
    boss_chat = tg.private_chat(boss)
    user, chat = harness.person()
    await ask_support(harness, chat, user)
    before = len(harness.texts(chat["id"]))
    harness.send(chat, user, "charged twice")
    await said(harness, chat, t("paysupport_sent", "en"), before)
    (copy,) = forwarded(tg, BOSS_ID)

    stranger, stranger_chat = harness.person()
    tg.send_text(stranger_chat, stranger, "a blue whale", reply_to=copy)  # the bot's message id, in their chat
    await harness.keyboard(stranger_chat["id"])
    assert len(harness.texts(chat["id"])) == before + 1 and not tg.calls_of("copyMessage")

    tg.block_bot(user)
    tg.send_text(boss_chat, boss, "Refunded", reply_to=copy)
    await harness.reply_text(BOSS_ID, t("paysupport_answer_blocked", "en", user_id=user["id"]))
    assert len(harness.texts(chat["id"])) == before + 1
    assert any(c.method == "sendMessage" and c.error == 403 for c in tg.calls)


async def test_paysupport_waits_in_the_database_for_ten_minutes(start_bot, harness, tg, img):
    """The wait outlives a restart (any process would see it), ends after ten minutes, and takes a whole album."""
    now = [datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC).timestamp()]
    bot = await start_bot(clock=lambda: now[0], stars_packs=PACKS, user_daily_quota=1, admin_user_ids=str(BOSS_ID))
    user, chat = harness.person()
    await ask_support(harness, chat, user)
    await bot.stop()
    bot = await start_bot(clock=lambda: now[0], stars_packs=PACKS, user_daily_quota=1, admin_user_ids=str(BOSS_ID))
    parts = [tg.send_photo(chat, user, picture(), media_group_id="receipts") for _ in range(3)]
    await harness.reply_text(chat["id"], t("paysupport_sent", "en"))
    await tg.wait_for(lambda: len(forwarded(tg, BOSS_ID)) == 3, 10, "the album's three parts")
    assert [m["photo"] for m in forwarded(tg, BOSS_ID)] == [p["photo"] for p in parts]
    assert sum("the message above is from" in x for x in harness.texts(BOSS_ID)) == 1
    assert harness.texts(chat["id"]).count(t("paysupport_sent", "en")) == 1

    await ask_support(harness, chat, user)
    now[0] += 601  # ten minutes later, the message is a prompt
    harness.send(chat, user, "a green pear")
    await harness.keyboard(chat["id"])
    assert len(forwarded(tg, BOSS_ID)) == 3


async def support_waits(database_url: str) -> int:
    """How many /paysupport waits the database holds."""
    query = sa.text("SELECT count(*) FROM support_waits")
    if database_url.startswith("sqlite"):
        engine = sa.create_engine(database_url)
        try:
            with engine.connect() as connection:
                return int(connection.execute(query).scalar_one())
        finally:
            engine.dispose()
    async_engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with async_engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())
    finally:
        await async_engine.dispose()


async def test_a_paysupport_wait_that_ran_out_is_pruned_by_housekeeping(
    start_bot, harness, tg, backend, database_url, monkeypatch
):
    """Nobody wrote after /paysupport: the wait is forgotten by the inbox's housekeeping, not only when they write."""
    monkeypatch.setattr(inbox, "HOUSEKEEPING_EVERY", 0.2)
    now = [datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC).timestamp()]
    await start_bot(clock=lambda: now[0], stars_packs=PACKS, user_daily_quota=1, admin_user_ids=str(BOSS_ID))
    user, chat = harness.person()
    await ask_support(harness, chat, user)
    await asyncio.sleep(0.6)  # housekeeping ran meanwhile: a wait not over is kept
    assert await support_waits(database_url) == 1
    now[0] += 601
    deadline = time.monotonic() + 10
    while await support_waits(database_url) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await support_waits(database_url) == 0


async def test_paysupport_without_admins_says_where_to_write(start_bot, harness, tg, img, caplog):
    caplog.set_level(logging.WARNING)
    await start_bot(stars_packs=PACKS, user_daily_quota=1)
    user, chat = harness.person()
    await ask_support(harness, chat, user)
    before = len(harness.texts(chat["id"]))
    harness.send(chat, user, "I paid twice, please help")
    no_admins = t("paysupport_no_admins", "en")
    assert await said(harness, chat, no_admins, before) == [no_admins]
    assert not tg.calls_of("forwardMessage") and not img.requests
    assert any("ADMIN_USER_IDS is empty" in r.getMessage() for r in caplog.records)


async def test_in_a_group_buy_opens_the_private_chat(start_bot, harness, tg):
    await start_bot(stars_packs=PACKS, user_daily_quota=1)
    user, chat = harness.person()
    group = tg.group(-100555, "Friends")
    harness.send(group, user, "/buy")
    answer = await harness.reply_text(group["id"], "private chat")
    (button,) = harness.buttons(answer)
    assert button["url"].endswith("?start=buy") and "callback_data" not in button
    assert not tg.invoices(group["id"])
    harness.send(chat, user, "/start buy")  # what the link sends
    await harness.reply_text(chat["id"], "Choose a pack")


async def test_without_packs_nothing_about_buying_is_shown(start_bot, harness, tg):
    await start_bot(user_daily_quota=1)
    user, chat = harness.person()
    harness.send(chat, user, "/buy")
    await harness.reply_text(chat["id"], "/imagine")  # an unknown command
    menus = [c.params for c in tg.calls_of("setMyCommands")]
    assert menus and not any("buy" in str(m.get("commands")) or "paysupport" in str(m.get("commands")) for m in menus)
    harness.send(chat, user, "/usage")
    assert "Purchased" not in (await harness.reply_text(chat["id"], "Today you used"))["text"]


async def test_with_no_daily_limit_there_is_nothing_to_buy(start_bot, harness, tg, caplog):
    caplog.set_level(logging.WARNING)
    await start_bot(stars_packs=PACKS, user_daily_quota=0)
    user, chat = harness.person()
    harness.send(chat, user, "/buy")
    await harness.reply_text(chat["id"], "nothing to buy")
    assert any("USER_DAILY_QUOTA=0" in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)


def test_the_packs_setting_reads_from_the_environment(monkeypatch):
    monkeypatch.setenv("STARS_PACKS", "100:50")
    settings = Settings(_env_file=None, telegram_bot_token="1:x", image_api_key="k")  # type: ignore[call-arg]
    assert (
        settings.stars_packs == (Pack(100, 50),)
        and not Settings(
            _env_file=None,
            telegram_bot_token="1:x",
            image_api_key="k",
            stars_packs="",  # type: ignore[call-arg]
        ).stars_packs
    )
