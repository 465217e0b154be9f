"""A worker: claims jobs from the database, makes their images and keeps them, under a lease it renews.

Each claimed job is its own asyncio task, so a four-minute 4K image never delays anything else; this process runs
at most `concurrency` of them, and the store's claim keeps the caps over all processes. A job whose process died is
taken over when its lease runs out (run once more; interrupted twice, it fails with a refund). A cancel pressed on
any process reaches the task running the job through the database (a flag, polled every second, and a
notification where the backend has them) and aborts its upstream request.

Every claim is a new epoch of the job, and every write about it names the epoch this process holds: a process cut
off from the database (or paused) past its lease finds its writes refused once another took over, and stops
without a word. A made image is on disk before anything else is written, and its writes are retried through a
database outage while the lease is held; a takeover that finds it delivers it instead of generating it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from .. import metrics
from ..failures import ADMIN_ALERTS
from ..imagegen import GeneratedImage, ImageClient, ImageGenError, inspect_image
from ..models import Job, JobStatus
from ..options import ImageRequest
from ..originals import OriginalsStore, StorageError
from ..process import dead_here
from ..quota import Quota, QuotaExceeded
from ..references import UnusableReference
from ..store import Caps, LeaseLost, Store, outage
from ..tasks import Background, complain, persist, wait_set
from .interface import Presentation, ReferenceSource

log = logging.getLogger(__name__)
T = TypeVar("T")

CANCEL_POLL = 1.0
CLAIM_POLL = 1.0
UPSCALE_INSTRUCTION = (
    "Keep this exact picture: the same composition, subjects, colours and style. "
    "Only render it again at a higher resolution, with finer detail."
)


@dataclasses.dataclass(slots=True)
class Lease:
    """A claim this process holds: the job's epoch, and until when (wall clock) the database is known to keep it."""

    epoch: int
    until: float
    since: float  # when it was claimed: a renewal that began earlier cannot have seen it
    finishing: bool = False  # its outcome is being written (a renewal no longer finds it running)


