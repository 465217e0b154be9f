"""`/imagine` and its buttons: thin translation between Telegram updates and the job runner."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from ..delivery import Picture, Target, caption, safe_filename, send_document
from ..keyboards import Action, Callback, choice_keyboard
from ..options import MAX_PROMPT_CHARS, AspectRatio, ImageRequest, OptionError, Resolution, parse_prompt
from ..services import Services, get_services
from ..store import Job, Origin, PendingRequest, new_id, prefs_scope
from ..jobs import QueueFull, ShuttingDown
from ..quota import QuotaExceeded
from ..texts import resets_text, t
from . import history, settings
from .replies import may_act_for, origin_for, origin_of, reply, user_lang

log = logging.getLogger(__name__)

_COMMAND = re.compile(r"^/\S*\s*", re.DOTALL)
KEYBOARD_PROMPT_CHARS = 3000


def command_text(text: str | None) -> str:
    """What follows `/imagine` or `/imagine@bot`, newlines kept."""
    return _COMMAND.sub("", text or "", count=1).strip()


def prompt_from(update: Update) -> str:
    """The command's words; a reply adds the replied-to message's text or caption in front."""
    message = update.effective_message
    own = command_text(message.text or message.caption)
    quoted = message.reply_to_message
    quoted_text = (quoted.text or quoted.caption or "") if quoted else ""
    if quoted_text.startswith("/"):
        quoted_text = command_text(quoted_text)
    return "\n".join(part for part in (quoted_text.strip(), own) if part)


async def imagine(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services = get_services(context)
    origin = await origin_for(update, context)
    lang = origin.lang
    try:
        parsed = parse_prompt(prompt_from(update))
    except OptionError as exc:
        key = "bad_ratio" if exc.flag == "--ar" else "bad_size"
        await reply(context, origin, t(key, lang, value=exc.value or "?", valid=", ".join(exc.valid)))
        return
    if not parsed.prompt:
        await reply(context, origin, t("usage", lang))
        return
    if len(parsed.prompt) > MAX_PROMPT_CHARS:
        await reply(context, origin, t("prompt_too_long", lang, length=len(parsed.prompt), limit=MAX_PROMPT_CHARS))
        return
    settings = services.settings
    prefs = await services.store.get_prefs(*prefs_scope(origin))
    ratio = parsed.aspect_ratio or prefs.aspect_ratio or settings.default_aspect_ratio
    size = parsed.size or prefs.size or settings.default_size
    if parsed.aspect_ratio and parsed.size:
        await _submit(context, services, origin, ImageRequest(parsed.prompt, ratio, size))
        return
    await _show_keyboard(context, services, origin, parsed.prompt, ratio, size)


async def _show_keyboard(
    context: ContextTypes.DEFAULT_TYPE,
    services: Services,
    origin: Origin,
    prompt: str,
    ratio: AspectRatio,
    size: Resolution,
) -> None:
    pending = PendingRequest(new_id(), origin, prompt, ratio, size)
    message = await reply(context, origin, _choose_text(pending), choice_keyboard(pending.id, ratio, size, origin.lang))
    pending.message_id = message.message_id
    await services.store.add_pending(pending)


def _choose_text(pending: PendingRequest) -> str:
    prompt = pending.prompt
    if len(prompt) > KEYBOARD_PROMPT_CHARS:
        prompt = prompt[: KEYBOARD_PROMPT_CHARS - 1] + "…"
    return t("choose", pending.origin.lang, prompt=prompt)


async def _submit(
    context: ContextTypes.DEFAULT_TYPE,
    services: Services,
    origin: Origin,
    request: ImageRequest,
    status_message_id: int | None = None,
) -> bool:
    job = Job(new_id(), origin, request, status_message_id=status_message_id)
    try:
        await services.runner.submit(job)
    except ShuttingDown:
        await _tell(context, origin, t("busy_shutdown", origin.lang), status_message_id)
        return False
    except QueueFull as exc:
        await _tell(context, origin, t("queue_full", origin.lang, limit=exc.limit), status_message_id)
        return False
    except QuotaExceeded as exc:
        resets = resets_text(exc.report.resets_at, services.quota.now(), origin.lang)
        text = t("quota_exceeded", origin.lang, credits=exc.credits, left=exc.report.left, resets=resets)
        await _tell(context, origin, text, status_message_id)
        return False
    return True


async def _tell(context: ContextTypes.DEFAULT_TYPE, origin: Origin, text: str, message_id: int | None) -> None:
    """Say it in place of the keyboard when there is one, else as a reply."""
    if message_id is not None:
        try:
            await context.bot.edit_message_text(text, chat_id=origin.chat_id, message_id=message_id)
            return
        except BadRequest:
            pass
    await reply(context, origin, text)


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


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    answer = _Answer(update)
    try:
        await _dispatch(update, context, answer)
    finally:
        await answer()


async def _dispatch(update: Update, context: ContextTypes.DEFAULT_TYPE, answer: _Answer) -> None:
    query = update.callback_query
    services = get_services(context)
    lang = await user_lang(context, query.from_user)
    callback = Callback.decode(query.data)
    if callback is None:
        await answer(t("expired", lang))
        return
    if callback.action == Action.PREFS:
        await settings.on_prefs_button(update, context, callback, answer)
    elif callback.action in (Action.RATIO, Action.SIZE, Action.GENERATE, Action.DISMISS):
        await _on_pending(update, context, services, callback, answer)
    else:
        await _on_job(update, context, services, callback, answer)


async def _on_pending(update, context, services: Services, callback: Callback, answer: _Answer) -> None:  # noqa: ANN001
    query = update.callback_query
    lang = await user_lang(context, query.from_user)
    pending = await services.store.get_pending(callback.id)
    if pending is None:
        await answer(t("expired", lang))
        return
    if not await may_act_for(context, pending.origin, query.from_user.id):
        await answer(t("not_yours", lang))
        return
    if callback.action in (Action.RATIO, Action.SIZE):
        try:
            if callback.action == Action.RATIO:
                choice = AspectRatio.parse(callback.arg)
                changed, pending.aspect_ratio = choice != pending.aspect_ratio, choice
            else:
                choice = Resolution.parse(callback.arg)
                changed, pending.size = choice != pending.size, choice
        except ValueError:
            await answer(t("expired", lang))
            return
        await answer()
        if changed:
            await services.store.save_pending(pending)
            markup = choice_keyboard(pending.id, pending.aspect_ratio, pending.size, pending.origin.lang)
            try:
                await query.edit_message_reply_markup(markup)
            except BadRequest as exc:
                if "not modified" not in exc.message.lower():
                    raise
        return
    taken = await services.store.take_pending(pending.id)
    if taken is None:
        await answer(t("already_started", lang))
        return
    await answer()
    if callback.action == Action.DISMISS:
        await query.edit_message_text(t("cancelled_keyboard", lang))
        return
    request = ImageRequest(taken.prompt, taken.aspect_ratio, taken.size)
    await _submit(context, services, taken.origin, request, status_message_id=taken.message_id)


async def _on_job(update, context, services: Services, callback: Callback, answer: _Answer) -> None:  # noqa: ANN001
    query = update.callback_query
    lang = await user_lang(context, query.from_user)
    job = await services.store.get_job(callback.id)
    if job is None:
        await answer(t("expired", lang))
        return
    if not await may_act_for(context, job.origin, query.from_user.id):
        await answer(t("not_yours", lang))
        return
    here = dataclasses.replace(origin_of(update), user_id=job.origin.user_id, reply_to=query.message.message_id,
                               lang=lang)
    if callback.action == Action.CANCEL:
        cancelled = await services.runner.cancel(job.id)
        await answer(t("cancel_done", lang) if cancelled else t("expired", lang))
    elif callback.action == Action.AGAIN:
        await answer()
        await _submit(context, services, here, job.request)
    elif callback.action == Action.CHANGE:
        await answer()
        await _show_keyboard(context, services, here, job.request.prompt, job.request.aspect_ratio, job.request.size)
    elif callback.action == Action.ORIGINAL:
        await _send_original(context, services, job, here, answer)
    elif callback.action == Action.RESEND:
        target = Target(here.chat_id, here.thread_id, here.reply_to)
        await answer()
        if not await history.resend(context, job, target, lang):
            await reply(context, here, t("resend_gone", lang))


async def _send_original(context, services: Services, job: Job, here: Origin, answer: _Answer) -> None:  # noqa: ANN001
    lang = here.lang
    path = services.originals.find(job.id)
    if path is None:
        await answer(t("original_gone", lang), alert=True)
        return
    await answer(t("original_sent", lang))
    data = await asyncio.to_thread(path.read_bytes)
    request = job.request
    extension = path.suffix.lstrip(".")
    picture = Picture(data, job.width or 0, job.height or 0, "",
                      safe_filename(request.prompt, request.aspect_ratio, request.size, extension))
    details = f"{request.label} · {job.width}×{job.height}" if job.width else request.label
    await send_document(context.bot, Target(here.chat_id, here.thread_id, here.reply_to), picture,
                        caption(request.prompt, details))
