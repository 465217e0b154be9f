"""In any chat: `@bot a red fox --ar 16:9` (inline mode), and the bot mentioned in a chat it is not in (guest mode).

An inline query is answered at once from the words and the user's defaults (no image API call: a query comes with
every keystroke); the result the user picks comes back as `chosen_inline_result` with its `inline_message_id`, and
that is the request. A guest message is answered with one result whose message Telegram posts, and its
`inline_message_id` is the request's the same way. From there it is an ordinary request whose answers edit that
message (models.Origin.inline_message_id): queue, credits, caps, workers, 🔁 📐 ✖ as anywhere. 📄 sends the
original to the private chat; a user who has not started the bot gets the deep link (`/start o_<job id>`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

from telegram import (
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import (
    CallbackQueryHandler,
    ChosenInlineResultHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from ..inline_messages import ORIGINAL_PAYLOAD, edit_inline
from ..keyboards import Action, Callback, inline_wait_keyboard, ratio_arg
from ..menus import Command
from ..models import Origin, new_id
from ..options import MAX_PROMPT_CHARS, AspectRatio, ImageRequest, OptionError, ParsedPrompt, Resolution, parse_prompt
from ..references import MAX_REFERENCES, Reference, UnusableReference, check
from ..services import Services, get_services
from ..telegram_references import from_message
from ..texts import join_list, t
from .dialogue import improve_later, keyboard_prompt, measured, show_keyboard, submit, translated
from .replies import MESSAGES, Answer, origin_for, reply, send_original_privately, user_lang

log = logging.getLogger(__name__)

CACHE_SECONDS = 5  # Telegram may reuse an answer this long (at most 10: the user's defaults may change)
IMPROVE_RESULT = "improve"  # the ✨ result's id: the prompt helper first, on the user's defaults
RESULT_PROMPT_CHARS = 120  # of the prompt in a result's description


def _article(
    result_id: str, title: str, text: str, *, description: str | None = None, markup: InlineKeyboardMarkup | None = None
) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        result_id, title, InputTextMessageContent(text), description=description, reply_markup=markup
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Asked:
    """What an inline query or a mention asks for, or the hint it gets instead (`hint`: title and text)."""

    parsed: ParsedPrompt | None = None
    hint: tuple[str, str] | None = None


def _asked(services: Services, text: str, lang: str | None, bot: str) -> _Asked:
    if services.settings.inline_storage_chat_id is None:
        return _Asked(hint=(t("inline_off_title", lang), t("inline_off", lang)))
    hint = (t("inline_hint_title", lang), t("inline_hint", lang, bot=bot))
    try:
        parsed = parse_prompt(text, styles=True, improve=services.prompts is not None)
    except OptionError as exc:
        key = {"--ar": "bad_ratio", "--size": "bad_size"}.get(exc.flag, "bad_variants")
        return _Asked(
            hint=(t("inline_bad_title", lang), t(key, lang, value=exc.value or "?", valid=join_list(exc.valid, lang)))
        )
    if not parsed.prompt:
        return _Asked(hint=hint)
    if len(parsed.prompt) > MAX_PROMPT_CHARS:
        text = t("prompt_too_long", lang, length=len(parsed.prompt), limit=MAX_PROMPT_CHARS)
        return _Asked(hint=(t("inline_bad_title", lang), text))
    return _Asked(parsed=parsed)


def _result_id(ratio: AspectRatio, size: Resolution) -> str:
    return f"{ratio_arg(ratio)}_{size.value}"


def _from_result_id(result_id: str) -> tuple[AspectRatio, Resolution] | None:
    ratio, _, size = result_id.partition("_")
    try:
        return AspectRatio.parse(ratio), Resolution.parse(size)
    except ValueError:
        return None


async def on_inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Results to pick from, at once: with flags the one they name, without one per size on the user's defaults."""
    query = update.inline_query
    assert query is not None  # an inline query's handler
    services = get_services(context)
    lang = await user_lang(context, query.from_user)
    asked = _asked(services, query.query, lang, context.bot.username)
    if asked.hint is not None:
        title, text = asked.hint
        results = [_article("hint", title, text, description=text)]
    else:
        parsed = asked.parsed
        assert parsed is not None  # no hint: the words parsed
        prefs = await services.prefs.get_prefs("user", query.from_user.id)
        ratio = parsed.aspect_ratio or prefs.aspect_ratio or services.settings.default_aspect_ratio
        default_size = prefs.size or services.settings.default_size
        sizes = [parsed.size] if parsed.size else sorted(Resolution, key=lambda s: s != default_size)
        prompt = keyboard_prompt(parsed.prompt)
        short = prompt if len(prompt) <= RESULT_PROMPT_CHARS else prompt[: RESULT_PROMPT_CHARS - 1] + "…"
        results = []
        for size in sizes:
            request = ImageRequest(parsed.prompt, ratio, size)
            width, height = request.expected_pixels
            first = (
                t("helper_working", lang) if parsed.improve else t("queued", lang, label=request.label, prompt=prompt)
            )
            results.append(
                _article(
                    _result_id(ratio, size),
                    f"{'✨' if parsed.improve else '🎨'} {request.label}",
                    first,
                    description=t("inline_result", lang, pixels=f"{width}×{height}", prompt=short),
                    markup=inline_wait_keyboard("new", lang),
                )
            )
        if services.prompts is not None and not parsed.improve:  # the helper's call waits for the choice
            results.append(
                _article(
                    IMPROVE_RESULT,
                    t("inline_improve_title", lang),
                    t("helper_working", lang),
                    description=t("inline_improve", lang, prompt=short),
                    markup=inline_wait_keyboard("new", lang),
                )
            )
    try:
        await query.answer(results, cache_time=CACHE_SECONDS, is_personal=True)
    except TelegramError as exc:  # too late (the user typed on), or answered elsewhere
        log.info("inline query %s not answered: %s", query.id, exc)


