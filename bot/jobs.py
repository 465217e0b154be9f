"""The job runner: a fair queue with a global and a per-user cap, live status lines, cancel, restart recovery.

Jobs run as their own asyncio tasks, so a slow generation never holds up other users' updates. Every change of a
job's state is written to the store first, so a restart (even a hard kill) resumes what was interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError

from . import delivery, keyboards
from .imagegen import GeneratedImage, ImageClient, ImageGenError
from .options import PIXELS
from .originals import OriginalsStore
from .quota import Quota
from .references import UnusableReference, ReferenceFetcher
from .store import Job, JobStatus, Store, prefs_scope
from .texts import t

log = logging.getLogger(__name__)

STATUS_PROMPT_CHARS = 200
CHAT_ACTION_EVERY = 4.5  # Telegram shows an action for 5 s
CHAT_EDIT_INTERVAL = 3.0  # at most one routine status edit per chat in this time (groups: 20 messages a minute)
MAX_ATTEMPTS = 2  # a job interrupted by a restart is run once more, then the user is asked to tap Again


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
        self._tick = tick
        self._waiting: list[Job] = []
        self._announcing: set[str] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._user_running: dict[int, int] = {}
        self._jobs: dict[str, Job] = {}  # every unfinished job, waiting or running
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
            if job.status == JobStatus.RUNNING and job.attempts >= MAX_ATTEMPTS:
                await self._fail(job, "interrupted")
                await self._store.save_job(job)
                continue
            job.status = JobStatus.QUEUED
            await self._store.save_job(job)
            self._jobs[job.id] = job
            self._waiting.append(job)
            resumed += 1
        for job in list(self._waiting):
            await self._show_status(job, force=True)
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
        await asyncio.gather(*(self._pause(job) for job in self._waiting), return_exceptions=True)
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._background:
            await asyncio.wait(list(self._background), timeout=5)

    # ---- queue ----

    @property
    def active(self) -> int:
        return len(self._jobs)

    async def submit(self, job: Job) -> None:
        """Store the job, show its status line, and queue it.

        Raises ShuttingDown while stopping, QueueFull when the user is at their limit, and QuotaExceeded when the
        credits are not there; nothing is queued or charged then.
        """
        if self._closing:
            raise ShuttingDown
        if len(self.user_jobs(job.origin.user_id)) >= self._user_total_cap:
            raise QueueFull(self._user_total_cap)
        await self._quota.reserve(job)
        self._jobs[job.id] = job
        self._waiting.append(job)  # its place in line is taken now...
        self._announcing.add(job.id)
        try:
            await self._store.add_job(job)
            await self._show_status(job, force=True)  # ...but it starts only after "Queued" is shown
        finally:
            self._announcing.discard(job.id)
            self._pump()

    def _next(self) -> Job | None:
        """Round-robin across users: the user who started a job least recently goes first; arrival breaks ties."""
        best: Job | None = None
        for job in self._waiting:
            if job.id in self._announcing or self._user_running.get(job.origin.user_id, 0) >= self._user_running_cap:
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
            self._served[job.origin.user_id] = self._serial
            self._user_running[job.origin.user_id] = self._user_running.get(job.origin.user_id, 0) + 1
            self._running[job.id] = asyncio.create_task(self._run(job), name=f"job-{job.id}")
            self._running[job.id].add_done_callback(lambda _t, jid=job.id: self._done(jid))

    def _done(self, job_id: str) -> None:
        self._running.pop(job_id, None)
        job = self._jobs.pop(job_id, None)
        if job is not None:
            self._user_running[job.origin.user_id] -= 1
        self._last_edit.pop(job_id, None)
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
        """Stop a waiting job at once, or a running one by cancelling its task (and so the upstream request)."""
        for job in self._waiting:
            if job.id == job_id:
                self._waiting.remove(job)
                self._jobs.pop(job_id, None)
                await self._finish_cancelled(job)
                return True
        task = self._running.get(job_id)
        if task is None or task.done():
            return False
        self._cancel_reason[job_id] = reason
        task.cancel()
        return True

    def user_jobs(self, user_id: int) -> list[Job]:
        """Unfinished jobs of a user, newest first."""
        jobs = [j for j in self._jobs.values() if j.origin.user_id == user_id and not j.status.final]
        return sorted(jobs, key=lambda j: j.created_at, reverse=True)

    # ---- one job ----

    async def _run(self, job: Job) -> None:
        job.status, job.started_at = JobStatus.RUNNING, time.time()
        job.attempts += 1
        image: GeneratedImage | None = None
        try:
            await self._store.save_job(job)
            await self._show_status(job, force=True)
            self._last_action[(job.origin.chat_id, job.origin.thread_id)] = time.monotonic()
            self._spawn(self._chat_action(job))
            images = await self._references.fetch(job.references) if job.references else []
            image = await self._client.generate(job.request, images)
            job.request_id, job.width, job.height, job.bytes = image.request_id, image.width, image.height, len(image.data)
            job.upstream_seconds = image.upstream_seconds
            await self._originals.save(job.id, image.data, image.extension)
            await self._deliver(job, image)
            job.status = JobStatus.DONE
            await self._delete_status(job)
        except asyncio.CancelledError:
            reason = self._cancel_reason.pop(job.id, "shutdown")
            if reason == "shutdown":
                await self._pause(job)
            else:
                await self._finish_cancelled(job)
        except UnusableReference as exc:
            log.warning("job %s: reference %d unusable: %s", job.id, exc.number, exc.kind)
            await self._fail(job, f"reference_{exc.kind}", number=exc.number, name=exc.name)
        except ImageGenError as exc:
            log.warning("job %s: image API failed: %s (status %s, request id %s)", job.id, exc.detail, exc.status,
                        exc.request_id)
            await self._fail(job, exc.kind, request_id=exc.request_id)
        except delivery.DeliveryError as exc:
            log.warning("job %s: delivery failed: %s", job.id, exc)
            await self._fail(job, exc.kind)
        except Exception:
            log.exception("job %s: unexpected failure", job.id)
            await self._fail(job, "internal")
        finally:
            if job.status.final:
                job.finished_at = time.time()
            await self._store.save_job(job)
            log.info(
                "job %s chat %s user %s %s upstream %.1fs bytes %s delivery %s outcome %s%s",
                job.id, job.origin.chat_id, job.origin.user_id, job.request.label,
                job.upstream_seconds or 0.0, job.bytes, job.delivery, job.status,
                f" ({job.error_kind})" if job.error_kind else "",
            )

    async def _deliver(self, job: Job, image: GeneratedImage) -> None:
        lang = job.origin.lang
        details = f"{job.request.label} · {image.width}×{image.height}"
        if not size_matches(job, image):
            actual = describe_size(image.width, image.height)
            details = "⚠️ " + t("size_mismatch", lang, asked=job.request.label, actual=actual)
        picture = delivery.Picture(
            image.data,
            image.width,
            image.height,
            image.mime_type,
            delivery.safe_filename(job.request.prompt, job.request.aspect_ratio, job.request.size, image.extension),
        )
        prefs = await self._store.get_prefs(*prefs_scope(job.origin))
        target = delivery.Target(job.origin.chat_id, job.origin.thread_id, job.origin.reply_to)
        markup: Callable[[bool], InlineKeyboardMarkup] = lambda original: keyboards.result_keyboard(  # noqa: E731
            job.id, lang, with_original=original
        )
        result = await delivery.deliver(
            self._bot, target, picture, delivery.caption(job.request.prompt, details), markup,
            with_original=prefs.always_original,
        )
        job.delivery, job.result_message_id = result.kind, result.message.message_id
        job.photo_file_id, job.document_file_id = result.photo_file_id, result.document_file_id
        if result.kind == "preview":
            await self._send_note(job, t("original_too_big", lang, mb=len(image.data) / 1024 / 1024))

    async def _fail(self, job: Job, kind: str, request_id: str | None = None, **values: object) -> None:
        await self._quota.refund(job)
        job.status, job.error_kind = JobStatus.FAILED, kind
        job.finished_at = time.time()
        job.request_id = request_id or job.request_id
        reason = t("internal" if kind == "internal" else f"error_{kind}", job.origin.lang, **values)
        text = t("failed", job.origin.lang, reason=reason, prompt=self._short(job))
        await self._edit(job, text, keyboards.retry_keyboard(job.id, job.origin.lang))

    async def _finish_cancelled(self, job: Job) -> None:
        await self._quota.refund(job)
        job.status, job.finished_at = JobStatus.CANCELLED, time.time()
        await self._store.save_job(job)
        text = t("cancelled", job.origin.lang, label=job.request.label, prompt=self._short(job))
        await self._edit(job, text, keyboards.retry_keyboard(job.id, job.origin.lang))

    async def _pause(self, job: Job) -> None:
        """Stopped by a restart: back to the queue in the store, resumed on the next start."""
        job.status = JobStatus.QUEUED
        await self._store.save_job(job)
        await self._edit(job, t("paused_restart", job.origin.lang, prompt=self._short(job)), None)

    # ---- status line ----

    def _short(self, job: Job) -> str:
        prompt = job.request.prompt
        return prompt if len(prompt) <= STATUS_PROMPT_CHARS else prompt[: STATUS_PROMPT_CHARS - 1] + "…"

    def _status_text(self, job: Job, order: list[Job] | None = None) -> str:
        lang, label, prompt = job.origin.lang, job.request.label, self._short(job)
        if job.status == JobStatus.RUNNING:
            elapsed = int(time.time() - (job.started_at or time.time()))
            return t("generating", lang, label=label, elapsed=f"{elapsed} s", prompt=prompt)
        ahead = self.ahead_of(job, order)
        if ahead:
            return t("queued_ahead", lang, ahead=ahead, label=label, prompt=prompt)
        return t("queued", lang, label=label, prompt=prompt)

    async def _show_status(self, job: Job, *, force: bool = False, order: list[Job] | None = None) -> None:
        text = self._status_text(job, order)
        last_at, last_text = self._last_edit.get(job.id, (0.0, ""))
        if not force:
            now = time.monotonic()
            started = job.started_at or job.created_at
            if text == last_text or now - last_at < status_interval(time.time() - started):
                return
            if now - self._chat_edit.get(job.origin.chat_id, 0.0) < CHAT_EDIT_INTERVAL:
                return
        await self._edit(job, text, keyboards.status_keyboard(job.id, job.origin.lang))

    async def _edit(self, job: Job, text: str, markup: InlineKeyboardMarkup | None) -> None:
        """Edit the status line, or send it when there is none yet (or it was deleted)."""
        self._last_edit[job.id] = (time.monotonic(), text)
        self._chat_edit[job.origin.chat_id] = time.monotonic()
        if job.status_message_id is not None:
            try:
                await self._bot.edit_message_text(
                    text, chat_id=job.origin.chat_id, message_id=job.status_message_id, reply_markup=markup
                )
                return
            except BadRequest as exc:
                if "not modified" in exc.message.lower():
                    return
                log.info("job %s: status message gone (%s); sending a new one", job.id, exc.message)
            except TelegramError as exc:
                log.warning("job %s: status edit failed: %s", job.id, exc)
                return
        await self._send_note(job, text, markup, remember=True)
        if job.status_message_id is not None:
            await self._store.save_job(job)

    async def _send_note(self, job: Job, text: str, markup: InlineKeyboardMarkup | None = None,
                         *, remember: bool = False) -> None:
        target = delivery.Target(job.origin.chat_id, job.origin.thread_id, job.origin.reply_to)
        try:
            message = await self._bot.send_message(text=text, reply_markup=markup, **target.kwargs())
        except TelegramError as exc:
            log.warning("job %s: could not send a message: %s", job.id, exc)
            return
        if remember:
            job.status_message_id = message.message_id

    async def _delete_status(self, job: Job) -> None:
        if job.status_message_id is None:
            return
        try:
            await self._bot.delete_message(job.origin.chat_id, job.status_message_id)
        except TelegramError as exc:
            log.info("job %s: status message not deleted: %s", job.id, exc)

    async def _tick_loop(self) -> None:
        """One loop for all status lines and chat actions: edits are paced per job and per chat, never per second."""
        while True:
            await asyncio.sleep(self._tick)
            now = time.monotonic()
            order = self.start_order()
            for job in list(self._jobs.values()):
                if job.status.final or job.id in self._editing or job.id in self._announcing:
                    continue
                if job.status == JobStatus.RUNNING:
                    key = (job.origin.chat_id, job.origin.thread_id)
                    if now - self._last_action.get(key, 0.0) >= CHAT_ACTION_EVERY:
                        self._last_action[key] = now
                        self._spawn(self._chat_action(job))
                self._editing.add(job.id)
                task = self._spawn(self._show_status(job, order=order))
                task.add_done_callback(lambda _t, jid=job.id: self._editing.discard(jid))

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
