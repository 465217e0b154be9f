"""What every handler needs: who asked and where (Origin), in which language, who may press, and how to answer
(a reply, a callback answer given once). The one handler module every other may import."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes, filters

from ..delivery import ImageFile, caption, details_line, safe_filename
from ..inline_messages import edit_inline, send_original
from ..models import Job, Origin, PendingRequest, Prefs
from ..services import get_services
from ..targets import Target, send_kwargs
from ..telegram_limits import REFUSAL_EVERY
from ..texts import t

ADMIN_STATUSES = {ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER}
MESSAGES = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST  # not edits: an edit never re-runs a command
log = logging.getLogger(__name__)


def display_name(user: User) -> str:
    """A person as Telegram shows them to a group: their name (plain text: the bot sends no parse mode)."""
    return user.full_name


def origin_of(update: Update) -> Origin:
    query = update.callback_query
    if query is not None and query.inline_message_id is not None:  # a button of a message sent via the bot
        presser = query.from_user
        return Origin(presser.id, presser.id, lang=presser.language_code, inline_message_id=query.inline_message_id)
    message = update.effective_message
    chat = update.effective_chat
    user = update.effective_user
    assert chat is not None  # every update a handler here gets is in a chat
    # Channel posts and anonymous admins speak as a chat: the job belongs to (and is counted against) that chat.
    requester = None
    if message is not None and message.sender_chat is not None and not update.callback_query:
        sender = message.sender_chat.id
    else:
        sender = user.id if user else chat.id
        if user is not None and chat.type != ChatType.PRIVATE:  # a group's texts say whose request it is
            requester = display_name(user)
    # Only a forum topic's thread id may be sent back: replies in plain supergroups carry one too, and sending
    # it there fails with "message thread not found".
    in_topic = message is not None and (message.is_topic_message or bool(chat.is_forum))
    thread = message.message_thread_id if message is not None and in_topic else None
    return Origin(
        chat_id=chat.id,
        user_id=sender,
        thread_id=thread,
        reply_to=message.message_id if message and not update.callback_query else None,
        lang=user.language_code if user else None,
        requester=requester,
    )


async def user_lang(context: ContextTypes.DEFAULT_TYPE, user: User | None) -> str | None:
    """The language a user chose in /settings, else their Telegram app's."""
    if user is None:
        return None
    prefs = await prefs_once(context, ("user", user.id))
    return prefs.language or user.language_code


async def prefs_once(context: ContextTypes.DEFAULT_TYPE, scope: tuple[str, int]) -> Prefs:
    """A user's or chat's /settings as this update found them, read once however many of its steps ask (one
    context serves every handler of an update). For reading only: a change is read from and saved to the store."""
    read: dict[tuple[str, int], Prefs] = context.__dict__.setdefault("prefs_read", {})
    if scope not in read:
        read[scope] = await get_services(context).prefs.get_prefs(*scope)
    return read[scope]


