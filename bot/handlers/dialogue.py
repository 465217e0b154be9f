"""The request dialogue, shared by the intake, the keyboard's choices and the results: a request started (its words
and pictures checked), its keyboard shown, and submitted. Registers no handler of its own: like `replies.py`, the
handler modules may import it.
"""

from __future__ import annotations

import asyncio

from telegram import InlineKeyboardMarkup, Message
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from ..imagemodels import PROFILES, profile_for
from ..inline_messages import edit_inline
from ..jobs.queue import QueueFull, ShuttingDown
from ..keyboards import choice_keyboard, packs_keyboard, shop_keyboard
from ..models import Origin, PendingRequest, prefs_scope
from ..options import MAX_PROMPT_CHARS, OptionError, ParsedPrompt, parse_prompt
from ..prompt_service import HelperBusy
from ..prompthelper import HelperError
from ..quota import Limit, QuotaExceeded
from ..references import MAX_REFERENCES, Reference, UnusableReference, check
from ..request_service import TooManyPictures, with_pictures
from ..services import Services
from ..style_service import StyleGone
from ..styles import Style
from ..texts import for_requester, join_list, resets_text, t
from .replies import edit_quietly, prefs_once, refuse, reply, tell

# The keyboard message repeats the prompt only as far as a phone shows it above the buttons.
KEYBOARD_PROMPT_CHARS = 200
KEYBOARD_PROMPT_LINES = 3
# Telegram's apps split a text over 4,096 characters into several messages, sent within a moment of each other.
SPLIT_NEAR = 4000  # a message this long may have a next part
SPLIT_WINDOW = 2.0  # seconds between their dates (whole seconds) for the next part to join it
SUGGESTION_CHARS = 3000  # a rewrite shown above the keyboard (the message's text has room for 4,096)


async def start(
    context: ContextTypes.DEFAULT_TYPE,
    services: Services,
    origin: Origin,
    text: str,
    references: list[Reference],
    status_message_id: int | None = None,
    *,
    source: Message | None = None,
    style_name: str | None = None,
) -> None:
    """Check the words and pictures, then show the keyboard, or queue at once when flags chose shape and size.

    `source`, the user's own text message, may be the first part of a longer prompt the app split. `style_name`:
    a style chosen already (a preset tapped under /presets), unless the words name another."""
    lang = origin.lang
    offered = services.settings.offered
    try:
        parsed = parse_prompt(
            text, models_on_offer(services), lenient_model=True, improve=services.prompts is not None, styles=True
        )
    except OptionError as exc:
        if exc.flag == "--style":
            names = join_list((await services.styles.closest(origin, ""))[:3], lang)
            await tell(context, origin, t("unknown_style", lang, value="", names=names), status_message_id)
            return
        await tell(context, origin, option_error(exc, lang, offered), status_message_id)
        return
    style = None
    if typed := parsed.style or style_name:
        style = await services.styles.find(origin, typed)
        if style is None:
            names = join_list(await services.styles.closest(origin, typed), lang)
            await tell(context, origin, t("unknown_style", lang, value=typed, names=names), status_message_id)
            return
    if not parsed.prompt and style is None:  # a style's template may be the whole prompt (the figurine's is)
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
        references = await measured(services, references)
    except UnusableReference as exc:
        text = t(f"error_reference_{exc.kind}", lang, number=exc.number, name=exc.name)
        await tell(context, origin, text, status_message_id)
        return
    try:
        prefs = await prefs_once(context, prefs_scope(origin))
        pending, not_taken = await services.requests.start(origin, parsed, references, status_message_id, style, prefs)
        if style is not None:  # counted against the model the request is for (a preset's own, or the usual)
            with_pictures(pending.references, style, pending.model)
    except OptionError as exc:
        await tell(context, origin, option_error(exc, lang, offered), status_message_id)
        return
    except TooManyPictures as exc:
        await tell(context, origin, too_many_text(exc, lang), status_message_id)
        return
    most = profile_for(pending.model).max_references()
    if len(pending.references) > most:  # this model takes fewer pictures than any model's cap
        await reply(context, origin, t("refs_trimmed", lang, count=len(pending.references), limit=most))
        pending.references = pending.references[:most]
    notes = [unknown_note((*parsed.unknown, *not_taken), lang)]
    if style is not None:
        notes.append(unoffered_note(services, pending, style))
    if parsed.unknown_model is not None:  # nothing is made until they pick one: the keyboard, its model row on top
        notes.append(t("unknown_model_pick", lang, value=parsed.unknown_model, valid=join_list(offered, lang)))
    note = "\n".join(n for n in notes if n) or None
    raw = source.text if source is not None and source.text else ""
    may_go_on = len(raw) > SPLIT_NEAR
    if may_go_on and source is not None:  # only a source's text may go on: translated and improved once whole
        pending.source_text, pending.source_date = raw, source.date.timestamp()
    elif failed := await translated(services, pending):
        note = f"{note}\n{failed}" if note else failed
    at_once = bool(parsed.aspect_ratio and parsed.size and parsed.unknown_model is None)
    if at_once and not may_go_on and not parsed.improve:
        if note:
            await reply(context, origin, note)
        await submit(context, services, pending)
        return
    await show_keyboard(context, services, pending, note)
    if may_go_on:
        context.application.create_task(
            when_whole(context, services, pending.id, raw, improve=parsed.improve, at_once=at_once)
        )
    elif parsed.improve:
        improve_later(context, services, pending)


