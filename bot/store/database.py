"""Every query the bot makes, written once in SQLAlchemy Core for both backends.

`Store` holds the queries; `SqliteStore` and `PostgresStore` (one module each) say how to connect, how a queue
transaction is made exclusive, and how processes wake each other. Several processes may share one database: a job
is claimed by exactly one of them under a lease, and whatever decides who does what is a row, never memory.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import sqlalchemy as sa

from ..models import Job, JobStatus, LineStage, Origin, PendingRequest, Prefs, Reservation
from ..options import AspectRatio, ImageRequest, Resolution
from .schema import (
    album_parts,
    blocked,
    grants,
    jobs,
    meta,
    notices,
    originals,
    pending,
    prefs,
    served,
    updates,
    usage,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

PENDING_TTL = 7 * 24 * 3600.0
MAX_ATTEMPTS = 2  # a job interrupted by a crash is run once more, then the user is asked to tap Again
FINAL = (JobStatus.DONE.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)
UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.MADE.value)
# settled: 0 open, 1 being delivered by `worker` under a lease, 2 delivered or told why not
OPEN, DELIVERING, SETTLED = 0, 1, 2


class StoreError(Exception):
    """The database cannot be used; the message says which and what to do."""


class LeaseLost(Exception):
    """Another process holds the job now (its epoch moved on): this process's write about it was refused, and it
    stops quietly — it neither sends nor writes anything more for that job."""


def outage(exc: BaseException) -> str | None:
    """What kind of database outage `exc` is ("refused", "timeout", "connection lost"), or None when it is not one
    (a bug, a constraint, a full disk): an outage is expected and logged in one line, never as a traceback."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 8 and current not in chain:
        chain.append(current)
        context = None if current.__suppress_context__ else current.__context__
        current = getattr(current, "orig", None) or current.__cause__ or context
    for error in chain:
        name = type(error).__name__
        if isinstance(error, ConnectionRefusedError) or name in _REFUSED:
            return "refused"
        if isinstance(error, (TimeoutError, sa.exc.TimeoutError)) or (
                isinstance(error, sa.exc.OperationalError) and "database is locked" in str(error)):
            return "timeout"
        if isinstance(error, ConnectionError) or name in _LOST or (
                isinstance(error, OSError) and error.errno in _NETWORK_ERRNOS) or (
                isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated):
            return "connection lost"
    return None


_REFUSED = ("CannotConnectNowError", "AdminShutdownError", "CrashShutdownError", "TooManyConnectionsError")
_LOST = ("ConnectionDoesNotExistError", "PostgresConnectionError", "ConnectionFailureError",
         "ClientCannotConnectError", "InterfaceError", "InternalClientError")
_NETWORK_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT,
                   errno.ECONNABORTED, errno.ECONNRESET, errno.EPIPE}


