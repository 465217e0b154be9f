"""The job runner: a fair queue with a global and a per-user cap, live status lines, cancel, restart recovery.

A job makes one image. A request for several variants is a group of jobs that share a group id and one status
line; each job counts against the caps and the credits on its own, and the group is delivered together (one album)
when the last of them has finished. Jobs run as their own asyncio tasks, so a slow generation never holds up other
users' updates. Every change of state is written to the store first, so a restart (even a hard kill) resumes what
was interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError

from . import delivery, keyboards
from .imagegen import GeneratedImage, ImageClient, ImageGenError
from .models import Job, JobStatus, prefs_scope
from .options import PIXELS, ImageRequest
from .originals import OriginalsStore
from .quota import Quota, QuotaExceeded
from .references import ReferenceFetcher, UnusableReference
from .store import Store
from .texts import t

log = logging.getLogger(__name__)

STATUS_PROMPT_CHARS = 200
CHAT_ACTION_EVERY = 4.5  # Telegram shows an action for 5 s
CHAT_EDIT_INTERVAL = 3.0  # at most one routine status edit per private chat in this time
# A group gets 20 bot messages a minute, and the rate limiter counts every call to it: progress (edits, actions)
# takes at most a third of that, so results never wait behind "12 s… 17 s…".
GROUP_EDIT_INTERVAL = 12.0
GROUP_ACTION_EVERY = 20.0
HEAVY_DELIVERY_MB = 96  # what previewing and uploading one image over 10 MB takes in memory, roughly
MAX_ATTEMPTS = 2
ADMIN_ALERTS = ("auth", "quota", "endpoint")
ADMIN_ALERT_EVERY = 3600.0  # a job interrupted by a restart is run once more, then the user is asked to tap Again
UPSCALE_INSTRUCTION = (
    "Keep this exact picture: the same composition, subjects, colours and style. "
    "Only render it again at a higher resolution, with finer detail."
)


_SET = asyncio.Event()
_SET.set()


@dataclass(frozen=True, slots=True)
class Made:
    """A finished image waiting for its request's delivery: what it is, and where its bytes are."""

    image: GeneratedImage  # without its bytes
    path: Path
    nbytes: int


class ShuttingDown(Exception):
    """The bot is stopping and takes no new jobs."""


