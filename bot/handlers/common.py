"""/start, /help, /cancel and the error handler."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from ..options import AspectRatio
from ..services import get_services
from ..texts import t
from .replies import origin_of, reply

log = logging.getLogger(__name__)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(context, origin_of(update), t("start", origin_of(update).lang))


async def help_(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    origin = origin_of(update)
    await reply(context, origin, t("help", origin.lang, ratios=", ".join(r.value for r in AspectRatio)))


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/cancel` stops the user's newest unfinished job; `/cancel all` stops all of them."""
    origin = origin_of(update)
    runner = get_services(context).runner
    jobs = runner.user_jobs(origin.user_id)
    if not jobs:
        await reply(context, origin, t("nothing_to_cancel", origin.lang))
        return
    everything = (context.args or [""])[0].lower() == "all"
    for job in jobs if everything else jobs[:1]:
        await runner.cancel(job.id)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Details to the log (secrets masked by the formatter); one plain sentence to the user, never a traceback."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat and update.effective_message:
        try:
            await reply(context, origin_of(update), t("internal", origin_of(update).lang))
        except Exception:  # noqa: BLE001 - the error handler must never raise
            log.warning("could not tell the user about the error")
