"""The request dialogue, shared by the intake, the keyboard's choices and the results: a request started (its words
and pictures checked), its keyboard shown, and submitted. Registers no handler of its own: like `replies.py`, the
handler modules may import it.
"""

from __future__ import annotations

import asyncio

from telegram import InlineKeyboardMarkup, Message
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from ..inline_messages import edit_inline
from ..jobs.queue import QueueFull, ShuttingDown
from ..keyboards import choice_keyboard
from ..models import Origin, PendingRequest
from ..options import MAX_PROMPT_CHARS, OptionError, Resolution, parse_prompt
from ..quota import QuotaExceeded
from ..references import MAX_REFERENCES, Reference, UnusableReference, check
from ..services import Services
from ..texts import for_requester, join_list, resets_text, t
from .replies import edit_quietly, refuse, reply, tell

# The keyboard message repeats the prompt only as far as a phone shows it above the buttons.
KEYBOARD_PROMPT_CHARS = 200
KEYBOARD_PROMPT_LINES = 3
# Telegram's apps split a text over 4,096 characters into several messages, sent within a moment of each other.
SPLIT_NEAR = 4000  # a message this long may have a next part
SPLIT_WINDOW = 2.0  # seconds between their dates (whole seconds) for the next part to join it


async def start(
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
        await tell(
            context, origin, t(key, lang, value=exc.value or "?", valid=join_list(exc.valid, lang)), status_message_id
        )
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
        references = await measured(services, references)
    except UnusableReference as exc:
        text = t(f"error_reference_{exc.kind}", lang, number=exc.number, name=exc.name)
        await tell(context, origin, text, status_message_id)
        return
    pending = await services.requests.start(origin, parsed, references, status_message_id)
    note = unknown_note(parsed.unknown, lang)
    raw = source.text if source is not None and source.text else ""
    may_go_on = len(raw) > SPLIT_NEAR
    if may_go_on:
        pending.source_text, pending.source_date = raw, source.date.timestamp()
    if parsed.aspect_ratio and parsed.size and not may_go_on:
        if note:
            await reply(context, origin, note)
        await submit(context, services, pending)
        return
    await show_keyboard(context, services, pending, note)
    if parsed.aspect_ratio and parsed.size:
        context.application.create_task(submit_when_whole(context, services, pending.id, raw))


async def submit_when_whole(
    context: ContextTypes.DEFAULT_TYPE, services: Services, pending_id: str, source_text: str
) -> None:
    """Flags that start an image at once, in a message that may go on: start it once no next part joined."""
    await asyncio.sleep(SPLIT_WINDOW + 0.5)
    current = await services.requests.get(pending_id)
    if current is None or current.source_text != source_text:
        return  # generated already, or a next part joined and decides
    taken = await services.requests.take(pending_id)
    if taken is not None:
        await submit(context, services, taken)


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
    text, markup = choose_text(pending), keyboard_of(pending)
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
        except BadRequest:
            pending.message_id = None
    if pending.message_id is None:
        pending.message_id = (await reply(context, pending.origin, text, markup)).message_id
    await services.requests.save(pending)


def keyboard_of(pending: PendingRequest) -> InlineKeyboardMarkup:
    return choice_keyboard(
        pending.id,
        pending.aspect_ratio,
        pending.size,
        pending.origin.lang,
        variants=pending.variants,
        keep_ratio=bool(pending.references),
        variants_row=not pending.origin.inline,
    )


def keyboard_prompt(prompt: str) -> str:
    """At most a few short lines of the prompt, so the buttons stay on a phone's screen."""
    lines = prompt.splitlines()
    short = "\n".join(lines[:KEYBOARD_PROMPT_LINES])
    if len(short) > KEYBOARD_PROMPT_CHARS:
        short = short[: KEYBOARD_PROMPT_CHARS - 1].rstrip()
    return short + "…" if short != prompt else short


def choose_text(pending: PendingRequest) -> str:
    lang = pending.origin.lang
    prompt = for_requester(keyboard_prompt(pending.prompt), pending.origin.requester, lang)
    if pending.references:
        count = len(pending.references)
        images = t("images_one", lang) if count == 1 else t("images_many", lang, count=count)
        return t("edit_choose", lang, prompt=prompt, images=images)
    return t("choose", lang, prompt=prompt)


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
            text = t("quota_exceeded_group", origin.lang, name=origin.requester or "", credits=exc.credits, hint=hint)
        else:  # in a group, the chat's own credits are what is short: those figures are the group's
            left = chat_left if origin.chat_id < 0 else report.left
            text = t("quota_exceeded", origin.lang, credits=exc.credits, left=left, resets=resets, hint=hint)
        await refuse(context, origin, text, pending.message_id)
        return False
    return True
