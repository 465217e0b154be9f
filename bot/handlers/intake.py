"""What comes in: `/imagine` and a private chat's plain text, pictures and albums (a caption with `/imagine`, or
words that follow), replies (to a text: its prompt; to pictures: the references), edits of a prompt, the next part
of a prompt the app split, and media the bot cannot use.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import ContextTypes, MessageHandler, filters

from ..keyboards import KEYBOARD_ACTIONS, Action, Callback
from ..menus import Command
from ..models import Origin, PendingRequest
from ..options import MAX_PROMPT_CHARS, OptionError, asks_improve, parse_prompt
from ..references import MAX_REFERENCES, Reference, UnusableReference, check
from ..services import Services, get_services
from ..telegram_references import from_message, unusable_media
from ..texts import join_list, t
from .dialogue import (
    SPLIT_NEAR,
    SPLIT_WINDOW,
    apply_flags,
    improve_later,
    measured,
    models_on_offer,
    option_error,
    prompt_whole,
    show_keyboard,
    start,
    translated,
    unknown_note,
    when_whole,
)
from .replies import MESSAGES, origin_for, reply

log = logging.getLogger(__name__)

_COMMAND = re.compile(r"^/\S*\s*", re.DOTALL)
_IMAGINE = re.compile(r"^/imagine(?:@(?P<bot>\w+))?(?:\s|$)", re.IGNORECASE)
MAX_BROKEN_FLAGS = 5  # a split prompt's tail with more broken flags than this loses all its flags
PICTURE_WAITS = 600.0  # a picture sent without words waits this long for the text that says what to do with it


def command_text(text: str | None) -> str:
    """What follows `/imagine` or `/imagine@bot`, newlines kept."""
    return _COMMAND.sub("", text or "", count=1).strip()


def is_imagine(text: str | None, bot_username: str) -> bool:
    """`/imagine …` or `/imagine@thisbot …` (a caption is not parsed as a command by Telegram, so we do it)."""
    match = _IMAGINE.match(text or "")
    return match is not None and (match.group("bot") is None or match.group("bot").lower() == bot_username.lower())


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
        (callback.action in KEYBOARD_ACTIONS, callback.id)
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
    """More than flags? A style counts (its template may be the whole prompt); a bad flag counts as words, so its
    error is what the user sees."""
    try:
        parsed = parse_prompt(text, styles=True)
    except OptionError:
        return True
    return bool(parsed.prompt or parsed.style)


async def imagine(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/imagine prompt`, also as a reply to a text (its text is the prompt) or to pictures (they are references).

    In a private chat the text may also be the next part of a long prompt the app split, or the words for
    pictures sent just before without any."""
    services = get_services(context)
    message = update.effective_message
    assert message is not None  # a command's update
    origin = await origin_for(update, context)
    if await _joined_to_split_prompt(context, services, origin, message):
        return
    if await _words_for_preset(context, services, origin, message):
        return
    references = await services.albums.replied_to(message)
    prompt = await _prompt_of(context, services, message, references)
    if (
        not references
        and message.reply_to_message is None
        and message.chat.type == ChatType.PRIVATE
        and _has_words(prompt)
    ):
        references = await _waiting_pictures(services, origin)
    await start(context, services, origin, prompt, references, source=message)


