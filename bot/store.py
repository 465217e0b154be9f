"""Persistence of pending keyboard requests and jobs behind one async interface.

`MemoryStore` keeps them in this process; a database backend implements the same methods.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum

from .options import AspectRatio, ImageRequest, Resolution

PENDING_TTL = 24 * 3600.0
JOB_TTL = 7 * 24 * 3600.0


def new_id() -> str:
    """Short, unguessable, callback-data safe."""
    return secrets.token_urlsafe(6)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from and where its answers go."""

    chat_id: int
    user_id: int
    thread_id: int | None = None
    reply_to: int | None = None
    lang: str | None = None


@dataclass(slots=True)
class PendingRequest:
    """A prompt waiting on the ratio/size keyboard."""

    id: str
    origin: Origin
    prompt: str
    aspect_ratio: AspectRatio
    size: Resolution
    message_id: int | None = None
    created_at: float = field(default_factory=time.time)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(slots=True)
class Job:
    id: str
    origin: Origin
    request: ImageRequest
    status: JobStatus = JobStatus.QUEUED
    status_message_id: int | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    error_kind: str | None = None
    request_id: str | None = None
    delivery: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    result_message_id: int | None = None


class MemoryStore:
    """In-process store; entries expire so a long-running bot does not grow without bound."""

    def __init__(self) -> None:
        self._pending: dict[str, PendingRequest] = {}
        self._jobs: dict[str, Job] = {}

    async def add_pending(self, pending: PendingRequest) -> None:
        self._expire()
        self._pending[pending.id] = pending

    async def get_pending(self, pending_id: str) -> PendingRequest | None:
        return self._pending.get(pending_id)

    async def save_pending(self, pending: PendingRequest) -> None:
        self._pending[pending.id] = pending

    async def take_pending(self, pending_id: str) -> PendingRequest | None:
        """Remove and return it: of two quick taps on Generate, only one gets it."""
        return self._pending.pop(pending_id, None)

    async def add_job(self, job: Job) -> None:
        self._expire()
        self._jobs[job.id] = job

    async def get_job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def save_job(self, job: Job) -> None:
        self._jobs[job.id] = job

    def _expire(self) -> None:
        now = time.time()
        for pid in [k for k, p in self._pending.items() if now - p.created_at > PENDING_TTL]:
            del self._pending[pid]
        for jid in [k for k, j in self._jobs.items() if j.status.final and now - j.created_at > JOB_TTL]:
            del self._jobs[jid]