async def origin_for(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Origin:
    return dataclasses.replace(origin_of(update), lang=await user_lang(context, update.effective_user))


async def is_chat_admin(context: ContextTypes.DEFAULT_TYPE, chat_id: int, user_id: int) -> bool:
    if chat_id > 0:
        return False
    try:
        member = await context.bot.get_chat_member(chat_id, user_id)
    except TelegramError:
        return False
    return member.status in ADMIN_STATUSES


async def may_act_for(context: ContextTypes.DEFAULT_TYPE, owner: Origin, user_id: int) -> bool:
    """The requester may press a request's buttons, and so may the chat's admins (the only way in channels)."""
    return owner.user_id == user_id or await is_chat_admin(context, owner.chat_id, user_id)


class Answer:
    """Answers a callback query exactly once: at once where work follows, or at the end with the default."""

    def __init__(self, update: Update) -> None:
        assert update.callback_query is not None  # a CallbackQueryHandler's update
        self._query = update.callback_query
        self.done = False

    async def __call__(self, text: str | None = None, *, alert: bool = False, url: str | None = None) -> None:
        if self.done:
            return
        self.done = True
        try:
            await self._query.answer(text, show_alert=alert, url=url)
        except BadRequest as exc:  # too old (over 15 s) or answered elsewhere: nothing left to do
            log.info("callback answer refused: %s", exc.message)


async def may_press(
    context: ContextTypes.DEFAULT_TYPE,
    answer: Answer,
    lang: str | None,
    record: PendingRequest | Job | None,
    user_id: int,
) -> bool:
    """A button of something gone (expired, or from before a wipe) or of someone else's request gets a short answer."""
    if record is None:
        await answer(t("expired", lang))
        return False
    if not await may_act_for(context, record.origin, user_id):
        await answer(t("not_yours", lang))
        return False
    return True


async def pressed_job(
    update: Update, context: ContextTypes.DEFAULT_TYPE, job_id: str, answer: Answer, lang: str | None
) -> tuple[Job, Origin] | None:
    """The job a status line's or a result's button names, if the presser may act for it (else answered); and
    where its answers go: this chat, under the message pressed, in the presser's language, for its requester."""
    query = update.callback_query
    assert query is not None  # a CallbackQueryHandler's update
    job = await get_services(context).queue.job(job_id)
    if not await may_press(context, answer, lang, job, query.from_user.id):
        return None
    assert job is not None  # may_press answered for one gone
    pressed = query.message  # None under an inline message
    here = dataclasses.replace(
        origin_of(update),
        user_id=job.origin.user_id,
        reply_to=pressed.message_id if pressed is not None else None,
        lang=lang,
        requester=job.origin.requester,
    )
    return job, here


async def reply(
    context: ContextTypes.DEFAULT_TYPE, origin: Origin, text: str, markup: InlineKeyboardMarkup | None = None
) -> Message:
    return await context.bot.send_message(text=text, reply_markup=markup, **send_kwargs(Target.of(origin)))


async def edit_quietly(edit: Awaitable[Any]) -> None:
    """Edit a message under a pressed button. "Not modified", or a message too old or gone to edit, is no error
    worth telling the user about: the callback answer already said what happened."""
    try:
        await edit
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            log.info("message not edited: %s", exc.message)


async def edit_pressed(
    context: ContextTypes.DEFAULT_TYPE, update: Update, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """Put `text` on the message whose button was pressed: a chat message's text, or an inline message's text or
    caption (a picture's, once it carries one)."""
    query = update.callback_query
    assert query is not None  # a button was pressed
    if query.inline_message_id is not None:
        await edit_quietly(edit_inline(context.bot, query.inline_message_id, text, markup))
    else:
        await edit_quietly(query.edit_message_text(text, reply_markup=markup))


async def send_original_privately(context: ContextTypes.DEFAULT_TYPE, job: Job, user_id: int) -> bool | None:
    """📄 under a result in an inline message, or its deep link opened: the original file in the requester's
    private chat, by the file id the storage chat gave it (else uploaded from the originals). False when the user
    has not started the bot (then the deep link is the way); None when the file is no longer kept."""
    services = get_services(context)
    picture = None
    if job.document_file_id is None:
        path = await services.originals.fetch(job.id)
        if path is None:
            return None
        extension = path.suffix.lstrip(".")
        name = safe_filename(job.request.prompt, job.request.aspect_ratio, job.request.size, extension)
        picture = ImageFile(path, path.stat().st_size, job.width or 0, job.height or 0, name)
    text = caption(job.request.prompt, details_line(job) if job.width else job.request.label)
    return await send_original(context.bot, user_id, job.document_file_id, picture, text, uploads=services.uploads)


async def tell(
    context: ContextTypes.DEFAULT_TYPE,
    origin: Origin,
    text: str,
    message_id: int | None,
    markup: InlineKeyboardMarkup | None = None,
) -> None:
    """Say it in place of the keyboard or status message when there is one, else as a reply; a request from an
    inline message says it there."""
    if origin.inline_message_id is not None:
        try:
            await edit_inline(context.bot, origin.inline_message_id, text, markup)
        except TelegramError as exc:
            log.info("inline message not edited: %s", exc)
        return
    if message_id is not None:
        try:
            await context.bot.edit_message_text(
                text, chat_id=origin.chat_id, message_id=message_id, reply_markup=markup
            )
            return
        except BadRequest:
            pass
    await reply(context, origin, text, markup)


async def refuse(
    context: ContextTypes.DEFAULT_TYPE,
    origin: Origin,
    text: str,
    message_id: int | None,
    markup: InlineKeyboardMarkup | None = None,
) -> None:
    """A "no" to a request (queue full, no credits, restarting), told like `tell`; but new messages go to a chat at
    most twice at once and then once per REFUSAL_EVERY, so a user flooding the bot is not flooded back (the rest
    go to the log)."""
    if message_id is None and not origin.inline and not get_services(context).refusals.allow(origin.chat_id):
        log.info("chat %s: refusal not sent (more than one per %.0f s)", origin.chat_id, REFUSAL_EVERY)
        return
    await tell(context, origin, text, message_id, markup)


Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def admins_only(handler: Handler) -> Handler:
    """A command for the bot's admins (ADMIN_USER_IDS): anyone else is told so in one line."""

    @wraps(handler)
    async def wrapper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        if user is None or user.id not in get_services(context).settings.admin_user_ids:
            origin = await origin_for(update, context)
            await reply(context, origin, t("admins_only_cmd", origin.lang))
            return
        await handler(update, context)

    return wrapper