def apply_flags(pending: PendingRequest, parsed: ParsedPrompt) -> tuple[str, ...]:
    """A prompt's flags over an open request (its text edited, or its next part joined): `--model` switches the
    model, the choices carried. Returns the flags that model does not take; OptionError for a value it lacks."""
    profile = profile_for(parsed.model or pending.model)
    options, not_taken = parsed.choose(profile, pending.options)
    pending.use(profile.name, options)
    pending.variants = parsed.variants or pending.variants
    return not_taken


def models_on_offer(services: Services) -> list[str] | None:
    """The models a prompt's `--model` may name: those offered when there are several; with one, `--model` is
    nobody's flag, as before there were models."""
    offered = services.settings.offered
    return offered if len(offered) > 1 else None


def option_error(exc: OptionError, lang: str | None, offered: list[str]) -> str:
    """The one sentence for a flag's bad value: the ratio, size, count or model it names, or a model's choice
    (`Seedream 4.5 has no --size “1K”`)."""
    valid, value = join_list(exc.valid, lang), exc.value or "?"
    if exc.model is None and exc.flag in _FLAG_KEYS:
        return t(_FLAG_KEYS[exc.flag], lang, value=value, valid=valid)
    named = [exc.model] if exc.model in PROFILES else [m for m in offered if _takes(m, exc.flag)]
    model = join_list([profile_for(m).label for m in named], lang)
    return t("bad_option", lang, model=model, flag=exc.flag, value=value, valid=valid)


def _takes(model: str, flag: str) -> bool:
    return any(f"--{name}" == flag for option in profile_for(model).options for name in option.flags)


_FLAG_KEYS = {"--ar": "bad_ratio", "--size": "bad_size", "--n": "bad_variants", "--model": "bad_model"}


async def when_whole(
    context: ContextTypes.DEFAULT_TYPE,
    services: Services,
    pending_id: str,
    source_text: str,
    *,
    improve: bool = False,
    at_once: bool = False,
) -> None:
    """A prompt in a message that may go on, once no next part joined it within the moment: it is whole."""
    await asyncio.sleep(SPLIT_WINDOW + 0.5)
    current = await services.requests.get(pending_id)
    if current is None or current.source_text != source_text:
        return  # generated already, or a next part joined and decides
    await prompt_whole(context, services, current, improve=improve, at_once=at_once, shown=True)