class QueueFull(Exception):
    """The user already has as many unfinished jobs as allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"limit {limit}")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Caps:
    """What may run at once: over all processes, per user (a request of variants counts once)."""

    total: int
    per_user: int


@dataclass(frozen=True, slots=True)
class Reaped:
    """What a sweep of expired leases found: jobs to run again are queued; these groups need settling by us, each
    under the epoch of its delivery we now hold."""

    requeued: int
    settle: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class LineTurn:
    """The answer to "may this process show the next stage of a request's status line?"."""

    taken: bool  # yes: the line is this process's to edit at that stage
    since: float | None = None  # when its request began being made (Unix seconds): the seconds shown count from it
    busy: bool = False  # not yet: the waiting line's last edit may still be on its way; ask again in a moment


_ORIGIN = ("chat_id", "user_id", "thread_id", "reply_to", "lang", "requester")
_JSON = ("failure_values", "sent")
_PLAIN = tuple(f.name for f in fields(Job) if f.name not in ("origin", "request", "references", *_JSON))


def job_row(job: Job) -> dict[str, Any]:
    o, r = job.origin, job.request
    row: dict[str, Any] = {name: getattr(o, name) for name in _ORIGIN}
    row.update(prompt=r.prompt, aspect_ratio=r.aspect_ratio.value, size=r.size.value,
               refs=json.dumps(job.references))
    row.update({name: getattr(job, name) for name in _PLAIN})
    row["status"] = job.status.value
    row.update({name: json.dumps(getattr(job, name)) for name in _JSON})
    return row


def row_job(row: sa.Row) -> Job:
    m = row._mapping
    request = ImageRequest(m["prompt"], AspectRatio(m["aspect_ratio"]), Resolution(m["size"]))
    values = {name: m[name] for name in _PLAIN}
    values["status"] = JobStatus(values["status"])
    values.update({name: json.loads(m[name]) if m[name] else {} for name in _JSON})
    return Job(origin=_origin(m), request=request, references=tuple(json.loads(m["refs"])), **values)


def _origin(m: Any) -> Origin:
    return Origin(*(m[name] for name in _ORIGIN))


class Store:
    """The queries; a backend subclass supplies the connections, the queue lock and the wake-ups.

    A query that needs several statements is a plain function of a synchronous `sa.Connection`, run in one
    transaction by `_write`: SQLite runs it directly (a statement on a local file takes microseconds), PostgreSQL
    through `AsyncConnection.run_sync`. So every query is written once, and none awaits in the middle of a
    transaction.
    """

    shares_originals = False  # whether result bytes live in the database (for processes on other machines)
    _skip_locked = ""  # what the claim's SELECT ends with: row locks others skip (PostgreSQL)

    def __init__(self) -> None:
        self._wake_callbacks: list[Callable[[str], None]] = []

    # ---- backend hooks ----

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def insert(self, table: sa.Table) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        """Its kind and where it is, without a password: `SQLite data/imagine-bot.sqlite3`."""
        raise NotImplementedError

    async def _write(self, work: Callable[..., T], *args: Any) -> T:
        """`work(conn, *args)` in one transaction that writes; committed when it returns, rolled back if it raises."""
        raise NotImplementedError

    async def _all(self, statement: Any, params: dict | None = None) -> list[sa.Row]:
        """A read, outside any transaction (no lock taken)."""
        raise NotImplementedError

    def _lock_queue(self, conn: sa.Connection) -> None:
        """Make this transaction the only one deciding claims (caps hold across processes)."""

    def notify(self, conn: sa.Connection, topic: str) -> None:
        """Tell other processes something changed (`jobs`, `cancel`, `updates`); a no-op where they poll."""

    def on_wake(self, callback: Callable[[str], None]) -> None:
        """Hear `notify` topics from other processes (PostgreSQL); every process also polls."""
        self._wake_callbacks.append(callback)

    def _woken(self, topic: str) -> None:
        for callback in self._wake_callbacks:
            callback(topic)

    async def _one(self, statement: Any, params: dict | None = None) -> sa.Row | None:
        rows = await self._all(statement, params)
        return rows[0] if rows else None

    async def _run(self, statement: Any, params: dict | None = None, *, notify: str | None = None) -> int:
        """One writing statement, its own transaction; `notify` tells other processes when it changed rows."""

        def work(conn: sa.Connection) -> int:
            count = conn.execute(statement, params or {}).rowcount
            if notify and count:
                self.notify(conn, notify)
            return count

        return await self._write(work)

    async def ping(self) -> None:
        """One round trip; raises when the database does not answer."""
        await self._all(sa.select(sa.literal(1)))

    async def _after_open(self) -> None:
        def work(conn: sa.Connection) -> None:
            # A real write at every start: a read-only database fails here, not on the first user's job.
            conn.execute(self.insert(meta).values(key="last_start", value=str(time.time()))
                         .on_conflict_do_update(index_elements=["key"], set_={"value": str(time.time())}))
            conn.execute(sa.delete(pending).where(pending.c.created_at < time.time() - PENDING_TTL))

        await self._write(work)

    # ---- pending keyboard requests ----

    async def save_pending(self, p: PendingRequest) -> None:
        row = {name: getattr(p.origin, name) for name in _ORIGIN}
        row.update(id=p.id, prompt=p.prompt, aspect_ratio=p.aspect_ratio.value, size=p.size.value,
                   message_id=p.message_id, created_at=p.created_at, refs=json.dumps(p.references),
                   variants=p.variants, ref_width=p.ref_width, ref_height=p.ref_height,
                   source_text=p.source_text, source_date=p.source_date, wants_prompt=int(p.wants_prompt),
                   album_id=p.album_id)
        statement = self.insert(pending).values(**row)
        await self._run(statement.on_conflict_do_update(
            index_elements=["id"], set_={k: statement.excluded[k] for k in row if k != "id"}))

    async def get_pending(self, pending_id: str) -> PendingRequest | None:
        row = await self._one(sa.select(pending).where(pending.c.id == pending_id))
        return _pending(row) if row else None

    async def pending_for_source(self, chat_id: int, user_id: int, message_id: int) -> PendingRequest | None:
        """The open keyboard a user's message started (an edit of that message changes its prompt)."""
        row = await self._one(sa.select(pending).where(
            pending.c.chat_id == chat_id, pending.c.user_id == user_id, pending.c.reply_to == message_id,
            pending.c.wants_prompt == 0).order_by(pending.c.created_at.desc()).limit(1))
        return _pending(row) if row else None

    async def latest_pending(self, chat_id: int, user_id: int, since: float, *,
                             wants_prompt: bool) -> PendingRequest | None:
        """A user's newest request in a chat made after `since`: pictures waiting for words (`wants_prompt`), or a
        keyboard whose prompt may go on in the next message."""
        condition = (pending.c.wants_prompt == 1) if wants_prompt else pending.c.source_text.is_not(None)
        row = await self._one(sa.select(pending).where(
            pending.c.chat_id == chat_id, pending.c.user_id == user_id, pending.c.created_at >= since, condition,
        ).order_by(pending.c.created_at.desc()).limit(1))
        return _pending(row) if row else None

    async def drop_waiting_pictures(self, chat_id: int, user_id: int) -> None:
        """Pictures waiting for words are forgotten once other pictures come with their words."""
        await self._run(sa.delete(pending).where(pending.c.chat_id == chat_id, pending.c.user_id == user_id,
                                                 pending.c.wants_prompt == 1))

    async def take_pending(self, pending_id: str) -> PendingRequest | None:
        """Remove and return it: of two quick taps on Generate, on any processes, only one gets it."""
        rows = await self._write(lambda conn: conn.execute(
            sa.delete(pending).where(pending.c.id == pending_id).returning(*pending.c)).all())
        return _pending(rows[0]) if rows else None

    # ---- jobs ----

    async def save_job(self, job: Job) -> None:
        """Write the job's fields; a job another process already ended (a cancel) keeps its ending."""
        await self._run(self._upsert(job))

    def _upsert(self, job: Job) -> Any:
        row = job_row(job)
        statement = self.insert(jobs).values(**row)
        return statement.on_conflict_do_update(
            index_elements=["id"], set_={k: statement.excluded[k] for k in row if k != "id"},
            where=jobs.c.status.not_in(FINAL) | (statement.excluded.status == jobs.c.status),
        )

    async def set_status_message(self, job_id: str, message_id: int | None) -> None:
        await self._run(_SET_STATUS_MESSAGE, {"b_id": job_id, "v_message": message_id})

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._one(sa.select(jobs).where(jobs.c.id == job_id))
        return row_job(row) if row else None

    async def group_jobs(self, group: str) -> list[Job]:
        """The jobs of one request, in variant order (a single job is its own group)."""
        rows = await self._all(_GROUP_JOBS, {"b_group": group})
        return [row_job(r) for r in rows]

    async def user_unfinished(self, user_id: int) -> list[Job]:
        """Unfinished jobs of a user, newest first (whichever process runs them); one already told to stop is not."""
        rows = await self._all(sa.select(jobs).where(jobs.c.user_id == user_id, jobs.c.status.in_(UNFINISHED),
                                                     jobs.c.cancel_requested == 0)
                               .order_by(jobs.c.created_at.desc()))
        return [row_job(r) for r in rows]

    async def history(self, user_id: int, chat_id: int, since: float, *, made: bool, offset: int,
                      limit: int) -> tuple[int, list[list[Job]]]:
        """A page of a user's ended requests in a chat since `since`, newest first, each its jobs in variant order:
        those that made an image (`made`), or those that made none (failed or cancelled), so neither kind can
        push the other out; and how many of that kind there are in all."""
        group = sa.func.coalesce(jobs.c.group_id, jobs.c.id)
        done = sa.func.sum(sa.case((jobs.c.status == JobStatus.DONE.value, 1), else_=0))
        open_ = sa.func.sum(sa.case((jobs.c.status.in_(UNFINISHED), 1), else_=0))
        requests = (sa.select(group.label("request"), sa.func.max(jobs.c.created_at).label("at"))
                    .where(jobs.c.user_id == user_id, jobs.c.chat_id == chat_id,
                           sa.func.coalesce(jobs.c.finished_at, jobs.c.created_at) >= since)
                    .group_by(group).having(done > 0 if made else sa.and_(done == 0, open_ == 0)))
        total = await self._one(sa.select(sa.func.count()).select_from(requests.subquery()))
        page = [r[0] for r in await self._all(requests.order_by(sa.desc("at"), sa.desc("request"))
                                              .offset(offset).limit(limit))]
        if not page:
            return (total[0] if total else 0), []
        rows = await self._all(sa.select(jobs).where(jobs.c.user_id == user_id, group.in_(page))
                               .order_by(jobs.c.variant))
        members: dict[str, list[Job]] = {request: [] for request in page}
        for row in rows:
            job = row_job(row)
            members[job.group].append(job)
        return (total[0] if total else 0), list(members.values())

    async def jobs_since(self, since: float) -> list[Job]:
        """A week of jobs for /stats: tens of thousands of rows on a busy bot, so read off the event loop."""
        statement = sa.select(jobs).where(jobs.c.created_at >= since).order_by(jobs.c.created_at)
        return await self._large_read(statement, row_job)

    async def _large_read(self, statement: Any, convert: Callable[[sa.Row], T]) -> list[T]:
        """A read of many rows; the backend may run it in a thread (SQLite's statements otherwise run on the loop)."""
        return [convert(row) for row in await self._all(statement)]

    # ---- the queue ----

    async def enqueue(self, new: list[Job], user_limit: int) -> None:
        """Store the jobs of one request as queued, unless the user would have more than `user_limit` unfinished."""
        user = new[0].origin.user_id
        rows = [job_row(j) for j in new]

        def work(conn: sa.Connection) -> None:
            self._lock_queue(conn)
            count = conn.execute(_UNFINISHED_OF_USER, {"b_user": user}).scalar_one()
            if count + len(new) > user_limit:
                raise QueueFull(user_limit)
            conn.execute(_INSERT_JOBS, rows)
            self.notify(conn, "jobs")

        await self._write(work)

    async def claim(self, worker: str, caps: Caps, lease: float) -> Job | None:
        """Take the next job for `worker`: round-robin across users (the one served least recently first), the
        rest of a request already started before anyone else, within the caps over every process."""
        now = time.time()

        def work(conn: sa.Connection) -> sa.Row | None:
            self._lock_queue(conn)
            row = conn.execute(self._claim_query, {"user_cap": caps.per_user, "total": caps.total}).first()
            if row is None:
                return None
            job_id, user_id = row
            claimed = conn.execute(_START, {"b_id": job_id, "v_worker": worker, "v_lease": now + lease,
                                            "v_now": now}).one()
            conn.execute(self._served, {"user_id": user_id, "serial": time.time_ns()})
            return claimed

        claimed = await self._write(work)
        return row_job(claimed) if claimed is not None else None

    @functools.cached_property
    def _served(self) -> Any:
        """Mark a user served now (round-robin): an upsert, in the backend's dialect."""
        statement = self.insert(served)
        return statement.on_conflict_do_update(index_elements=["user_id"], set_={"serial": statement.excluded.serial})

    @functools.cached_property
    def _claim_query(self) -> sa.TextClause:
        group = "COALESCE(j.group_id, j.id)"
        return sa.text(f"""
            SELECT j.id, j.user_id FROM jobs j LEFT JOIN served s ON s.user_id = j.user_id
            WHERE j.status = 'queued'
              AND (SELECT COUNT(*) FROM jobs t WHERE t.status = 'running') < :total AND (
                EXISTS (SELECT 1 FROM jobs g WHERE g.group_id = j.group_id AND g.status = 'running')
                OR (SELECT COUNT(DISTINCT COALESCE(r.group_id, r.id)) FROM jobs r
                    WHERE r.user_id = j.user_id AND r.status = 'running') < :user_cap)
            ORDER BY CASE WHEN EXISTS (SELECT 1 FROM jobs g WHERE g.group_id = j.group_id
                                       AND g.status IN ('running', 'made')) THEN 0 ELSE 1 END,
                     COALESCE(s.serial, -1), j.created_at, {group}, j.variant
            LIMIT 1 {self._skip_locked}""")

    async def renew(self, worker: str, lease: float) -> dict[str, int]:
        """Keep this process's claims (running jobs, requests it is delivering) for `lease` seconds more, never
        shortening a longer hold taken for a send; returns what it still holds: job id → epoch."""
        rows = await self._write(lambda conn: conn.execute(_RENEW, {"b_worker": worker,
                                                                    "v_until": time.time() + lease}).all())
        return {row[0]: row[1] for row in rows}

    async def hold(self, job_id: str, epoch: int, until: float) -> None:
        """Extend one lease to at least `until` (the send gate); LeaseLost when another process holds it now."""
        if await self._run(_HOLD, {"b_id": job_id, "b_epoch": epoch, "v_until": until}) != 1:
            raise LeaseLost(job_id)

    async def release(self, job: Job) -> None:
        """Give a running job back to the queue (a stop): another process, or the next start, runs it."""
        await self._run(sa.update(jobs).where(jobs.c.id == job.id, jobs.c.epoch == job.epoch,
                                              jobs.c.status == JobStatus.RUNNING.value)
                        .values(status=JobStatus.QUEUED.value, worker=None, lease_until=None, epoch=jobs.c.epoch + 1,
                                attempts=sa.case((jobs.c.attempts > 0, jobs.c.attempts - 1), else_=0)))
        job.status = JobStatus.QUEUED

    async def holders(self) -> list[str]:
        """The workers holding leases now."""
        rows = await self._all(sa.select(jobs.c.worker).distinct().where(
            jobs.c.worker.is_not(None), (jobs.c.status == JobStatus.RUNNING.value) | (jobs.c.settled == DELIVERING)))
        return [r[0] for r in rows]

    async def expire(self, workers: list[str]) -> None:
        """End the leases of workers known to be dead (their process is gone), so `reap` takes over at once."""
        await self._run(sa.update(jobs).where(jobs.c.worker.in_(workers)).values(lease_until=0.0))

    async def reap(self, worker: str, lease: float) -> Reaped:
        """Jobs whose process stopped renewing: run once more, or (interrupted twice) fail; deliveries left
        halfway are taken over by `worker`, which must settle the returned groups."""
        now = time.time()

        def work(conn: sa.Connection) -> Reaped:
            settle: list[tuple[str, int]] = []
            self._lock_queue(conn)
            expired = conn.execute(sa.select(jobs).where(  # no lease at all: left by the first release
                jobs.c.status == JobStatus.RUNNING.value,
                (jobs.c.lease_until < now) | jobs.c.lease_until.is_(None))).all()
            requeued = 0
            for row in expired:
                job = row_job(row)
                # Each takeover names the epoch it saw and still finds the lease expired (a renewal that got in
                # first wins), and moves the epoch on: the old holder's writes are refused from now on.
                still = (jobs.c.id == job.id, jobs.c.epoch == job.epoch, jobs.c.status == JobStatus.RUNNING.value,
                         (jobs.c.lease_until < now) | jobs.c.lease_until.is_(None))
                if job.attempts >= MAX_ATTEMPTS:
                    if conn.execute(sa.update(jobs).where(*still).values(
                            status=JobStatus.FAILED.value, error_kind="interrupted", finished_at=now, worker=None,
                            epoch=jobs.c.epoch + 1)).rowcount != 1:
                        continue
                    conn.execute(sa.update(usage).where(usage.c.job_id == job.id).values(refunded=1))
                    if (epoch := self._settle_in(conn, job.group, worker, lease)) is not None:
                        settle.append((job.group, epoch))
                elif conn.execute(sa.update(jobs).where(*still).values(
                        status=JobStatus.QUEUED.value, worker=None, lease_until=None,
                        epoch=jobs.c.epoch + 1)).rowcount == 1:
                    requeued += 1
            stalled = conn.execute(sa.select(jobs.c.id, jobs.c.group_id, jobs.c.epoch).where(
                jobs.c.settled == DELIVERING, jobs.c.lease_until < now)).all()
            made = conn.execute(sa.select(jobs.c.id, jobs.c.group_id).where(  # a crash between two writes
                jobs.c.settled == OPEN, jobs.c.variant == 1, jobs.c.status.in_(FINAL + (JobStatus.MADE.value,)),
                jobs.c.worker.is_(None) | (jobs.c.lease_until < now))).all()
            for lead, group_id in made:
                if (epoch := self._settle_in(conn, group_id or lead, worker, lease)) is not None:
                    settle.append((group_id or lead, epoch))
            for lead, group_id, epoch in stalled:
                taken = conn.execute(sa.update(jobs).where(
                    jobs.c.id == lead, jobs.c.epoch == epoch, jobs.c.settled == DELIVERING, jobs.c.lease_until < now)
                    .values(worker=worker, lease_until=now + lease, epoch=jobs.c.epoch + 1)
                    .returning(jobs.c.epoch)).scalar()
                if taken is not None:
                    settle.append((group_id or lead, taken))
            if requeued:
                self.notify(conn, "jobs")
            return Reaped(requeued, settle)

        return await self._write(work)

    async def finish_job(self, job: Job, worker: str, lease: float) -> int | None:
        """Record a job's result (made, failed or cancelled — then refunded) if this process still holds it
        (else LeaseLost, and nothing is written); the epoch of the request's delivery when it is now complete and
        this process must deliver it (exactly one process gets one per request), else None."""
        params = _outcome(job)

        def work(conn: sa.Connection) -> int | None:
            self._lock_queue(conn)
            if conn.execute(_WRITE_OUTCOME, params).rowcount != 1:
                raise LeaseLost(job.id)
            if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):  # its credits back, once, in the same write
                conn.execute(_REFUND, {"b_id": job.id})
            return self._settle_in(conn, job.group, worker, lease)

        return await self._write(work)

    async def try_settle(self, group: str, worker: str, lease: float) -> int | None:
        """Claim the delivery of a request whose jobs have all ended (e.g. cancelled while waiting): its epoch."""
        def work(conn: sa.Connection) -> int | None:
            self._lock_queue(conn)
            return self._settle_in(conn, group, worker, lease)

        return await self._write(work)

    def _settle_in(self, conn: sa.Connection, group: str, worker: str, lease: float) -> int | None:
        """The delivery of a complete request, claimed as a new epoch of its lead job (None: not complete, or
        another process has it)."""
        statuses = conn.execute(_GROUP_STATUSES, {"b_group": group}).scalars().all()
        if any(status in (JobStatus.QUEUED.value, JobStatus.RUNNING.value) for status in statuses):
            return None
        return conn.execute(_WIN_DELIVERY, {"b_group": group, "v_worker": worker,
                                            "v_lease": time.time() + lease}).scalar()

    async def conclude(self, group: str, members: list[Job], epoch: int) -> None:
        """A request is over: every job's outcome, the refunds of those that failed, and its settled mark, in one
        transaction, by the holder of its delivery (else LeaseLost, and nothing is written)."""
        outcomes = [_outcome(job, with_status_message=True) for job in members]
        refunds = [{"b_id": job.id} for job in members if job.status in (JobStatus.FAILED, JobStatus.CANCELLED)]

        def work(conn: sa.Connection) -> None:
            if conn.execute(_SETTLED, {"b_group": group, "b_epoch": epoch}).rowcount != 1:
                raise LeaseLost(group)
            conn.execute(_CONCLUDE_OUTCOME, outcomes)
            if refunds:  # what failed at delivery; once (a job refunded already stays so)
                conn.execute(_REFUND, refunds)

        await self._write(work)

    async def record_sent(self, job: Job, epoch: int, lease: float) -> None:
        """What a delivery has sent so far, written before the next Telegram call (a crash never resends it); the
        long hold taken for the send goes back to `lease`. LeaseLost when another process holds it now."""
        if await self._run(_RECORD_SENT, {"b_id": job.id, "b_epoch": epoch, "v_sent": json.dumps(job.sent),
                                          "v_until": time.time() + lease}) != 1:
            raise LeaseLost(job.id)

    async def cancel(self, group: str) -> tuple[list[Job], list[str]]:
        """Cancel a request: waiting jobs at once (returned), running ones flagged (their ids returned) for the
        process that runs them."""
        now = time.time()
        where = _members(group)

        def work(conn: sa.Connection) -> tuple[list[sa.Row], list[str]]:
            self._lock_queue(conn)
            rows = conn.execute(sa.update(jobs).where(where, jobs.c.status == JobStatus.QUEUED.value)
                                .values(status=JobStatus.CANCELLED.value, finished_at=now)
                                .returning(*jobs.c)).all()
            flagged = conn.execute(sa.update(jobs).where(where, jobs.c.status == JobStatus.RUNNING.value)
                                   .values(cancel_requested=1).returning(jobs.c.id)).scalars().all()
            if flagged:
                self.notify(conn, "cancel")
            return rows, list(flagged)

        rows, flagged = await self._write(work)
        return [row_job(r) for r in rows], flagged

    async def cancel_requested(self, worker: str) -> list[str]:
        rows = await self._all(sa.select(jobs.c.id).where(jobs.c.worker == worker,
                                                          jobs.c.status == JobStatus.RUNNING.value,
                                                          jobs.c.cancel_requested == 1))
        return [r[0] for r in rows]

    async def waiting_order(self) -> list[tuple[str, str, int]]:
        """(job id, group, user) of every waiting job in the order they will start: each user's k-th job after
        everyone's (k-1)-th, least recently served first. One query, whatever the number of jobs."""
        rows = await self._all(sa.text("""
            SELECT id, COALESCE(group_id, id), user_id FROM (
                SELECT j.id, j.group_id, j.user_id, j.created_at, j.variant, COALESCE(s.serial, -1) AS serial,
                       ROW_NUMBER() OVER (PARTITION BY j.user_id ORDER BY j.created_at, j.variant) AS nth
                FROM jobs j LEFT JOIN served s ON s.user_id = j.user_id WHERE j.status = 'queued') w
            ORDER BY nth, serial, created_at, variant"""))
        return [(r[0], r[1], r[2]) for r in rows]

    async def queue_counts(self) -> tuple[int, int]:
        """(waiting, running) over every process."""
        rows = await self._all(sa.select(jobs.c.status, sa.func.count()).where(
            jobs.c.status.in_((JobStatus.QUEUED.value, JobStatus.RUNNING.value))).group_by(jobs.c.status))
        counts = dict(rows)
        return counts.get(JobStatus.QUEUED.value, 0), counts.get(JobStatus.RUNNING.value, 0)

    # ---- status lines: one process at a time edits one, and only forward ----

    async def hold_line(self, group: str, until: float) -> bool:
        """The process that queued a request is about to edit its waiting line: only while no worker has taken
        the line further. Until `until` (or `unhold_line`) a worker waits for that edit before showing its own."""
        return await self._run(_HOLD_LINE, {"b_group": group, "v_until": until}) == 1

    async def unhold_line(self, group: str, until: float) -> None:
        await self._run(_UNHOLD_LINE, {"b_group": group, "v_until": until})

    async def advance_line(self, group: str, stage: int, owner: str) -> LineTurn:
        """Take a request's status line to `stage` for `owner`: granted when the line is behind that stage, or at
        it with no other process running a job of the request under it (a takeover after a stop or a crash),
        and no waiting line's edit is on its way."""
        now = time.time()
        params = {"b_group": group, "v_stage": stage, "v_owner": owner, "v_now": now}

        def work(conn: sa.Connection) -> LineTurn:
            since = conn.execute(_ADVANCE_LINE, params).scalar_one_or_none()
            if since is not None:
                return LineTurn(True, since)
            busy = conn.execute(_LINE_BUSY, {"b_group": group}).scalar_one_or_none()
            return LineTurn(False, busy=busy is not None and busy >= now)

        return await self._write(work)

    # ---- the update inbox ----

    async def record_update(self, update_id: int, chat_id: int | None, payload: dict) -> bool:
        """Durably keep an update before Telegram hears it was received; False for one seen before."""
        return await self._run(self._record_update, {
            "update_id": update_id, "chat_id": chat_id, "payload": json.dumps(payload), "state": "new",
            "received_at": time.time()}, notify="updates") == 1

    @functools.cached_property
    def _record_update(self) -> Any:
        return self.insert(updates).on_conflict_do_nothing(index_elements=["update_id"])

    async def claim_update(self, owner: str, lease: float, limit: int) -> list[tuple[int, dict]]:
        """Up to `limit` recorded updates, at most one per chat, and only a chat's oldest unfinished one: the
        updates of a chat take effect in order, whichever process handles each."""
        now = time.time()

        def work(conn: sa.Connection) -> list[sa.Row]:
            self._lock_queue(conn)
            rows = conn.execute(_NEXT_UPDATES, {"now": now, "limit": limit}).all()
            if rows:
                conn.execute(_TAKE_UPDATES, {"b_ids": [r[0] for r in rows], "v_owner": owner,
                                             "v_lease": now + lease})
            return rows

        return [(r[0], json.loads(r[1])) for r in await self._write(work)]

    async def update_done(self, update_id: int) -> None:
        """Handled: the payload goes, the id stays (a repeat is still recognised)."""
        await self._run(_UPDATE_DONE, {"b_id": update_id}, notify="updates")

    async def reap_updates(self, dead: Callable[[str], bool]) -> int:
        """Updates whose process died while handling them (its lease ran out, or `dead(owner)`) are handled again."""
        def work(conn: sa.Connection) -> int:
            owners = conn.execute(sa.select(updates.c.owner).distinct().where(
                updates.c.state == "processing")).scalars().all()
            gone = [owner for owner in owners if owner and dead(owner)]
            return conn.execute(sa.update(updates).where(
                updates.c.state == "processing",
                (updates.c.lease_until < time.time()) | updates.c.owner.in_(gone)).values(
                state="new", owner=None)).rowcount

        return await self._write(work)

    async def prune_updates(self, older_than: float) -> None:
        await self._run(sa.delete(updates).where(updates.c.state == "done", updates.c.received_at < older_than))

    async def last_update_id(self) -> int | None:
        row = await self._one(sa.select(sa.func.max(updates.c.update_id)))
        return row[0] if row else None

    # ---- albums ----

    async def add_album_part(self, chat_id: int, media_group_id: str, message_id: int, refs: list[dict]) -> None:
        await self._run(self.insert(album_parts).values(
            chat_id=chat_id, media_group_id=media_group_id, message_id=message_id, refs=json.dumps(refs),
            received_at=time.time()).on_conflict_do_nothing())

    async def album(self, chat_id: int, media_group_id: str) -> tuple[list[dict], float]:
        """The album's pictures in message order, and when its newest part arrived."""
        rows = await self._all(sa.select(album_parts.c.refs, album_parts.c.received_at).where(
            album_parts.c.chat_id == chat_id, album_parts.c.media_group_id == media_group_id)
            .order_by(album_parts.c.message_id))
        return [ref for r in rows for ref in json.loads(r[0])], max((r[1] for r in rows), default=0.0)

    async def prune_albums(self, older_than: float) -> None:
        await self._run(sa.delete(album_parts).where(album_parts.c.received_at < older_than))

    # ---- originals every process can read ----

    async def save_original(self, job_id: str, epoch: int, extension: str, data: bytes) -> None:
        """Keep a made image for every process, if this process still holds its job (else LeaseLost): the job's
        row is locked meanwhile, so a takeover either finds this image or none."""
        statement = self.insert(originals).values(job_id=job_id, extension=extension, data=data, nbytes=len(data),
                                                  created_at=time.time())
        statement = statement.on_conflict_do_update(
            index_elements=["job_id"], set_={k: statement.excluded[k] for k in ("extension", "data", "nbytes",
                                                                                 "created_at")})

        def work(conn: sa.Connection) -> None:
            if conn.execute(_HOLDER, {"b_id": job_id}).scalar() != epoch:
                raise LeaseLost(job_id)
            conn.execute(statement)

        await self._write(work)

    async def load_original(self, job_id: str) -> tuple[str, bytes] | None:
        row = await self._one(sa.select(originals.c.extension, originals.c.data).where(originals.c.job_id == job_id))
        return (row[0], bytes(row[1])) if row else None

    async def prune_originals(self, max_age: float, max_total: int) -> int:
        """Oldest first: everything past the age, then until the total fits."""
        removed = await self._run(sa.delete(originals).where(originals.c.created_at < time.time() - max_age))
        rows = await self._all(sa.select(originals.c.job_id, originals.c.nbytes)
                               .order_by(originals.c.created_at.desc()))
        total, drop = 0, []
        for job_id, nbytes in rows:
            total += nbytes
            if total > max_total:
                drop.append(job_id)
        if drop:
            removed += await self._run(sa.delete(originals).where(originals.c.job_id.in_(drop)))
        return removed

    # ---- remembered defaults ----

    async def get_prefs(self, scope: str, scope_id: int) -> Prefs:
        row = await self._one(_PREFS, {"b_scope": scope, "b_id": scope_id})
        if row is None:
            return Prefs()
        m = row._mapping
        return Prefs(AspectRatio(m["aspect_ratio"]) if m["aspect_ratio"] else None,
                     Resolution(m["size"]) if m["size"] else None, bool(m["always_original"]), m["language"],
                     m["variants"])

    async def save_prefs(self, scope: str, scope_id: int, p: Prefs) -> None:
        row = {"scope": scope, "scope_id": scope_id,
               "aspect_ratio": p.aspect_ratio.value if p.aspect_ratio else None,
               "size": p.size.value if p.size else None, "always_original": int(p.always_original),
               "language": p.language, "variants": p.variants}
        statement = self.insert(prefs).values(**row)
        await self._run(statement.on_conflict_do_update(
            index_elements=["scope", "scope_id"],
            set_={k: statement.excluded[k] for k in row if k not in ("scope", "scope_id")}))

    # ---- credits ----

    async def reserve_credits(self, r: Reservation) -> bool:
        """Record the credits of a job if every limit still has room: one statement, and the job id is the key,
        so never a double spend, whichever processes race."""
        params = {"job_id": r.job_id, "user_id": r.user_id, "chat_id": r.chat_id, "day": r.day,
                  "credits": r.credits, "now": time.time(), "user_limit": r.user_limit, "chat_limit": r.chat_limit}

        def work(conn: sa.Connection) -> bool:
            self._lock_credits(conn, r)
            if conn.execute(_RESERVE, params).rowcount == 1:
                return True
            row = conn.execute(_REFUNDED, {"b_id": r.job_id}).first()
            return row is not None and not row[0]  # already reserved by this job (a resumed job keeps it)

        return await self._write(work)

    def _lock_credits(self, conn: sa.Connection, r: Reservation) -> None:
        """Serialise reservations of one user (PostgreSQL); SQLite transactions are exclusive already."""

    async def refund_credits(self, job_id: str) -> bool:
        """Give a job's credits back; True only the first time (idempotent across processes and restarts)."""
        return await self._run(sa.update(usage).where(usage.c.job_id == job_id, usage.c.refunded == 0)
                               .values(refunded=1)) == 1

    async def refund_unfinished_failures(self) -> int:
        """Refunds a crash may have left undone: every failed or cancelled job gets its credits back."""
        failed = sa.select(jobs.c.id).where(jobs.c.status.in_((JobStatus.FAILED.value, JobStatus.CANCELLED.value)))
        return await self._run(sa.update(usage).where(usage.c.refunded == 0, usage.c.job_id.in_(failed))
                               .values(refunded=1))

    async def credits_used(self, *, day: str, user_id: int | None = None, chat_id: int | None = None) -> int:
        column = usage.c.user_id == user_id if user_id is not None else usage.c.chat_id == chat_id
        row = await self._one(sa.select(sa.func.coalesce(sa.func.sum(usage.c.credits), 0))
                              .where(column, usage.c.day == day, usage.c.refunded == 0))
        return int(row[0]) if row else 0

    async def credits_granted(self, user_id: int, day: str) -> int:
        row = await self._one(sa.select(sa.func.coalesce(sa.func.sum(grants.c.credits), 0))
                              .where(grants.c.user_id == user_id, grants.c.day == day))
        return int(row[0]) if row else 0

    async def grant_credits(self, user_id: int, day: str, credits: int) -> None:
        await self._run(sa.insert(grants).values(user_id=user_id, day=day, credits=credits, created_at=time.time()))

    # ---- access ----

    async def set_blocked(self, user_id: int, is_blocked: bool) -> None:
        if is_blocked:
            statement = self.insert(blocked).values(user_id=user_id, at=time.time())
            await self._run(statement.on_conflict_do_nothing())
        else:
            await self._run(sa.delete(blocked).where(blocked.c.user_id == user_id))

    async def is_blocked(self, user_id: int) -> bool:
        return await self._one(_BLOCKED, {"b_id": user_id}) is not None

    async def first_notice(self, subject_id: int, kind: str) -> bool:
        """True the first time only: for sentences a user should hear once, not on every message."""
        return await self._run(self.insert(notices).values(subject_id=subject_id, kind=kind, at=time.time())
                               .on_conflict_do_nothing()) == 1

    async def clear_notice(self, subject_id: int, kind: str) -> None:
        await self._run(sa.delete(notices).where(notices.c.subject_id == subject_id, notices.c.kind == kind))


