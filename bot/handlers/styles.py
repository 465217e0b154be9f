"""Styles and presets: the keyboard's 🎨 page (a style chosen, ◀ ▶, No style, ◀ Back), `/presets` as buttons (a tap
opens a keyboard with that preset chosen) and `/preset add|del|show|export|import`.

A group's presets are the group's: only its admins change them. A private chat's are the person's own.
"""

from __future__ import annotations

import logging
import re

from telegram import ForceReply, InputFile, InputMediaPhoto, Message, MessageEntity, Update, User
from telegram.error import BadRequest, TelegramError
from telegram.ext import CallbackQueryHandler, ContextTypes, MessageHandler, filters

from ..imagemodels import PROFILES, profile_for
from ..keyboards import Action, Callback, presets_keyboard, style_key, style_keyboard
from ..menus import Command
from ..models import Origin
from ..options import OptionError, ParsedPrompt, parse_prompt
from ..references import UnusableReference, check
from ..request_service import TooManyPictures, with_pictures
from ..services import Services, get_services
from ..style_service import BadPresetFile, Scope, TooManyPresets, read_export
from ..styles import MAX_PICTURES, MAX_PRESETS, MAX_TEMPLATE_CHARS, Style, valid_name
from ..targets import Target, send_kwargs
from ..texts import t
from .dialogue import (
    keyboard_of,
    models_on_offer,
    option_error,
    show_keyboard,
    too_many_text,
    unknown_note,
    unoffered_note,
)
from .replies import MESSAGES, Answer, edit_quietly, is_chat_admin, may_press, origin_for, reply, user_lang

log = logging.getLogger(__name__)

_COMMAND = re.compile(r"^/\S*\s*")
_IMPORT_CAPTION = re.compile(r"^/preset(?:@\w+)?\s+import\b", re.IGNORECASE)
EXPORT_MAX_BYTES = 512 * 1024  # 50 presets of 2,000 characters and their picture ids fit many times over
EXPORT_NAME = "presets.json"
ALBUM_MAX = 10  # Telegram's sendMediaGroup takes 2–10 items


def _entries(offered: list[Style], lang: str | None) -> list[tuple[str, str]]:
    """(name, button label): a group's presets 👥, a person's 👤, the library's styles by their label."""
    marks = {"chat": "👥 ", "user": "👤 "}
    return [(s.name, marks[s.owner] + s.name if s.owner in marks else s.label(lang)) for s in offered]