async def prompt_whole(
    context: ContextTypes.DEFAULT_TYPE,
    services: Services,
    pending: PendingRequest,
    *,
    improve: bool,
    at_once: bool,
    shown: bool = False,
    note: str | None = None,
) -> None:
    """A prompt the app split, whole now (its parts joined, or no next part came): translated as a whole (the
    user's switch), then queued at once when its flags chose everything, else its keyboard shows it (`shown`: it
    does already) and ✨ is asked for it when `--improve` was in it. `note`: a line of its own to show above it."""
    pending.source_text = pending.source_date = None
    words = pending.prompt
    note = "\n".join(line for line in (note, await translated(services, pending)) if line) or None
    if at_once and not improve:
        taken = await services.requests.take(pending.id)
        if taken is not None:
            taken.prompt, taken.original, taken.style = pending.prompt, pending.original, pending.style
            taken.use(pending.model, pending.options)
            if note:
                await reply(context, taken.origin, note)
            await submit(context, services, taken)
        return
    if shown and not note and pending.prompt == words:
        await services.requests.save(pending)  # nothing new to show: no longer a prompt that may go on
    else:
        await show_keyboard(context, services, pending, note)
    if improve:
        improve_later(context, services, pending)


async def measured(services: Services, references: list[Reference]) -> list[Reference]:
    """Pictures sent as files, measured (and refused when unusable) before anything is reserved."""
    return list(
        await asyncio.gather(*(services.references.measured(ref, number) for number, ref in enumerate(references, 1)))
    )


def unknown_note(unknown: tuple[str, ...], lang: str | None) -> str | None:
    return t("unknown_flags", lang, flags=", ".join(unknown)) if unknown else None


async def show_keyboard(
    context: ContextTypes.DEFAULT_TYPE, services: Services, pending: PendingRequest, note: str | None = None
) -> None:
    """The ratio/size/variants keyboard: in place of a status message when there is one, else as a reply.
    `note` (flags that are not ours) goes above it."""
    style = await services.styles.find(pending.origin, pending.style) if pending.style else None
    text, markup = choose_text(pending, services, style.pictures if style else ()), keyboard_of(pending, services)
    if note:
        text = f"{note}\n\n{text}"
    if pending.origin.inline_message_id is not None:  # the options in the inline message itself
        await edit_quietly(edit_inline(context.bot, pending.origin.inline_message_id, text, markup))
        await services.requests.save(pending)
        return
    if pending.message_id is not None:
        try:
            await context.bot.edit_message_text(
                text, chat_id=pending.origin.chat_id, message_id=pending.message_id, reply_markup=markup
            )
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():  # shown as it is already (a change past its first lines)
                pending.message_id = None
    if pending.message_id is None:
        pending.message_id = (await reply(context, pending.origin, text, markup)).message_id
    await services.requests.save(pending)


def keyboard_of(pending: PendingRequest, services: Services | None = None) -> InlineKeyboardMarkup:
    """The request's keyboard; with `services`, several models offered: the model row, its options and the cost;
    the prompt helper on: ✨ Improve, or ✓ Use it / ↩ Keep mine under a rewrite; the chosen style on 🎨."""
    offered = services.settings.offered if services is not None else []
    lang = pending.origin.lang
    return choice_keyboard(
        pending.id,
        pending.aspect_ratio,
        pending.size,
        lang,
        variants=pending.variants,
        keep_ratio=bool(pending.references),
        profile=profile_for(pending.model),
        extra=pending.extra,
        models=[profile_for(name) for name in offered],
        cost=services.quota.cost(pending.request) if services is not None and len(offered) > 1 else None,
        helper=services is not None and services.prompts is not None,
        suggestion=bool(pending.suggestion),
        style_label=services.styles.label(pending.style, lang) if services is not None and pending.style else None,
        variants_row=not pending.origin.inline,
    )