def _members(group: str) -> sa.ColumnElement[bool]:
    """The jobs of a request: those of its group, or the single job whose id it is."""
    return (jobs.c.group_id == group) | ((jobs.c.id == group) & jobs.c.group_id.is_(None))


def _lead(group: str) -> sa.ColumnElement[bool]:
    """The first job of a request: it carries the request's delivery state."""
    return _members(group) & (jobs.c.variant == 1)


# ---- statements built once (building a statement costs more CPU than SQLite takes to run it) ----

_GROUP = sa.bindparam("b_group")
_IN_GROUP = (jobs.c.group_id == _GROUP) | ((jobs.c.id == _GROUP) & jobs.c.group_id.is_(None))
_IS_LEAD = _IN_GROUP & (jobs.c.variant == 1)
_JOB = jobs.c.id == sa.bindparam("b_id")
_ROW_COLUMNS = (*_ORIGIN, "prompt", "aspect_ratio", "size", "refs", *_PLAIN, *_JSON)  # what `job_row` writes
_OUTCOME_COLUMNS = [name for name in _ROW_COLUMNS if name not in ("id", "status_message_id", "epoch")]
_EPOCH = jobs.c.epoch == sa.bindparam("b_epoch")


def _outcome(job: Job, *, with_status_message: bool = False) -> dict[str, Any]:
    """The parameters of `_WRITE_OUTCOME` / `_CONCLUDE_OUTCOME` for a job."""
    row = job_row(job)
    params = {f"v_{name}": row[name] for name in _OUTCOME_COLUMNS}
    params["b_id"], params["b_epoch"] = job.id, job.epoch
    if with_status_message:
        params["v_status_message_id"] = row["status_message_id"]
    return params


