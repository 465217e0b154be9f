"""The embedded backend: one SQLite file in WAL mode, created and migrated on first start.

Queries run on the event loop's thread through the standard `sqlite3` driver: a statement on a local file takes
tens of microseconds, where a hop to a driver thread (aiosqlite) and back cost ten times that in CPU alone. What
could block the loop is moved off it: waiting for another process's write lock is an asynchronous retry, and the
WAL checkpoint (the one step that writes the main file and syncs it) runs in a thread.

Several processes on one machine may share the file (WAL lets readers and one writer work at once; every
transaction that writes begins IMMEDIATE, so the queue's decisions are made one at a time). Processes on other
machines need PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from . import migrate
from .backend import StoreError, first_write

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_MS = 20  # how long one attempt may block the loop waiting for another process's write lock
LOCKED_WAIT = 30.0  # then retried asynchronously, for this long in all, before the statement fails
CHECKPOINT_EVERY = 2.0  # seconds between WAL checkpoints (in a thread)

FIRST_RELEASE_VERSION = 3  # PRAGMA user_version of files made before Alembic; revision 0001 is that schema

FIRST_RELEASE_MIGRATIONS = [  # how the first release built its schema, step by step
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
        raise StoreError(f"DATABASE_URL scheme {parts.scheme!r} is not supported; use sqlite:/// or postgresql://")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise StoreError("DATABASE_URL has no file path; use sqlite:///data/imagine-bot.sqlite3")
    return Path(unquote(path)), parts.query


def _describe(exc: Exception, path: Path) -> StoreError:
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text:
        return StoreError(f"the database {path} is read-only: make it writable for the bot")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError(
            f"the database {path} is corrupt or not a SQLite file: restore a backup or move it away "
            "(the bot will not overwrite it)"
        )
    return StoreError(f"cannot open the database {path}: {exc}")


class SqliteBackend:
    """The `Backend` of one SQLite file."""

    shares_originals = False
    skip_locked = ""

    def __init__(self, url: str) -> None:
        self._path, query = sqlite_target(url)
        self._uri = f"file:{quote(str(self._path))}" + (f"?{query}" if query else "")
        self._engine: sa.Engine | None = None
        self._threads: sa.Engine | None = None  # connections opened in a worker thread, for large reads
        self._writer: sa.Connection | None = None
        self._reader: sa.Connection | None = None
        self._checkpoints: asyncio.Task[None] | None = None

    @property
    def path(self) -> Path:
        return self._path

    def describe(self) -> str:
        return f"SQLite {self._path}"

    def insert(self, table: sa.Table) -> Any:
        return sqlite_insert(table)

    # Two connections, kept open: one for transactions, one for single statements in autocommit (reads, and
    # one-statement writes, which need no BEGIN and COMMIT). Nothing awaits while a transaction is open, so the
    # two never interleave in this process.

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        writer = self._open(self._writer)

        def transaction() -> T:
            with writer.begin():
                return work(writer, *args)

        return await _when_unlocked(transaction)

    async def all(self, statement: Any, params: dict | None = None) -> list[sa.Row]:
        reader = self._open(self._reader)
        return await _when_unlocked(lambda: list(reader.execute(statement, params or {}).all()))

    async def run(self, statement: Any, params: dict | None = None, *, notify: str | None = None) -> int:
        """One statement is atomic by itself: run in autocommit (other processes poll, nothing to notify)."""
        reader = self._open(self._reader)
        return await _when_unlocked(lambda: reader.execute(statement, params or {}).rowcount)

    async def large_read(self, statement: Any, convert: Callable[[sa.Row], T]) -> list[T]:
        threads = self._threads
        if threads is None:
            raise StoreError("the database is not open")

        def read() -> list[T]:  # a connection of its own, in a thread: WAL lets it read beside the loop's
            with threads.connect() as connection:
                return [convert(row) for row in connection.execute(statement)]

        return await asyncio.to_thread(read)

    def lock_queue(self, conn: sa.Connection) -> None:
        """Nothing to do: every transaction that writes begins IMMEDIATE, so it is the only one deciding."""

    def lock_credits(self, conn: sa.Connection) -> None:
        """Nothing to do, as for the queue."""

    def lock_owner(self, conn: sa.Connection, owner: str) -> None:
        """Nothing to do, as for the queue."""

    def notify(self, conn: sa.Connection, topic: str) -> None:
        """Nothing to do: processes sharing a file poll."""

    def on_wake(self, callback: Callable[[str], None]) -> None:
        """Never called: there are no notifications to hear."""

    @staticmethod
    def _open(connection: sa.Connection | None) -> sa.Connection:
        if connection is None:
            raise StoreError("the database is not open")
        return connection

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
            self._checkpoints = None
        for connection in (self._reader, self._writer):
            if connection is not None:
                connection.close()
        self._reader = self._writer = None
        for engine in (self._engine, self._threads):
            if engine is not None:
                engine.dispose()
        self._engine = self._threads = None

    async def open(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the database {self._path}: {exc.strerror}") from None
        try:
            self._migrate()
            self._engine = sa.create_engine(
                "sqlite://", creator=self._connect, poolclass=sa.pool.QueuePool, pool_size=2, max_overflow=0
            )
            _serialise_writes(self._engine)
            self._threads = sa.create_engine("sqlite://", creator=self._connect, poolclass=sa.pool.NullPool)
            self._writer = self._engine.connect()
            self._reader = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            await first_write(self)
        except (sqlite3.Error, sa.exc.DBAPIError) as exc:
            await self.close()
            raise _describe(exc, self._path) from None
        self._checkpoints = asyncio.create_task(self._checkpoint_often(), name="sqlite-checkpoint")

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._uri, uri=True, isolation_level=None)
        # The loop's connections never checkpoint (see `_checkpoint_often`); a writer that finds the lock taken
        # gives up after BUSY_MS and is retried without blocking the loop (`_when_unlocked`).
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            f"busy_timeout={BUSY_MS}",
            "foreign_keys=OFF",
            "wal_autocheckpoint=0",
        ):
            connection.execute(f"PRAGMA {pragma}")
        return connection

    async def _checkpoint_often(self) -> None:
        """Copy the WAL back into the main file (and sync it) in a thread, every few seconds, so the file stays
        small and no commit on the loop pays for it."""
        connection = sqlite3.connect(self._uri, uri=True, isolation_level=None, check_same_thread=False)
        checkpoint: asyncio.Future | None = None
        try:
            connection.execute("PRAGMA busy_timeout=1000")
            while True:
                await asyncio.sleep(CHECKPOINT_EVERY)
                checkpoint = asyncio.ensure_future(
                    asyncio.to_thread(connection.execute, "PRAGMA wal_checkpoint(PASSIVE)")
                )
                try:
                    await asyncio.shield(checkpoint)
                except sqlite3.Error as exc:
                    log.debug("WAL checkpoint skipped: %s", exc)
        finally:
            # Cancelled (by close) mid-checkpoint, the thread still uses the connection: closing it under the thread
            # crashes the process (SIGSEGV in SQLite). Close it once the thread is done with it.
            if checkpoint is not None and not checkpoint.done():
                await asyncio.wait([checkpoint])
            connection.close()

    def _migrate(self) -> None:
        """Check the file, bring a first-release file to its last schema, then let Alembic take it to head."""
        raw = sqlite3.connect(self._uri, uri=True, isolation_level=None)
        try:
            (check,) = raw.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            raw.execute("PRAGMA journal_mode=WAL")
            (version,) = raw.execute("PRAGMA user_version").fetchone()
            has_alembic = raw.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
            stamp = None
            if not has_alembic and version:
                if version > FIRST_RELEASE_VERSION:
                    raise StoreError(f"the database {self._path} is from a newer imagine-bot (schema {version})")
                for number, script in enumerate(FIRST_RELEASE_MIGRATIONS[version:], start=version + 1):
                    raw.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
                stamp = "0001"
                log.info("database %s: first-release schema, now managed by Alembic", self._path)
        finally:
            raw.close()
        engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(self._uri, uri=True))
        try:
            with engine.begin() as connection:
                before = migrate.current(connection)
                if before not in (None, migrate.head()) and before not in migrate.known():
                    raise StoreError(f"the database {self._path} is from a newer imagine-bot (revision {before})")
                if migrated := migrate.upgrade(connection, stamp_first=stamp):
                    log.info("database %s %s", self._path, migrated)
        finally:
            engine.dispose()


def _serialise_writes(engine: sa.Engine) -> None:
    """Transactions begin IMMEDIATE (take the write lock first), so two processes never deadlock on an upgrade
    from read to write; plain reads run without a transaction (see `SqliteBackend.all`)."""

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _locked(exc: BaseException) -> bool:
    return "database is locked" in str(getattr(exc, "orig", exc)) or "database is busy" in str(exc)


async def _when_unlocked(call: Callable[[], T]) -> T:
    """Run `call` now; while another process holds the write lock, try again asynchronously (the loop keeps
    serving) for up to LOCKED_WAIT seconds. A locked statement changed nothing, so trying again is safe.

    Every call then yields to the loop once, as a driver's round trip would: a loop that claims two hundred jobs
    in a row lets the rest of the bot run between them, and a cancel reaches it."""
    deadline = time.monotonic() + LOCKED_WAIT
    pause = 0.005
    while True:
        try:
            result = call()
        except sa.exc.OperationalError as exc:
            if not _locked(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
            continue
        await asyncio.sleep(0)
        return result