def keyboard_prompt(prompt: str) -> str:
    """At most a few short lines of the prompt, so the buttons stay on a phone's screen."""
    lines = prompt.splitlines()
    short = "\n".join(lines[:KEYBOARD_PROMPT_LINES])
    if len(short) > KEYBOARD_PROMPT_CHARS:
        short = short[: KEYBOARD_PROMPT_CHARS - 1].rstrip()
    return short + "…" if short != prompt else short


def choose_text(pending: PendingRequest, services: Services, style_pictures: tuple[str, ...] = ()) -> str:
    """The keyboard's text. `style_pictures`: the chosen style's or preset's, which join the request's own when it
    is made, so it is an edit of them all (counted once each)."""
    lang = pending.origin.lang
    label = services.styles.label(pending.style, lang) if pending.style else None
    count = len(pending.references) + sum(p not in pending.references for p in style_pictures)
    images = t("images_one", lang) if count == 1 else t("images_many", lang, count=count)
    if label and not pending.prompt:  # a preset chosen from /presets: its template is the whole prompt
        key = "choose_preset_edit" if count else "choose_preset"
        text = t(key, lang, label=label, name=pending.style, images=images)
        return for_requester(text, pending.origin.requester, lang)
    prompt = for_requester(keyboard_prompt(pending.prompt), pending.origin.requester, lang)
    if label:
        prompt = f"{prompt}\n{t('style_line', lang, label=label)}"
    if count:
        text = t("edit_choose", lang, prompt=prompt, images=images)
    else:
        text = t("choose", lang, prompt=prompt)
    if pending.original:
        text += "\n\n" + t("helper_translated", lang, original=keyboard_prompt(pending.original))
    if pending.suggestion:
        suggestion = pending.suggestion
        if len(suggestion) > SUGGESTION_CHARS:
            suggestion = suggestion[: SUGGESTION_CHARS - 1].rstrip() + "…"
        text += "\n\n" + t("helper_suggestion", lang, suggestion=suggestion)
    return text


async def translated(services: Services, pending: PendingRequest) -> str | None:
    """With the user's "translate my prompts to English" on, the prompt becomes the helper's translation (their
    words kept beside it for the keyboard and the caption). The one line to show when the helper failed (their
    words are used as written), else None."""
    if services.prompts is None or not (await services.prefs.get_prefs("user", pending.origin.user_id)).translate:
        return None
    lang = pending.origin.lang
    try:
        english = await services.prompts.translate(pending.origin, pending.id, pending.prompt)
    except HelperError as exc:
        return t("helper_failed_translate", lang, why=t(f"helper_why_{exc.kind}", lang))
    if english.strip() != pending.prompt.strip():
        pending.original, pending.prompt = pending.prompt, english[:MAX_PROMPT_CHARS]
    return None


def improve_later(context: ContextTypes.DEFAULT_TYPE, services: Services, pending: PendingRequest) -> bool:
    """✨ Improve or `--improve`: the helper is asked in a task of its own, so that nothing in this chat waits
    for it; the keyboard (already shown and saved) says so meanwhile. False when there is no helper."""
    if services.prompts is None:
        return False
    context.application.create_task(_improve(context, services, pending))
    return True


async def _improve(context: ContextTypes.DEFAULT_TYPE, services: Services, pending: PendingRequest) -> None:
    """The rewrite shown with ✓ Use it / ↩ Keep mine; or, when the helper gave none, one line saying so above
    the same keyboard. A request generated or cancelled meanwhile is left alone; so is one whose rewrite is being
    asked for already (a second tap, in any process): that call shows its own."""
    assert services.prompts is not None
    lang = pending.origin.lang
    english = (await services.prefs.get_prefs("user", pending.origin.user_id)).translate
    model = services.requests.image_model(pending)
    note = None

    async def working() -> None:
        await show_keyboard(context, services, pending, t("helper_working", lang))

    try:
        rewrite = await services.prompts.improve(
            pending.origin, pending.id, pending.prompt, model, english=english, claimed=working
        )
    except HelperBusy:  # that call shows its own answer
        return
    except HelperError as exc:
        note = t("helper_failed_improve", lang, why=t(f"helper_why_{exc.kind}", lang))
    else:
        if not await services.requests.set_suggestion(pending.id, rewrite[:MAX_PROMPT_CHARS]):
            return
    current = await services.requests.get(pending.id)
    if current is not None:
        await show_keyboard(context, services, current, note)


