"""The shared backend: PostgreSQL for several processes on several machines.

Claims take a transaction-scoped advisory lock, so the caps over all processes are decided one claim at a time
(a claim is a few milliseconds); rows are picked with `FOR UPDATE SKIP LOCKED`. Processes wake each other with
`LISTEN/NOTIFY` and also poll, so a lost notification only costs a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from . import migrate
from .backend import StoreError, first_write

log = logging.getLogger(__name__)

T = TypeVar("T")

CHANNEL = "imagine_bot"
QUEUE_LOCK = 7_242_001  # pg_advisory_xact_lock keys: the queue, migrations, credits
MIGRATION_LOCK = QUEUE_LOCK + 1
CREDITS_LOCK = QUEUE_LOCK + 2
OWNER_LOCKS = (
    7_242  # pg_advisory_xact_lock(int, int) keys (a space apart from the bigint ones): (this, the owner's hash)
)
CONNECT_TIMEOUT = 10.0
# A statement gets this long: a connection cut off without a reset (a partition) fails it instead of hanging.
STATEMENT_TIMEOUT = 30.0


def _plain_url(url: str) -> str:
    """`postgres://` and `postgresql+asyncpg://` both become the `postgresql://` asyncpg understands."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", *parts[1:]))


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    where = f"{host}:{parts.port}" if parts.port else host
    return f"{where}{parts.path}"


class PostgresBackend:
    """The `Backend` of a PostgreSQL database shared by several processes."""

    shares_originals = True
    skip_locked = "FOR UPDATE OF j SKIP LOCKED"

    def __init__(self, url: str) -> None:
        self._url = _plain_url(url)
        self._wake_callbacks: list[Callable[[str], None]] = []
        self._engine: AsyncEngine | None = None
        self._listener: asyncpg.Connection | None = None

    def insert(self, table: sa.Table) -> Any:
        return pg_insert(table)

    def describe(self) -> str:
        return f"PostgreSQL {safe_url(self._url)}"

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StoreError("the database is not open")
        return self._engine

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        async with self.engine.begin() as conn:
            return await conn.run_sync(work, *args)

    async def all(self, statement: Any, params: dict | None = None) -> list[sa.Row]:
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return list((await conn.execute(statement, params or {})).all())

    async def run(self, statement: Any, params: dict | None = None, *, notify: str | None = None) -> int:
        def work(conn: sa.Connection) -> int:
            count = conn.execute(statement, params or {}).rowcount
            if notify and count:
                self.notify(conn, notify)
            return count

        return await self.write(work)

    async def large_read(self, statement: Any, convert: Callable[[sa.Row], T]) -> list[T]:
        return [convert(row) for row in await self.all(statement)]

    async def open(self) -> None:
        where = safe_url(self._url)
        try:
            self._engine = create_async_engine(
                self._url.replace("postgresql://", "postgresql+asyncpg://", 1),
                pool_size=10,
                max_overflow=10,
                pool_pre_ping=True,
                connect_args={
                    "timeout": CONNECT_TIMEOUT,
                    "command_timeout": STATEMENT_TIMEOUT,
                    "server_settings": {"application_name": "imagine-bot"},
                },
            )
            async with self._engine.begin() as conn:
                await conn.execute(_LOCK, {"key": MIGRATION_LOCK})
                before = await conn.run_sync(migrate.current)
                if before is not None and before not in migrate.known():
                    raise StoreError(f"the database {where} is from a newer imagine-bot (revision {before})")
                if migrated := await conn.run_sync(migrate.upgrade):
                    log.info("database %s %s", where, migrated)
            await first_write(self)
            await self._listen()
        except StoreError:
            await self.close()
            raise
        except (TimeoutError, OSError, asyncpg.PostgresError, sa.exc.DBAPIError, sa.exc.InterfaceError) as exc:
            await self.close()
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"cannot use the PostgreSQL database {where}: {_reason(reason)}") from None

    async def close(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                await asyncio.wait_for(listener.close(), 5)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                listener.terminate()
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    async def _listen(self) -> None:
        self._listener = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT)
        await self._listener.add_listener(CHANNEL, lambda *args: self._woken(str(args[-1])))

    def on_wake(self, callback: Callable[[str], None]) -> None:
        self._wake_callbacks.append(callback)

    def _woken(self, topic: str) -> None:
        for callback in self._wake_callbacks:
            callback(topic)

    def notify(self, conn: sa.Connection, topic: str) -> None:
        conn.execute(_NOTIFY, {"channel": CHANNEL, "topic": topic})

    def lock_queue(self, conn: sa.Connection) -> None:
        conn.execute(_LOCK, {"key": QUEUE_LOCK})

    def lock_credits(self, conn: sa.Connection) -> None:
        # Reservations see each other's credits (a user's, and a group's over its users): one at a time, a few ms.
        conn.execute(_LOCK, {"key": CREDITS_LOCK})

    def lock_owner(self, conn: sa.Connection, owner: str) -> None:
        # Read committed lets two transactions count the same rows and both add one: one owner's at a time.
        conn.execute(_OWNER_LOCK, {"space": OWNER_LOCKS, "owner": owner})


_NOTIFY = sa.text("SELECT pg_notify(:channel, :topic)")
_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")
_OWNER_LOCK = sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:owner))")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (ConnectionRefusedError, OSError)) and "refused" in text.lower():
        return "connection refused (is PostgreSQL running, and is the host and port right?)"
    return text