class Worker:
    def __init__(
        self,
        store: Store,
        client: ImageClient,
        originals: OriginalsStore,
        quota: Quota,
        references: ReferenceSource,
        presentation: Presentation,
        *,
        name: str,
        concurrency: int,
        caps: Caps,
        lease: float,
        retry_on_size_mismatch: bool = False,
    ) -> None:
        self._store = store
        self._client = client
        self._originals = originals
        self._quota = quota
        self._references = references
        self._presentation = presentation
        self.name = name
        self._concurrency = concurrency
        self._caps = caps
        self._lease = lease
        self._retry_mismatch = retry_on_size_mismatch
        self._running: dict[str, asyncio.Task[None]] = {}
        # the jobs here still making their image: WORKER_CONCURRENCY counts these, not deliveries, so a slot is
        # free for the next claim as soon as an image is made (its upload paced by Telegram must not hold it)
        self._making: set[str] = set()
        self._leases: dict[str, Lease] = {}
        self._cancel_reason: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._check_cancels = asyncio.Event()
        self._closing = False
        self._loops: list[asyncio.Task[None]] = []
        self._background = Background()
        self._storage_warned: set[Path] = set()

    # ---- lifecycle ----

    async def start(self) -> None:
        """Take over at once what dead processes of this machine left (a restart after a crash), then run."""
        self._store.on_wake(self._heard)
        dead = [name for name in await self._store.leases.holders() if dead_here(name)]
        if dead:
            await self._store.leases.expire(dead)
        await self._reap()  # also jobs left running without a lease (by the first release)
        self._loops = [
            asyncio.create_task(self._maintain(), name="worker-maintenance"),
            asyncio.create_task(self._watch_cancels(), name="worker-cancels"),
        ]
        if self._concurrency > 0:
            self._loops.append(asyncio.create_task(self._claim_loop(), name="worker-claims"))

    def holds(self, job_id: str) -> bool:
        """Whether this process runs the job and its lease is known to be held now (else: hands off its line)."""
        lease = self._leases.get(job_id)
        return lease is not None and lease.until > time.time()

    def wake(self) -> None:
        """New work may be there (a local submit, a job ended here)."""
        self._wake.set()

    def cancel_here(self, job_ids: list[str]) -> None:
        """Stop these jobs now if they run in this process (a cancel pressed here)."""
        for job_id in job_ids:
            task = self._running.get(job_id)
            if task is not None and job_id not in self._cancel_reason:
                self._cancel_reason[job_id] = "user"
                task.cancel()

    def _heard(self, topic: str) -> None:
        if topic == "cancel":
            self._check_cancels.set()
        elif topic == "jobs":
            self._wake.set()

    async def shutdown(self, grace: float) -> None:
        """Take no new jobs; give running ones `grace` seconds; give the rest back to the queue, for another
        process or the next start, and say so in their chats."""
        self._closing = True
        self._wake.set()
        if self._running and grace > 0:
            log.info("waiting up to %.0f s for %d running job(s)", grace, len(self._running))
            await asyncio.wait(list(self._running.values()), timeout=grace)
        for job_id, task in list(self._running.items()):
            self._cancel_reason[job_id] = "shutdown"
            task.cancel()
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=10)
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        await self._background.wait(10)

    # ---- loops ----

    async def _claim_loop(self) -> None:
        while not self._closing:
            self._wake.clear()
            while (free := self._concurrency - len(self._making)) > 0 and not self._closing:
                began = time.time()
                try:
                    jobs = await self._store.queue.claim_many(self.name, self._caps, self._lease, free)
                except Exception as exc:
                    complain(log, "could not claim a job", exc)
                    break
                for batch in self._batches(jobs):
                    leases = [Lease(job.epoch, began + self._lease, began) for job in batch]
                    more_began = time.time()
                    for sibling in await self._siblings(batch):
                        batch.append(sibling)
                        leases.append(Lease(sibling.epoch, more_began + self._lease, more_began))
                    self._start(batch, leases)
                if len(jobs) < free:
                    break
            await wait_set(self._wake, CLAIM_POLL)

    @staticmethod
    def _most(job: Job) -> int:
        """How many of `job`'s request's variants one call makes (a model's `n`, within what a call making that many
        takes in references): 1 for a one-image model."""
        profile = job.request.profile
        most = min(profile.max_outputs, job.variants)
        while most > 1 and profile.max_references(most) < len(job.references):
            most -= 1
        return most if job.group_id is not None else 1

    def _batches(self, jobs: list[Job]) -> list[list[Job]]:
        """Claimed jobs as calls: the variants of one request together where its model makes several a call."""
        batches: list[list[Job]] = []
        filling: dict[str, list[Job]] = {}
        for job in jobs:
            batch = filling.get(job.group_id) if job.group_id is not None else None
            if batch is not None and len(batch) < self._most(job):
                batch.append(job)
                continue
            batches.append([job])
            if job.group_id is not None and self._most(job) > 1:
                filling[job.group_id] = batches[-1]
        return batches

    async def _siblings(self, batch: list[Job]) -> list[Job]:
        """The waiting variants of the batch's request that one call can make beside it, claimed for this process;
        none for a one-image model."""
        job = batch[0]
        wanted = self._most(job) - len(batch)
        if wanted < 1:
            return []
        try:
            return await self._store.queue.claim_siblings(job, self.name, self._lease, wanted)
        except Exception as exc:  # they stay queued (or, claimed unseen, come back when their lease runs out)
            complain(log, f"job {job.id}: could not claim the other variants of its request", exc)
            return []

    def _start(self, jobs: list[Job], leases: list[Lease]) -> None:
        """One task for the job, or for the variants one call makes together; each keeps its own lease."""
        run = self._run(jobs[0], leases[0]) if len(jobs) == 1 else self._run_together(jobs, leases)
        task = asyncio.create_task(run, name=f"job-{jobs[0].id}")
        for job, lease in zip(jobs, leases, strict=True):
            self._running[job.id], self._leases[job.id] = task, lease
            self._making.add(job.id)

        def done(_: asyncio.Task[None]) -> None:
            for job, lease in zip(jobs, leases, strict=True):
                if self._running.get(job.id) is task:  # not a later claim of the same job by this process
                    self._running.pop(job.id, None)
                    self._making.discard(job.id)
                    self._cancel_reason.pop(job.id, None)  # kept until the end: a second cancel must not hit its record
                if self._leases.get(job.id) is lease:
                    self._leases.pop(job.id, None)
            self._wake.set()

        task.add_done_callback(done)

    async def _maintain(self) -> None:
        """Renew our leases (and stop jobs another process took over); take over what other processes left
        behind — but only once this process has reached the database for a whole lease: after an outage every
        lease looks expired, and their holders get that long to renew them first. A renewal held up for half a
        lease (the database stalled, a partition that healed before any error) counts as such an outage: the
        other processes were most likely held up too."""
        every = max(0.2, self._lease / 3)
        contact: float | None = time.monotonic()  # start() has just used the database
        while True:
            await asyncio.sleep(every)
            try:
                began = time.time()
                self._renewed(await self._store.leases.renew(self.name, self._lease), began)
                if contact is None or time.time() - began >= self._lease / 2:
                    contact = time.monotonic()
                if time.monotonic() - contact >= self._lease:
                    await self._reap()
                metrics.jobs_in_queue(*await self._store.queue.queue_counts())
            except Exception as exc:
                contact = None
                complain(log, "lease upkeep failed", exc)

    def _renewed(self, held: dict[str, int], began: float) -> None:
        """What the database still gives us is held for a lease from `began`; a running job it no longer gives us
        (another process took it over) is stopped here, quietly."""
        for job_id, lease in list(self._leases.items()):
            if held.get(job_id) == lease.epoch:
                lease.until = max(lease.until, began + self._lease)
            elif lease.since < began and not lease.finishing:
                self._leases.pop(job_id, None)
                task = self._running.get(job_id)
                if task is not None and job_id not in self._cancel_reason:
                    log.info("job %s: taken over by another process; stopping it here", job_id)
                    self._cancel_reason[job_id] = "lost"
                    task.cancel()

    async def _reap(self) -> None:
        reaped = await self._store.leases.reap(self.name, self._lease)
        if reaped.requeued:
            log.info("took over %d job(s) whose process stopped", reaped.requeued)
            self._wake.set()
        for group, epoch in reaped.deliveries:
            self._background.spawn(self._presentation.deliver(group, epoch))

    async def _watch_cancels(self) -> None:
        while True:
            await wait_set(self._check_cancels, CANCEL_POLL)
            self._check_cancels.clear()
            if not self._running:
                continue
            try:
                flagged = await self._store.queue.cancel_requested(self.name)
            except Exception as exc:
                complain(log, "could not read cancel requests", exc)
                continue
            self.cancel_here(flagged)

    # ---- one job ----

    async def _run(self, job: Job, lease: Lease) -> None:
        self._presentation.started(job)
        began = time.monotonic()
        try:
            await self._make(job)
            job.status = JobStatus.MADE
        except asyncio.CancelledError:
            reason = self._cancel_reason.get(job.id, "shutdown")
            if reason == "lost":
                self._presentation.lost(job)
                return
            if reason == "shutdown":
                await self._give_back(job)
                return
            job.status, job.finished_at = JobStatus.CANCELLED, time.time()
        except LeaseLost:
            log.info("job %s: taken over by another process; its write was refused, stopping here", job.id)
            self._presentation.lost(job)
            return
        except UnusableReference as exc:
            log.warning("job %s: reference %d unusable: %s", job.id, exc.number, exc)
            self._failed(job, f"reference_{exc.kind}", number=exc.number, name=exc.name)
        except ImageGenError as exc:
            log.warning(
                "job %s: image API failed: %s (status %s, request id %s)",
                job.id,
                exc.detail,
                exc.status,
                exc.request_id,
            )
            job.request_id = exc.request_id
            self._failed(job, exc.kind)
        except StorageError as exc:
            if exc.path not in self._storage_warned:  # once per folder, not once per job of a full disk
                self._storage_warned.add(exc.path)
                log.error("cannot store images: %s", exc)
            self._failed(job, "storage")
        except Exception:
            log.exception("job %s: unexpected failure", job.id)
            self._failed(job, "internal")
        if job.upstream_seconds is None:
            job.upstream_seconds = time.monotonic() - began
        await self._record(job, lease)

    async def _record(self, job: Job, lease: Lease) -> None:
        """Write the outcome (and a failure's refund, in the same transaction); whoever completes the request
        delivers it. A database that is down is waited for; a refusal (another process holds the job now) ends
        the job here without a word."""
        lease.finishing = True
        self._making.discard(job.id)
        self._wake.set()  # its slot is free: the next job may start while this one is recorded and delivered
        try:
            epoch = await self._persist(
                lambda: self._store.leases.finish_job(job, self.name, self._lease),
                f"record the outcome of job {job.id}",
            )
        except LeaseLost:
            log.info("job %s: taken over by another process; its outcome was not recorded here", job.id)
            self._presentation.lost(job)
            return
        finally:
            if self._leases.get(job.id) is lease:
                self._leases.pop(job.id, None)
        self._presentation.ended(job)
        if epoch is not None:
            await self._presentation.deliver(job.group, epoch)

    async def _persist(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """A write that must land, retried through a database outage (often enough to land within the lease
        once the database is back); a refusal (LeaseLost) is not retried."""
        return await persist(operation, what, log, longest=min(15.0, max(0.5, self._lease / 4)), final=(LeaseLost,))

    async def _give_back(self, job: Job) -> None:
        with contextlib.suppress(Exception):
            await self._store.leases.release(job)
        if job.variant == 1 or job.group_id is None:
            with contextlib.suppress(Exception):
                await self._presentation.paused(job.group)

    def _failed(self, job: Job, kind: str, **values: object) -> None:
        job.status, job.error_kind, job.finished_at = JobStatus.FAILED, kind, time.time()
        job.failure_values = dict(values)
        if kind in ADMIN_ALERTS:
            self._presentation.alert(kind)

    async def _make(self, job: Job) -> None:
        """The job's image, made or found, kept. A database outage before the image exists (looking for one made
        before, reading a reference we keep) is waited out; once it exists, its writes are retried instead."""

        async def attempt() -> GeneratedImage | None:
            if await self._made_before(job):
                return None
            await self._originals.ensure_room()  # before a paid image, not when it cannot be kept
            await self._confirm(job)
            return await self._generate(job)

        image = await self._outlasting_outages(f"job {job.id} waits", attempt)
        if image is not None:
            await self._keep(job, image)

    async def _outlasting_outages(self, waits: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()` once more after each database outage, backing off up to a quarter of a lease."""
        delay = 0.5
        while True:
            try:
                return await attempt()
            except Exception as exc:
                if not outage(exc):
                    raise
                complain(log, f"{waits} for the database", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max(0.5, self._lease / 4))

    async def _confirm(self, job: Job) -> None:
        """Before paying for an image: a lease already run out by this process's clock (a claim whose answer came
        back late, through a partition or a stall) is renewed first, so a takeover made meanwhile stops the job here
        (LeaseLost) instead of being a second generation beside this one."""
        if self.holds(job.id):
            return
        began = time.time()
        await self._store.leases.hold(job.id, job.epoch, began + self._lease)
        if (lease := self._leases.get(job.id)) is not None:
            lease.until = max(lease.until, began + self._lease)

    async def _made_before(self, job: Job) -> bool:
        """A job run again (its process stopped or was cut off) may have made its image already: here on disk,
        or (PostgreSQL) in the originals table. Then that image is delivered, not generated again."""
        if job.attempts < 2:
            return False
        local = self._originals.find(job.id)
        path = local or await self._originals.fetch(job.id)
        if path is None:
            return False
        _, job.width, job.height = await asyncio.to_thread(inspect_image, path)
        job.bytes, job.extension = path.stat().st_size, path.suffix.lstrip(".")
        log.info(
            "job %s: its image was made before (attempt %d); delivering it, not generating it again",
            job.id,
            job.attempts,
        )
        if local is not None:  # perhaps not in the database yet: its earlier attempt lost its lease first
            await self._persist(
                lambda: self._originals.share(job.id, job.epoch, local),
                f"copy the original of job {job.id} to the database",
            )
        return True

    async def _keep(self, job: Job, image: GeneratedImage) -> None:
        """Record the image and move its file where every process finds it, so finished 4K images waiting for
        the rest of their request wait on disk, not in memory. The file on this disk comes first; its copy in the
        database is retried through an outage while the lease is held."""
        job.request_id, job.width, job.height, job.bytes = image.request_id, image.width, image.height, image.nbytes
        job.upstream_seconds, job.extension = image.upstream_seconds, image.extension
        if not job.request.matches(image.width, image.height):
            metrics.size_mismatch(job.request.size.value)
        try:
            path = await self._originals.save(job.id, image.path, image.extension)
        finally:
            await image.release()
        await self._persist(
            lambda: self._originals.share(job.id, job.epoch, path), f"copy the original of job {job.id} to the database"
        )

    @staticmethod
    def _upstream(job: Job) -> ImageRequest:
        """What the image API is asked for the job: its style's prompt, an upscale's instruction."""
        request = job.request
        if job.style:  # the user's words in the style's template
            request = dataclasses.replace(request, prompt=job.upstream_prompt)
        if job.upscale_of:
            request = dataclasses.replace(request, prompt=f"{request.prompt}\n\n{UPSCALE_INSTRUCTION}")
        return request

    async def _generate(self, job: Job) -> GeneratedImage:
        request = self._upstream(job)
        async with self._references.fetched(job.references) as images:
            self._presentation.generating(job)
            image = await self._client.generate(request, images)
            if self._retry_mismatch and not job.request.matches(image.width, image.height):
                image = await self._retry_for_size(job, request, images, image)
        return image

    # ---- variants one call makes together ----

    async def _run_together(self, jobs: list[Job], leases: list[Lease]) -> None:
        """Variants of one request made by one upstream call (a model's `n`). Only the call is shared: each job keeps
        its own lease and epoch, and is recorded (a failure refunded) and delivered on its own, exactly as if it had
        run alone; what one call did not bring back fails alone."""
        for job in jobs:
            self._presentation.started(job)
        began = time.monotonic()
        made: set[str] = set()  # kept on disk and shared: recorded as made whatever happens next
        lost: set[str] = set()  # another process holds them now: nothing more is written or shown for them
        try:
            await self._make_together(jobs, made, lost)
        except asyncio.CancelledError:
            reasons = [self._cancel_reason.get(job.id, "shutdown") for job in jobs]
            if "user" in reasons:  # the request is cancelled: nothing of it is delivered (its credits are back)
                made.clear()
            else:  # stopping here, or another process took some over: the rest goes back
                for job, reason in zip(jobs, reasons, strict=True):
                    if reason == "lost" or job.id in lost:
                        self._presentation.lost(job)
                        lost.add(job.id)
                    elif job.id not in made:
                        await self._give_back(job)
                        lost.add(job.id)
            for job in jobs:
                if job.id not in made | lost:
                    job.status, job.finished_at = JobStatus.CANCELLED, time.time()
        except UnusableReference as exc:
            log.warning("jobs %s: reference %d unusable: %s", _ids(jobs), exc.number, exc)
            self._fail_rest(jobs, made | lost, f"reference_{exc.kind}", number=exc.number, name=exc.name)
        except ImageGenError as exc:
            log.warning(
                "jobs %s: image API failed: %s (status %s, request id %s)",
                _ids(jobs),
                exc.detail,
                exc.status,
                exc.request_id,
            )
            for job in jobs:
                job.request_id = job.request_id if job.id in made else exc.request_id
            self._fail_rest(jobs, made | lost, exc.kind)
        except StorageError as exc:
            if exc.path not in self._storage_warned:
                self._storage_warned.add(exc.path)
                log.error("cannot store images: %s", exc)
            self._fail_rest(jobs, made | lost, "storage")
        except Exception:
            log.exception("jobs %s: unexpected failure", _ids(jobs))
            self._fail_rest(jobs, made | lost, "internal")
        for job, lease in zip(jobs, leases, strict=True):
            if job.id in lost:
                continue
            if job.id in made:
                job.status = JobStatus.MADE
            if job.upstream_seconds is None:
                job.upstream_seconds = time.monotonic() - began
            await self._record(job, lease)

    def _fail_rest(self, jobs: list[Job], spared: set[str], kind: str, **values: object) -> None:
        for job in jobs:
            if job.id not in spared and job.status != JobStatus.FAILED:
                self._failed(job, kind, **values)

    async def _make_together(self, jobs: list[Job], made: set[str], lost: set[str]) -> None:
        """As `_make`, for several jobs and one call: those made before (a run again) are kept as they are, the
        rest asked of the image API at once; images one call did not bring back fail their jobs as `no_image`."""

        async def attempt() -> tuple[list[Job], list[GeneratedImage]]:
            for job in jobs:
                if job.id not in made and await self._made_before(job):
                    made.add(job.id)
            todo = [job for job in jobs if job.id not in made | lost]
            if todo:
                await self._originals.ensure_room()
            for job in list(todo):
                try:
                    await self._confirm(job)
                except LeaseLost:
                    log.info("job %s: taken over by another process before its image was made here", job.id)
                    self._presentation.lost(job)
                    lost.add(job.id)
                    todo.remove(job)
            if not todo:
                return todo, []
            return todo, await self._generate_together(todo)

        todo, images = await self._outlasting_outages(f"jobs {_ids(jobs)} wait", attempt)
        if not todo:
            return
        waiting = list(zip(todo, images, strict=False))  # one image per job; the answer may have fewer
        try:
            while waiting:
                job, image = waiting.pop(0)
                try:
                    await self._keep(job, image)
                except LeaseLost:
                    log.info("job %s: taken over by another process; its image is not kept here", job.id)
                    self._presentation.lost(job)
                    lost.add(job.id)
                    continue
                made.add(job.id)
        finally:
            for _, image in waiting:
                await image.release()
        for job in todo[len(images) :]:
            log.warning("job %s: the call for %d images brought back %d", job.id, len(todo), len(images))
            self._failed(job, "no_image")

    async def _generate_together(self, jobs: list[Job]) -> list[GeneratedImage]:
        """One call for the images of `jobs` (the same request): `n` = how many."""
        lead = jobs[0]
        request = self._upstream(lead)
        async with self._references.fetched(lead.references) as pictures:
            self._presentation.generating(lead)
            if len(jobs) == 1:
                images = [await self._client.generate(request, pictures)]
            else:
                images = await self._client.generate_many(request, len(jobs), pictures)
            if self._retry_mismatch:
                for i, (job, image) in enumerate(zip(jobs, images, strict=False)):
                    if not job.request.matches(image.width, image.height):
                        images[i] = await self._retry_for_size(job, request, pictures, image)
        return images

    async def _retry_for_size(
        self, job: Job, request: ImageRequest, images: list[Path], first: GeneratedImage
    ) -> GeneratedImage:
        """One more call when the size is wrong, charged like any job; the better of the two is kept."""
        retry = dataclasses.replace(job, id=f"{job.id}-r")
        try:
            await self._quota.reserve(retry)
        except QuotaExceeded:
            log.info("job %s: size mismatch, no credits left for a retry", job.id)
            return first
        except Exception as exc:
            if not outage(exc):  # the first image exists: an outage must not make it again
                raise
            complain(log, f"job {job.id}: no retry for its size", exc)
            return first
        log.info("job %s: size mismatch (%dx%d); one retry", job.id, first.width, first.height)
        try:
            second = await self._client.generate(request, images)
        except ImageGenError as exc:
            log.warning("job %s: size retry failed: %s", job.id, exc.detail)
            await self._persist(lambda: self._quota.refund(retry), f"refund the size retry of job {job.id}")
            return first
        if job.request.matches(second.width, second.height) or not job.request.matches(first.width, first.height):
            await first.release()
            return second
        await second.release()
        return first


def _ids(jobs: list[Job]) -> str:
    return ", ".join(job.id for job in jobs)