def unoffered_note(services: Services, pending: PendingRequest, style: Style) -> str | None:
    """The one line for a preset picked whose model this bot no longer offers (it is made with the usual one)."""
    model = services.requests.unoffered_model(pending.origin, style)
    if model is None:
        return None
    named = profile_for(model).label if model in PROFILES else model
    usual = profile_for(pending.model).label
    return t("style_model_unoffered", pending.origin.lang, name=style.name, model=named, usual=usual)


def too_many_text(exc: TooManyPictures, lang: str | None) -> str:
    """The model named as its keyboard row names it (🍌 Banana Pro)."""
    model = profile_for(exc.model).label if exc.model in PROFILES else exc.model
    return t("too_many_pictures", lang, style=exc.style, added=exc.added, own=exc.own, model=model, limit=exc.limit)


async def submit(
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
    except StyleGone as exc:
        await refuse(context, origin, t("style_gone", origin.lang, name=exc.name), pending.message_id)
        return False
    except TooManyPictures as exc:
        await refuse(context, origin, too_many_text(exc, origin.lang), pending.message_id)
        return False
    except QueueFull as exc:
        await refuse(context, origin, t("queue_full", origin.lang, limit=exc.limit), pending.message_id)
        return False
    except QuotaExceeded as exc:
        resets = resets_text(exc.resets_at, services.quota.now(), origin.lang)
        quota = services.quota
        request = pending.request
        costs = [quota.cost(request.with_options(size=s)) for s in request.profile.option("size").choices]
        cheaper = any(c < quota.cost(request) and c <= exc.left for c in costs)
        on_sale = services.purchases.on_sale and origin.user_id > 0  # a person's, not a channel's, credits
        hint = t("quota_hint_smaller" if cheaper else "quota_hint_buy" if on_sale else "quota_hint_admin", origin.lang)
        if exc.whose is Limit.CHAT:  # the chat's own credits are short: those figures are the chat's
            text = t("quota_exceeded", origin.lang, credits=exc.credits, left=exc.chat_left, resets=resets, hint=hint)
        elif origin.chat_id < 0:  # the person's own figures are theirs, not the group's to read
            text = t("quota_exceeded_group", origin.lang, name=origin.requester or "", credits=exc.credits, hint=hint)
        else:
            text = t("quota_exceeded", origin.lang, credits=exc.credits, left=exc.left, resets=resets, hint=hint)
        markup = None
        if on_sale:
            markup = shop_keyboard(origin.user_id, context.bot.username, origin.lang, private=origin.chat_id > 0)
        await refuse(context, origin, text, pending.message_id, markup)
        return False
    return True


async def offer_packs(context: ContextTypes.DEFAULT_TYPE, services: Services, origin: Origin) -> None:
    """The credit packs as buttons (/buy, 🛒, the deep link): in a private chat only, since invoices go to the
    person; elsewhere a button that opens the private chat on them."""
    purchases = services.purchases
    if not purchases.on_sale:
        purchases.log_nothing_to_buy(origin.user_id)
        await reply(context, origin, t("buy_nothing", origin.lang))
        return
    if origin.chat_id <= 0:  # a group or a channel
        markup = shop_keyboard(origin.user_id, context.bot.username, origin.lang, private=False)
        await reply(context, origin, t("buy_in_private", origin.lang), markup)
        return
    left = await purchases.purchased(origin.user_id)
    text = t("buy_choose", origin.lang, purchased=left)
    await reply(context, origin, text, packs_keyboard(purchases.packs, origin.lang))
