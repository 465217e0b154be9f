"""Persistence: pending keyboard requests, jobs through their whole life, and remembered defaults.

`Store` is the interface the rest of the bot uses; `SqliteStore` is the embedded backend (one file, created and
migrated by the bot). A PostgreSQL backend implements the same methods; nothing above this module changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit

import aiosqlite

from .options import AspectRatio, ImageRequest, Resolution

log = logging.getLogger(__name__)

PENDING_TTL = 7 * 24 * 3600.0


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
    attempts: int = 0
    upstream_seconds: float | None = None
    error_kind: str | None = None
    request_id: str | None = None
    delivery: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    result_message_id: int | None = None
    photo_file_id: str | None = None
    document_file_id: str | None = None


@dataclass(slots=True)
class Prefs:
    """Remembered defaults of a user (private chats) or a chat (groups)."""

    aspect_ratio: AspectRatio | None = None
    size: Resolution | None = None
    always_original: bool = False


def prefs_scope(origin: Origin) -> tuple[str, int]:
    """Defaults belong to the user in a private chat and to the chat in groups and channels."""
    return ("user", origin.user_id) if origin.chat_id > 0 else ("chat", origin.chat_id)


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def add_pending(self, pending: PendingRequest) -> None: ...
    async def get_pending(self, pending_id: str) -> PendingRequest | None: ...
    async def save_pending(self, pending: PendingRequest) -> None: ...
    async def take_pending(self, pending_id: str) -> PendingRequest | None: ...
    async def add_job(self, job: Job) -> None: ...
    async def get_job(self, job_id: str) -> Job | None: ...
    async def save_job(self, job: Job) -> None: ...
    async def unfinished_jobs(self) -> list[Job]: ...
    async def history(self, user_id: int, chat_id: int, limit: int) -> list[Job]: ...
    async def get_prefs(self, scope: str, scope_id: int) -> Prefs: ...
    async def save_prefs(self, scope: str, scope_id: int, prefs: Prefs) -> None: ...


class StoreError(Exception):
    """The database cannot be used; the message says which file and what to do."""


_ORIGIN = ("chat_id", "user_id", "thread_id", "reply_to", "lang")
_JOB_COLUMNS = tuple(f.name for f in dataclasses.fields(Job) if f.name not in ("origin", "request"))

MIGRATIONS = [
    """
    CREATE TABLE pending (
        id TEXT PRIMARY KEY, chat_id INTEGER NOT NULL, user_id INTEGER NOT NULL, thread_id INTEGER,
        reply_to INTEGER, lang TEXT, prompt TEXT NOT NULL, aspect_ratio TEXT NOT NULL, size TEXT NOT NULL,
        message_id INTEGER, created_at REAL NOT NULL
    );
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY, chat_id INTEGER NOT NULL, user_id INTEGER NOT NULL, thread_id INTEGER,
        reply_to INTEGER, lang TEXT, prompt TEXT NOT NULL, aspect_ratio TEXT NOT NULL, size TEXT NOT NULL,
        status TEXT NOT NULL, status_message_id INTEGER, created_at REAL NOT NULL, started_at REAL,
        finished_at REAL, attempts INTEGER NOT NULL DEFAULT 0, upstream_seconds REAL, error_kind TEXT,
        request_id TEXT, delivery TEXT, width INTEGER, height INTEGER, bytes INTEGER,
        result_message_id INTEGER, photo_file_id TEXT, document_file_id TEXT
    );
    CREATE INDEX jobs_by_status ON jobs(status, created_at);
    CREATE INDEX jobs_by_user ON jobs(user_id, chat_id, created_at);
    CREATE TABLE prefs (
        scope TEXT NOT NULL, scope_id INTEGER NOT NULL, aspect_ratio TEXT, size TEXT,
        always_original INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (scope, scope_id)
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
    """,
]


def sqlite_target(url: str) -> tuple[Path, str]:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db` or a bare path → (file, SQLite URI query like `mode=ro`)."""
    if "://" not in url:
        return Path(url), ""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise StoreError(f"DATABASE_URL scheme {parts.scheme!r} is not supported yet; use sqlite:///path")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise StoreError("DATABASE_URL has no file path; use sqlite:///data/imagine-bot.sqlite3")
    return Path(unquote(path)), parts.query


class SqliteStore:
    """One aiosqlite connection (its own thread), WAL journal; schema created and migrated on open."""

    def __init__(self, url: str) -> None:
        self._path, query = sqlite_target(url)
        self._uri = f"file:{quote(str(self._path))}" + (f"?{query}" if query else "")
        self._db: aiosqlite.Connection | None = None
        self._take_lock = asyncio.Lock()

    @property
    def path(self) -> Path:
        return self._path

    async def open(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the database {self._path}: {exc.strerror}") from None
        try:
            self._db = await aiosqlite.connect(self._uri, uri=True, isolation_level=None)
            self._db.row_factory = aiosqlite.Row
            (check,) = await (await self._db.execute("PRAGMA quick_check")).fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self._migrate()
            # A real write at every start: a read-only file fails here, not on the first user's job.
            await self._db.execute(
                "INSERT INTO meta(key, value) VALUES('last_start', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(time.time()),),
            )
        except sqlite3.DatabaseError as exc:
            await self.close()
            text = str(exc).lower()
            if "readonly" in text or "read-only" in text:
                raise StoreError(f"the database {self._path} is read-only: make it writable for the bot") from None
            if "not a database" in text or "malformed" in text or "corrupt" in text:
                raise StoreError(
                    f"the database {self._path} is corrupt or not a SQLite file: restore a backup or move it away "
                    "(the bot will not overwrite it)"
                ) from None
            raise StoreError(f"cannot open the database {self._path}: {exc}") from None
        await self._db.execute("DELETE FROM pending WHERE created_at < ?", (time.time() - PENDING_TTL,))

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _migrate(self) -> None:
        assert self._db is not None
        (version,) = await (await self._db.execute("PRAGMA user_version")).fetchone()
        if version > len(MIGRATIONS):
            raise StoreError(f"the database {self._path} is from a newer imagine-bot (schema {version})")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
            log.info("database %s migrated to schema %d", self._path, number)

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the database is not open")
        return self._db

    # ---- pending keyboard requests ----

    async def add_pending(self, pending: PendingRequest) -> None:
        await self.save_pending(pending)

    async def save_pending(self, pending: PendingRequest) -> None:
        o = pending.origin
        await self.db.execute(
            "INSERT OR REPLACE INTO pending VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (pending.id, o.chat_id, o.user_id, o.thread_id, o.reply_to, o.lang, pending.prompt,
             pending.aspect_ratio.value, pending.size.value, pending.message_id, pending.created_at),
        )

    async def get_pending(self, pending_id: str) -> PendingRequest | None:
        row = await (await self.db.execute("SELECT * FROM pending WHERE id = ?", (pending_id,))).fetchone()
        if row is None:
            return None
        return PendingRequest(
            row["id"], _origin(row), row["prompt"], AspectRatio(row["aspect_ratio"]), Resolution(row["size"]),
            row["message_id"], row["created_at"],
        )

    async def take_pending(self, pending_id: str) -> PendingRequest | None:
        """Remove and return it: of two quick taps on Generate, only one gets it."""
        async with self._take_lock:
            pending = await self.get_pending(pending_id)
            if pending is not None:
                await self.db.execute("DELETE FROM pending WHERE id = ?", (pending_id,))
            return pending

    # ---- jobs ----

    async def add_job(self, job: Job) -> None:
        await self.save_job(job)

    async def save_job(self, job: Job) -> None:
        o, r = job.origin, job.request
        names = (*_ORIGIN, "prompt", "aspect_ratio", "size", *_JOB_COLUMNS)
        values = (o.chat_id, o.user_id, o.thread_id, o.reply_to, o.lang, r.prompt, r.aspect_ratio.value,
                  r.size.value, *(getattr(job, name) for name in _JOB_COLUMNS))
        await self.db.execute(
            f"INSERT OR REPLACE INTO jobs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", values
        )

    async def get_job(self, job_id: str) -> Job | None:
        row = await (await self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))).fetchone()
        return _job(row) if row else None

    async def unfinished_jobs(self) -> list[Job]:
        cursor = await self.db.execute(
            "SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at"
        )
        return [_job(row) for row in await cursor.fetchall()]

    async def history(self, user_id: int, chat_id: int, limit: int) -> list[Job]:
        cursor = await self.db.execute(
            "SELECT * FROM jobs WHERE user_id = ? AND chat_id = ? ORDER BY created_at DESC LIMIT ?",
            (user_id, chat_id, limit),
        )
        return [_job(row) for row in await cursor.fetchall()]

    # ---- remembered defaults ----

    async def get_prefs(self, scope: str, scope_id: int) -> Prefs:
        row = await (
            await self.db.execute("SELECT * FROM prefs WHERE scope = ? AND scope_id = ?", (scope, scope_id))
        ).fetchone()
        if row is None:
            return Prefs()
        return Prefs(
            AspectRatio(row["aspect_ratio"]) if row["aspect_ratio"] else None,
            Resolution(row["size"]) if row["size"] else None,
            bool(row["always_original"]),
        )

    async def save_prefs(self, scope: str, scope_id: int, prefs: Prefs) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO prefs VALUES (?,?,?,?,?)",
            (scope, scope_id, prefs.aspect_ratio.value if prefs.aspect_ratio else None,
             prefs.size.value if prefs.size else None, int(prefs.always_original)),
        )


def _origin(row: sqlite3.Row) -> Origin:
    return Origin(*(row[name] for name in _ORIGIN))


def _job(row: sqlite3.Row) -> Job:
    request = ImageRequest(row["prompt"], AspectRatio(row["aspect_ratio"]), Resolution(row["size"]))
    values = {name: row[name] for name in _JOB_COLUMNS}
    values["status"] = JobStatus(values["status"])
    return Job(origin=_origin(row), request=request, **values)
