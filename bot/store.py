"""Persistence: pending keyboard requests, jobs through their whole life, and remembered defaults.

`Store` is the interface the rest of the bot uses; `SqliteStore` is the embedded backend (one file, created and
migrated by the bot). A PostgreSQL backend implements the same methods; nothing above this module changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit

import aiosqlite

from .models import Job, JobStatus, Origin, PendingRequest, Prefs, Reservation
from .options import AspectRatio, ImageRequest, Resolution

log = logging.getLogger(__name__)

PENDING_TTL = 7 * 24 * 3600.0


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
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
    async def reserve_credits(self, reservation: Reservation) -> bool: ...
    async def refund_credits(self, job_id: str) -> bool: ...
    async def refund_unfinished_failures(self) -> int: ...
    async def credits_used(self, *, day: str, user_id: int | None = None, chat_id: int | None = None) -> int: ...
    async def credits_granted(self, user_id: int, day: str) -> int: ...
    async def grant_credits(self, user_id: int, day: str, credits: int) -> None: ...
    async def set_blocked(self, user_id: int, blocked: bool) -> None: ...
    async def is_blocked(self, user_id: int) -> bool: ...
    async def first_notice(self, subject_id: int, kind: str) -> bool: ...
    async def clear_notice(self, subject_id: int, kind: str) -> None: ...
    async def jobs_since(self, since: float) -> list[Job]: ...
    async def group_jobs(self, group_id: str) -> list[Job]: ...


class StoreError(Exception):
    """The database cannot be used; the message says which file and what to do."""


_ORIGIN = ("chat_id", "user_id", "thread_id", "reply_to", "lang")
_JOB_COLUMNS = tuple(f.name for f in dataclasses.fields(Job) if f.name not in ("origin", "request", "references"))

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
    """
    ALTER TABLE prefs ADD COLUMN language TEXT;
    CREATE TABLE usage (
        job_id TEXT PRIMARY KEY, user_id INTEGER NOT NULL, chat_id INTEGER NOT NULL, day TEXT NOT NULL,
        credits INTEGER NOT NULL, refunded INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL
    );
    CREATE INDEX usage_by_user ON usage(user_id, day);
    CREATE INDEX usage_by_chat ON usage(chat_id, day);
    CREATE TABLE grants (user_id INTEGER NOT NULL, day TEXT NOT NULL, credits INTEGER NOT NULL, created_at REAL);
    CREATE INDEX grants_by_user ON grants(user_id, day);
    CREATE TABLE blocked (user_id INTEGER PRIMARY KEY, at REAL NOT NULL);
    CREATE TABLE notices (subject_id INTEGER NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL,
                          PRIMARY KEY (subject_id, kind));
    """,
    """
    ALTER TABLE pending ADD COLUMN refs TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE pending ADD COLUMN variants INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE pending ADD COLUMN ref_width INTEGER;
    ALTER TABLE pending ADD COLUMN ref_height INTEGER;
    ALTER TABLE jobs ADD COLUMN refs TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN group_id TEXT;
    ALTER TABLE jobs ADD COLUMN variant INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE jobs ADD COLUMN variants INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE jobs ADD COLUMN upscale_of TEXT;
    ALTER TABLE prefs ADD COLUMN variants INTEGER;
    CREATE INDEX jobs_by_group ON jobs(group_id);
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

    async def ping(self) -> None:
        await (await self.db.execute("SELECT 1")).fetchone()

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
            "INSERT OR REPLACE INTO pending (id, chat_id, user_id, thread_id, reply_to, lang, prompt, aspect_ratio, "
            "size, message_id, created_at, refs, variants, ref_width, ref_height) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (pending.id, o.chat_id, o.user_id, o.thread_id, o.reply_to, o.lang, pending.prompt,
             pending.aspect_ratio.value, pending.size.value, pending.message_id, pending.created_at,
             json.dumps(pending.references), pending.variants, pending.ref_width, pending.ref_height),
        )

    async def get_pending(self, pending_id: str) -> PendingRequest | None:
        row = await (await self.db.execute("SELECT * FROM pending WHERE id = ?", (pending_id,))).fetchone()
        if row is None:
            return None
        return PendingRequest(
            row["id"], _origin(row), row["prompt"], AspectRatio(row["aspect_ratio"]), Resolution(row["size"]),
            row["message_id"], row["created_at"], tuple(json.loads(row["refs"])), row["variants"],
            row["ref_width"], row["ref_height"],
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
        names = (*_ORIGIN, "prompt", "aspect_ratio", "size", "refs", *_JOB_COLUMNS)
        values = (o.chat_id, o.user_id, o.thread_id, o.reply_to, o.lang, r.prompt, r.aspect_ratio.value,
                  r.size.value, json.dumps(job.references), *(getattr(job, name) for name in _JOB_COLUMNS))
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
            row["language"],
            row["variants"],
        )

    async def save_prefs(self, scope: str, scope_id: int, prefs: Prefs) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO prefs (scope, scope_id, aspect_ratio, size, always_original, language, variants) "
            "VALUES (?,?,?,?,?,?,?)",
            (scope, scope_id, prefs.aspect_ratio.value if prefs.aspect_ratio else None,
             prefs.size.value if prefs.size else None, int(prefs.always_original), prefs.language, prefs.variants),
        )

    # ---- credits ----

    async def reserve_credits(self, reservation: Reservation) -> bool:
        """Record the credits of a job if every limit still has room: one statement, so never a double spend."""
        r = reservation
        _sum = "(SELECT COALESCE(SUM(credits), 0) FROM usage WHERE {col} = ? AND day = ? AND refunded = 0)"
        grants = "(SELECT COALESCE(SUM(credits), 0) FROM grants WHERE user_id = ? AND day = ?)"
        cursor = await self.db.execute(
            "INSERT OR IGNORE INTO usage (job_id, user_id, chat_id, day, credits, refunded, created_at) "
            "SELECT ?, ?, ?, ?, ?, 0, ? WHERE "
            f"(? IS NULL OR {_sum.format(col='user_id')} + ? <= ? + {grants}) AND "
            f"(? IS NULL OR {_sum.format(col='chat_id')} + ? <= ?)",
            (r.job_id, r.user_id, r.chat_id, r.day, r.credits, time.time(),
             r.user_limit, r.user_id, r.day, r.credits, r.user_limit, r.user_id, r.day,
             r.chat_limit, r.chat_id, r.day, r.credits, r.chat_limit),
        )
        if cursor.rowcount == 1:
            return True
        # Already reserved by this job (a resumed job keeps its reservation)?
        row = await (await self.db.execute("SELECT refunded FROM usage WHERE job_id = ?", (r.job_id,))).fetchone()
        return row is not None and not row["refunded"]

    async def refund_credits(self, job_id: str) -> bool:
        """Give a job's credits back; True only the first time (idempotent across retries and restarts)."""
        cursor = await self.db.execute("UPDATE usage SET refunded = 1 WHERE job_id = ? AND refunded = 0", (job_id,))
        return cursor.rowcount == 1

    async def refund_unfinished_failures(self) -> int:
        """Refunds a crash may have left undone: every failed or cancelled job gets its credits back."""
        cursor = await self.db.execute(
            "UPDATE usage SET refunded = 1 WHERE refunded = 0 AND job_id IN "
            "(SELECT id FROM jobs WHERE status IN ('failed', 'cancelled'))"
        )
        return cursor.rowcount

    async def credits_used(self, *, day: str, user_id: int | None = None, chat_id: int | None = None) -> int:
        column, value = ("user_id", user_id) if user_id is not None else ("chat_id", chat_id)
        row = await (await self.db.execute(
            f"SELECT COALESCE(SUM(credits), 0) AS used FROM usage WHERE {column} = ? AND day = ? AND refunded = 0",
            (value, day),
        )).fetchone()
        return row["used"]

    async def credits_granted(self, user_id: int, day: str) -> int:
        row = await (await self.db.execute(
            "SELECT COALESCE(SUM(credits), 0) AS granted FROM grants WHERE user_id = ? AND day = ?", (user_id, day)
        )).fetchone()
        return row["granted"]

    async def grant_credits(self, user_id: int, day: str, credits: int) -> None:
        await self.db.execute("INSERT INTO grants VALUES (?, ?, ?, ?)", (user_id, day, credits, time.time()))

    # ---- access ----

    async def set_blocked(self, user_id: int, blocked: bool) -> None:
        if blocked:
            await self.db.execute("INSERT OR REPLACE INTO blocked VALUES (?, ?)", (user_id, time.time()))
        else:
            await self.db.execute("DELETE FROM blocked WHERE user_id = ?", (user_id,))

    async def is_blocked(self, user_id: int) -> bool:
        row = await (await self.db.execute("SELECT 1 FROM blocked WHERE user_id = ?", (user_id,))).fetchone()
        return row is not None

    async def first_notice(self, subject_id: int, kind: str) -> bool:
        """True the first time only: for sentences a user should hear once, not on every message."""
        cursor = await self.db.execute(
            "INSERT OR IGNORE INTO notices VALUES (?, ?, ?)", (subject_id, kind, time.time())
        )
        return cursor.rowcount == 1

    async def clear_notice(self, subject_id: int, kind: str) -> None:
        await self.db.execute("DELETE FROM notices WHERE subject_id = ? AND kind = ?", (subject_id, kind))

    # ---- statistics ----

    async def group_jobs(self, group_id: str) -> list[Job]:
        cursor = await self.db.execute("SELECT * FROM jobs WHERE group_id = ? ORDER BY variant", (group_id,))
        return [_job(row) for row in await cursor.fetchall()]

    async def jobs_since(self, since: float) -> list[Job]:
        cursor = await self.db.execute("SELECT * FROM jobs WHERE created_at >= ? ORDER BY created_at", (since,))
        return [_job(row) for row in await cursor.fetchall()]


def _origin(row: sqlite3.Row) -> Origin:
    return Origin(*(row[name] for name in _ORIGIN))


def _job(row: sqlite3.Row) -> Job:
    request = ImageRequest(row["prompt"], AspectRatio(row["aspect_ratio"]), Resolution(row["size"]))
    values = {name: row[name] for name in _JOB_COLUMNS}
    values["status"] = JobStatus(values["status"])
    return Job(origin=_origin(row), request=request, references=tuple(json.loads(row["refs"])), **values)