_WRITE_OUTCOME = sa.update(jobs).where(_JOB, _EPOCH).values({name: sa.bindparam(f"v_{name}") for name in _OUTCOME_COLUMNS})
# A request's end (its delivery's epoch is checked on the lead first): a job another process already ended (a
# cancel) keeps its ending.
_CONCLUDE_OUTCOME = (
    sa.update(jobs)
    .where(_JOB, sa.and_(*(jobs.c.status != status for status in FINAL))  # no IN: it runs as executemany
           | (jobs.c.status == sa.bindparam("v_status")))
    .values({name: sa.bindparam(f"v_{name}") for name in [*_OUTCOME_COLUMNS, "status_message_id"]})
)
_REFUND = sa.update(usage).where(usage.c.job_id == sa.bindparam("b_id")).values(refunded=1)
_REFUNDED = sa.select(usage.c.refunded).where(usage.c.job_id == sa.bindparam("b_id"))
_GROUP_STATUSES = sa.select(jobs.c.status).where(_IN_GROUP)
_GROUP_JOBS = sa.select(jobs).where(_IN_GROUP).order_by(jobs.c.variant)
_WIN_DELIVERY = sa.update(jobs).where(_IS_LEAD, jobs.c.settled == OPEN).values(
    settled=DELIVERING, worker=sa.bindparam("v_worker"), lease_until=sa.bindparam("v_lease"),
    epoch=jobs.c.epoch + 1).returning(jobs.c.epoch)
