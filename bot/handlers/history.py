"""/history: every request a user made in a chat for as long as its original is kept (ORIGINALS_MAX_AGE_HOURS),
five a page; what made no image on pages of its own, so failures never push a success out. Its 📤 and 🔁 buttons
are a result's (`results.py`): sent again by file id, or made anew."""

from __future__ import annotations

import time

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from ..failures import label_key
from ..keyboards import Action, Callback, history_keyboard
from ..menus import Command
from ..models import Job, JobStatus, Origin
from ..services import get_services
from ..texts import t
from .replies import edit_quietly, may_act_for, origin_for, reply, user_lang

PAGE_SIZE = 5
MADE, NOT_MADE = "d", "f"  # the two lists a page belongs to (callback data)
LINE_PROMPT_CHARS = 60
ICONS = {
    JobStatus.DONE: "✅",
    JobStatus.FAILED: "⚠️",
    JobStatus.CANCELLED: "✖",
    JobStatus.QUEUED: "⏳",
    JobStatus.RUNNING: "🎨",
    JobStatus.MADE: "📤",  # made, being sent
}


def requests_of(jobs: list[Job]) -> list[list[Job]]:
    """Jobs (newest first) → requests, each its jobs in variant order, newest request first."""
    grouped: dict[str, list[Job]] = {}
    for job in jobs:
        grouped.setdefault(job.group, []).append(job)
    return [sorted(members, key=lambda j: j.variant) for members in grouped.values()]


def _status(jobs: list[Job]) -> JobStatus:
    """A request is done when any of its images arrived; else running, waiting, failed or cancelled."""
    statuses = {job.status for job in jobs}
    for status in (JobStatus.DONE, JobStatus.MADE, JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.FAILED):
        if status in statuses:
            return status
    return JobStatus.CANCELLED


def _prompt(jobs: list[Job]) -> str:
    """Its words on one line: the user's own, then the translation made from them (the prompt helper's)."""
    lead = jobs[0]
    prompt = f"{lead.original_prompt} 🌐 {lead.request.prompt}" if lead.original_prompt else lead.request.prompt
    prompt = prompt.replace("\n", " ")
    return prompt if len(prompt) <= LINE_PROMPT_CHARS else prompt[: LINE_PROMPT_CHARS - 1] + "…"


def _label(jobs: list[Job], lang: str | None, named: bool = False) -> str:
    """`16:9 · 2K · ×4` (`named`, several models offered: `GPT Image 2 · 16:9 · 2K · medium · ×4`), named an edit
    or an upscale when it is one, and how many arrived when not all did."""
    lead = jobs[0]
    label = lead.request.label + (f" · ×{len(jobs)}" if len(jobs) > 1 else "")
    if named:
        label = f"{lead.request.profile.label} · {label}"
    if lead.style:
        label = f"🎨 {lead.style.label} · {label}"
    if lead.upscale_of:
        label = f"{t('history_upscale', lang)} · {label}"
    elif lead.references:
        label = f"{t('history_edit', lang)} · {label}"
    done = sum(job.status == JobStatus.DONE for job in jobs)
    if 0 < done < len(jobs):
        label += " · " + t("variants_ready", lang, ready=done, total=len(jobs))
    return label


def _icon(jobs: list[Job]) -> str:
    status = _status(jobs)
    if status == JobStatus.DONE and jobs[0].upscale_of:
        return "⬆"
    if status == JobStatus.DONE and jobs[0].references:
        return "🖌"
    return ICONS[status]


def _why(jobs: list[Job], lang: str | None) -> str:
    """Why a request made nothing, in the words /stats uses."""
    failed = next((job for job in jobs if job.status == JobStatus.FAILED), None)
    if failed is None:
        return t("history_cancelled", lang)
    return t(label_key(failed.error_kind), lang)


async def history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    origin = await origin_for(update, context)
    text, markup = await history_page(context, origin.user_id, origin.chat_id, origin.lang, MADE, 0)
    await reply(context, origin, text, markup)


async def on_history_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """◀ ▶ and the switch between made and not made: the page in place of the list. Its owner (or a chat admin)
    may turn it."""
    query = update.callback_query
    assert query is not None  # a CallbackQueryHandler's update
    lang = await user_lang(context, query.from_user)
    callback = Callback.decode(query.data)
    assert callback is not None  # its pattern let only our own data through
    message = query.message
    try:
        owner, kind, page = int(callback.id), callback.arg[:1], int(callback.arg[1:])
    except (AttributeError, ValueError):
        owner, kind, page = 0, "", -1
    if kind not in (MADE, NOT_MADE) or page < 0 or message is None or not message.is_accessible:
        await query.answer(t("expired", lang))
        return
    if not await may_act_for(context, Origin(message.chat.id, owner), query.from_user.id):
        await query.answer(t("not_yours", lang))
        return
    await query.answer()
    text, markup = await history_page(context, owner, message.chat.id, lang, kind, page)
    await edit_quietly(query.edit_message_text(text, reply_markup=markup))


async def history_page(
    context: ContextTypes.DEFAULT_TYPE, user_id: int, chat_id: int, lang: str | None, kind: str, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """One page of made (`MADE`, with what is still in progress on the first) or not-made requests."""
    services = get_services(context)
    past, hours = services.history, services.settings.originals_max_age_hours
    named = len(services.settings.offered) > 1
    since, made = time.time() - hours * 3600, kind == MADE
    total, requests = await past.history(user_id, chat_id, since, made=made, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    if total and not requests:  # past the end (the list shrank since it was shown): its last page
        page = (total - 1) // PAGE_SIZE
        total, requests = await past.history(
            user_id, chat_id, since, made=made, offset=page * PAGE_SIZE, limit=PAGE_SIZE
        )
    others, _ = await past.history(user_id, chat_id, since, made=not made, offset=0, limit=0)
    running = []
    if made and page == 0:
        running = requests_of([j for j in await services.queue.user_jobs(user_id) if j.origin.chat_id == chat_id])
    if not (total or others or running):
        return t("history_empty", lang), None
    pages = max(1, -(-total // PAGE_SIZE))
    first = page * PAGE_SIZE + 1
    if made:
        title = (
            t("history_made", lang, count=total, hours=hours, page=page + 1, pages=pages)
            if total
            else t("history_none_made", lang, hours=hours)
        )
    else:
        title = t("history_not_made", lang, count=total, hours=hours, page=page + 1, pages=pages)
    lines = [title]
    for number, jobs in enumerate(requests, start=first):
        values = {"n": number, "icon": _icon(jobs), "label": _label(jobs, lang, named), "prompt": _prompt(jobs)}
        lines.append(
            t("history_line", lang, **values)
            if made
            else t("history_line_not_made", lang, why=_why(jobs, lang), **values)
        )
    if running:
        lines += ["", t("history_running", lang)]
        lines += [
            t("history_running_line", lang, icon=_icon(jobs), label=_label(jobs, lang, named), prompt=_prompt(jobs))
            for jobs in running
        ]
    switch = t("history_not_made_button" if made else "history_made_button", lang, count=others)
    markup = history_keyboard(
        requests,
        first,
        lang,
        owner=user_id,
        kind=kind,
        page=page,
        pages=pages,
        switch=(NOT_MADE if made else MADE, switch) if others or not made else None,
    )
    return "\n".join(lines), markup


COMMANDS = [Command("history", history, private=5, group=4)]
HANDLERS = [CallbackQueryHandler(on_history_button, pattern=Callback.matching(Action.HISTORY_PAGE))]
