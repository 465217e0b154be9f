"""The shared backend: PostgreSQL for several processes on several machines.

Claims take a transaction-scoped advisory lock, so the caps over all processes are decided one claim at a time
(a claim is a few milliseconds); rows are picked with `FOR UPDATE SKIP LOCKED`. Processes wake each other with
`LISTEN/NOTIFY` and also poll, so a lost notification only costs a second.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from ..models import Reservation
from . import migrate
from .database import Store, StoreError

log = logging.getLogger(__name__)

CHANNEL = "imagine_bot"
QUEUE_LOCK = 7_242_001  # pg_advisory_xact_lock keys: the queue, migrations, credits
MIGRATION_LOCK = QUEUE_LOCK + 1
CREDITS_LOCK = QUEUE_LOCK + 2
CONNECT_TIMEOUT = 10.0


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


class PostgresStore(Store):
    shares_originals = True
    _skip_locked = "FOR UPDATE OF j SKIP LOCKED"

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = _plain_url(url)
        self._listener: asyncpg.Connection | None = None

    def insert(self, table: sa.Table) -> Any:
        return pg_insert(table)

    async def open(self) -> None:
        where = safe_url(self._url)
        try:
            self._engine = create_async_engine(
                self._url.replace("postgresql://", "postgresql+asyncpg://", 1),
                pool_size=10, max_overflow=10, pool_pre_ping=True,
                connect_args={"timeout": CONNECT_TIMEOUT, "server_settings": {"application_name": "imagine-bot"}},
            )
            async with self._engine.begin() as conn:
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                before = await conn.run_sync(migrate.current)
                if before is not None and before not in migrate.known():
                    raise StoreError(f"the database {where} is from a newer imagine-bot (revision {before})")
                await conn.run_sync(migrate.upgrade)
                if before != migrate.head():
                    log.info("database %s migrated to revision %s", where, migrate.head())
            await self._after_open()
            await self._listen()
        except StoreError:
            await self.close()
            raise
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, sa.exc.DBAPIError, sa.exc.InterfaceError) as exc:
            await self.close()
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"cannot use the PostgreSQL database {where}: {_reason(reason)}") from None

    async def close(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                await asyncio.wait_for(listener.close(), 5)
            except (OSError, asyncio.TimeoutError, asyncpg.PostgresError):
                listener.terminate()
        await super().close()

    async def _listen(self) -> None:
        self._listener = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT)
        await self._listener.add_listener(CHANNEL, lambda *args: self._woken(str(args[-1])))

    async def notify(self, conn: AsyncConnection, topic: str) -> None:
        await conn.execute(sa.text("SELECT pg_notify(:channel, :topic)"), {"channel": CHANNEL, "topic": topic})

    async def _lock_queue(self, conn: AsyncConnection) -> None:
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": QUEUE_LOCK})

    async def _lock_credits(self, conn: AsyncConnection, r: Reservation) -> None:
        # Reservations see each other's credits (a user's, and a group's over its users): one at a time, a few ms.
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CREDITS_LOCK})


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (ConnectionRefusedError, OSError)) and "refused" in text.lower():
        return "connection refused (is PostgreSQL running, and is the host and port right?)"
    return text
