"""/history: the user's last images in this chat, to send again (by file id, no new generation) or redo."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from ..delivery import caption, send_kwargs
from ..keyboards import history_keyboard, result_keyboard
from ..models import Job, JobStatus, Target
from ..services import get_services
from ..texts import t
from .replies import origin_for, reply

HISTORY_SIZE = 10
ICONS = {
    JobStatus.DONE: "✅",
    JobStatus.FAILED: "⚠️",
    JobStatus.CANCELLED: "✖",
    JobStatus.QUEUED: "⏳",
    JobStatus.RUNNING: "🎨",
}


async def history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services = get_services(context)
    origin = await origin_for(update, context)
    jobs = await services.store.history(origin.user_id, origin.chat_id, HISTORY_SIZE)
    if not jobs:
        await reply(context, origin, t("history_empty", origin.lang))
        return
    lines = [t("history_title", origin.lang), ""]
    for number, job in enumerate(jobs, start=1):
        prompt = job.request.prompt if len(job.request.prompt) <= 60 else job.request.prompt[:59] + "…"
        lines.append(t("history_line", origin.lang, n=number, icon=ICONS[job.status], label=job.request.label,
                       prompt=prompt.replace("\n", " ")))
    await reply(context, origin, "\n".join(lines), history_keyboard(jobs, origin.lang))


async def resend(context: ContextTypes.DEFAULT_TYPE, job: Job, target: Target, lang: str | None) -> bool:
    """Send a finished result again from Telegram's copy; False when nothing is stored."""
    details = f"{job.request.label} · {job.width}×{job.height}" if job.width else job.request.label
    text = caption(job.request.prompt, details)
    if job.photo_file_id:
        markup = result_keyboard(job.id, lang, with_original=not job.document_file_id)
        await context.bot.send_photo(photo=job.photo_file_id, caption=text, reply_markup=markup, **send_kwargs(target))
        return True
    if job.document_file_id:
        markup = result_keyboard(job.id, lang, with_original=False)
        await context.bot.send_document(document=job.document_file_id, caption=text, reply_markup=markup,
                                        **send_kwargs(target))
        return True
    return False
