"""What a result's buttons do: 🔁 Again, 📐 Change, ⬆ a larger size, 📄 the original file, and 📤 (under /history)
a result sent again from Telegram's copy."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import cast

from telegram import InputMediaDocument, InputMediaPhoto, Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from ..delivery import MB, ImageFile, album_details, caption, details_line, safe_filename, send_document
from ..inline_messages import original_link
from ..keyboards import RESULT_ACTIONS, Action, Callback, album_keyboard, result_keyboard
from ..menus import Command
from ..models import Job, JobStatus, Origin, PendingRequest, new_id
from ..options import Resolution
from ..presentation.finisher import shown_prompt
from ..services import Services, get_services
from ..targets import Target, send_kwargs
from ..texts import t
from .dialogue import show_keyboard, submit
from .replies import Answer, pressed_job, reply, send_original_privately, user_lang


async def on_result(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    answer = Answer(update)
    try:
        query = update.callback_query
        assert query is not None  # a CallbackQueryHandler's update
        lang = await user_lang(context, query.from_user)
        callback = Callback.decode(query.data)
        assert callback is not None  # its pattern let only our own data through
        pressed = await pressed_job(update, context, callback.id, answer, lang)
        if pressed is None:
            return
        job, here = pressed
        services = get_services(context)
        again = PendingRequest(
            new_id(),
            here,
            job.request.prompt,
            job.request.aspect_ratio,
            job.request.size,
            references=tuple(r for r in job.references if not job.style or r not in job.style.pictures),
            variants=job.variants,
            style=job.style.name if job.style else None,  # its pictures come back with it at submit
            original=job.original_prompt,  # the user's own words, when the prompt is the helper's translation
        )
        again.use(job.request.model, dict(job.request.options))
        if callback.action == Action.AGAIN:
            await answer()
            await submit(context, services, again, upscale_of=job.upscale_of)
        elif callback.action == Action.CHANGE:
            await answer()
            await show_keyboard(context, services, again)
        elif callback.action == Action.UPSCALE:
            await _upscale(context, services, job, again, callback.arg, answer)
        elif callback.action == Action.ORIGINAL:
            await _send_original(context, services, job, here, answer)
        elif callback.action == Action.RESEND:
            await answer()
            if not await resend(context, job, Target.of(here), lang):
                await reply(context, here, t("resend_gone", lang))
    finally:
        await answer()


async def _upscale(
    context: ContextTypes.DEFAULT_TYPE,
    services: Services,
    job: Job,
    again: PendingRequest,
    size_arg: str,
    answer: Answer,
) -> None:
    """The same picture at a larger size: an edit with that result as the only reference."""
    lang = again.origin.lang
    try:
        size = Resolution.parse(size_arg)
        if size.value not in job.request.profile.option("size").choices:  # a size its model does not make
            raise ValueError(size_arg)
    except ValueError:
        await answer(t("expired", lang))
        return
    if await services.originals.fetch(job.id) is None:
        await answer(t("original_gone", lang), alert=True)
        return
    await answer()
    upscale = dataclasses.replace(again, size=size, references=(f"job:{job.id}",), variants=1)
    await submit(context, services, upscale, upscale_of=job.id)


async def _send_original(
    context: ContextTypes.DEFAULT_TYPE, services: Services, job: Job, here: Origin, answer: Answer
) -> None:
    lang = here.lang
    if here.inline:  # no chat to send it to but the requester's own
        sent = await send_original_privately(context, job, here.user_id)
        if sent is None:
            await answer(t("original_gone", lang), alert=True)
        elif sent:
            await answer(t("original_sent_private", lang))
        else:  # not started yet: Telegram opens the private chat, whose Start sends it (see handlers/inline.py)
            await answer(url=original_link(context.bot.username, job.id))
        return
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
    picture = ImageFile(path, size, job.width or 0, job.height or 0, name)
    label = f"{request.profile.label} · {request.label}" if _named(services) else request.label
    details = f"{label} · {job.width}×{job.height}" if job.width else label
    uploads = services.uploads
    note = t("original_as_jpeg", lang, limit=uploads.max_bytes // MB)
    async with uploads.heavy if uploads.too_big(picture) else contextlib.nullcontext():  # made to fit: a bitmap
        await send_document(
            context.bot,
            Target.of(here),
            picture,
            caption(shown_prompt(job), details),
            uploads=uploads,
            jpeg_caption=caption(shown_prompt(job), f"{details}\n{note}"),
        )


async def resend(context: ContextTypes.DEFAULT_TYPE, job: Job, target: Target, lang: str | None) -> bool:
    """Send a finished result again from Telegram's copy, with the buttons it had (⬆ included); False when
    nothing is stored. A request of variants comes back as its album."""
    members = [job]
    if job.group_id:
        members = await get_services(context).queue.request_jobs(job.group_id)
    stored = [m for m in members if m.status == JobStatus.DONE and (m.photo_file_id or m.document_file_id)]
    if not stored:
        return False
    if len(stored) == 1:
        return await _resend_one(context, stored[0], target, lang)
    media = [
        InputMediaPhoto(m.photo_file_id) if m.photo_file_id else InputMediaDocument(cast(str, m.document_file_id))
        for m in stored  # each has a photo or a document
    ]
    if len({type(item) for item in media}) > 1:  # an album is photos or documents, never both
        for member in stored:
            await _resend_one(context, member, target, lang)
        return True
    details = album_details(stored, named=_named(get_services(context)))
    media[0] = type(media[0])(media[0].media, caption=caption(shown_prompt(stored[0]), details))
    await context.bot.send_media_group(media=media, **send_kwargs(target))
    markup = album_keyboard(
        [m.id for m in stored],
        lang,
        with_originals=not stored[0].document_file_id,
        size=Resolution.smallest(m.size_made for m in stored),
        tiers=stored[0].request.profile.option("size").choices,
    )
    await context.bot.send_message(text=f"🎨 ×{len(stored)} · {details}", reply_markup=markup, **send_kwargs(target))
    return True


async def _resend_one(context: ContextTypes.DEFAULT_TYPE, job: Job, target: Target, lang: str | None) -> bool:
    named = _named(get_services(context))
    label = f"{job.request.profile.label} · {job.request.label}" if named else job.request.label
    text = caption(shown_prompt(job), details_line(job, named=named) if job.width else label)
    tiers = job.request.profile.option("size").choices
    if job.photo_file_id:
        markup = result_keyboard(job.id, lang, with_original=not job.document_file_id, size=job.size_made, tiers=tiers)
        await context.bot.send_photo(photo=job.photo_file_id, caption=text, reply_markup=markup, **send_kwargs(target))
        return True
    if job.document_file_id:
        markup = result_keyboard(job.id, lang, with_original=False, size=job.size_made, tiers=tiers)
        await context.bot.send_document(
            document=job.document_file_id, caption=text, reply_markup=markup, **send_kwargs(target)
        )
        return True
    return False


def _named(services: Services) -> bool:
    """Several models are offered: a result's details name its model."""
    return len(services.settings.offered) > 1


COMMANDS: list[Command] = []
HANDLERS = [CallbackQueryHandler(on_result, pattern=Callback.matching(*RESULT_ACTIONS))]
