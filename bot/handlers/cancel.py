"""Stopping a request: `/cancel` (the newest unfinished one, or `all`), and ✖ Cancel on a status line."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from ..keyboards import Action, Callback
from ..menus import Command
from ..models import Job
from ..services import get_services
from ..texts import t
from .dialogue import keyboard_prompt
from .replies import Answer, display_name, origin_for, pressed_job, reply, user_lang


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/cancel` stops the user's newest unfinished job; `/cancel all` stops all of them."""
    origin = await origin_for(update, context)
    queue = get_services(context).queue
    jobs = await queue.user_jobs(origin.user_id)
    if not jobs:
        await reply(context, origin, t("nothing_to_cancel", origin.lang))
        return
    everything = (context.args or [""])[0].lower() == "all"
    requests: dict[str, Job] = {}  # the variants of one request are cancelled (and told) as one
    for job in jobs if everything else jobs[:1]:
        if job.group not in requests and await queue.cancel(job.id):
            requests[job.group] = job
    # Said here, in the chat: the status line that also says it may be far up.
    if len(requests) == 1:
        (job,) = requests.values()
        text = t("cancelled_one", origin.lang, label=job.request.label, prompt=keyboard_prompt(job.request.prompt))
    elif requests:
        text = t("cancelled_many", origin.lang, count=len(requests))
    else:
        text = t("nothing_to_cancel", origin.lang)
    await reply(context, origin, text)


async def on_cancel_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """✖ Cancel under a status line: its requester, or a chat admin (then the chat hears who cancelled whose)."""
    answer = Answer(update)
    try:
        query = update.callback_query
        assert query is not None  # a CallbackQueryHandler's update
        callback = Callback.decode(query.data)
        assert callback is not None  # its pattern let only our own data through
        lang = await user_lang(context, query.from_user)
        pressed = await pressed_job(update, context, callback.id, answer, lang)
        if pressed is None:
            return
        job, here = pressed
        cancelled = await get_services(context).queue.cancel(job.id)
        await answer(t("cancel_done", lang) if cancelled else t("expired", lang))
        if cancelled and job.origin.requester and query.from_user.id != job.origin.user_id:  # an admin: say who
            await reply(
                context,
                here,
                t(
                    "cancelled_by",
                    job.origin.lang,
                    by=display_name(query.from_user),
                    name=job.origin.requester,
                    label=job.label,
                    prompt=keyboard_prompt(job.request.prompt),
                ),
            )
    finally:
        await answer()


COMMANDS = [Command("cancel", cancel, private=3, group=3)]
HANDLERS = [CallbackQueryHandler(on_cancel_button, pattern=Callback.matching(Action.CANCEL))]
