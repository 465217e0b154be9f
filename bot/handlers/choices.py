"""The keyboard's choices: a ratio, a size, ×1/×2/×4, 🖼 Keep ratio and (several models offered) a model or a
model's own option move the ✓; 🆕 drops the pictures; ✨ Generate submits; ✖ Cancel folds the keyboard away and ↩
brings it back."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from telegram import Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from ..imagemodels import profile_for
from ..keyboards import KEYBOARD_ACTIONS, Action, Callback, reopen_keyboard
from ..menus import Command
from ..models import PendingRequest
from ..options import VARIANT_CHOICES, AspectRatio, Resolution, closest_ratio
from ..references import Reference, UnusableReference
from ..request_service import TooManyPictures, with_pictures
from ..services import Services, get_services
from ..texts import t
from .dialogue import SPLIT_WINDOW, keyboard_of, keyboard_prompt, show_keyboard, submit, too_many_text, translated
from .replies import Answer, edit_pressed, edit_quietly, may_press, reply, user_lang

WHOLE_POLL = 0.2  # seconds between looks at a long prompt tapped ✨ Generate on, until it is whole
WHOLE_MARGIN = 3.0  # seconds past the moment and the helper's deadline after which it is made whole at the tap


async def on_choice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    answer = Answer(update)
    try:
        query = update.callback_query
        assert query is not None  # a CallbackQueryHandler's update
        callback = Callback.decode(query.data)
        assert callback is not None  # its pattern let only our own data through
        lang = await user_lang(context, query.from_user)
        await _on_pending(update, context, callback, answer, lang)
    finally:
        await answer()


async def _on_pending(
    update: Update, context: ContextTypes.DEFAULT_TYPE, callback: Callback, answer: Answer, lang: str | None
) -> None:
    query = update.callback_query
    assert query is not None  # a CallbackQueryHandler's update
    services = get_services(context)
    pending = await services.requests.get(callback.id)
    if pending is None and callback.action == Action.GENERATE:  # a second tap, or a keyboard left on a client
        await answer(t("being_made", lang) if await _being_made(services, update) else t("gone_request", lang))
        return
    if not await may_press(context, answer, lang, pending, query.from_user.id):
        return
    assert pending is not None  # may_press answered for one gone
    if callback.action == Action.GENERATE:
        if pending.source_text is not None:  # a long prompt that may go on: generated once whole, never half
            await answer()
            context.application.create_task(_generate_whole(context, services, pending.id))
            return
        taken = await services.requests.take(pending.id)
        if taken is None:
            await answer(t("already_started", lang))
            return
        await answer()
        await submit(context, services, taken)
        return
    if callback.action == Action.DISMISS:  # the request stays, so ↩ brings it back with its prompt
        await answer()
        text = t("cancelled_keyboard", lang, prompt=keyboard_prompt(pending.prompt))
        await edit_pressed(context, update, text, reopen_keyboard(pending.id, lang))
        return
    if callback.action in (Action.REOPEN, Action.DROP_PICTURES):
        note = None
        if callback.action == Action.DROP_PICTURES:
            dropped, note = await _drop_pictures(services, pending, lang)
            if not dropped:
                await answer(note, alert=True)
                return
        await answer()
        pending.message_id = query.message.message_id if query.message else pending.message_id
        await show_keyboard(context, services, pending, note)
        return
    before = dataclasses.replace(pending)
    try:
        if callback.action == Action.RATIO:
            pending.aspect_ratio = AspectRatio.parse(callback.arg)
        elif callback.action == Action.SIZE:
            pending.size = Resolution.parse(callback.arg)
        elif callback.action == Action.MODEL:
            if not await _switch_model(services, pending, callback.arg, answer, lang):
                return
        elif callback.action == Action.MODEL_OPTION:
            name, _, choice = callback.arg.partition(".")
            pending.extra = {**pending.extra, name: profile_for(pending.model).option(name).parse(choice)}
        elif callback.action == Action.VARIANTS:
            if int(callback.arg) not in VARIANT_CHOICES:
                raise ValueError(callback.arg)
            pending.variants = int(callback.arg)
        else:
            pending.aspect_ratio = await _reference_ratio(services, pending)
        profile_for(pending.model).resolve(pending.options)  # a ratio or size its model does not have: ValueError
    except (ValueError, KeyError):  # a choice this model (or this version) does not have: an old keyboard
        await answer(t("expired", lang))
        return
    await answer()
    if pending != before:
        await services.requests.save(pending)
        await edit_quietly(query.edit_message_reply_markup(keyboard_of(pending, services)))


async def _generate_whole(context: ContextTypes.DEFAULT_TYPE, services: Services, pending_id: str) -> None:
    """✨ Generate on a long prompt before a next part could join it: once the moment is over and it is whole (its
    parts joined, translated when the user's switch says so, by whichever process has it), it is generated. Its own
    task, so the chat's next part is not held behind this tap. Should no process make it whole in time (one
    stopped), it is made whole here: translated now."""
    wait = SPLIT_WINDOW + 0.5 + services.settings.prompt_helper_timeout + WHOLE_MARGIN
    current, deadline = await services.requests.get(pending_id), time.monotonic() + wait
    while current is not None and current.source_text is not None and time.monotonic() < deadline:
        await asyncio.sleep(WHOLE_POLL)
        source = current.source_text
        current = await services.requests.get(pending_id)
        if current is not None and current.source_text not in (None, source):  # a next part joined: it may go on
            deadline = time.monotonic() + wait
    if current is None:
        return  # queued once whole (its flags chose everything), or taken by another tap
    taken = await services.requests.take(pending_id)
    if taken is None:
        return
    if taken.source_text is not None:
        taken.source_text = taken.source_date = None
        if note := await translated(services, taken):
            await reply(context, taken.origin, note)
    await submit(context, services, taken)


async def _drop_pictures(services: Services, pending: PendingRequest, lang: str | None) -> tuple[bool, str | None]:
    """🆕 promises a new image: the request's own pictures go, and a style or preset that brings pictures of its
    own is set aside too (else it would still be an edit of them), said in a line above the keyboard. With no words
    of the user's, nothing of theirs would be left (a picture-less style's template would be made alone): nothing
    changes, and the line says why (False)."""
    style = await services.styles.find(pending.origin, pending.style) if pending.style else None
    label = services.styles.label(style.name, lang) if style is not None else ""
    if not pending.prompt:
        if style is None:
            return False, t("drop_pictures_nothing_left", lang)
        return False, t("drop_pictures_no_words" if style.pictures else "drop_pictures_no_words_own", lang, label=label)
    note = None
    if style is not None and style.pictures:
        pending.style = None
        note = t("drop_pictures_style_off", lang, label=label)
    pending.references, pending.ref_width, pending.ref_height, pending.album_id = (), None, None, None
    return True, note


async def _switch_model(
    services: Services, pending: PendingRequest, name: str, answer: Answer, lang: str | None
) -> bool:
    """The request for another model on offer, its choices carried to that model's closest (16:9 stays 16:9; 1K
    where there is no 1K becomes the smallest size). A model that takes fewer pictures than the request has is
    refused in the callback's answer, and nothing changes; so is one that takes fewer than the request's and its
    style's pictures together (an alert naming the model and the counts, as picking that style would), so that
    ✨ Generate never meets a limit the keyboard let through."""
    if name not in services.settings.offered:
        raise ValueError(name)
    profile = profile_for(name)
    most = profile.max_references()
    if len(pending.references) > most:
        await answer(t("model_refs_too_many", lang, model=profile.label, limit=most, count=len(pending.references)))
        return False
    style = await services.styles.find(pending.origin, pending.style) if pending.style else None
    if style is not None:
        try:
            with_pictures(pending.references, style, name)
        except TooManyPictures as exc:
            await answer(too_many_text(exc, lang), alert=True)
            return False
    pending.use(name, pending.options)
    return True


async def _being_made(services: Services, update: Update) -> bool:
    """Is this keyboard message already the status line of a job? (A second tap on Generate after the first.)"""
    query = update.callback_query
    assert query is not None  # a CallbackQueryHandler's update
    message = query.message
    if message is None:
        return False
    owners = {query.from_user.id, message.chat.id}  # a user, or a channel speaking as itself
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
    assert pending.ref_width and pending.ref_height  # measured() gives a picture's size or raises
    return closest_ratio(pending.ref_width, pending.ref_height)


COMMANDS: list[Command] = []
HANDLERS = [CallbackQueryHandler(on_choice, pattern=Callback.matching(*KEYBOARD_ACTIONS))]