async def on_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The user picked a result: its message (by `inline_message_id`) is where this request is shown."""
    chosen = update.chosen_inline_result
    assert chosen is not None  # a chosen_inline_result's handler
    services = get_services(context)
    improve = chosen.result_id == IMPROVE_RESULT and services.prompts is not None
    shape = _from_result_id(chosen.result_id)
    if chosen.inline_message_id is None or not (shape or improve) or services.settings.inline_storage_chat_id is None:
        return  # a hint was picked: its text is all there is
    lang = await user_lang(context, chosen.from_user)
    asked = _asked(services, chosen.query, lang, context.bot.username)
    user = chosen.from_user
    origin = Origin(user.id, user.id, lang=lang, inline_message_id=chosen.inline_message_id)
    if asked.parsed is None:
        assert asked.hint is not None  # words that do not parse have a hint
        await edit_inline(context.bot, chosen.inline_message_id, asked.hint[1], None)
        return
    parsed = asked.parsed
    if shape is not None:
        parsed = dataclasses.replace(parsed, aspect_ratio=shape[0], size=shape[1])
    if improve:  # ✨: on the user's defaults, the keyboard in the message once the rewrite is there
        parsed = dataclasses.replace(parsed, improve=True)
    await _request(context, services, origin, parsed, [])


async def _request(
    context: ContextTypes.DEFAULT_TYPE,
    services: Services,
    origin: Origin,
    parsed: ParsedPrompt,
    references: list[Reference],
) -> None:
    """One image into the inline message: references checked, the user's defaults, queued (or why not, there)."""
    try:
        check(references)
        references = await measured(services, references[:MAX_REFERENCES])
    except UnusableReference as exc:
        text = t(f"error_reference_{exc.kind}", origin.lang, number=exc.number, name=exc.name)
        assert origin.inline_message_id is not None  # an inline request's origin
        await edit_inline(context.bot, origin.inline_message_id, text, None)
        return
    style = None
    if parsed.style:  # `@bot --style anime a cat`: a style (or the person's own preset) as in a chat
        style = await services.styles.find(origin, parsed.style)
        if style is None:
            assert origin.inline_message_id is not None
            names = join_list(await services.styles.closest(origin, parsed.style), origin.lang)
            text = t("unknown_style", origin.lang, value=parsed.style, names=names)
            await edit_inline(context.bot, origin.inline_message_id, text, None)
            return
    pending, _ = await services.requests.start(origin, parsed, references, None, style)
    pending.variants = 1  # an inline message holds one picture
    failed = await translated(services, pending)  # the user's "translate my prompts", as in a chat
    if parsed.improve and services.prompts is not None:  # `--improve` or ✨: the rewrite offered on the keyboard
        await show_keyboard(context, services, pending, failed)
        improve_later(context, services, pending)
    elif failed:  # the sentence is not lost under a status line: one tap on Generate makes it as written
        await show_keyboard(context, services, pending, failed)
    else:
        await submit(context, services, pending)


def _without_mention(message: Message, username: str) -> str:
    """The mention's words: the text without `@bot` (and without a command's name, `/imagine@bot …`)."""
    text = re.sub(rf"@{re.escape(username)}\b", " ", message.text or message.caption or "", flags=re.IGNORECASE)
    return re.sub(r"^\s*/imagine(@\w+)?", "", text, flags=re.IGNORECASE).strip()