_SETTLED = sa.update(jobs).where(_IS_LEAD, _EPOCH).values(settled=SETTLED)
_RECORD_SENT = sa.update(jobs).where(_JOB, _EPOCH).values(sent=sa.bindparam("v_sent"),
                                                          lease_until=sa.bindparam("v_until"))
_UNTIL = sa.bindparam("v_until")
_LONGER = sa.case((jobs.c.lease_until > _UNTIL, jobs.c.lease_until), else_=_UNTIL)  # a lease is never shortened
_RENEW = sa.update(jobs).where(
    jobs.c.worker == sa.bindparam("b_worker"),
    (jobs.c.status == JobStatus.RUNNING.value) | (jobs.c.settled == DELIVERING),
).values(lease_until=_LONGER).returning(jobs.c.id, jobs.c.epoch)
_HOLD = sa.update(jobs).where(_JOB, _EPOCH).values(lease_until=_LONGER)
_HOLDER = sa.select(jobs.c.epoch).where(_JOB).with_for_update()
_SET_STATUS_MESSAGE = sa.update(jobs).where(_JOB).values(status_message_id=sa.bindparam("v_message"))
_UNFINISHED_OF_USER = sa.select(sa.func.count()).select_from(jobs).where(
    jobs.c.user_id == sa.bindparam("b_user"), jobs.c.status.in_(UNFINISHED))
