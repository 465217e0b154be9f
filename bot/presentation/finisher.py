"""The end of a request in its chat: deliver what was made (photo, preview + file, or album), say why the rest
wasn't, record every job's outcome, and tell the admins about failures that stop everyone.

Exactly one process delivers a request (the store hands it out, as a new epoch of its lead job). What a delivery
has sent is recorded on the lead job before the next Telegram call, so a process taking over after a crash never
sends a result twice and never generates an image that exists.

The send gate: before each result upload and each final text, the delivery's lease is renewed through the
database to outlast the call (SEND_TIMEOUT + HOLD_MARGIN), and the call is abandoned when SEND_TIMEOUT runs out.
A process taking over waits until that lease has expired, so a worker cut off from the database or paused in
the middle of a send finishes it (and records it) before anyone else may send. When the renewal is refused,
another process holds the delivery: this one stops without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from telegram import Bot, InlineKeyboardMarkup
from telegram.error import TelegramError

from .. import delivery, keyboards, metrics
from ..failures import text_key
from ..inline_messages import original_link
from ..models import Job, JobStatus, prefs_scope
from ..options import Resolution
from ..originals import OriginalsStore
from ..store import LeaseLost, Store, outage
from ..targets import Target
from ..tasks import complain, persist
from ..texts import t
from .inline import deliver_inline, link_keyboard
from .status import StatusLines, short_prompt

log = logging.getLogger(__name__)
T = TypeVar("T")

ADMIN_ALERT_EVERY = 3600.0
SEND_TIMEOUT = 120.0  # one step of a delivery (a result with its preview and file, a final text), retries included
HOLD_MARGIN = 5.0  # the lease outlasts the step by this much (the renewal's own time, clocks of other machines)


def job_summary(job: Job) -> str:
    """What happened to a job, for the operator: its outcome first, then only what it has (a job that failed
    before its image was made has no pixels, bytes or delivery)."""
    if job.status == JobStatus.DONE and job.width and job.height and not job.request.matches(job.width, job.height):
        outcome = f"done with a size mismatch (asked {job.request.label}, got {job.width}×{job.height})"
    elif job.status == JobStatus.FAILED:
        outcome = f"failed ({job.error_kind or 'internal'})"
    else:
        outcome = job.status.value
    parts = [outcome]
    if job.delivery:
        parts.append(job.delivery)
    if job.width and job.height and "mismatch" not in outcome:
        parts.append(f"{job.width}×{job.height}")
    if job.bytes:
        parts.append(f"{job.bytes / 1024 / 1024:.1f} MB")
    if job.upstream_seconds:
        parts.append(f"upstream {job.upstream_seconds:.1f} s")
    if job.request_id:
        parts.append(f"request id {job.request_id}")
    return ", ".join(parts)


class Finisher:
    def __init__(
        self,
        bot: Bot,
        store: Store,
        originals: OriginalsStore,
        lines: StatusLines,
        *,
        lease: float,
        uploads: delivery.Uploads,
        admins: frozenset[int] = frozenset(),
        name_models: bool = False,
        inline_storage: int | None = None,
    ) -> None:
        """`name_models`: several models are offered, so a result's details name its model."""
        self._bot = bot
        self._named = name_models
        self._store = store
        self._originals = originals
        self._lease = lease
        self._lines = lines
        self._admins = admins
        self._alerted: dict[str, float] = {}
        self._uploads = uploads
        self._inline_storage = inline_storage  # INLINE_STORAGE_CHAT_ID: where results for inline messages go first

    async def deliver(self, group: str, epoch: int) -> None:
        """Deliver a request as the holder of its delivery at `epoch`; a process that lost it stops quietly."""
        await self._lines.announced(group)  # its status line must exist before it is replaced
        async with self._lines.lock(group):
            self._lines.take(group)
            try:
                members = await self._persist(lambda: self._store.jobs.group_jobs(group), f"read request {group}")
                if members and members[0].epoch == epoch:
                    await self._finish(group, members, epoch)
            except LeaseLost:
                log.info("request %s: its delivery was taken over by another process; stopping here", group)

    async def _finish(self, group: str, members: list[Job], epoch: int) -> None:
        """Deliver, or end the status line with why not; then record every job's outcome (and the refunds)."""
        lead = members[0]
        made = [m for m in members if m.status in (JobStatus.MADE, JobStatus.DONE)]
        failed = [m for m in members if m.status == JobStatus.FAILED]
        try:
            await self._lines.delivering(lead, sending=bool(made) and "result" not in lead.sent)
            if made:
                await self._deliver(lead, made, failed, epoch)
            elif failed:
                await self._show_failure(lead, failed[0], epoch)
            else:
                await self._say(
                    lead,
                    epoch,
                    t("cancelled", lead.origin.lang, label=self._lines.label(lead), prompt=short_prompt(lead)),
                    keyboards.retry_keyboard(lead.id, lead.origin.lang),
                )
        except LeaseLost:
            raise
        except Exception:  # a bug; never leave a request "Generating…" forever: it ends with a sentence
            log.exception("job %s: could not finish the request", lead.id)
            for job in made:
                if job.status != JobStatus.DONE:
                    self._fail(job, "internal")
            with contextlib.suppress(Exception):
                await self._show_failure(lead, next(m for m in members if m.status == JobStatus.FAILED), epoch)
        try:
            await self._persist(
                lambda: self._store.leases.conclude(group, members, epoch), f"record the end of request {group}"
            )
        finally:
            self._originals.release(member.id for member in members)
        for member in members:
            self._log(member)

    async def _persist(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """A read or write the delivery needs, waited for through a database outage; a refusal is not retried."""
        return await persist(operation, what, log, longest=min(15.0, max(0.5, self._lease / 4)), final=(LeaseLost,))

    @contextlib.asynccontextmanager
    async def _gate(self, lead: Job, epoch: int) -> AsyncIterator[None]:
        """The send gate: the delivery's lease renewed through the database to outlast the Telegram calls in the
        block (LeaseLost if another process holds it now: nothing is sent), and those calls abandoned (TimeoutError)
        before it runs out."""
        loop = asyncio.get_running_loop()
        deadline = 0.0

        async def hold() -> None:
            nonlocal deadline
            deadline = loop.time() + SEND_TIMEOUT
            await self._store.leases.hold(lead.id, epoch, time.time() + SEND_TIMEOUT + HOLD_MARGIN)

        await self._persist(hold, f"hold the delivery of request {lead.group}")
        async with asyncio.timeout_at(deadline):
            yield

    def _log(self, job: Job) -> None:
        """One line per job; with several models offered it names the job's (`gpt-image-2 16:9 · 2K · high`)."""
        named = {"model": job.request.model} if self._named else {}
        log.info(
            "job %s chat %s user %s %s: %s",
            job.id,
            job.origin.chat_id,
            job.origin.user_id,
            f"{job.request.model} {job.request.label}" if self._named else job.request.label,
            job_summary(job),
            extra={
                "job_id": job.id,
                "chat_id": job.origin.chat_id,
                "user_id": job.origin.user_id,
                "size": job.request.size.value,
                "outcome": job.status.value,
                **named,
            },
        )
        metrics.job_finished(job.status.value, job.error_kind)
        if job.delivery:
            metrics.delivered(job.delivery)

    @staticmethod
    def _fail(job: Job, kind: str) -> None:
        """Failed at delivery: refunded with the request's end (`conclude`), by the holder of the delivery only."""
        job.status, job.error_kind, job.finished_at = JobStatus.FAILED, kind, time.time()

    async def _deliver(self, lead: Job, made: list[Job], failed: list[Job], epoch: int) -> None:
        if "result" not in lead.sent:
            big = any(not self._uploads.fits_photo(m.bytes or 0, m.width or 0, m.height or 0) for m in made)
            # previews, fitting and big uploads: a few at once, from the same memory allowance as the downloads
            async with self._uploads.heavy if big else contextlib.nullcontext():
                if not await self._send_result(lead, made, failed, epoch):
                    return
            lead.sent["result"] = made[0].result_message_id
            await self._persist(
                lambda: self._store.leases.record_sent(lead, epoch, self._lease),
                f"record what request {lead.group} was sent",
            )
        for job in made:
            job.status, job.finished_at = JobStatus.DONE, job.finished_at or time.time()
        if "status" not in lead.sent:  # recorded with the request's end (deleting it twice is harmless)
            await self._lines.delete(lead, self._lines.label(lead))
            lead.sent["status"] = True

    async def _send_result(self, lead: Job, made: list[Job], failed: list[Job], epoch: int) -> bool:
        prefs = await self._persist(
            lambda: self._store.prefs.get_prefs(*prefs_scope(lead.origin)),
            f"read the settings for request {lead.group}",
        )
        pictures = []
        for job in made:
            picture = await self._persist(functools.partial(self._image_file, job), f"find the image of job {job.id}")
            if picture is None:
                self._fail(job, "internal")
                failed.append(job)
            else:
                pictures.append((job, picture))
        if not pictures:
            await self._show_failure(lead, failed[0], epoch)
            return False
        note = self._failed_note(lead, failed) if failed else ""
        try:
            async with self._gate(lead, epoch):
                await self._upload(lead, pictures, note, prefs.always_original)
        except TimeoutError:
            log.warning("job %s: delivery abandoned after %.0f s (its lease would have run out)", lead.id, SEND_TIMEOUT)
            for job, _ in pictures:
                self._fail(job, "telegram")
            await self._show_failure(lead, pictures[0][0], epoch)
            return False
        except delivery.DeliveryError as exc:
            log.warning("job %s: delivery failed: %s", lead.id, exc)
            for job, _ in pictures:
                self._fail(job, exc.kind)
            await self._show_failure(lead, pictures[0][0], epoch)
            return False
        made[:] = [job for job, _ in pictures]
        return True

    def _jpeg_caption(self, prompt: str, details: str, lang: str | None) -> str:
        """The caption of an original sent as a JPEG because it is over the upload limit: it says so."""
        limit = self._uploads.max_bytes // delivery.MB
        return delivery.caption(prompt, f"{details}\n{t('original_as_jpeg', lang, limit=limit)}")

    async def _upload(
        self, lead: Job, pictures: list[tuple[Job, delivery.ImageFile]], note: str, with_original: bool
    ) -> None:
        """The result's Telegram calls (inside the send gate); raises DeliveryError when Telegram took nothing."""
        lang, target = lead.origin.lang, Target.of(lead.origin)
        if lead.origin.inline:
            await self._upload_inline(pictures[0][0], pictures[0][1], note)
        elif len(pictures) == 1:
            job, picture = pictures[0]
            details = delivery.details_line(job, named=self._named) + note
            tiers = job.request.profile.option("size").choices
            result = await delivery.deliver(
                self._bot,
                target,
                picture,
                delivery.caption(shown_prompt(job), details),
                lambda original: keyboards.result_keyboard(
                    job.id, lang, with_original=original, size=job.size_made, tiers=tiers
                ),
                uploads=self._uploads,
                jpeg_caption=self._jpeg_caption(shown_prompt(job), details, lang),
                file_caption=t("original_file", lang, details=delivery.details_line(job, named=self._named)),
                with_original=with_original,
            )
            job.delivery, job.result_message_id = result.kind, result.message.message_id
            job.photo_file_id, job.document_file_id = result.photo_file_id, result.document_file_id
            if result.kind == "preview":
                await self._lines.send(lead, t("original_too_big", lang, mb=(job.bytes or 0) / 1024 / 1024))
        else:
            ids = [job.id for job, _ in pictures]
            details = delivery.album_details([job for job, _ in pictures], named=self._named)
            tiers = lead.request.profile.option("size").choices
            summary = f"🎨 ×{len(pictures)} · {details}{note}"
            album = await delivery.deliver_album(
                self._bot,
                target,
                [p for _, p in pictures],
                delivery.caption(shown_prompt(lead), details),
                summary,
                lambda originals: keyboards.album_keyboard(
                    ids,
                    lang,
                    with_originals=originals,
                    size=Resolution.smallest(job.size_made for job, _ in pictures),
                    tiers=tiers,
                ),
                uploads=self._uploads,
                jpeg_caption=self._jpeg_caption(shown_prompt(lead), details, lang),
                with_original=with_original,
            )
            for index, (job, _) in enumerate(pictures):
                job.delivery, job.result_message_id = album.kind, album.buttons.message_id
                if index < len(album.photos) and album.photos[index].photo:
                    job.photo_file_id = album.photos[index].photo[-1].file_id
                document = album.documents[index].document if index < len(album.documents) else None
                if document:
                    job.document_file_id = document.file_id

    async def _upload_inline(self, job: Job, picture: delivery.ImageFile, note: str) -> None:
        """One image into its inline message, through the storage chat (see presentation/inline.py)."""
        if self._inline_storage is None:
            raise delivery.DeliveryError("INLINE_STORAGE_CHAT_ID is not set: a result cannot go into an inline message")
        lang, inline_message_id = job.origin.lang, job.origin.inline_message_id
        assert inline_message_id is not None
        details = delivery.details_line(job) + note
        link = original_link(self._bot.username, job.id)
        again = keyboards.retry_keyboard(job.id, lang).inline_keyboard
        result = await deliver_inline(
            self._bot,
            self._inline_storage,
            inline_message_id,
            picture,
            delivery.caption(shown_prompt(job), details),
            keyboards.result_keyboard(job.id, lang, with_original=True),
            uploads=self._uploads,
            jpeg_caption=self._jpeg_caption(shown_prompt(job), details, lang),
            file_caption=t("original_file", lang, details=delivery.details_line(job)),
            refused=(
                t("inline_media_refused", lang, details=details, prompt=short_prompt(job)),
                link_keyboard(t("inline_open_private", lang), link, *again),
            ),
        )
        job.delivery, job.result_message_id = result.kind, None
        job.photo_file_id, job.document_file_id = result.photo_file_id, result.document_file_id

    async def _image_file(self, job: Job) -> delivery.ImageFile | None:
        path = await self._originals.fetch(job.id)
        if path is None:
            log.warning("job %s: its image is gone before delivery", job.id)
            return None
        extension = path.suffix.lstrip(".")
        name = delivery.safe_filename(job.request.prompt, job.request.aspect_ratio, job.request.size, extension)
        if job.variants > 1:
            name = name.replace(f".{extension}", f"_{job.variant}.{extension}")
        return delivery.ImageFile(path, job.bytes or path.stat().st_size, job.width or 0, job.height or 0, name)

    def _failed_note(self, lead: Job, failed: list[Job]) -> str:
        reason = self.reason(failed[0])
        return "\n" + t("variants_failed", lead.origin.lang, failed=len(failed), total=lead.variants, reason=reason)

    def reason(self, job: Job) -> str:
        return t(text_key(job.error_kind), job.origin.lang, **job.failure_values)

    async def _show_failure(self, lead: Job, failed: Job, epoch: int) -> None:
        text = t("failed", lead.origin.lang, reason=self.reason(failed), prompt=short_prompt(lead))
        await self._say(lead, epoch, text, keyboards.retry_keyboard(lead.id, lead.origin.lang))

    async def _say(self, lead: Job, epoch: int, text: str, markup: InlineKeyboardMarkup | None) -> None:
        """The request's final sentence on its status line, through the send gate. Never after its result: a
        line deleted at delivery is not replaced by a failure."""
        if "result" in lead.sent:
            return
        try:
            async with self._gate(lead, epoch):
                await self._lines.edit(lead, text, markup)
        except TimeoutError:
            log.warning("job %s: final status text abandoned after %.0f s", lead.id, SEND_TIMEOUT)
        except LeaseLost:
            raise
        except Exception as exc:
            if not outage(exc):  # the text is out; recording its message id met the outage
                raise
            complain(log, f"job {lead.id}: status line not recorded", exc)

    async def paused(self, group: str) -> None:
        members = await self._store.jobs.group_jobs(group)
        if not members:
            return
        lead = members[0]
        async with self._lines.lock(group):
            await self._lines.pause(lead, self._lines.take(group))

    async def alert(self, kind: str) -> None:
        """A bad key or spent credit stops every user: the admins hear it directly, at most once an hour."""
        if time.monotonic() - self._alerted.get(kind, -ADMIN_ALERT_EVERY) < ADMIN_ALERT_EVERY:
            return
        self._alerted[kind] = time.monotonic()
        for admin in self._admins:
            with contextlib.suppress(TelegramError):
                await self._bot.send_message(admin, t(f"admin_alert_{kind}"))


def shown_prompt(job: Job) -> str:
    """The prompt as its caption shows it: the user's own words, then the translation made from them (the prompt
    helper's "translate my prompts to English"), or the prompt alone."""
    if job.original_prompt:
        return f"{job.original_prompt}\n🌐 {job.request.prompt}"
    return job.request.prompt
