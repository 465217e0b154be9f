"""/start, /help and its sections, /usage, /id, a command we don't know, a button we didn't make, the access gate and
the error handler."""

from __future__ import annotations

import logging

from telegram import InlineQueryResultArticle, InputTextMessageContent, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from .. import metrics
from ..imagemodels import profile_for
from ..inline_messages import edit_inline
from ..keyboards import BUY_START, HELP_MAIN, HELP_SECTIONS, Action, Callback, help_keyboard
from ..menus import Command
from ..models import Origin
from ..options import AspectRatio, ImageRequest
from ..services import Services, get_services
from ..telegram_limits import FloodWaitTooLong
from ..texts import join_list, resets_text, t
from .dialogue import offer_packs
from .replies import Answer, display_name, edit_quietly, origin_for, reply, user_lang

log = logging.getLogger(__name__)


def _costs(services: Services, request: ImageRequest, lang: str | None) -> tuple[str, str | None]:
    """What an image of each size costs with the default model (and its own remembered options); and, when several
    models are offered, that model's name with those options (else None: nothing about models is shown)."""
    costs = t("usage_cost_sep", lang).join(
        t("usage_cost_item", lang, size=size, credits=services.quota.cost(request.with_options(size=size)))
        for size in request.profile.option("size").choices
    )
    if len(services.settings.offered) < 2:
        return costs, None
    own = [request.options[o.name] for o in request.profile.extra_options]
    return costs, " · ".join([request.profile.label, *own])


async def _quota_line(services: Services, origin: Origin) -> str:
    """Today's credits, where only their owner reads them: never a person's in a group; the costs are the default
    model's, as /usage gives them."""
    if origin.requester is not None:
        return ""
    report = await services.quota.report(origin)
    if report.limit is None:
        return ""
    costs, model = _costs(services, await services.requests.default_request(origin), origin.lang)
    limit = report.limit + report.granted
    if model is None:
        return t("quota_line", origin.lang, left=report.left, limit=limit, costs=costs)
    return t("quota_line_model", origin.lang, left=report.left, limit=limit, model=model, costs=costs)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services = get_services(context)
    origin = await origin_for(update, context)
    if origin.chat_id < 0:  # said to a group, not to "this private chat"
        await reply(context, origin, t("start_group", origin.lang))
        return
    if context.args == [BUY_START] and services.settings.stars_packs:  # a group's 🛒 opened this chat
        await offer_packs(context, services, origin)
        return
    await reply(context, origin, t("start", origin.lang, quota_line=await _quota_line(services, origin)))
    await services.menu.set_private(context.bot, origin.chat_id, origin.lang, chosen=False)