_INSERT_JOBS = sa.insert(jobs)
_START = sa.update(jobs).where(_JOB).values(
    status=JobStatus.RUNNING.value, worker=sa.bindparam("v_worker"), lease_until=sa.bindparam("v_lease"),
    started_at=sa.bindparam("v_now"), attempts=jobs.c.attempts + 1, cancel_requested=0,
    epoch=jobs.c.epoch + 1).returning(*jobs.c)
_LEAD_OF = "(group_id = :b_group OR (id = :b_group AND group_id IS NULL)) AND variant = 1"
_HOLD_LINE = sa.text(f"UPDATE jobs SET line_stage = {LineStage.QUEUED:d}, line_busy_until = :v_until "
                     f"WHERE {_LEAD_OF} AND line_stage <= {LineStage.QUEUED:d}")
_UNHOLD_LINE = sa.text(f"UPDATE jobs SET line_busy_until = NULL WHERE {_LEAD_OF} AND line_busy_until = :v_until")
_ADVANCE_LINE = sa.text(f"""
    UPDATE jobs SET line_stage = :v_stage, line_owner = :v_owner, line_since = COALESCE(line_since, :v_now)
    WHERE {_LEAD_OF} AND (line_busy_until IS NULL OR line_busy_until < :v_now)
      AND (line_stage < :v_stage OR (line_stage = :v_stage AND (
        line_owner IS NULL OR line_owner = :v_owner OR NOT EXISTS (
          SELECT 1 FROM jobs r WHERE COALESCE(r.group_id, r.id) = :b_group AND r.status = 'running'
          AND r.worker = jobs.line_owner))))
    RETURNING line_since""")
