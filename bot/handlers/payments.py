"""Credits bought with Telegram Stars: /buy and its packs, the invoice, the pre-checkout answer, the payment credited
once, refunds (/refund, and those Telegram reports by itself), /paysupport, /terms and /payments.

The rules (what is on sale, who may pay, credited once, taken back once) are `bot/purchases.py`; this module is the
Telegram side. A pre-checkout query is handled as it arrives (bot/inbox.py), never behind a chat's other updates.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

from telegram import ForceReply, LabeledPrice, Message, MessageEntity, ReplyParameters, Update, User
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    PreCheckoutQueryHandler,
    filters,
)

from ..keyboards import Action, Callback
from ..menus import Command
from ..models import Origin
from ..purchases import Buyer, PaymentRow, Refund, RefundOutcome, Waiting
from ..services import Services, get_services
from ..stars import STARS, Pack
from ..targets import Target, send_kwargs
from ..tasks import at_most, complain, persist
from ..texts import TEXTS, t
from .dialogue import offer_packs
from .replies import Answer, admins_only, display_name, origin_for, reply, user_lang

log = logging.getLogger(__name__)

SALES = frozenset({"buy", "terms", "paysupport"})  # answered and listed only with STARS_PACKS set
CHECKOUT_BUDGET = 3.0  # seconds the pre-checkout's checks may take (Telegram waits 10 s for the answer)
TRY_AGAIN = "pay_try_again"  # the refusal when they could not be made
LANGUAGE_BUDGET = 1.0  # more seconds to find the buyer's language for a "no" (else their app's)
RECENT_FOR_SUPPORT = 5  # a buyer's payments sent with their /paysupport message
RECENT_FOR_ADMINS = 15  # lines of /payments
TEXT_MAX, CAPTION_MAX = 4096, 1024  # Telegram's limits on a message's text and a caption
CAPTIONED = ("photo", "document", "video", "audio", "animation", "voice")  # what copyMessage may give a caption
PERSIST_ATTEMPTS = 20  # tries (0.5 s doubling to 15 s: about four minutes) to record money that moved
ALREADY_REFUNDED = (
    "charge_already_refunded"  # PTB writes Telegram's CHARGE_ALREADY_REFUNDED as "Charge_already_refunded"
)


async def _lang_or_none(context: ContextTypes.DEFAULT_TYPE, user: User, budget: float) -> str | None:
    """The buyer's language, or their app's when the database can't say in time (a pre-checkout must be answered)."""
    try:
        return await at_most(user_lang(context, user), budget)
    except Exception:
        return user.language_code


async def _lang_of(services: Services, user_id: int) -> str | None:
    """The language a user chose in /settings, for messages not answering them (no Telegram user at hand)."""
    return (await services.prefs.get_prefs("user", user_id)).language


async def _say(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str) -> None:
    try:
        await context.bot.send_message(chat_id, text)
    except TelegramError as exc:
        log.warning("could not tell %s about a payment: %s", chat_id, exc)


# ---- buying ----


async def buy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/buy: the packs as buttons (in a group, a button to the private chat)."""
    await offer_packs(context, get_services(context), await origin_for(update, context))


async def on_shop_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """🛒 under a refusal for credits: the packs."""
    answer = Answer(update)
    await answer()
    origin = dataclasses.replace(await origin_for(update, context), reply_to=None)
    await offer_packs(context, get_services(context), origin)


async def on_pack_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A pack: its invoice, to the person who pressed (in their private chat), naming them in the payload."""
    services = get_services(context)
    query = update.callback_query
    assert query is not None  # routed here by its pattern: a callback query
    answer = Answer(update)
    lang = await user_lang(context, query.from_user)
    callback = Callback.decode(query.data)
    pack = (
        Pack(int(callback.id), int(callback.arg))
        if callback and callback.id.isdigit() and callback.arg.isdigit()
        else None
    )
    purchases = services.purchases
    if not purchases.on_sale:
        purchases.log_nothing_to_buy(query.from_user.id)
        await answer(t("buy_nothing", lang), alert=True)
        return
    if pack is None or pack not in purchases.packs:
        await answer(t("pay_pack_gone", lang), alert=True)
        return
    await answer()
    await context.bot.send_invoice(
        chat_id=query.from_user.id,
        title=t("invoice_title", lang, credits=pack.credits),
        description=t("invoice_description", lang, credits=pack.credits),
        payload=purchases.payload(pack, query.from_user.id),
        currency=STARS,
        prices=[LabeledPrice(t("invoice_title", lang, credits=pack.credits), pack.stars)],
    )


