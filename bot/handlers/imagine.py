"""`/imagine` (text, photo captions, albums, replies) and its buttons: thin translation to and from the queue."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from ..delivery import MB, Picture, caption, safe_filename, send_document
from ..jobs.queue import QueueFull, ShuttingDown
from ..keyboards import Action, Callback, choice_keyboard, reopen_keyboard
from ..models import Job, Origin, PendingRequest, new_id
from ..options import (
    MAX_PROMPT_CHARS,
    VARIANT_CHOICES,
    AspectRatio,
    OptionError,
    Resolution,
    closest_ratio,
    parse_prompt,
)
from ..quota import QuotaExceeded
from ..references import MAX_REFERENCES, Reference, UnusableReference, check
from ..telegram_references import from_message, unusable_media
from ..services import Services, get_services
from ..targets import Target
from ..texts import for_requester, join_list, resets_text, t
from . import history, settings
from .replies import (
    display_name,
    edit_quietly,
    may_act_for,
    origin_for,
    origin_of,
    refuse,
    reply,
    tell,
    user_lang,
)

log = logging.getLogger(__name__)

_COMMAND = re.compile(r"^/\S*\s*", re.DOTALL)
_IMAGINE = re.compile(r"^/imagine(?:@(?P<bot>\w+))?(?:\s|$)", re.IGNORECASE)
# The keyboard message repeats the prompt only as far as a phone shows it above the buttons.
KEYBOARD_PROMPT_CHARS = 200
KEYBOARD_PROMPT_LINES = 3
# Telegram's apps split a text over 4,096 characters into several messages, sent within a moment of each other.
SPLIT_NEAR = 4000  # a message this long may have a next part
SPLIT_WINDOW = 2.0  # seconds between their dates (whole seconds) for the next part to join it
PICTURE_WAITS = 600.0  # a picture sent without words waits this long for the text that says what to do with it


def command_text(text: str | None) -> str:
    """What follows `/imagine` or `/imagine@bot`, newlines kept."""
    return _COMMAND.sub("", text or "", count=1).strip()


def is_imagine(text: str | None, bot_username: str) -> bool:
    """`/imagine …` or `/imagine@thisbot …` (a caption is not parsed as a command by Telegram, so we do it)."""
    match = _IMAGINE.match(text or "")
    return bool(match) and (match.group("bot") is None or match.group("bot").lower() == bot_username.lower())


def prompt_from(message: Message, quoted_is_reference: bool, bot_id: int, request_prompt: str | None = None) -> str:
    """The command's words; a reply to a text message puts that text in front (a replied picture is a reference).

    Replying to one of our own messages reuses the prompt of the request it belongs to (`request_prompt`, when its
    buttons name one), else its text without the "16:9 · 2K · …" line under it.
    """
    own = command_text(message.text or message.caption)
    quoted = message.reply_to_message
    if quoted is None or (quoted_is_reference and _has_words(own)):
        return own
    quoted_text = quoted.text or quoted.caption or ""
    if quoted.from_user is not None and quoted.from_user.id == bot_id:
        quoted_text = request_prompt if request_prompt is not None else quoted_text.rsplit("\n\n", 1)[0]
    if quoted_text.startswith("/"):
        quoted_text = command_text(quoted_text)
    return "\n".join(part for part in (quoted_text.strip(), own) if part)


async def request_prompt_of(services: Services, message: Message | None) -> str | None:
    """The prompt of the request one of our messages belongs to, found through its buttons: a keyboard's buttons
    name a pending request, a status line's or a result's name a job. None when they name none, or requests of
    several prompts (a /history list)."""
    markup = message.reply_markup if message is not None else None
    named = {
        (callback.action in PENDING_ACTIONS, callback.id)
        for row in (markup.inline_keyboard if markup else ())
        for button in row
        if (callback := Callback.decode(button.callback_data if isinstance(button.callback_data, str) else None))
        and callback.action != Action.PREFS
    }
    prompts: set[str | None] = set()
    for pending_id, record_id in named:
        if pending_id:
            record = await services.requests.get(record_id)
            prompts.add(record.prompt if record else None)
        else:
            job = await services.queue.job(record_id)
            prompts.add(job.request.prompt if job else None)
    prompts.discard(None)
    return prompts.pop() if len(prompts) == 1 else None


def _has_words(text: str) -> bool:
    """More than flags? (A bad flag counts as words, so its error is what the user sees.)"""
    try:
        return bool(parse_prompt(text).prompt)
    except OptionError:
        return True


async def _replied_references(services: Services, message: Message) -> list[Reference]:
    quoted = message.reply_to_message
    if quoted is None:
        return []
    if quoted.media_group_id:
        album = await services.albums.references(quoted.chat.id, quoted.media_group_id)
        if album:
            return album
    return from_message(quoted)


async def imagine(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/imagine prompt`, also as a reply to a text (its text is the prompt) or to pictures (they are references).

    In a private chat the text may also be the next part of a long prompt the app split, or the words for
    pictures sent just before without any."""
    services = get_services(context)
    message = update.effective_message
    origin = await origin_for(update, context)
    if await _joined_to_split_prompt(context, services, origin, message):
        return
    references = await _replied_references(services, message)
    prompt = await _prompt_of(context, services, message, references)
    if not references and message.reply_to_message is None and message.chat.type == ChatType.PRIVATE \
            and _has_words(prompt):
        references = await _waiting_pictures(services, origin)
    await _start(context, services, origin, prompt, references, source=message)


