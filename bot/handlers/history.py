"""/history: the user's last requests in this chat, to send again (by file id, no new generation) or redo."""

from __future__ import annotations

from telegram import InputMediaDocument, InputMediaPhoto, Update
from telegram.ext import ContextTypes

from ..delivery import album_details, caption, details_line, send_kwargs
from ..keyboards import album_keyboard, history_keyboard, result_keyboard
from ..models import Job, JobStatus, Target
from ..options import Resolution
from ..services import get_services
from ..texts import t
from .replies import origin_for, reply

HISTORY_SIZE = 10
# Jobs read to find HISTORY_SIZE requests: a request of ×4 variants is four jobs.
HISTORY_JOBS = HISTORY_SIZE * 4
LINE_PROMPT_CHARS = 60
ICONS = {
    JobStatus.DONE: "✅",
    JobStatus.FAILED: "⚠️",
    JobStatus.CANCELLED: "✖",
    JobStatus.QUEUED: "⏳",
    JobStatus.RUNNING: "🎨",
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
    for status in (JobStatus.DONE, JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.FAILED):
        if status in statuses:
            return status
    return JobStatus.CANCELLED


def _line(number: int, jobs: list[Job], lang: str | None) -> str:
    request = jobs[0].request
    prompt = request.prompt.replace("\n", " ")
    if len(prompt) > LINE_PROMPT_CHARS:
        prompt = prompt[: LINE_PROMPT_CHARS - 1] + "…"
    label = request.label + (f" · ×{len(jobs)}" if len(jobs) > 1 else "")
    return t("history_line", lang, n=number, icon=ICONS[_status(jobs)], label=label, prompt=prompt)


async def history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """One line per request: finished images under the title, what is still running and what was not made apart."""
    services = get_services(context)
    origin = await origin_for(update, context)
    lang = origin.lang
    jobs = await services.store.history(origin.user_id, origin.chat_id, HISTORY_JOBS)
    requests = requests_of(jobs)[:HISTORY_SIZE]
    if not requests:
        await reply(context, origin, t("history_empty", lang))
        return
    sections = {
        "history_title": [r for r in requests if _status(r) == JobStatus.DONE],
        "history_running": [r for r in requests if not _status(r).final],
        "history_others": [r for r in requests if _status(r) in (JobStatus.FAILED, JobStatus.CANCELLED)],
    }
    lines: list[str] = []
    listed: list[list[Job]] = []
    for title, members in sections.items():
        if not members:
            continue
        lines += ([""] if lines else []) + [t(title, lang)]
        for request in members:
            listed.append(request)
            lines.append(_line(len(listed), request, lang))
    await reply(context, origin, "\n".join(lines), history_keyboard(listed, lang))


async def resend(context: ContextTypes.DEFAULT_TYPE, job: Job, target: Target, lang: str | None) -> bool:
    """Send a finished result again from Telegram's copy, with the buttons it had (⬆ included); False when
    nothing is stored. A request of variants comes back as its album."""
    members = [job]
    if job.group_id:
        members = await get_services(context).store.group_jobs(job.group_id)
    stored = [m for m in members if m.status == JobStatus.DONE and (m.photo_file_id or m.document_file_id)]
    if not stored:
        return False
    if len(stored) == 1:
        return await _resend_one(context, stored[0], target, lang)
    media = [InputMediaPhoto(m.photo_file_id) if m.photo_file_id else InputMediaDocument(m.document_file_id)
             for m in stored]
    if len({type(item) for item in media}) > 1:  # an album is photos or documents, never both
        for member in stored:
            await _resend_one(context, member, target, lang)
        return True
    details = album_details(stored)
    media[0] = type(media[0])(media[0].media, caption=caption(stored[0].request.prompt, details))
    await context.bot.send_media_group(media=media, **send_kwargs(target))
    markup = album_keyboard([m.id for m in stored], lang, with_originals=not stored[0].document_file_id,
                            size=Resolution.smallest(m.size_made for m in stored))
    await context.bot.send_message(text=f"🎨 ×{len(stored)} · {details}", reply_markup=markup,
                                   **send_kwargs(target))
    return True


async def _resend_one(context: ContextTypes.DEFAULT_TYPE, job: Job, target: Target, lang: str | None) -> bool:
    text = caption(job.request.prompt, details_line(job) if job.width else job.request.label)
    if job.photo_file_id:
        markup = result_keyboard(job.id, lang, with_original=not job.document_file_id, size=job.size_made)
        await context.bot.send_photo(photo=job.photo_file_id, caption=text, reply_markup=markup, **send_kwargs(target))
        return True
    if job.document_file_id:
        markup = result_keyboard(job.id, lang, with_original=False, size=job.size_made)
        await context.bot.send_document(document=job.document_file_id, caption=text, reply_markup=markup,
                                        **send_kwargs(target))
        return True
    return False