_LINE_BUSY = sa.text(f"SELECT line_busy_until FROM jobs WHERE {_LEAD_OF}")
_NEXT_UPDATES = sa.text("""
    SELECT u.update_id, u.payload FROM updates u
    WHERE u.state = 'new' AND (u.chat_id IS NULL OR u.update_id = (
        SELECT MIN(m.update_id) FROM updates m WHERE m.chat_id = u.chat_id
        AND (m.state = 'new' OR (m.state = 'processing' AND m.lease_until >= :now))))
    ORDER BY u.update_id LIMIT :limit""")
_TAKE_UPDATES = sa.update(updates).where(updates.c.update_id.in_(sa.bindparam("b_ids", expanding=True))).values(
    state="processing", owner=sa.bindparam("v_owner"), lease_until=sa.bindparam("v_lease"))
_UPDATE_DONE = sa.update(updates).where(updates.c.update_id == sa.bindparam("b_id")).values(
    state="done", payload=None, owner=None)
_PREFS = sa.select(prefs).where(prefs.c.scope == sa.bindparam("b_scope"), prefs.c.scope_id == sa.bindparam("b_id"))
_BLOCKED = sa.select(blocked.c.user_id).where(blocked.c.user_id == sa.bindparam("b_id"))
_USED = "(SELECT COALESCE(SUM(credits), 0) FROM usage WHERE {col} = :{col} AND day = :day AND refunded = 0)"
_GRANTED = "(SELECT COALESCE(SUM(credits), 0) FROM grants WHERE user_id = :user_id AND day = :day)"
_RESERVE = sa.text(  # one statement: the row goes in only if every limit has room; the job id is the key
    "INSERT INTO usage (job_id, user_id, chat_id, day, credits, refunded, created_at) "
    "SELECT CAST(:job_id AS TEXT), CAST(:user_id AS BIGINT), CAST(:chat_id AS BIGINT), "
    "CAST(:day AS TEXT), CAST(:credits AS INTEGER), 0, CAST(:now AS REAL) WHERE "
    f"(CAST(:user_limit AS BIGINT) IS NULL OR {_USED.format(col='user_id')} + CAST(:credits AS BIGINT) "
    f"<= CAST(:user_limit AS BIGINT) + {_GRANTED}) AND (CAST(:chat_limit AS BIGINT) IS NULL OR "
    f"{_USED.format(col='chat_id')} + CAST(:credits AS BIGINT) <= CAST(:chat_limit AS BIGINT)) "
    "ON CONFLICT (job_id) DO NOTHING")


def _pending(row: sa.Row) -> PendingRequest:
    m = row._mapping
    return PendingRequest(m["id"], _origin(m), m["prompt"], AspectRatio(m["aspect_ratio"]), Resolution(m["size"]),
                          m["message_id"], m["created_at"], tuple(json.loads(m["refs"])), m["variants"],
                          m["ref_width"], m["ref_height"], m["source_text"], m["source_date"],
                          bool(m["wants_prompt"]), m["album_id"])