class QueueFull(Exception):
    """The user already has as many unfinished jobs as allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"limit {limit}")
        self.limit = limit


def status_interval(elapsed: float) -> float:
    """Edit often at first, then calmer: every 5 s for a minute, then every 15 s."""
    return 5.0 if elapsed < 60 else 15.0


def describe_size(width: int, height: int) -> str:
    """`5504×3072 (16:9 · 4K)` when it matches a table entry, else the bare pixels."""
    for (ratio, size), dims in PIXELS.items():
        if dims == (width, height):
            return f"{width}×{height} ({ratio} · {size})"
    return f"{width}×{height}"


def size_matches(job: Job, image: GeneratedImage) -> bool:
    """A few pixels of rounding are fine; a different shape or class is not."""
    want_w, want_h = job.request.expected_pixels
    return abs(image.width - want_w) <= 16 and abs(image.height - want_h) <= 16


def label(job: Job) -> str:
    return job.request.label + (f" · ×{job.variants}" if job.variants > 1 else "")


class JobRunner:
    def __init__(
        self,
        bot: Bot,
        store: Store,
        client: ImageClient,
        originals: OriginalsStore,
        quota: Quota,
        references: ReferenceFetcher,
        *,
        max_concurrent: int,
        user_max_running: int = 2,
        user_max_waiting: int = 5,
        retry_on_size_mismatch: bool = False,
        admins: frozenset[int] = frozenset(),
        memory_mb: int = 96,
        tick: float = 1.0,
    ) -> None:
        self._bot = bot
        self._store = store
        self._client = client
        self._originals = originals
        self._quota = quota
        self._references = references
        self._cap = max_concurrent
        self._user_running_cap = user_max_running
        self._user_total_cap = user_max_running + user_max_waiting
        self._retry_mismatch = retry_on_size_mismatch
        self._admins = admins
        self._alerted: dict[str, float] = {}
        self._tick = tick
        self._waiting: list[Job] = []
        self._announced: dict[str, asyncio.Event] = {}  # group → set once its first status line is out
        self._status_locks: dict[str, asyncio.Lock] = {}  # one edit of a status line at a time, final ones last
        self._running: dict[str, asyncio.Task[None]] = {}
        self._user_running: dict[int, int] = {}
        self._jobs: dict[str, Job] = {}  # every unfinished job, waiting or running
        self._groups: dict[str, list[Job]] = {}  # group id → its jobs (variants), until delivered
        self._results: dict[str, dict[str, Made]] = {}  # group id → job id → its image (on disk)
        self._failure_values: dict[str, dict[str, object]] = {}  # job id → what its failure sentence names
        # images over 10 MB previewed and uploaded at once, from the same memory allowance as the downloads
        self._heavy = asyncio.Semaphore(max(1, memory_mb // HEAVY_DELIVERY_MB))
        self._served: dict[int, int] = {}  # user → serial number of their last start (round-robin order)
        self._serial = 0
        self._cancel_reason: dict[str, str] = {}
        self._last_edit: dict[str, tuple[float, str]] = {}
        self._chat_edit: dict[int, float] = {}
        self._editing: set[str] = set()
        self._last_action: dict[tuple[int, int | None], float] = {}
        self._closing = False
        self._ticker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # ---- lifecycle ----

    def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_loop(), name="job-status-ticker")

    async def resume(self) -> int:
        """Re-queue what a previous run left unfinished, in order; a job interrupted twice is told to tap Again."""
        resumed = 0
        await self._store.refund_unfinished_failures()
        for job in await self._store.unfinished_jobs():
            if job.group not in self._groups:
                members = await self._store.group_jobs(job.group) if job.group_id else [job]
                self._groups[job.group] = [m for m in members if m.status != JobStatus.DONE] or [job]
            job = next(m for m in self._groups[job.group] if m.id == job.id)
            if job.status == JobStatus.RUNNING and job.attempts >= MAX_ATTEMPTS:
                await self._quota.refund(job)
                job.status, job.error_kind, job.finished_at = JobStatus.FAILED, "interrupted", time.time()
                await self._store.save_job(job)
                continue
            job.status = JobStatus.QUEUED
            await self._store.save_job(job)
            self._jobs[job.id] = job
            self._waiting.append(job)
            resumed += 1
        for group in list(self._groups):
            if not any(j.id in self._jobs for j in self._groups[group]):
                await self._settle(group)  # every job of it failed for good: say so
            else:
                await self._show_status(group, force=True)
        self._pump()
        if resumed:
            log.info("resumed %d unfinished job(s) from before the restart", resumed)
        return resumed

    async def shutdown(self, grace: float) -> None:
        """Take no new jobs; give running ones `grace` seconds; pause the rest in the store for the next start."""
        self._closing = True
        if self._running and grace > 0:
            log.info("waiting up to %.0f s for %d running job(s)", grace, len(self._running))
            await asyncio.wait(list(self._running.values()), timeout=grace)
        for job_id in list(self._running):
            self._cancel_reason[job_id] = "shutdown"
            self._running[job_id].cancel()
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=10)
        if self._ticker:  # no progress edit may land after "paused"
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for job in self._waiting:
            job.status = JobStatus.QUEUED
            await self._store.save_job(job)
        paused = [g for g, members in self._groups.items() if any(m.status == JobStatus.QUEUED for m in members)]
        await asyncio.gather(*(self._say_paused(group) for group in paused), return_exceptions=True)
        if self._background:
            await asyncio.wait(list(self._background), timeout=5)

    # ---- queue ----

    async def submit(self, *jobs: Job) -> None:
        """Store the job(s) of one request, show its status line, and queue them.

        Raises ShuttingDown while stopping, QueueFull when the user is at their limit, and QuotaExceeded when the
        credits are not there; nothing is queued or charged then.
        """
        if self._closing:
            raise ShuttingDown
        lead = jobs[0]
        if len(self.user_jobs(lead.origin.user_id)) + len(jobs) > self._user_total_cap:
            raise QueueFull(self._user_total_cap)
        reserved: list[Job] = []
        try:
            for job in jobs:
                await self._quota.reserve(job)
                reserved.append(job)
        except QuotaExceeded:
            for job in reserved:
                await self._quota.refund(job)
            report = await self._quota.report(lead.origin)  # after the refunds, so "left" is true
            raise QuotaExceeded(report, sum(self._quota.credits(j.request.size) for j in jobs)) from None
        group = lead.group
        self._groups[group] = list(jobs)
        announced = self._announced[group] = asyncio.Event()
        for job in jobs:
            self._jobs[job.id] = job
            self._waiting.append(job)
        self._pump()  # free slots start generating now, while the status line is being sent
        try:
            for job in jobs:
                await self._store.add_job(job)
            await self._show_status(group, force=True)
        finally:
            announced.set()

    def _next(self) -> Job | None:
        """Round-robin across users: the user who started a job least recently goes first; arrival breaks ties."""
        best: Job | None = None
        for job in self._waiting:
            if self._user_running.get(job.origin.user_id, 0) >= self._user_running_cap:
                continue
            if best is None or self._served.get(job.origin.user_id, -1) < self._served.get(best.origin.user_id, -1):
                best = job
        return best

    def _pump(self) -> None:
        while len(self._running) < self._cap and not self._closing:
            job = self._next()
            if job is None:
                return
            self._waiting.remove(job)
            self._serial += 1
            user = job.origin.user_id
            self._served[user] = self._serial
            self._user_running[user] = self._user_running.get(user, 0) + 1
            job.status, job.started_at = JobStatus.RUNNING, time.time()
            job.attempts += 1
            self._running[job.id] = asyncio.create_task(self._run(job), name=f"job-{job.id}")
            self._running[job.id].add_done_callback(lambda _t, j=job: self._done(j))

    def _done(self, job: Job) -> None:
        self._running.pop(job.id, None)
        self._jobs.pop(job.id, None)
        self._user_running[job.origin.user_id] -= 1
        self._pump()

    def start_order(self) -> list[Job]:
        """The order waiting jobs will start in: each user's k-th job after everyone's (k-1)-th, round-robin."""
        nth: dict[int, int] = {}
        keyed = []
        for index, job in enumerate(self._waiting):
            user = job.origin.user_id
            nth[user] = nth.get(user, 0) + 1
            keyed.append(((nth[user], self._served.get(user, -1), index), job))
        return [job for _, job in sorted(keyed, key=lambda pair: pair[0])]

    def ahead_of(self, job: Job, order: list[Job] | None = None) -> int:
        """Waiting jobs that will start before this one (free slots take the first of them at once)."""
        order = self.start_order() if order is None else order
        index = next((i for i, waiting in enumerate(order) if waiting.id == job.id), 0)
        return max(0, index - max(0, self._cap - len(self._running)))

    async def cancel(self, job_id: str, reason: str = "user") -> bool:
        """Cancel every job of the request `job_id` belongs to: waiting ones at once, running ones by cancelling
        their tasks (and so their upstream requests)."""
        job = self._jobs.get(job_id) or next(
            (j for jobs in self._groups.values() for j in jobs if j.id == job_id), None
        )
        if job is None or job.group not in self._groups:
            return False
        members = self._groups[job.group]
        found = False
        for member in members:
            if member in self._waiting:
                self._waiting.remove(member)
                self._jobs.pop(member.id, None)
                await self._quota.refund(member)
                member.status, member.finished_at = JobStatus.CANCELLED, time.time()
                await self._store.save_job(member)
                found = True
            elif (task := self._running.get(member.id)) is not None and not task.done():
                self._cancel_reason[member.id] = reason
                task.cancel()
                found = True
        if found and not any(m.id in self._running for m in members):
            await self._settle(job.group)
        return found

    def user_jobs(self, user_id: int) -> list[Job]:
        """Unfinished jobs of a user, newest first."""
        jobs = [j for j in self._jobs.values() if j.origin.user_id == user_id and not j.status.final]
        return sorted(jobs, key=lambda j: j.created_at, reverse=True)

    # ---- one job ----

    async def _run(self, job: Job) -> None:
        paused = False
        try:
            self._spawn(self._refresh_status(job.group))
            self._spawn(self._store.save_job(job))  # "running" is recorded while the request is already on its way
            self._last_action[(job.origin.chat_id, job.origin.thread_id)] = time.monotonic()
            self._spawn(self._chat_action(job))
            self._results.setdefault(job.group, {})[job.id] = await self._keep(job, await self._generate(job))
        except asyncio.CancelledError:
            if self._cancel_reason.pop(job.id, "shutdown") == "shutdown":
                job.status, paused = JobStatus.QUEUED, True
            else:
                await self._quota.refund(job)
                job.status, job.finished_at = JobStatus.CANCELLED, time.time()
        except UnusableReference as exc:
            log.warning("job %s: reference %d unusable: %s", job.id, exc.number, exc.kind)
            await self._mark_failed(job, f"reference_{exc.kind}", number=exc.number, name=exc.name)
        except ImageGenError as exc:
            log.warning("job %s: image API failed: %s (status %s, request id %s)", job.id, exc.detail, exc.status,
                        exc.request_id)
            job.request_id = exc.request_id
            await self._mark_failed(job, exc.kind)
        except Exception:
            log.exception("job %s: unexpected failure", job.id)
            await self._mark_failed(job, "internal")
        await self._store.save_job(job)
        if not paused:
            await self._settle(job.group)

    async def _keep(self, job: Job, image: GeneratedImage) -> Made:
        """Record the image and put its bytes on disk; from here on no copy stays in memory, so many finished
        4K images waiting for delivery don't pile up (the caller must not keep `image` either)."""
        job.request_id, job.width, job.height, job.bytes = image.request_id, image.width, image.height, image.nbytes
        job.upstream_seconds = image.upstream_seconds
        try:
            path = await self._originals.save(job.id, image.path, image.extension)
        finally:
            await image.release()
        return Made(image, path, image.nbytes)

    async def _generate(self, job: Job) -> GeneratedImage:
        images = await self._references.fetch(job.references) if job.references else []
        request = job.request
        if job.upscale_of:
            request = dataclasses.replace(request, prompt=f"{request.prompt}\n\n{UPSCALE_INSTRUCTION}")
        image = await self._client.generate(request, images)
        if self._retry_mismatch and not size_matches(job, image):
            image = await self._retry_for_size(job, request, images, image)
        return image

    async def _retry_for_size(self, job: Job, request: ImageRequest, images: list[bytes],
                              first: GeneratedImage) -> GeneratedImage:
        """One more call when the size is wrong, charged like any job; the better of the two is kept."""
        retry = dataclasses.replace(job, id=f"{job.id}-r")
        try:
            await self._quota.reserve(retry)
        except QuotaExceeded:
            log.info("job %s: size mismatch, no credits left for a retry", job.id)
            return first
        log.info("job %s: size mismatch (%dx%d); one retry", job.id, first.width, first.height)
        try:
            second = await self._client.generate(request, images)
        except ImageGenError as exc:
            log.warning("job %s: size retry failed: %s", job.id, exc.detail)
            await self._quota.refund(retry)
            return first
        kept = second if size_matches(job, second) or not size_matches(job, first) else first
        await (first if kept is second else second).release()
        return kept

    async def _mark_failed(self, job: Job, kind: str, **values: object) -> None:
        await self._quota.refund(job)
        job.status, job.error_kind, job.finished_at = JobStatus.FAILED, kind, time.time()
        self._failure_values[job.id] = values
        if kind in ADMIN_ALERTS:
            self._spawn(self._alert_admins(kind))

    async def _alert_admins(self, kind: str) -> None:
        """A bad key or spent credit stops every user: the admins hear it directly, at most once an hour."""
        if time.monotonic() - self._alerted.get(kind, -ADMIN_ALERT_EVERY) < ADMIN_ALERT_EVERY:
            return
        self._alerted[kind] = time.monotonic()
        for admin in self._admins:
            with contextlib.suppress(TelegramError):
                await self._bot.send_message(admin, t(f"admin_alert_{kind}"))

    # ---- a whole request ----

    async def _settle(self, group: str) -> None:
        """When no job of the request is waiting or running any more, deliver what was made and say what wasn't."""
        members = self._groups.get(group)
        done = self._results.get(group, {})
        if not members or any(m.id not in done and not m.status.final for m in members):
            return  # still waiting or running, or paused by a stop (the next start resumes it)
        if group in self._announced:
            await self._announced[group].wait()  # its status line must exist before it is replaced
        async with self._status_lock(group):
            if group not in self._groups:
                return  # settled meanwhile by another of its jobs
            await self._finish(group, members)
        self._status_locks.pop(group, None)

    async def _finish(self, group: str, members: list[Job]) -> None:
        """Deliver, or end the status line with why not; then record every job's outcome."""
        self._announced.pop(group, None)
        self._groups.pop(group, None)
        results = self._results.pop(group, {})
        lead = members[0]
        made = [(m, results[m.id]) for m in members if m.id in results]
        failed = [m for m in members if m.status == JobStatus.FAILED]
        try:
            if made:
                await self._deliver(lead, made, failed)
            elif failed:
                await self._show_failure(lead, failed[0])
            else:
                await self._edit(lead, t("cancelled", lead.origin.lang, label=label(lead), prompt=self._short(lead)),
                                 keyboards.retry_keyboard(lead.id, lead.origin.lang))
        except Exception:  # never leave a request "Generating…" forever: it ends with a sentence
            log.exception("job %s: could not finish the request", lead.id)
            for job, _ in made:
                if not job.status.final:
                    await self._mark_failed(job, "internal")
            with contextlib.suppress(Exception):
                await self._show_failure(lead, next(m for m in members if m.status == JobStatus.FAILED))
        finally:
            for member in members:
                self._failure_values.pop(member.id, None)
                await self._store.save_job(member)
                log.info(
                    "job %s chat %s user %s %s upstream %.1fs bytes %s delivery %s outcome %s%s",
                    member.id, member.origin.chat_id, member.origin.user_id, member.request.label,
                    member.upstream_seconds or 0.0, member.bytes, member.delivery, member.status,
                    f" ({member.error_kind})" if member.error_kind else "",
                )

    async def _deliver(self, lead: Job, made: list[tuple[Job, Made]], failed: list[Job]) -> None:
        big = any(not delivery.fits_photo(m.nbytes, m.image.width, m.image.height) for _, m in made)
        async with self._heavy if big else contextlib.nullcontext():  # previews and big uploads, a few at a time
            await self._deliver_now(lead, made, failed)

    async def _deliver_now(self, lead: Job, made: list[tuple[Job, Made]], failed: list[Job]) -> None:
        lang = lead.origin.lang
        prefs = await self._store.get_prefs(*prefs_scope(lead.origin))
        target = lead.origin.target()
        pictures = [await self._picture(job, m) for job, m in made]
        made_images = [(job, m.image) for job, m in made]
        note = self._failed_note(lead, failed) if failed else ""
        try:
            if len(made) == 1:
                job, image = made_images[0]
                text = delivery.caption(job.request.prompt, self._details(job, image) + note)
                result = await delivery.deliver(
                    self._bot, target, pictures[0], text,
                    lambda original: keyboards.result_keyboard(job.id, lang, with_original=original,
                                                               size=job.request.size),
                    with_original=prefs.always_original,
                )
                job.delivery, job.result_message_id = result.kind, result.message.message_id
                job.photo_file_id, job.document_file_id = result.photo_file_id, result.document_file_id
                if result.kind == "preview":
                    await self._send_note(lead, t("original_too_big", lang, mb=made[0][1].nbytes / 1024 / 1024))
            else:
                ids = [job.id for job, _ in made]
                details = " · ".join(dict.fromkeys(self._details(job, image) for job, image in made_images))
                summary = f"🎨 ×{len(made)} · {details}{note}"
                album = await delivery.deliver_album(
                    self._bot, target, pictures, delivery.caption(lead.request.prompt, details), summary,
                    lambda originals: keyboards.album_keyboard(ids, lang, with_originals=originals,
                                                               size=lead.request.size),
                    with_original=prefs.always_original,
                )
                for index, (job, _) in enumerate(made):
                    job.delivery, job.result_message_id = album.kind, album.buttons.message_id
                    if index < len(album.photos) and album.photos[index].photo:
                        job.photo_file_id = album.photos[index].photo[-1].file_id
                    if index < len(album.documents) and album.documents[index].document:
                        job.document_file_id = album.documents[index].document.file_id
        except delivery.DeliveryError as exc:
            log.warning("job %s: delivery failed: %s", lead.id, exc)
            for job, _ in made:
                await self._mark_failed(job, exc.kind)
            await self._show_failure(lead, made[0][0])
            return
        for job, _ in made:
            job.status, job.finished_at = JobStatus.DONE, time.time()
        await self._delete_status(lead)

    async def _picture(self, job: Job, made: Made) -> delivery.Picture:
        image = made.image
        name = delivery.safe_filename(job.request.prompt, job.request.aspect_ratio, job.request.size, image.extension)
        if job.variants > 1:
            name = name.replace(f".{image.extension}", f"_{job.variant}.{image.extension}")
        return delivery.Picture(made.path, made.nbytes, image.width, image.height, image.mime_type, name)

    def _details(self, job: Job, image: GeneratedImage) -> str:
        if size_matches(job, image):
            return f"{job.request.label} · {image.width}×{image.height}"
        actual = describe_size(image.width, image.height)
        return "⚠️ " + t("size_mismatch", job.origin.lang, asked=job.request.label, actual=actual)

    def _failed_note(self, lead: Job, failed: list[Job]) -> str:
        reason = self._reason(failed[0])
        return "\n" + t("variants_failed", lead.origin.lang, failed=len(failed), total=lead.variants, reason=reason)

    def _reason(self, job: Job) -> str:
        kind = job.error_kind or "internal"
        key = "internal" if kind == "internal" else f"error_{kind}"
        return t(key, job.origin.lang, **self._failure_values.get(job.id, {}))

    async def _show_failure(self, lead: Job, failed: Job) -> None:
        text = t("failed", lead.origin.lang, reason=self._reason(failed), prompt=self._short(lead))
        await self._edit(lead, text, keyboards.retry_keyboard(lead.id, lead.origin.lang))

    async def _say_paused(self, group: str) -> None:
        async with self._status_lock(group):
            lead = self._groups[group][0]
            await self._edit(lead, t("paused_restart", lead.origin.lang, prompt=self._short(lead)), None)

    # ---- status line ----

    def _short(self, job: Job) -> str:
        prompt = job.request.prompt
        return prompt if len(prompt) <= STATUS_PROMPT_CHARS else prompt[: STATUS_PROMPT_CHARS - 1] + "…"

    def _status_text(self, group: str, order: list[Job] | None = None) -> str:
        members = self._groups[group]
        lead = members[0]
        lang, prompt = lead.origin.lang, self._short(lead)
        running = [m for m in members if m.status == JobStatus.RUNNING and m.id in self._running]
        if running:
            started = min(m.started_at or time.time() for m in running)
            elapsed = f"{int(time.time() - started)} s"
            ready = len(self._results.get(group, {}))
            if ready:
                elapsed += " · " + t("variants_ready", lang, ready=ready, total=len(members))
            return t("generating", lang, label=label(lead), elapsed=elapsed, prompt=prompt)
        waiting = [m for m in members if m in self._waiting]
        ahead = self.ahead_of(waiting[0], order) if waiting else 0
        if ahead:
            return t("queued_ahead", lang, ahead=ahead, label=label(lead), prompt=prompt)
        return t("queued", lang, label=label(lead), prompt=prompt)

    async def _refresh_status(self, group: str) -> None:
        """Once the first status line is out, make it say "Generating" (unless it does already)."""
        await self._announced.get(group, _SET).wait()
        await self._show_status(group, force=True)

    def _status_lock(self, group: str) -> asyncio.Lock:
        return self._status_locks.setdefault(group, asyncio.Lock())

    async def _show_status(self, group: str, *, force: bool = False, order: list[Job] | None = None) -> None:
        """Progress on the status line. Edits of one line are serialized, and once the request is settled no
        progress edit may land after (and so over) its final sentence."""
        async with self._status_lock(group):
            if group not in self._groups:
                return
            lead = self._groups[group][0]
            text = self._status_text(group, order)
            last_at, last_text = self._last_edit.get(group, (0.0, ""))
            if text == last_text:
                return
            if not force:
                now = time.monotonic()
                started = lead.started_at or lead.created_at
                if now - last_at < status_interval(time.time() - started):
                    return
                pace = CHAT_EDIT_INTERVAL if lead.origin.chat_id > 0 else GROUP_EDIT_INTERVAL
                if now - self._chat_edit.get(lead.origin.chat_id, 0.0) < pace:
                    return
            await self._edit(lead, text, keyboards.status_keyboard(lead.id, lead.origin.lang), routine=not force)

    async def _edit(self, lead: Job, text: str, markup: InlineKeyboardMarkup | None, *, routine: bool = False) -> None:
        """Edit the request's status line, or send it when there is none yet (or it was deleted).

        A routine progress edit never sends a new message: it may race the result, which deletes the line.
        """
        self._last_edit[lead.group] = (time.monotonic(), text)
        self._chat_edit[lead.origin.chat_id] = time.monotonic()
        if lead.status_message_id is not None:
            try:
                await self._bot.edit_message_text(
                    text, chat_id=lead.origin.chat_id, message_id=lead.status_message_id, reply_markup=markup
                )
                return
            except BadRequest as exc:
                if "not modified" in exc.message.lower():
                    return
                if routine:
                    return
                log.info("job %s: status message gone (%s); sending a new one", lead.id, exc.message)
            except TelegramError as exc:
                log.warning("job %s: status edit failed: %s", lead.id, exc)
                return
        elif routine:
            return
        await self._send_note(lead, text, markup, remember=True)
        if lead.status_message_id is not None:
            await self._store.save_job(lead)

    async def _send_note(self, job: Job, text: str, markup: InlineKeyboardMarkup | None = None,
                         *, remember: bool = False) -> None:
        target = job.origin.target()
        try:
            message = await self._bot.send_message(text=text, reply_markup=markup, **delivery.send_kwargs(target))
        except TelegramError as exc:
            log.warning("job %s: could not send a message: %s", job.id, exc)
            return
        if remember:
            job.status_message_id = message.message_id

    async def _delete_status(self, lead: Job) -> None:
        """The result is there: the status line goes, or (where the bot may not delete) says it is done."""
        self._last_edit.pop(lead.group, None)
        if lead.status_message_id is None:
            return
        try:
            await self._bot.delete_message(lead.origin.chat_id, lead.status_message_id)
        except TelegramError as exc:
            log.info("job %s: status message not deleted (%s); marking it done", lead.id, exc)
            with contextlib.suppress(TelegramError):
                await self._bot.edit_message_text(t("done_line", lead.origin.lang, label=label(lead)),
                                                  chat_id=lead.origin.chat_id, message_id=lead.status_message_id)

    async def _tick_loop(self) -> None:
        """One loop for all status lines and chat actions: edits are paced per request and per chat."""
        while True:
            await asyncio.sleep(self._tick)
            now = time.monotonic()
            order = self.start_order()
            for group, members in list(self._groups.items()):
                if group in self._editing or not self._announced.get(group, _SET).is_set():
                    continue
                if not any(m.id in self._jobs for m in members):
                    continue
                lead = members[0]
                if any(m.id in self._running for m in members):
                    key = (lead.origin.chat_id, lead.origin.thread_id)
                    every = CHAT_ACTION_EVERY if lead.origin.chat_id > 0 else GROUP_ACTION_EVERY
                    if now - self._last_action.get(key, 0.0) >= every:
                        self._last_action[key] = now
                        self._spawn(self._chat_action(lead))
                self._editing.add(group)
                task = self._spawn(self._show_status(group, order=order))
                task.add_done_callback(lambda _t, g=group: self._editing.discard(g))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Fire and forget, but keep a reference so the task is not garbage-collected mid-flight."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _chat_action(self, job: Job) -> None:
        with contextlib.suppress(TelegramError):
            await self._bot.send_chat_action(
                job.origin.chat_id, ChatAction.UPLOAD_PHOTO, message_thread_id=job.origin.thread_id
            )