async def continuation(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Group text that is no command: only the next part of a split `/imagine` prompt is ours."""
    services = get_services(context)
    await _joined_to_split_prompt(context, services, await origin_for(update, context), update.effective_message)


async def _prompt_of(context: ContextTypes.DEFAULT_TYPE, services: Services, message: Message,
                     references: list[Reference]) -> str:
    quoted = message.reply_to_message
    own = quoted is not None and quoted.from_user is not None and quoted.from_user.id == context.bot.id
    request_prompt = await request_prompt_of(services, quoted) if own else None
    return prompt_from(message, bool(references), context.bot.id, request_prompt)


async def _waiting_pictures(services: Services, origin: Origin) -> list[Reference]:
    """The pictures this user sent without words within PICTURE_WAITS, taken (once) as this text's references."""
    waiting = await services.requests.latest(origin.chat_id, origin.user_id, time.time() - PICTURE_WAITS,
                                                  wants_prompt=True)
    if waiting is None or await services.requests.take(waiting.id) is None:
        return []
    if waiting.album_id:
        album = await services.albums.references(origin.chat_id, waiting.album_id)
        if album:
            return album
    return [Reference(ref_id, "photo", waiting.ref_width if n == 0 else None, waiting.ref_height if n == 0 else None)
            for n, ref_id in enumerate(waiting.references)]


async def _joined_to_split_prompt(context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin,
                                  message: Message) -> bool:
    """Is this text the next part of a long prompt the app split? Then it joins that request's keyboard."""
    text = message.text or ""
    if not text or text.startswith("/") or message.reply_to_message is not None:
        return False
    sent = message.date.timestamp()
    pending = await services.requests.latest(origin.chat_id, origin.user_id, time.time() - 60,
                                                  wants_prompt=False)
    if pending is None or pending.source_text is None or sent - (pending.source_date or 0) > SPLIT_WINDOW:
        return False
    whole = pending.source_text + text
    try:
        parsed = parse_prompt(command_text(whole) if whole.startswith("/") else whole)
    except OptionError:
        parsed = parse_prompt(pending.prompt + text)  # a broken flag in the tail stays words; the head's was checked
    pending.prompt = parsed.prompt[:MAX_PROMPT_CHARS]
    pending.aspect_ratio = parsed.aspect_ratio or pending.aspect_ratio
    pending.size = parsed.size or pending.size
    pending.variants = parsed.variants or pending.variants
    more = len(text) > SPLIT_NEAR
    pending.source_text, pending.source_date = (whole, sent) if more else (None, None)
    if parsed.aspect_ratio and parsed.size and not more:
        taken = await services.requests.take(pending.id)
        if taken is not None:
            taken.prompt, taken.aspect_ratio, taken.size = pending.prompt, pending.aspect_ratio, pending.size
            await _submit(context, services, taken)
        return True
    await _show_keyboard(context, services, pending)
    if parsed.aspect_ratio and parsed.size:
        context.application.create_task(_submit_when_whole(context, services, pending.id, whole))
    return True


async def _submit_when_whole(context: ContextTypes.DEFAULT_TYPE, services: Services, pending_id: str,
                             source_text: str) -> None:
    """Flags that start an image at once, in a message that may go on: start it once no next part joined."""
    await asyncio.sleep(SPLIT_WINDOW + 0.5)
    current = await services.requests.get(pending_id)
    if current is None or current.source_text != source_text:
        return  # generated already, or a next part joined and decides
    taken = await services.requests.take(pending_id)
    if taken is not None:
        await _submit(context, services, taken)


async def on_edit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A user fixing their prompt by editing the message: the open keyboard takes the new text. Once generated,
    an edit changes nothing (and says nothing)."""
    services = get_services(context)
    message = update.edited_message
    if message is None or message.from_user is None:
        return
    pending = await services.requests.for_source(message.chat.id, message.from_user.id, message.message_id)
    if pending is None or pending.message_id is None:
        return
    text = message.text or message.caption or ""
    prompt = await _prompt_of(context, services, message, []) if text.startswith("/") else text
    try:
        parsed = parse_prompt(prompt)
    except OptionError:
        return  # the open keyboard keeps the last good prompt; the user sees it unchanged
    if not parsed.prompt or len(parsed.prompt) > MAX_PROMPT_CHARS:
        return
    pending.prompt = parsed.prompt
    pending.aspect_ratio = parsed.aspect_ratio or pending.aspect_ratio
    pending.size = parsed.size or pending.size
    pending.variants = parsed.variants or pending.variants
    pending.source_text = pending.source_date = None
    await _show_keyboard(context, services, pending, _unknown_note(parsed.unknown, pending.origin.lang))


def _unknown_note(unknown: tuple[str, ...], lang: str | None) -> str | None:
    return t("unknown_flags", lang, flags=", ".join(unknown)) if unknown else None


async def unusable(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A sticker, voice note, video, GIF…: named in one line at once, in a private chat or under an `/imagine`
    caption; group chatter is left alone."""
    message = update.effective_message
    private = message.chat.type == ChatType.PRIVATE
    if not private and not is_imagine(message.caption, context.bot.username):
        return
    origin = await origin_for(update, context)
    what = t(f"media_{unusable_media(message)}", origin.lang)
    await reply(context, origin, t("media_unusable", origin.lang, what=what))


async def imagine_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or file: albums are remembered; a caption starting with /imagine makes it (or its album) the
    references. An album is collected until no new part came for a moment, with a visible count."""
    services = get_services(context)
    message = update.effective_message
    if message.media_group_id:
        await services.albums.add(message)
    private = message.chat.type == ChatType.PRIVATE
    commanded = is_imagine(message.caption, context.bot.username)
    if not commanded and not private:
        return
    origin = await origin_for(update, context)
    words = command_text(message.caption) if commanded else (message.caption or "").strip()
    if not commanded and not _has_words(words):
        await _wait_for_words(context, services, origin, message)
        return
    await services.requests.drop_waiting_pictures(origin.chat_id, origin.user_id)
    status_message_id = None
    if message.media_group_id:
        status = await reply(context, origin, t("refs_received", origin.lang, count=1, limit=MAX_REFERENCES))
        status_message_id = status.message_id

        async def progress(count: int) -> None:
            if count > 1:
                text = t("refs_received", origin.lang, count=min(count, MAX_REFERENCES), limit=MAX_REFERENCES)
                try:
                    await context.bot.edit_message_text(text, chat_id=origin.chat_id, message_id=status.message_id)
                except BadRequest as exc:
                    log.info("album count not shown: %s", exc.message)

        references = await services.albums.complete(message.chat.id, message.media_group_id, progress)
    else:
        references = from_message(message)
    await _start(context, services, origin, words, references, status_message_id)


async def _wait_for_words(context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin,
                          message: Message) -> None:
    """A picture without words in a private chat: said at once what to do next, and kept for the next text.

    An album is answered once, at its first part; its other parts join it in the album table."""
    if message.media_group_id:
        album = await services.albums.references(origin.chat_id, message.media_group_id)
        if len(album) > 1:
            return
    references = from_message(message)
    try:
        check(references)
        references = await _measured(services, references)
    except UnusableReference as exc:
        if exc.kind == "not_image":
            await reply(context, origin, t("media_unusable", origin.lang,
                                           what=t("media_file", origin.lang, name=exc.name)))
        else:
            await reply(context, origin, t(f"error_reference_{exc.kind}", origin.lang, number=exc.number,
                                           name=exc.name))
        return
    key = "pictures_waiting" if message.media_group_id else "picture_waiting"
    notice = await reply(context, origin, t(key, origin.lang))
    await services.requests.wait_for_words(origin, references, notice.message_id, message.media_group_id)


async def _measured(services: Services, references: list[Reference]) -> list[Reference]:
    """Pictures sent as files, measured (and refused when unusable) before anything is reserved."""
    return list(await asyncio.gather(*(services.references.measured(ref, number)
                                       for number, ref in enumerate(references, 1))))


async def _start(
    context: ContextTypes.DEFAULT_TYPE,
    services: Services,
    origin: Origin,
    text: str,
    references: list[Reference],
    status_message_id: int | None = None,
    *,
    source: Message | None = None,
) -> None:
    """Check the words and pictures, then show the keyboard, or queue at once when flags chose shape and size.

    `source`, the user's own text message, may be the first part of a longer prompt the app split."""
    lang = origin.lang
    try:
        parsed = parse_prompt(text)
    except OptionError as exc:
        key = {"--ar": "bad_ratio", "--size": "bad_size"}.get(exc.flag, "bad_variants")
        await tell(context, origin, t(key, lang, value=exc.value or "?", valid=join_list(exc.valid, lang)),
                    status_message_id)
        return
    if not parsed.prompt:
        await tell(context, origin, t("usage", lang), status_message_id)
        return
    if len(parsed.prompt) > MAX_PROMPT_CHARS:
        text = t("prompt_too_long", lang, length=len(parsed.prompt), limit=MAX_PROMPT_CHARS)
        await tell(context, origin, text, status_message_id)
        return
    if len(references) > MAX_REFERENCES:
        await reply(context, origin, t("refs_trimmed", lang, count=len(references), limit=MAX_REFERENCES))
        references = references[:MAX_REFERENCES]
    try:
        check(references)
        references = await _measured(services, references)
    except UnusableReference as exc:
        text = t(f"error_reference_{exc.kind}", lang, number=exc.number, name=exc.name)
        await tell(context, origin, text, status_message_id)
        return
    pending = await services.requests.start(origin, parsed, references, status_message_id)
    note = _unknown_note(parsed.unknown, lang)
    raw = source.text if source is not None and source.text else ""
    may_go_on = len(raw) > SPLIT_NEAR
    if may_go_on:
        pending.source_text, pending.source_date = raw, source.date.timestamp()
    if parsed.aspect_ratio and parsed.size and not may_go_on:
        if note:
            await reply(context, origin, note)
        await _submit(context, services, pending)
        return
    await _show_keyboard(context, services, pending, note)
    if parsed.aspect_ratio and parsed.size:
        context.application.create_task(_submit_when_whole(context, services, pending.id, raw))


async def _show_keyboard(context: ContextTypes.DEFAULT_TYPE, services: Services, pending: PendingRequest,
                         note: str | None = None) -> None:
    """The ratio/size/variants keyboard: in place of a status message when there is one, else as a reply.
    `note` (flags that are not ours) goes above it."""
    text, markup = _choose_text(pending), _keyboard(pending)
    if note:
        text = f"{note}\n\n{text}"
    if pending.message_id is not None:
        try:
            await context.bot.edit_message_text(text, chat_id=pending.origin.chat_id,
                                                message_id=pending.message_id, reply_markup=markup)
        except BadRequest:
            pending.message_id = None
    if pending.message_id is None:
        pending.message_id = (await reply(context, pending.origin, text, markup)).message_id
    await services.requests.save(pending)


def _keyboard(pending: PendingRequest) -> InlineKeyboardMarkup:
    return choice_keyboard(pending.id, pending.aspect_ratio, pending.size, pending.origin.lang,
                           variants=pending.variants, keep_ratio=bool(pending.references))


def keyboard_prompt(prompt: str) -> str:
    """At most a few short lines of the prompt, so the buttons stay on a phone's screen."""
    lines = prompt.splitlines()
    short = "\n".join(lines[:KEYBOARD_PROMPT_LINES])
    if len(short) > KEYBOARD_PROMPT_CHARS:
        short = short[: KEYBOARD_PROMPT_CHARS - 1].rstrip()
    return short + "…" if short != prompt else short


def _choose_text(pending: PendingRequest) -> str:
    lang = pending.origin.lang
    prompt = for_requester(keyboard_prompt(pending.prompt), pending.origin.requester, lang)
    if pending.references:
        count = len(pending.references)
        images = t("images_one", lang) if count == 1 else t("images_many", lang, count=count)
        return t("edit_choose", lang, prompt=prompt, images=images)
    return t("choose", lang, prompt=prompt)


async def _submit(
    context: ContextTypes.DEFAULT_TYPE,
    services: Services,
    pending: PendingRequest,
    upscale_of: str | None = None,
) -> bool:
    """Queue the request as one job per variant; tell the user in one sentence when it can't be queued."""
    origin = pending.origin
    try:
        await services.requests.submit(pending, upscale_of)
    except ShuttingDown:
        await refuse(context, origin, t("busy_shutdown", origin.lang), pending.message_id)
        return False
    except QueueFull as exc:
        await refuse(context, origin, t("queue_full", origin.lang, limit=exc.limit), pending.message_id)
        return False
    except QuotaExceeded as exc:
        resets = resets_text(exc.report.resets_at, services.quota.now(), origin.lang)
        quota, left = services.quota, exc.report.left or 0
        cheaper = any(quota.credits(s) < quota.credits(pending.size) and quota.credits(s) <= left for s in Resolution)
        hint = t("quota_hint_smaller" if cheaper else "quota_hint_admin", origin.lang)
        report = exc.report
        chat_left = None if report.chat_limit is None else max(0, report.chat_limit - (report.chat_used or 0))
        if origin.chat_id < 0 and (chat_left is None or chat_left >= exc.credits):
            # the person's own figures are theirs, not the group's to read
            text = t("quota_exceeded_group", origin.lang, name=origin.requester or "", credits=exc.credits,
                     hint=hint)
        else:  # in a group, the chat's own credits are what is short: those figures are the group's
            left = chat_left if origin.chat_id < 0 else report.left
            text = t("quota_exceeded", origin.lang, credits=exc.credits, left=left, resets=resets, hint=hint)
        await refuse(context, origin, text, pending.message_id)
        return False
    return True


class _Answer:
    """Answers a callback query exactly once: at once where work follows, or at the end with the default."""

    def __init__(self, update: Update) -> None:
        self._query = update.callback_query
        self.done = False

    async def __call__(self, text: str | None = None, *, alert: bool = False) -> None:
        if self.done:
            return
        self.done = True
        try:
            await self._query.answer(text, show_alert=alert)
        except BadRequest as exc:  # too old (over 15 s) or answered elsewhere: nothing left to do
            log.info("callback answer refused: %s", exc.message)


PENDING_ACTIONS = {Action.RATIO, Action.SIZE, Action.VARIANTS, Action.KEEP_RATIO, Action.GENERATE, Action.DISMISS,
                   Action.DROP_PICTURES, Action.REOPEN}


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    answer = _Answer(update)
    try:
        query = update.callback_query
        lang = await user_lang(context, query.from_user)
        callback = Callback.decode(query.data)
        if callback is None:
            await answer(t("expired", lang))
        elif callback.action == Action.PREFS:
            await settings.on_prefs_button(update, context, callback, answer)
        elif callback.action in PENDING_ACTIONS:
            await _on_pending(update, context, callback, answer, lang)
        else:
            await _on_job(update, context, callback, answer, lang)
    finally:
        await answer()


async def _may_press(context: ContextTypes.DEFAULT_TYPE, answer: _Answer, lang: str | None,
                     record: PendingRequest | Job | None, user_id: int) -> bool:
    """A button of something gone (expired, or from before a wipe) or of someone else's request gets a short answer."""
    if record is None:
        await answer(t("expired", lang))
        return False
    if not await may_act_for(context, record.origin, user_id):
        await answer(t("not_yours", lang))
        return False
    return True


async def _on_pending(update: Update, context: ContextTypes.DEFAULT_TYPE, callback: Callback, answer: _Answer,
                      lang: str | None) -> None:
    query = update.callback_query
    services = get_services(context)
    pending = await services.requests.get(callback.id)
    if pending is None and callback.action == Action.GENERATE:  # a second tap, or a keyboard left on a client
        await answer(t("being_made", lang) if await _being_made(services, update) else t("gone_request", lang))
        return
    if not await _may_press(context, answer, lang, pending, query.from_user.id):
        return
    if callback.action == Action.GENERATE:
        taken = await services.requests.take(pending.id)
        if taken is None:
            await answer(t("already_started", lang))
            return
        await answer()
        await _submit(context, services, taken)
        return
    if callback.action == Action.DISMISS:  # the request stays, so ↩ brings it back with its prompt
        await answer()
        text = t("cancelled_keyboard", lang, prompt=keyboard_prompt(pending.prompt))
        await edit_quietly(query.edit_message_text(text, reply_markup=reopen_keyboard(pending.id, lang)))
        return
    if callback.action in (Action.REOPEN, Action.DROP_PICTURES):
        await answer()
        if callback.action == Action.DROP_PICTURES:
            pending.references, pending.ref_width, pending.ref_height, pending.album_id = (), None, None, None
        pending.message_id = query.message.message_id if query.message else pending.message_id
        await _show_keyboard(context, services, pending)
        return
    before = dataclasses.replace(pending)
    try:
        if callback.action == Action.RATIO:
            pending.aspect_ratio = AspectRatio.parse(callback.arg)
        elif callback.action == Action.SIZE:
            pending.size = Resolution.parse(callback.arg)
        elif callback.action == Action.VARIANTS:
            if int(callback.arg) not in VARIANT_CHOICES:
                raise ValueError(callback.arg)
            pending.variants = int(callback.arg)
        else:
            pending.aspect_ratio = await _reference_ratio(services, pending)
    except ValueError:
        await answer(t("expired", lang))
        return
    await answer()
    if pending != before:
        await services.requests.save(pending)
        await edit_quietly(query.edit_message_reply_markup(_keyboard(pending)))


async def _being_made(services: Services, update: Update) -> bool:
    """Is this keyboard message already the status line of a job? (A second tap on Generate after the first.)"""
    message = update.callback_query.message
    if message is None:
        return False
    owners = {update.callback_query.from_user.id, message.chat.id}  # a user, or a channel speaking as itself
    for owner in owners:
        for job in await services.queue.user_jobs(owner):
            if job.origin.chat_id == message.chat.id and job.status_message_id == message.message_id:
                return True
    return False


async def _reference_ratio(services: Services, pending: PendingRequest) -> AspectRatio:
    """The listed ratio nearest the first reference. Pictures are measured at intake; a request from before that
    (or from an older version) has its first picture measured now."""
    if not (pending.ref_width and pending.ref_height):
        try:
            first = await services.references.measured(Reference(pending.references[0], "image"))
        except UnusableReference as exc:
            raise ValueError(exc.kind) from None
        pending.ref_width, pending.ref_height = first.width, first.height
    return closest_ratio(pending.ref_width, pending.ref_height)


async def _on_job(update: Update, context: ContextTypes.DEFAULT_TYPE, callback: Callback, answer: _Answer,
                  lang: str | None) -> None:
    query = update.callback_query
    services = get_services(context)
    job = await services.queue.job(callback.id)
    if not await _may_press(context, answer, lang, job, query.from_user.id):
        return
    here = dataclasses.replace(origin_of(update), user_id=job.origin.user_id, reply_to=query.message.message_id,
                               lang=lang, requester=job.origin.requester)
    again = PendingRequest(new_id(), here, job.request.prompt, job.request.aspect_ratio, job.request.size,
                           references=job.references, variants=job.variants)
    if callback.action == Action.CANCEL:
        cancelled = await services.queue.cancel(job.id)
        await answer(t("cancel_done", lang) if cancelled else t("expired", lang))
        if cancelled and job.origin.requester and query.from_user.id != job.origin.user_id:  # an admin: say who
            await reply(context, here, t("cancelled_by", job.origin.lang, by=display_name(query.from_user),
                                         name=job.origin.requester, label=job.label,
                                         prompt=keyboard_prompt(job.request.prompt)))
    elif callback.action == Action.AGAIN:
        await answer()
        await _submit(context, services, again, upscale_of=job.upscale_of)
    elif callback.action == Action.CHANGE:
        await answer()
        await _show_keyboard(context, services, again)
    elif callback.action == Action.UPSCALE:
        await _upscale(context, services, job, again, callback.arg, answer)
    elif callback.action == Action.ORIGINAL:
        await _send_original(context, services, job, here, answer)
    elif callback.action == Action.RESEND:
        await answer()
        if not await history.resend(context, job, Target.of(here), lang):
            await reply(context, here, t("resend_gone", lang))


async def _upscale(context: ContextTypes.DEFAULT_TYPE, services: Services, job: Job, again: PendingRequest,
                   size_arg: str, answer: _Answer) -> None:
    """The same picture at a larger size: an edit with that result as the only reference."""
    lang = again.origin.lang
    try:
        size = Resolution.parse(size_arg)
    except ValueError:
        await answer(t("expired", lang))
        return
    if await services.originals.fetch(job.id) is None:
        await answer(t("original_gone", lang), alert=True)
        return
    await answer()
    upscale = dataclasses.replace(again, size=size, references=(f"job:{job.id}",), variants=1)
    await _submit(context, services, upscale, upscale_of=job.id)


async def _send_original(context: ContextTypes.DEFAULT_TYPE, services: Services, job: Job, here: Origin,
                         answer: _Answer) -> None:
    lang = here.lang
    path = await services.originals.fetch(job.id)
    if path is None:
        await answer(t("original_gone", lang), alert=True)
        return
    await answer(t("original_sent", lang))
    size = (await asyncio.to_thread(path.stat)).st_size
    request = job.request
    extension = path.suffix.lstrip(".")
    name = safe_filename(request.prompt, request.aspect_ratio, request.size, extension)
    if job.variants > 1:
        name = name.replace(f".{extension}", f"_{job.variant}.{extension}")
    picture = Picture(path, size, job.width or 0, job.height or 0, "", name)
    details = f"{request.label} · {job.width}×{job.height}" if job.width else request.label
    uploads = services.uploads
    note = t("original_as_jpeg", lang, limit=uploads.max_bytes // MB)
    async with uploads.heavy if uploads.too_big(picture) else contextlib.nullcontext():  # made to fit: a bitmap
        await send_document(context.bot, Target.of(here), picture, caption(request.prompt, details),
                            uploads=uploads, jpeg_caption=caption(request.prompt, f"{details}\n{note}"))
