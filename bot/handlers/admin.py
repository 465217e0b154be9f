"""Commands for the bot's admins (ADMIN_USER_IDS): /stats, /grant, /block, /unblock."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from functools import partial

from telegram import Update
from telegram.ext import BaseHandler, ContextTypes

from ..failures import KINDS, label_key
from ..menus import Command
from ..models import Job, JobStatus
from ..options import Resolution
from ..services import get_services
from ..texts import t
from .replies import admins_only, origin_for, reply

DAY = 24 * 3600


def _by_size(jobs: list[Job], lang: str | None) -> str:
    counts = Counter(job.request.size for job in jobs)
    return " · ".join(f"{size} {counts[size]}" for size in Resolution if counts[size]) or t("none", lang)


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "-"


def failure_words(kind: str | None, lang: str | None) -> str:
    """A failure kind (`reference_download`) in the words its user was told, shortened for a list; a kind this
    version does not know (written by a newer one) as it is stored."""
    return t(label_key(kind), lang) if kind is None or kind in KINDS else kind


def stats_text(jobs: list[Job], today_start: float, lang: str | None, *, by_model: bool = False) -> str:
    """The /stats message from the last 7 days of jobs (pure, so tests can check its figures); `by_model` (several
    models offered) adds the images made by each model."""
    done = [j for j in jobs if j.status == JobStatus.DONE]
    today = [j for j in done if j.created_at >= today_start]
    failures = Counter(j.error_kind for j in jobs if j.status == JobStatus.FAILED)
    mismatches = Counter(j.request.size for j in done if j.width and not j.request.matches(j.width, j.height or 0))
    top = Counter(j.origin.user_id for j in done).most_common(5)
    times = sorted(j.upstream_seconds for j in done if j.upstream_seconds is not None)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else None
    sep, none = t("list_sep", lang), t("none", lang)
    text = t(
        "stats",
        lang,
        today=len(today),
        today_sizes=_by_size(today, lang),
        week=len(done),
        week_sizes=_by_size(done, lang),
        failures=sep.join(f"{failure_words(kind, lang)} {n}" for kind, n in failures.most_common()) or none,
        mismatches=sep.join(f"{size} {n}" for size, n in sorted(mismatches.items())) or none,
        top=sep.join(f"{user} ({n})" for user, n in top) or none,
        median=_seconds(statistics.median(times) if times else None),
        p95=_seconds(p95),
    )
    if by_model:
        counts = Counter(j.request.profile.label for j in done)
        text += t("stats_models", lang, models=sep.join(f"{m} {n}" for m, n in counts.most_common()) or none)
    return text


@admins_only
async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services = get_services(context)
    origin = await origin_for(update, context)
    now = services.quota.now()
    today_start = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    jobs = await services.history.jobs_since(now.timestamp() - 7 * DAY)
    by_model = len(services.settings.offered) > 1
    text = await asyncio.to_thread(  # a busy week: many thousand jobs
        partial(stats_text, jobs, today_start, origin.lang, by_model=by_model)
    )
    await reply(context, origin, text)


def _ints(args: list[str] | None, count: int) -> list[int] | None:
    try:
        values = [int(a) for a in (args or [])]
    except ValueError:
        return None
    return values if len(values) == count else None


@admins_only
async def grant(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services = get_services(context)
    origin = await origin_for(update, context)
    values = _ints(context.args, 2)
    if values is None or values[1] <= 0:
        await reply(context, origin, t("grant_usage", origin.lang))
        return
    user_id, credits = values
    await services.quota.grant(user_id, credits)
    await reply(context, origin, t("grant_done", origin.lang, user_id=user_id, credits=credits))


async def _set_blocked(update: Update, context: ContextTypes.DEFAULT_TYPE, blocked: bool) -> None:
    services = get_services(context)
    origin = await origin_for(update, context)
    values = _ints(context.args, 1)
    if values is None:
        await reply(context, origin, t("block_usage", origin.lang))
        return
    await services.access.set_blocked(values[0], blocked)
    if not blocked:
        await services.access.clear_notice(values[0], "blocked")
    await reply(context, origin, t("block_done" if blocked else "unblock_done", origin.lang, user_id=values[0]))


@admins_only
async def block(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _set_blocked(update, context, True)


@admins_only
async def unblock(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _set_blocked(update, context, False)


COMMANDS = [Command("stats", stats), Command("grant", grant), Command("block", block), Command("unblock", unblock)]
HANDLERS: list[BaseHandler] = []