async def continuation(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Group text that is no command: only the next part of a split `/imagine` prompt is ours, and a reply to the
    bot's question of what to make with a preset."""
    services = get_services(context)
    message = update.effective_message
    assert message is not None  # only messages reach this handler
    origin = await origin_for(update, context)
    if not await _words_for_preset(context, services, origin, message):
        await _joined_to_split_prompt(context, services, origin, message)


async def _prompt_of(
    context: ContextTypes.DEFAULT_TYPE, services: Services, message: Message, references: list[Reference]
) -> str:
    quoted = message.reply_to_message
    own = quoted is not None and quoted.from_user is not None and quoted.from_user.id == context.bot.id
    request_prompt = await request_prompt_of(services, quoted) if own else None
    return prompt_from(message, bool(references), context.bot.id, request_prompt)


def _may_answer_a_preset(context: ContextTypes.DEFAULT_TYPE, message: Message) -> bool:
    """Where the answer to "what to make with" a preset may be: a reply to the bot, or in a private chat any
    message that is no reply to someone else."""
    quoted = message.reply_to_message
    if quoted is None:
        return message.chat.type == ChatType.PRIVATE
    return quoted.from_user is not None and quoted.from_user.id == context.bot.id


async def _preset_asked(services: Services, origin: Origin, quoted: Message | None) -> PendingRequest | None:
    """The preset request this person was asked words for (the question `quoted`, when a reply), taken once."""
    waiting = await services.requests.latest(
        origin.chat_id, origin.user_id, time.time() - PICTURE_WAITS, wants_prompt=True
    )
    if waiting is None or waiting.style is None or waiting.references:
        return None  # none asked, or pictures waiting for their words
    if quoted is not None and quoted.message_id != waiting.message_id:
        return None
    return await services.requests.take(waiting.id)


async def _words_for_preset(
    context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin, message: Message
) -> bool:
    """Is this text what to make with a preset tapped under /presets? A reply to the bot's question, or in a
    private chat the next text that is no reply. Then it is the request, with that preset chosen."""
    if not _may_answer_a_preset(context, message):
        return False
    text = message.text or ""
    words = command_text(text) if text.startswith("/") else text
    if not _has_words(words):
        return False
    waiting = await _preset_asked(services, origin, message.reply_to_message)
    if waiting is None:
        return False
    await start(context, services, origin, words, [], source=message, style_name=waiting.style)
    return True


async def _pictures_for_preset(
    update: Update, context: ContextTypes.DEFAULT_TYPE, services: Services, message: Message
) -> bool:
    """Is this photo or album the answer to "what to make with" a preset tapped under /presets (where words would
    be: the next message in a private chat, a reply to the question)? Then it is that preset's request with these
    pictures, its caption the words; without one, the preset's template is the whole prompt (as for the figurine).
    An album answers once: by its part with words, else by its first part."""
    if not _may_answer_a_preset(context, message):
        return False
    words = (message.caption or "").strip()
    if message.media_group_id and not _has_words(words):
        album = await services.albums.references(message.chat.id, message.media_group_id)
        own = from_message(message)
        if album and own and album[0].id != own[0].id:
            return False
    origin = await origin_for(update, context)
    waiting = await _preset_asked(services, origin, message.reply_to_message)
    if waiting is None:
        return False
    _start_with_pictures(update, context, services, origin, message, words, style_name=waiting.style)
    return True


def _start_with_pictures(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    services: Services,
    origin: Origin,
    message: Message,
    words: str,
    style_name: str | None = None,
) -> None:
    """The request of a picture, or of an album once it is whole. Its own task: an album is whole only once its
    later parts have been handled, which come after this one in the chat's order. Its failure reaches the error
    handler with the update, as the handler's own would."""

    async def go() -> None:
        references, status_message_id = await _pictures_of(context, services, origin, message)
        await start(context, services, origin, words, references, status_message_id, style_name=style_name)

    context.application.create_task(go(), update=update)


async def _pictures_of(
    context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin, message: Message
) -> tuple[list[Reference], int | None]:
    """A photo's picture, or an album's, collected until it is complete with a visible count ("📥 Pictures
    received: 3…", the message the keyboard then replaces: its id comes back too)."""
    if not message.media_group_id:
        return from_message(message), None
    status = await reply(context, origin, t("refs_received", origin.lang, count=1, limit=MAX_REFERENCES))

    async def progress(count: int) -> None:
        if count > 1:
            text = t("refs_received", origin.lang, count=min(count, MAX_REFERENCES), limit=MAX_REFERENCES)
            try:
                await context.bot.edit_message_text(text, chat_id=origin.chat_id, message_id=status.message_id)
            except BadRequest as exc:
                log.info("album count not shown: %s", exc.message)

    return await services.albums.complete(message.chat.id, message.media_group_id, progress), status.message_id


async def _waiting_pictures(services: Services, origin: Origin) -> list[Reference]:
    """The pictures this user sent without words within PICTURE_WAITS, taken (once) as this text's references."""
    waiting = await services.requests.latest(
        origin.chat_id, origin.user_id, time.time() - PICTURE_WAITS, wants_prompt=True
    )
    if waiting is None or await services.requests.take(waiting.id) is None:
        return []
    if waiting.album_id:  # whole: its parts were handled before this text, in the chat's order
        album = await services.albums.references(origin.chat_id, waiting.album_id)
        if album:
            return album
    return [
        Reference(ref_id, "photo", waiting.ref_width if n == 0 else None, waiting.ref_height if n == 0 else None)
        for n, ref_id in enumerate(waiting.references)
    ]


async def _joined_to_split_prompt(
    context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin, message: Message
) -> bool:
    """Is this text the next part of a long prompt the app split? Then it joins that request's keyboard."""
    text = message.text or ""
    if not text or text.startswith("/") or message.reply_to_message is not None:
        return False
    sent = message.date.timestamp()
    pending = await services.requests.latest(origin.chat_id, origin.user_id, time.time() - 60, wants_prompt=False)
    if pending is None or pending.source_text is None or sent - (pending.source_date or 0) > SPLIT_WINDOW:
        return False
    whole = pending.source_text + text
    models = models_on_offer(services)
    improve = services.prompts is not None
    note = None
    body = command_text(whole) if whole.startswith("/") else whole
    try:
        parsed = parse_prompt(body, models, lenient_model=True, improve=improve, styles=True)
        note = await _style_of_tail(services, pending, parsed.style)
        apply_flags(pending, parsed)  # after the style's options: the flags win
    except OptionError as exc:  # a broken flag in the tail: said, and left out; the head's was checked
        note = option_error(exc, origin.lang, services.settings.offered)
        parsed = parse_prompt(_without_broken_flags(body, exc), improve=improve)
        parsed = dataclasses.replace(parsed, improve=improve and asks_improve(whole))
        pending.variants = parsed.variants or pending.variants
    pending.prompt = parsed.prompt[:MAX_PROMPT_CHARS]
    at_once = bool(parsed.aspect_ratio and parsed.size) and note is None  # an unknown style waits for a tap
    if len(text) <= SPLIT_NEAR:  # the last part: translated and improved as a whole
        await prompt_whole(context, services, pending, improve=parsed.improve, at_once=at_once, note=note)
        return True
    pending.source_text, pending.source_date = whole, sent
    await show_keyboard(context, services, pending, note)
    context.application.create_task(
        when_whole(context, services, pending.id, whole, improve=parsed.improve, at_once=at_once)
    )
    return True


def _without_broken_flags(text: str, exc: OptionError) -> str:
    """The words of a split prompt's tail with each flag whose value is broken (`--ar 7:3`) taken out, so that the
    rest still reads (the first broken one is the sentence the user is shown)."""
    for _ in range(MAX_BROKEN_FLAGS):
        text = re.sub(rf"\s*{re.escape(exc.flag)}\s+{re.escape(exc.value or '')}(?=\s|$)", "", text, count=1)
        try:
            parse_prompt(text)
            return text
        except OptionError as again:
            exc = again
    return re.sub(r"\s--\S+(\s+[^-\s]\S*)?", "", text)  # many broken flags: none of them kept


async def _style_of_tail(services: Services, pending: PendingRequest, typed: str | None) -> str | None:
    """`--style NAME` anywhere in a split prompt (the last one wins): a new one is chosen with its options; an
    unknown name is the line to show above the keyboard, with the closest names."""
    if typed is None:
        return None
    style = await services.styles.find(pending.origin, typed)
    if style is None:
        names = join_list(await services.styles.closest(pending.origin, typed), pending.origin.lang)
        return t("unknown_style", pending.origin.lang, value=typed, names=names)
    if style.name != pending.style:
        services.requests.choose_style(pending, style)
    return None


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
        parsed = parse_prompt(
            prompt, models_on_offer(services), lenient_model=True, improve=services.prompts is not None, styles=True
        )
        if not parsed.prompt or len(parsed.prompt) > MAX_PROMPT_CHARS:
            return
        not_taken = apply_flags(pending, parsed)
    except OptionError:
        return  # the open keyboard keeps the last good prompt; the user sees it unchanged
    style = await services.styles.find(pending.origin, parsed.style) if parsed.style else None
    pending.style = style.name if style else pending.style
    pending.prompt, pending.original = parsed.prompt, None
    pending.source_text = pending.source_date = None
    if pending.suggestion is not None:  # a rewrite of the old words is no rewrite of these
        pending.suggestion = None
        await services.requests.set_suggestion(pending.id, None)
    note = unknown_note((*parsed.unknown, *not_taken), pending.origin.lang)
    if failed := await translated(services, pending):
        note = f"{note}\n{failed}" if note else failed
    await show_keyboard(context, services, pending, note)
    if parsed.improve:
        improve_later(context, services, pending)


async def unusable(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A sticker, voice note, video, GIF…: named in one line at once, in a private chat or under an `/imagine`
    caption; group chatter is left alone."""
    message = update.effective_message
    assert message is not None  # only messages reach this handler
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
    assert message is not None  # only messages reach this handler
    if message.media_group_id:
        await services.albums.add(message)
    private = message.chat.type == ChatType.PRIVATE
    commanded = is_imagine(message.caption, context.bot.username)
    if not commanded and await _pictures_for_preset(update, context, services, message):
        return
    if not commanded and not private:
        return
    origin = await origin_for(update, context)
    words = command_text(message.caption) if commanded else (message.caption or "").strip()
    if not commanded and not _has_words(words):
        await _wait_for_words(context, services, origin, message)
        return
    await services.requests.drop_waiting_pictures(origin.chat_id, origin.user_id)
    _start_with_pictures(update, context, services, origin, message, words)


async def _wait_for_words(
    context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin, message: Message
) -> None:
    """A picture without words in a private chat: said at once what to do next, and kept for the next text.

    An album is answered once, at its first part; its other parts join it in the album table."""
    if message.media_group_id:
        album = await services.albums.references(origin.chat_id, message.media_group_id)
        if len(album) > 1:
            return
    references = from_message(message)
    try:
        check(references)
        references = await measured(services, references)
    except UnusableReference as exc:
        if exc.kind == "not_image":
            await reply(
                context, origin, t("media_unusable", origin.lang, what=t("media_file", origin.lang, name=exc.name))
            )
        else:
            await reply(
                context, origin, t(f"error_reference_{exc.kind}", origin.lang, number=exc.number, name=exc.name)
            )
        return
    key = "pictures_waiting" if message.media_group_id else "picture_waiting"
    notice = await reply(context, origin, t(key, origin.lang))
    await services.requests.wait_for_words(origin, references, notice.message_id, message.media_group_id)


_PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
_UNUSABLE = (
    filters.ANIMATION
    | filters.Sticker.ALL
    | filters.VIDEO
    | filters.VIDEO_NOTE
    | filters.VOICE
    | filters.AUDIO
    | filters.LOCATION
    | filters.VENUE
    | filters.CONTACT
    | filters.POLL
    | filters.Dice.ALL
    | filters.GAME
    | filters.STORY
)


COMMANDS = [Command("imagine", imagine, private=1, group=1)]
HANDLERS = [
    # In a private chat any plain text is a prompt: on a phone, typing /imagine each time is friction.
    MessageHandler(_PRIVATE & filters.TEXT & ~filters.COMMAND, imagine),
    # In a group, plain text is ours only as the next part of a long /imagine the app split (privacy mode off).
    MessageHandler(
        filters.ChatType.GROUPS & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, continuation
    ),
    MessageHandler(_UNUSABLE & MESSAGES, unusable),  # before pictures: a GIF is a document too
    # In the chat's order, so that the words sent right after a picture find it kept (the request runs on apart).
    MessageHandler((filters.PHOTO | filters.Document.ALL) & MESSAGES, imagine_media),
    MessageHandler(filters.UpdateType.EDITED_MESSAGE, on_edit),
]