async def help_(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """One phone screen; the details are behind its buttons."""
    origin = await origin_for(update, context)
    text = await _help_text(context, origin, None)
    await reply(context, origin, text, help_keyboard(None, origin.lang))


async def on_help_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A /help button: that section in place of the message (anyone may press: it is the same for everyone)."""
    query = update.callback_query
    assert query is not None  # a CallbackQueryHandler's update
    origin = await origin_for(update, context)
    callback = Callback.decode(query.data)
    known = callback is not None and callback.id in (*HELP_SECTIONS, HELP_MAIN)
    await query.answer(None if known else t("expired", origin.lang))
    if not known:
        return
    assert callback is not None  # as it is known
    section = None if callback.id == HELP_MAIN else callback.id
    text = await _help_text(context, origin, section)
    await edit_quietly(query.edit_message_text(text, reply_markup=help_keyboard(section, origin.lang)))


async def _help_text(context: ContextTypes.DEFAULT_TYPE, origin: Origin, section: str | None) -> str:
    if section is not None:
        return t(f"help_{section}", origin.lang, ratios=join_list((r.value for r in AspectRatio), origin.lang))
    services = get_services(context)
    text = t("help", origin.lang, quota_line=await _quota_line(services, origin))
    offered = services.settings.offered
    if len(offered) > 1:
        labels = [f"{profile_for(name).label} (--model {profile_for(name).aliases[0]})" for name in offered]
        text += t("help_models", origin.lang, models=join_list(labels, origin.lang))
    return text


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A typo like `/imagin a cat` in a private chat: say which commands there are (groups stay quiet, the
    command may be another bot's)."""
    origin = await origin_for(update, context)
    assert update.effective_message is not None  # only messages reach this handler
    command = (update.effective_message.text or "").split(maxsplit=1)[0]
    names = join_list((f"/{name}" for name in get_services(context).menu.private), origin.lang)
    await reply(context, origin, t("unknown_command", origin.lang, command=command, commands=names))


async def usage(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Credits used today, what is left, and when they reset; in a group only the chat's."""
    services = get_services(context)
    origin = await origin_for(update, context)
    report = await services.quota.report(origin)
    lang = origin.lang
    if origin.requester is not None:  # a person in a group: their figures are theirs, the chat's are the chat's
        text = t("usage_group", lang, name=origin.requester, bot=context.bot.username)
        if report.chat_limit is not None:
            text += t("usage_chat", lang, used=report.chat_used, limit=report.chat_limit)
        await reply(context, origin, text)
        return
    if report.limit is None:
        text = t("usage_unlimited", lang, used=report.used)
    else:
        text = t("usage_report", lang, used=report.used, limit=report.limit, left=report.left)
        if report.granted:
            text += t("usage_granted", lang, granted=report.granted)
    if services.settings.stars_packs or report.purchased:
        text += t("usage_purchased", lang, purchased=report.purchased)
    if report.chat_limit is not None:
        text += t("usage_chat", lang, used=report.chat_used, limit=report.chat_limit)
    resets = resets_text(report.resets_at, services.quota.now(), lang)
    request = await services.requests.default_request(origin)
    costs, model = _costs(services, request, lang)
    if model is not None:  # the figures are the default model's (with its own options): name it
        text += t("usage_costs_model", lang, model=model, costs=costs, resets=resets)
        choice = f"{request.profile.label} · {request.label}"
        text += t("usage_choice", lang, choice=choice, credits=services.quota.cost(request))
    else:
        text += t("usage_costs", lang, costs=costs, resets=resets)
    await reply(context, origin, text)


async def id_(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The sender's user id, and the chat's in a group: what the owner puts in ALLOWED_USER_IDS, ADMIN_USER_IDS
    or ALLOWED_CHAT_IDS. Open to everyone, refused users included: it is how they learn what to send the owner."""
    origin = await origin_for(update, context)
    user, chat, message = update.effective_user, update.effective_chat, update.effective_message
    assert chat is not None and message is not None  # a command's update
    lines = []
    if user is not None and message.sender_chat is None:  # not a channel or an anonymous admin
        if chat.type == ChatType.PRIVATE:
            lines.append(t("id_user", origin.lang, user_id=user.id))
        else:
            lines.append(t("id_user_group", origin.lang, name=display_name(user), user_id=user.id))
    if chat.type != ChatType.PRIVATE:
        lines.append(t("id_chat", origin.lang, chat_id=chat.id))
    await reply(context, origin, "\n".join(lines))


async def on_stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button we did not make (an old version's, another bot's, junk): a short answer, nothing else."""
    answer = Answer(update)
    assert update.callback_query is not None  # a CallbackQueryHandler's update
    await answer(t("expired", await user_lang(context, update.callback_query.from_user)))


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Runs before every handler: who is not allowed (or blocked) gets one sentence once, and nothing else."""
    metrics.update_received(
        next((kind for kind in Update.ALL_TYPES if getattr(update, kind, None) is not None), "other")
    )
    services = get_services(context)
    settings = services.settings
    user, chat = update.effective_user, update.effective_chat
    subject = user.id if user else (chat.id if chat else None)
    if subject is None or subject in settings.admin_user_ids or _asks_id(update, context.bot.username):
        return
    message = update.effective_message
    if message is not None and (message.successful_payment or message.refunded_payment):
        return  # money that moved is recorded whoever it is: Telegram sent it, not the person
    if update.pre_checkout_query:
        return  # payments checks the buyer itself, answering within Telegram's 10 s even without its database
    if await services.access.is_blocked(subject):
        kind = "blocked"
    elif not (settings.allowed_user_ids or settings.allowed_chat_ids):
        return
    elif subject in settings.allowed_user_ids or (chat is not None and chat.id in settings.allowed_chat_ids):
        return
    else:
        kind = "not_allowed"
    lang = await user_lang(context, user)
    log.info("update from %s refused: %s", subject, kind)
    if update.callback_query:
        await update.callback_query.answer(t(kind, lang, user_id=subject))
    elif update.inline_query or update.guest_message or update.chosen_inline_result:
        await _refuse_inline(update, context, t(kind, lang, user_id=subject))
    elif _addressed_to_bot(update) and await services.access.first_notice(subject, kind):
        await reply(context, await origin_for(update, context), t(kind, lang, user_id=subject))
    raise ApplicationHandlerStop


async def _refuse_inline(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    """Inline mode and guest mode are refused where they were asked: in the answer, or in the message."""
    result = InlineQueryResultArticle("refused", text, InputTextMessageContent(text))
    try:
        if update.inline_query:
            await update.inline_query.answer([result], cache_time=10, is_personal=True)
        elif update.guest_message and update.guest_message.guest_query_id:
            await context.bot.answer_guest_query(update.guest_message.guest_query_id, result)
        elif update.chosen_inline_result and update.chosen_inline_result.inline_message_id:
            await edit_inline(context.bot, update.chosen_inline_result.inline_message_id, text, None)
    except TelegramError as exc:
        log.info("inline refusal not shown: %s", exc)


def _asks_id(update: Update, bot_username: str) -> bool:
    """`/id` or `/id@thisbot`: answered whoever asks."""
    message = update.effective_message
    words = (message.text or "").split(maxsplit=1) if message is not None else []
    command, _, bot = (words[0].lower() if words else "").partition("@")
    return command == "/id" and bot in ("", bot_username.lower())


def _addressed_to_bot(update: Update) -> bool:
    """A private message, or a command in a group: worth one answer. Group chatter is not."""
    message = update.effective_message
    if message is None or update.effective_chat is None:
        return False
    return update.effective_chat.type == "private" or (message.text or message.caption or "").startswith("/")


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Details to the log (secrets masked by the formatter); one plain sentence to the user, never a traceback.
    A flood wait too long to wait out was logged by the limiter, and its chat can't be written to anyway."""
    if isinstance(context.error, FloodWaitTooLong):  # logged where it happened; that chat can't be told now
        return
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat and update.effective_message:
        try:
            origin = await origin_for(update, context)
            await reply(context, origin, t("error_internal", origin.lang))
        except Exception:
            log.warning("could not tell the user about the error")


COMMANDS = [
    Command("start", start, private=8),
    Command("help", help_, private=2, group=2),
    Command("usage", usage, private=6, group=5),
    Command("id", id_, private=7, group=7),
]
HANDLERS = [
    CallbackQueryHandler(on_help_button, pattern=Callback.matching(Action.HELP)),
    CallbackQueryHandler(on_stale_button, pattern=Callback.undecodable),
    # after every command of every module (app.py adds those first): a typo in a private chat
    MessageHandler(filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & filters.COMMAND, unknown_command),
]