async def on_style(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button of the 🎨 page (or the 🎨 button itself) on a pending request's keyboard."""
    answer = Answer(update)
    try:
        query = update.callback_query
        assert query is not None  # routed here by its pattern: a callback query of ours
        lang = await user_lang(context, query.from_user)
        callback = Callback.decode(query.data)
        assert callback is not None  # the pattern matched only data we made
        services = get_services(context)
        pending = await services.requests.get(callback.id)
        if not await may_press(context, answer, lang, pending, query.from_user.id):
            return
        assert pending is not None  # may_press answered for a request that is gone
        arg = callback.arg
        offered = await services.styles.offered(pending.origin)
        if arg == "o" or arg.startswith("p"):
            page = int(arg[1:]) if arg[1:].isdigit() else 0
            await answer()
            markup = style_keyboard(pending.id, _entries(offered, lang), pending.style, page, lang)
            await edit_quietly(query.edit_message_reply_markup(markup))
            return
        if arg == "b":
            await answer()
            await edit_quietly(query.edit_message_reply_markup(keyboard_of(pending, services)))
            return
        note = None
        if arg == "n":
            pending.style = None
        else:
            style = next((s for s in offered if "c" + style_key(s.name) == arg), None)
            if style is None:
                await answer(t("expired", lang))
                return
            try:
                with_pictures(pending.references, style, services.requests.style_model(pending, style))
            except TooManyPictures as exc:
                await answer(too_many_text(exc, lang), alert=True)
                return
            services.requests.choose_style(pending, style)  # its defaults; the user's taps after this override them
            note = unoffered_note(services, pending, style)
        await answer()
        if query.message is not None:
            pending.message_id = query.message.message_id
        await show_keyboard(context, services, pending, note)
    finally:
        await answer()


async def on_preset_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A `/presets` button: the bot asks the one who tapped what to make with it, or, for a preset that needs no
    words (no {prompt} slot, or pictures of its own), a new keyboard with it chosen."""
    answer = Answer(update)
    try:
        services = get_services(context)
        origin = await origin_for(update, context)
        assert update.callback_query is not None  # routed here by its pattern
        callback = Callback.decode(update.callback_query.data)
        assert callback is not None  # the pattern matched only data we made
        offered = await services.styles.offered(origin)
        style = next((s for s in offered if style_key(s.name) == callback.arg), None)
        if style is None:
            await answer(t("expired", origin.lang))
            return
        await answer()
        if style.has_slot and not style.pictures:
            await _ask_words(context, services, origin, style, update.effective_user)
            return
        pending, _ = await services.requests.start(origin, ParsedPrompt(""), [], None, style)
        try:
            with_pictures((), style, pending.model)
        except TooManyPictures as exc:
            await reply(context, origin, too_many_text(exc, origin.lang))
            return
        await show_keyboard(context, services, pending, unoffered_note(services, pending, style))
    finally:
        await answer()


async def _ask_words(
    context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin, style: Style, user: User | None
) -> None:
    """A preset whose template wants words: the bot asks for them (a forced reply; in a private chat the next text
    answers too), and they become the request with the preset chosen. In a group the question names the one who
    tapped, so that only their app opens the reply."""
    lang = origin.lang
    entities = None
    if origin.requester and user is not None:
        text = t("preset_ask_words_group", lang, requester=origin.requester, name=style.name)
        length = len(origin.requester.encode("utf-16-le")) // 2  # Telegram counts UTF-16 code units
        entities = [MessageEntity(MessageEntity.TEXT_MENTION, 0, length, user=user)]
    else:
        text = t("preset_ask_words", lang, name=style.name)
    asked = await context.bot.send_message(
        text=text, entities=entities, reply_markup=ForceReply(selective=True), **send_kwargs(Target.of(origin))
    )
    await services.requests.wait_for_style_words(origin, style, asked.message_id)


async def presets(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/presets`: the chat's presets (in a group) and the person's, as buttons."""
    services = get_services(context)
    origin = await origin_for(update, context)
    offered = [s for s in await services.styles.offered(origin) if s.owner != "builtin"]
    if not offered:
        await reply(context, origin, t("presets_none", origin.lang))
        return
    chat = sum(s.owner == "chat" for s in offered)
    text = t("presets_list", origin.lang, chat=chat, user=len(offered) - chat)
    await reply(context, origin, text, presets_keyboard(origin.chat_id, _entries(offered, origin.lang)))


async def preset(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/preset add|del|show|export|import …`; anything else is told how."""
    services = get_services(context)
    message = update.effective_message
    assert message is not None  # a command
    origin = await origin_for(update, context)
    words = _COMMAND.sub("", message.text or "", count=1).strip()
    parts = words.split(maxsplit=1)
    verb = parts[0].lower() if parts else ""
    rest = parts[1] if len(parts) > 1 else ""
    if verb == "add":
        await _add(context, services, origin, message, rest)
    elif verb in ("del", "delete", "remove", "rm"):
        await _delete(context, services, origin, rest.strip())
    elif verb == "show":
        await _show(context, services, origin, rest.strip())
    elif verb == "export":
        await _export(context, services, origin)
    elif verb == "import":
        await _import(context, services, origin, message)
    else:
        await reply(context, origin, t("preset_usage", origin.lang))


async def import_captioned(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An exported file sent with the caption `/preset import`."""
    services = get_services(context)
    assert update.effective_message is not None  # a file with its caption
    await _import(context, services, await origin_for(update, context), update.effective_message)


async def _may_change(context: ContextTypes.DEFAULT_TYPE, origin: Origin, scope: Scope) -> bool:
    """A person's own presets are theirs; a group's, its admins' (an anonymous admin speaks as the group)."""
    if not scope.shared or origin.user_id == origin.chat_id:
        return True
    if await is_chat_admin(context, origin.chat_id, origin.user_id):
        return True
    await reply(context, origin, t("preset_admins_only", origin.lang))
    return False


async def _add(
    context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin, message: Message, rest: str
) -> None:
    lang = origin.lang
    parts = rest.split(maxsplit=1)
    name = parts[0] if parts else ""
    if not valid_name(name):
        await reply(context, origin, t("preset_bad_name" if name else "preset_usage", lang, name=name))
        return
    scope = Scope.of(origin)
    if not await _may_change(context, origin, scope):
        return
    try:
        parsed = parse_prompt(parts[1] if len(parts) > 1 else "", models_on_offer(services))
        if parsed.model:  # its ratio and size must be ones that model makes
            parsed.choose(profile_for(parsed.model))
        kept, kept_not = _model_options(parsed, services.settings.offered)
    except OptionError as exc:
        await reply(context, origin, option_error(exc, lang, services.settings.offered))
        return
    if not parsed.prompt:
        await reply(context, origin, t("preset_no_template", lang, name=name))
        return
    if len(parsed.prompt) > MAX_TEMPLATE_CHARS:
        text = t("preset_template_long", lang, length=len(parsed.prompt), limit=MAX_TEMPLATE_CHARS)
        await reply(context, origin, text)
        return
    pictures = await services.albums.replied_to(message)
    if len(pictures) > MAX_PICTURES:
        await reply(context, origin, t("preset_too_many_pictures", lang, limit=MAX_PICTURES, count=len(pictures)))
        return
    try:
        check(pictures)
    except UnusableReference as exc:
        await reply(context, origin, t(f"error_reference_{exc.kind}", lang, number=exc.number, name=exc.name))
        return
    options = {
        "ratio": parsed.aspect_ratio.value if parsed.aspect_ratio else None,
        "size": parsed.size.value if parsed.size else None,
        "model": parsed.model,
    }
    style = Style(
        name.casefold(),
        parsed.prompt,
        options={**{k: v for k, v in options.items() if v is not None}, **kept},
        pictures=tuple(p.id for p in pictures),
        owner=scope.kind,
    )
    try:
        new = await services.styles.save(scope, style, origin.user_id)
    except TooManyPresets as exc:
        await reply(context, origin, t("preset_limit", lang, limit=exc.limit))
        return
    if pictures:  # they are the preset's now, not words-less pictures waiting for the next text
        await services.requests.drop_waiting_pictures(origin.chat_id, origin.user_id)
    count = t("preset_pictures", lang, count=len(pictures)) if pictures else ""
    text = t("preset_saved" if new else "preset_changed", lang, name=style.name, pictures=count)
    note = unknown_note((*parsed.unknown, *kept_not), lang)
    await reply(context, origin, f"{note}\n\n{text}" if note else text)


def _model_options(parsed: ParsedPrompt, offered: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """A preset's model-specific flags (`--quality high`): checked against its model, or, naming none, against
    the models this bot offers (kept when one takes it). Those none takes come back, to be named as unknown flags
    are; OptionError for a value no such model offers."""
    profiles = [profile_for(parsed.model)] if parsed.model else [profile_for(m) for m in offered]
    kept: dict[str, str] = {}
    not_taken: list[str] = []
    for name, value in parsed.options.items():
        takers = [(p, o) for p in profiles for o in p.extra_options if o.name == name]
        if not takers:
            not_taken.append(f"--{name} {value}")
        elif any(value in o.choices for _, o in takers):
            kept[name] = value
        else:
            profile, option = takers[0]
            raise OptionError(option.flag, value, list(option.choices), model=profile.name)
    return kept, tuple(not_taken)


async def _delete(context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin, name: str) -> None:
    scope = Scope.of(origin)
    if not name:
        await reply(context, origin, t("preset_usage", origin.lang))
        return
    if not await _may_change(context, origin, scope):
        return
    deleted = await services.styles.delete(scope, name)
    await reply(context, origin, t("preset_deleted" if deleted else "preset_not_found", origin.lang, name=name))


async def _show(context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin, name: str) -> None:
    lang = origin.lang
    found = next(
        (s for s in await services.styles.offered(origin) if s.owner != "builtin" and s.name == name.casefold()),
        None,
    )
    if found is None:
        await reply(context, origin, t("preset_not_found", lang, name=name))
        return
    shown = [_option_text(k, v, lang) for k, v in found.options.items()]
    options = " · ".join(shown) or t("preset_no_options", lang)
    whose = t("preset_whose_chat" if found.owner == "chat" else "preset_whose_user", lang)
    text = t(
        "preset_show",
        lang,
        name=found.name,
        whose=whose,
        template=found.template,
        options=options,
        count=len(found.pictures),
    )
    await reply(context, origin, text)
    await _send_pictures(context, origin, [p.removeprefix("tg:") for p in found.pictures if p.startswith("tg:")])


def _option_text(name: str, value: str, lang: str | None) -> str:
    """How `/preset show` names an option: a ratio or size as it is, a model by its label, a model's own option
    by its keyboard row and choice (`Quality High`)."""
    if name == "model":
        return profile_for(value).label if value in PROFILES else value
    option = next((o for p in PROFILES.values() for o in p.extra_options if o.name == name), None)
    if option is None:
        return value
    choice = t(f"{option.label_key}_{value}", lang) if option.choice_keys else value
    return f"{t(option.label_key, lang)} {choice}"


async def _send_pictures(context: ContextTypes.DEFAULT_TYPE, origin: Origin, file_ids: list[str]) -> None:
    """A preset's pictures, all of them: albums of at most ALBUM_MAX (Telegram's sendMediaGroup takes 2–10), a
    single leftover as a photo. An album Telegram refuses as photos (a picture sent as a file is a document) goes
    one by one, each as a photo or else as a file."""
    for start in range(0, len(file_ids), ALBUM_MAX):
        chunk = file_ids[start : start + ALBUM_MAX]
        if len(chunk) > 1:
            try:
                media = [InputMediaPhoto(file_id) for file_id in chunk]
                await context.bot.send_media_group(origin.chat_id, media, message_thread_id=origin.thread_id)
                continue
            except BadRequest as exc:
                log.info("preset pictures not an album of photos (%s): sent one by one", exc.message)
            except TelegramError as exc:  # the text said how many there are
                log.info("preset pictures not shown: %s", exc.message)
                return
        for file_id in chunk:
            await _send_picture(context, origin, file_id)


async def _send_picture(context: ContextTypes.DEFAULT_TYPE, origin: Origin, file_id: str) -> None:
    try:
        await context.bot.send_photo(origin.chat_id, file_id, message_thread_id=origin.thread_id)
        return
    except BadRequest as exc:  # a picture sent as a file: Telegram keeps it as a document
        log.info("a preset picture is no photo (%s): sent as a file", exc.message)
    try:
        await context.bot.send_document(origin.chat_id, file_id, message_thread_id=origin.thread_id)
    except TelegramError as exc:  # the text said how many there are
        log.info("a preset picture not shown: %s", exc.message)


async def _export(context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin) -> None:
    scope = Scope.of(origin)
    kept = await services.styles.presets(scope)
    if not kept:
        await reply(context, origin, t("preset_export_none", origin.lang))
        return
    data = await services.styles.export(scope)
    await context.bot.send_document(
        origin.chat_id,
        InputFile(data, filename=EXPORT_NAME),
        caption=t("preset_exported", origin.lang, count=len(kept)),
        message_thread_id=origin.thread_id,
        reply_to_message_id=origin.reply_to,
        allow_sending_without_reply=True,
    )


async def _import(context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin, message: Message) -> None:
    lang = origin.lang
    source = message if message.document else message.reply_to_message
    document = source.document if source is not None else None
    if document is None:
        await reply(context, origin, t("preset_import_usage", lang))
        return
    scope = Scope.of(origin)
    if not await _may_change(context, origin, scope):
        return
    if document.file_size and document.file_size > EXPORT_MAX_BYTES:
        await reply(context, origin, t("preset_import_bad", lang, problem=document.file_name or EXPORT_NAME))
        return
    try:
        file = await context.bot.get_file(document.file_id)
        data = bytes(await file.download_as_bytearray())
    except TelegramError as exc:
        log.info("preset import: the file could not be fetched: %s", exc.message)
        await reply(context, origin, t("preset_import_bad", lang, problem=document.file_name or EXPORT_NAME))
        return
    try:
        styles = read_export(data[: EXPORT_MAX_BYTES + 1])
    except BadPresetFile as exc:
        log.info("preset import refused: %s", exc)
        await reply(context, origin, t("preset_import_bad", lang, problem=exc.problems[0]))
        return
    saved: list[str] = []
    full = 0
    for style in styles:
        try:
            await services.styles.save(scope, style, origin.user_id)
            saved.append(style.name)
        except TooManyPresets:
            full += 1
    text = t("preset_imported", lang, count=len(saved), names=", ".join(saved) or "—")
    if full:
        text += "\n" + t("preset_import_full", lang, count=full, limit=MAX_PRESETS)
    await reply(context, origin, text)


COMMANDS = [Command("preset", preset), Command("presets", presets, private=9, group=8)]
HANDLERS = [
    CallbackQueryHandler(on_style, pattern=Callback.matching(Action.STYLE)),
    CallbackQueryHandler(on_preset_button, pattern=Callback.matching(Action.PRESET)),
    MessageHandler(filters.Document.ALL & filters.CaptionRegex(_IMPORT_CAPTION) & MESSAGES, import_captioned),
]