async def on_pre_checkout(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Telegram waits 10 s for this answer: ok only for a pack on sale at that price, bought by the person the
    invoice names, who may use the bot and is not blocked; else a one-sentence reason in the buyer's language. A
    database that fails or is slow gets a "try again" within CHECKOUT_BUDGET: never a hang, never an unchecked ok."""
    query = update.pre_checkout_query
    assert query is not None  # a PreCheckoutQueryHandler's update
    services = get_services(context)
    try:
        checking = services.purchases.check(
            query.invoice_payload, query.from_user.id, query.currency, query.total_amount
        )
        refusal = await at_most(checking, CHECKOUT_BUDGET)
        reason = None if refusal is None else refusal.value
    except Exception as exc:  # a "no" now beats Telegram's timeout, and nothing is charged
        complain(log, f"pre-checkout {query.id} of {query.from_user.id} could not be checked", exc)
        reason = TRY_AGAIN
    try:
        if reason is None:
            await query.answer(ok=True)
        else:
            lang = (  # the database has just failed: their app's language, at once
                query.from_user.language_code
                if reason == TRY_AGAIN
                else await _lang_or_none(context, query.from_user, LANGUAGE_BUDGET)
            )
            await query.answer(ok=False, error_message=t(reason, lang))
    except BadRequest as exc:  # too late (over 10 s) or answered already: Telegram has decided
        log.warning("pre-checkout %s of %s not answered: %s", query.id, query.from_user.id, exc.message)


async def on_paid(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """successful_payment: credited once by its charge id, whichever process gets it and however often; the
    buyer hears the new balance once."""
    services = get_services(context)
    message = update.effective_message
    assert message is not None and message.successful_payment is not None  # filters.SUCCESSFUL_PAYMENT
    payment = message.successful_payment
    buyer = message.from_user or update.effective_user
    assert buyer is not None  # a payment is a person's
    charge = payment.telegram_payment_charge_id
    try:  # the Stars are taken: a database that is down for a moment must not lose the credits
        credited = await persist(
            lambda: services.purchases.credit(charge, buyer.id, payment.invoice_payload, payment.total_amount),
            f"credit payment {charge}",
            log,
            attempts=PERSIST_ATTEMPTS,
        )
    except Exception:
        log.error(
            "payment %s of user %s NOT credited (%s Stars, payload %r); credit it with /grant or refund it with "
            "/refund %s",
            charge,
            buyer.id,
            payment.total_amount,
            payment.invoice_payload,
            charge,
        )
        raise
    if credited is None:
        return
    origin = dataclasses.replace(await origin_for(update, context), reply_to=None)
    await reply(context, origin, t("pay_thanks", origin.lang, credits=credited.credits, purchased=credited.purchased))


async def on_refunded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """refunded_payment, a refund Telegram reports (ours, or one it made by itself): its credits taken back once."""
    services = get_services(context)
    message = update.effective_message
    assert message is not None and message.refunded_payment is not None  # filters.REFUNDED_PAYMENT
    refunded = message.refunded_payment
    charge = refunded.telegram_payment_charge_id
    outcome = await persist(
        lambda: services.purchases.take_back(charge, "telegram"),
        f"apply the refund of {charge}",
        log,
        attempts=PERSIST_ATTEMPTS,
    )
    if outcome.result is Refund.UNKNOWN:
        log.warning("refund of a payment not in the ledger: %s", refunded.telegram_payment_charge_id)
    await _tell_buyer(context, services, outcome)


async def _tell_buyer(context: ContextTypes.DEFAULT_TYPE, services: Services, outcome: RefundOutcome) -> None:
    """The buyer hears of a refund once: from whoever applied it."""
    payment = outcome.payment
    if outcome.result is not Refund.APPLIED or payment is None:
        return
    lang = await _lang_of(services, payment.user_id)
    text = t("refund_user", lang, stars=payment.stars, taken=outcome.taken, purchased=outcome.left)
    await _say(context, payment.user_id, text)


# ---- support and terms ----


async def paysupport(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """How payment problems are handled; the buyer's next private message (or a reply to this question) goes to
    the admins with their recent payments. The wait is a row (SUPPORT_WAIT), so every process knows of it."""
    origin = await origin_for(update, context)
    if origin.chat_id <= 0:
        await reply(context, origin, t("paysupport_private", origin.lang, bot=context.bot.username))
        return
    await get_services(context).purchases.await_support(origin.user_id)
    await context.bot.send_message(
        text=t("paysupport", origin.lang), reply_markup=ForceReply(), **send_kwargs(Target.of(origin))
    )


_QUESTIONS = frozenset(texts["paysupport"] for texts in TEXTS.values() if "paysupport" in texts)


def _answers_question(message: Message) -> bool:
    """A reply to the bot's /paysupport question (in any language): for the admins whenever it comes."""
    asked = message.reply_to_message
    return asked is not None and asked.from_user is not None and asked.from_user.is_bot and asked.text in _QUESTIONS


def _command_of(message: Message, bot_username: str) -> str | None:
    """`cancel` for `/cancel` or `/cancel@thisbot …` (in a text or a caption); None for what is no command."""
    words = (message.text or message.caption or "").split(maxsplit=1)
    if not words or not words[0].startswith("/"):
        return None
    command, _, bot = words[0][1:].lower().partition("@")
    return command if bot in ("", bot_username.lower()) else None


async def on_private_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ahead of every other handler (app.py): the message /paysupport waits for goes to the admins and no further,
    whatever it is (a photo is not an edit); /cancel ends the wait; an admin's reply to what support sent them goes
    to the buyer. Anything else goes on as usual."""
    services = get_services(context)
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None  # a person's private message (SUPPORT_FILTER)
    command = _command_of(message, context.bot.username)
    if command is not None and command != "cancel":  # answered as usual; support waits on for the next message
        return
    if command is None:
        try:
            buyer = await _answering(services, message, user)
        except Exception as exc:  # the database, as below
            complain(log, f"could not tell whether message {message.message_id} of {user.id} answers a buyer", exc)
            return
        if buyer is not None:
            await _answer_buyer(context, await origin_for(update, context), message, buyer)
            raise ApplicationHandlerStop
    try:
        if command == "cancel":
            stopped = await services.purchases.stop_support(user.id)
        else:
            waiting = await services.purchases.for_support(user.id, message.media_group_id)
    except Exception as exc:  # the database: the rest of the bot meets it too, and says so
        complain(log, f"could not tell whether message {message.message_id} of {user.id} is for payment support", exc)
        return
    if command == "cancel":
        if not stopped:
            return  # /cancel as usual: the user's jobs
        origin = await origin_for(update, context)
        await reply(context, origin, t("paysupport_cancelled", origin.lang))
        raise ApplicationHandlerStop
    if waiting is Waiting.NO and not _answers_question(message):
        return
    await _pass_on(
        context, services, await origin_for(update, context), message, user, first=waiting is not Waiting.MORE
    )
    raise ApplicationHandlerStop


async def _answering(services: Services, message: Message, user: User) -> Buyer | None:
    """The buyer an admin's reply goes to: a reply to a message support put in their chat (any other: None)."""
    asked = message.reply_to_message
    if user.id not in services.settings.admin_user_ids or asked is None or asked.from_user is None:
        return None
    if not asked.from_user.is_bot:
        return None
    return await services.purchases.answer_to(message.chat_id, asked.message_id)


async def _answer_buyer(context: ContextTypes.DEFAULT_TYPE, origin: Origin, message: Message, buyer: Buyer) -> None:
    """The admin's answer to the buyer after one line saying it is payment support: a text as a message, anything
    else copied (its caption after that line); the admin hears in one line whether it arrived."""
    prefix = t("paysupport_answer", buyer.lang) + "\n"
    if message.text is not None:
        body, entities, limit = message.text, message.entities, TEXT_MAX
    else:
        body, entities, limit = message.caption or "", message.caption_entities, CAPTION_MAX
    text, text_entities = MessageEntity.concatenate((prefix, []), (body, list(entities)))
    fits = len(text) <= limit and (message.text is not None or any(getattr(message, k) for k in CAPTIONED))
    bot = context.bot
    try:
        if not fits:  # the line on its own, the answer as it is
            await bot.send_message(buyer.user_id, prefix.strip())
        if message.text is not None and fits:
            await bot.send_message(buyer.user_id, text, entities=text_entities)
        elif fits:
            await bot.copy_message(
                buyer.user_id, message.chat_id, message.message_id, caption=text, caption_entities=text_entities
            )
        else:
            await bot.copy_message(buyer.user_id, message.chat_id, message.message_id)
    except Forbidden as exc:
        log.info("payment support answer of %s not delivered to %s: %s", origin.user_id, buyer.user_id, exc.message)
        blocked = "blocked" in exc.message.lower()
        key = "paysupport_answer_blocked" if blocked else "paysupport_answer_failed"
        await reply(context, origin, t(key, origin.lang, user_id=buyer.user_id, reason=exc.message))
        return
    except BadRequest as exc:
        log.warning("payment support answer of %s not delivered to %s: %s", origin.user_id, buyer.user_id, exc.message)
        text = t("paysupport_answer_failed", origin.lang, user_id=buyer.user_id, reason=exc.message)
        await reply(context, origin, text)
        return
    log.info("payment support answer of admin %s delivered to %s", origin.user_id, buyer.user_id)
    await reply(context, origin, t("paysupport_answered", origin.lang, user_id=buyer.user_id))


async def _pass_on(
    context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin, message: Message, user: User, *, first: bool
) -> None:
    """The buyer's message forwarded as it is to every admin, followed (for the first part) by who sent it and their
    recent payments; the buyer hears once that it was passed on, or where to write when it could not be."""
    admins = sorted(services.settings.admin_user_ids)
    reached: dict[int, int] = {}  # admin: the forwarded message there
    for admin in admins:
        try:
            reached[admin] = (await context.bot.forward_message(admin, message.chat_id, message.message_id)).message_id
        except TelegramError as exc:
            log.warning("payment support message of %s not forwarded to admin %s: %s", user.id, admin, exc)
    if not admins:
        log.warning("payment support message from %s, but ADMIN_USER_IDS is empty", user.id)
    buyer = Buyer(user.id, origin.lang)
    for admin, forwarded in reached.items():  # an admin's reply to it goes back to the buyer
        await services.purchases.link_answers(admin, [forwarded], buyer)
    if not first:
        return
    if reached:
        recent = await services.purchases.recent(RECENT_FOR_SUPPORT, user.id)
        for admin, forwarded in reached.items():
            lang = await _lang_of(services, admin)
            text = t(
                "paysupport_admin",
                lang,
                name=display_name(user),
                user_id=user.id,
                payments=_lines(recent, services, lang),
            )
            try:
                note = await context.bot.send_message(
                    admin,
                    text[:TEXT_MAX],
                    reply_parameters=ReplyParameters(forwarded, allow_sending_without_reply=True),
                )
            except TelegramError as exc:
                log.warning("payment support note about %s not sent to admin %s: %s", user.id, admin, exc)
                continue
            await services.purchases.link_answers(admin, [note.message_id], buyer)
        log.info("payment support message from %s forwarded to %d admin(s)", user.id, len(reached))
    await reply(context, origin, t("paysupport_sent" if reached else "paysupport_no_admins", origin.lang))


async def terms(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services = get_services(context)
    origin = await origin_for(update, context)
    packs = "\n".join(t("buy_pack", origin.lang, credits=p.credits, stars=p.stars) for p in services.purchases.packs)
    await reply(context, origin, t("terms", origin.lang, packs=packs))


# ---- admins ----


def _lines(rows: list[PaymentRow], services: Services, lang: str | None) -> str:
    """A payment per line, refunds noted; newest first."""
    if not rows:
        return t("payments_none", lang)
    zone = services.settings.timezone
    lines = []
    for row in rows:
        date = datetime.fromtimestamp(row.paid_at, zone).strftime("%Y-%m-%d %H:%M")
        line = t(
            "payment_line",
            lang,
            date=date,
            user_id=row.user_id,
            credits=row.credits,
            stars=row.stars,
            charge_id=row.charge_id,
        )
        if row.refunded_at is not None:
            line += t("payment_refunded", lang, by=row.refunded_by, taken=row.credits_back or 0)
        lines.append(line)
    return "\n".join(lines)


@admins_only
async def payments(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/payments: the ledger's recent payments and refunds, and the bot's Star balance."""
    services = get_services(context)
    origin = await origin_for(update, context)
    balance = (await context.bot.get_my_star_balance()).amount
    rows = await services.purchases.recent(RECENT_FOR_ADMINS)
    await reply(
        context, origin, t("payments_admin", origin.lang, balance=balance, payments=_lines(rows, services, origin.lang))
    )


@admins_only
async def refund(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/refund CHARGE_ID [force]: the Stars back to the buyer and the pack's credits taken back (not below what
    is left). When some are spent the admin is told first and decides with `force`."""
    services = get_services(context)
    origin = await origin_for(update, context)
    args = context.args or []
    force = len(args) == 2 and args[1].lower() == "force"
    if not args or len(args) > 2 or (len(args) == 2 and not force):
        await reply(context, origin, t("refund_usage", origin.lang))
        return
    charge_id = args[0]
    purchases = services.purchases
    payment = await purchases.payment(charge_id)
    if payment is None:
        await reply(context, origin, t("refund_unknown", origin.lang, charge_id=charge_id))
        return
    if payment.refunded_at is not None:
        taken = payment.credits_back or 0
        await reply(context, origin, t("refund_already", origin.lang, charge_id=charge_id, taken=taken))
        return
    left = await purchases.purchased(payment.user_id)
    if left < payment.credits and not force:
        spent, left = payment.credits - max(0, left), max(0, left)
        text = t("refund_spent", origin.lang, charge_id=charge_id, credits=payment.credits, spent=spent, left=left)
        await reply(context, origin, text)
        return
    try:
        await context.bot.refund_star_payment(payment.user_id, charge_id)
    except BadRequest as exc:
        if exc.message.lower() != ALREADY_REFUNDED:
            log.warning("refund of %s refused by Telegram: %s", charge_id, exc.message)
            await reply(context, origin, t("refund_failed", origin.lang, charge_id=charge_id, reason=exc.message))
            return
        log.info("refund of %s: Telegram had refunded it already", charge_id)
    outcome = await purchases.take_back(charge_id, "admin")
    await _tell_buyer(context, services, outcome)
    text = t(
        "refund_done",
        origin.lang,
        charge_id=charge_id,
        stars=payment.stars,
        taken=outcome.taken,
        purchased=outcome.left,
    )
    await reply(context, origin, text)


COMMANDS = [
    Command("buy", buy, private=6, group=8),
    Command("paysupport", paysupport, private=10),
    Command("terms", terms, private=11),
    Command("refund", refund),
    Command("payments", payments),
]
HANDLERS = [
    PreCheckoutQueryHandler(on_pre_checkout),
    MessageHandler(filters.SUCCESSFUL_PAYMENT, on_paid),
    MessageHandler(filters.StatusUpdate.REFUNDED_PAYMENT, on_refunded),
    CallbackQueryHandler(on_pack_button, pattern=Callback.matching(Action.BUY_PACK)),
    CallbackQueryHandler(on_shop_button, pattern=Callback.matching(Action.SHOP)),
]
# Run ahead of every feature's handlers, commands included (app.py, with STARS_PACKS set): a person's private
# message, but no payment (Telegram's, not theirs).
SUPPORT_FILTER = (
    filters.UpdateType.MESSAGE
    & filters.ChatType.PRIVATE
    & filters.USER
    & ~filters.StatusUpdate.ALL
    & ~filters.SUCCESSFUL_PAYMENT
    & ~filters.VIA_BOT
)
AHEAD = [MessageHandler(SUPPORT_FILTER, on_private_message)]