async def on_guest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The bot mentioned where it is not a member: one answer at once (a result Telegram posts), then the request
    in that message. A replied-to picture is what the words edit."""
    message = update.guest_message
    assert message is not None and message.from_user is not None  # a guest message: a person mentioned the bot
    services = get_services(context)
    user = message.from_user
    lang = await user_lang(context, user)
    asked = _asked(services, _without_mention(message, context.bot.username), lang, context.bot.username)
    references = from_message(message.reply_to_message)
    if asked.hint is not None:
        title, text = asked.hint
        await _answer_guest(context, message, _article("hint", title, text))
        return
    origin = Origin(user.id, user.id, lang=lang)
    assert asked.parsed is not None  # no hint: the words parsed
    pending, _ = await services.requests.start(origin, asked.parsed, references, None)
    label = ImageRequest(pending.prompt, pending.aspect_ratio, pending.size).label
    improving = asked.parsed.improve and services.prompts is not None  # `--improve`: nothing queued before ✓ or ↩
    placeholder = _article(
        new_id(),
        f"✨ {label}" if improving else t("guest_title", lang, label=label),
        t("helper_working", lang)
        if improving
        else t("queued", lang, label=label, prompt=keyboard_prompt(pending.prompt)),
        markup=inline_wait_keyboard("new", lang),
    )
    sent = await _answer_guest(context, message, placeholder)
    if sent is None:
        return
    origin = dataclasses.replace(origin, inline_message_id=sent)
    parsed = dataclasses.replace(asked.parsed, aspect_ratio=pending.aspect_ratio, size=pending.size)
    await _request(context, services, origin, parsed, references)


async def _answer_guest(context: ContextTypes.DEFAULT_TYPE, message: Message, result: Any) -> str | None:
    """answerGuestQuery; the inline_message_id of what Telegram posted (None: the query could not be answered)."""
    assert message.guest_query_id is not None  # a guest message carries its query's id
    try:
        sent = await context.bot.answer_guest_query(message.guest_query_id, result)
    except TelegramError as exc:
        log.warning("guest query %s not answered: %s", message.guest_query_id, exc)
        return None
    return sent.inline_message_id


async def on_wait_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """✖ pressed in the moment before the request exists: its own line replaces this button at once."""
    answer = Answer(update)
    assert update.callback_query is not None  # routed here by its pattern
    await answer(t("inline_starting", await user_lang(context, update.callback_query.from_user)))


async def on_start_original(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/start o_<job id>`, from the deep link 📄 gave a user who had not started the bot: the original file."""
    origin = await origin_for(update, context)
    payload = (context.args or [""])[0]
    job = await get_services(context).queue.job(payload[len(ORIGINAL_PAYLOAD) :])
    if job is None:
        await reply(context, origin, t("expired", origin.lang))
    elif job.origin.user_id != origin.user_id:
        await reply(context, origin, t("not_yours", origin.lang))
    elif await send_original_privately(context, job, origin.user_id) is None:
        await reply(context, origin, t("original_gone", origin.lang))


async def on_via_bot(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A chosen inline result, as its own chat shows it to the bot: its chosen_inline_result is the request."""


class _ViaThisBot(filters.MessageFilter):
    """A message a user sent via this bot (a chosen inline result), which Telegram also shows the bot: not a
    prompt, not a command, nothing to answer."""

    def filter(self, message: Message) -> bool:
        return message.via_bot is not None and message.via_bot.id == message.get_bot().id


# Before the command handlers: `/start o_<job id>` is a deep link's, not the greeting.
START_PAYLOADS = [
    CommandHandler(
        "start",
        on_start_original,
        filters=MESSAGES & filters.ChatType.PRIVATE & filters.Regex(rf"^/start(@\w+)?\s+{ORIGINAL_PAYLOAD}[\w-]+$"),
    )
]
COMMANDS: list[Command] = []
# First of the features: a guest message and a message via this bot never reach the ordinary message handlers
# (python-telegram-bot 22.8's message filters match guest messages too).
HANDLERS = [
    InlineQueryHandler(on_inline_query),
    ChosenInlineResultHandler(on_chosen),
    MessageHandler(filters.UpdateType.GUEST_MESSAGE, on_guest),
    MessageHandler(_ViaThisBot() & MESSAGES, on_via_bot),
    CallbackQueryHandler(on_wait_button, pattern=Callback.matching(Action.INLINE_WAIT)),
]
