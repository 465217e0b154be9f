"""What SQLite and PostgreSQL do differently, behind one interface the repositories share: how to connect, run a
transaction, make a queue decision exclusive, and wake other processes.

A query of several statements is a plain function of a synchronous `sa.Connection`, run in one transaction by
`Backend.write`: SQLite runs it directly (a statement on a local file takes microseconds), PostgreSQL through
`AsyncConnection.run_sync`. So every query is written once, beside its repository, and none awaits in the middle
of a transaction. The backends are composed into the store (`bot/store/__init__.py`), not subclassed from it.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa

from .schema import meta, pending

T = TypeVar("T")

PENDING_TTL = 7 * 24 * 3600.0


class StoreError(Exception):
    """The database cannot be used; the message says which and what to do."""


class Backend(Protocol):
    """One database, SQLite (`sqlite.py`) or PostgreSQL (`postgres.py`)."""

    shares_originals: bool  # whether result bytes live in the database (for processes on other machines)
    skip_locked: str  # what the claim's SELECT ends with: row locks others skip (PostgreSQL)

    async def open(self) -> None:
        """Connect, migrate to the newest schema, and make the first write (`first_write`)."""

    async def close(self) -> None: ...

    def describe(self) -> str:
        """Its kind and where it is, without a password: `SQLite data/imagine-bot.sqlite3`."""

    def insert(self, table: sa.Table) -> Any:
        """An INSERT in the backend's dialect (for ON CONFLICT)."""

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        """`work(conn, *args)` in one transaction that writes; committed when it returns, rolled back if it raises."""

    async def all(self, statement: Any, params: dict | None = None) -> list[sa.Row]:
        """A read, outside any transaction (no lock taken)."""

    async def run(self, statement: Any, params: dict | None = None, *, notify: str | None = None) -> int:
        """One writing statement, its own transaction; `notify` tells other processes when it changed rows."""

    async def large_read(self, statement: Any, convert: Callable[[sa.Row], T]) -> list[T]:
        """A read of many rows; the backend may run it in a thread (SQLite's statements otherwise run on the loop)."""

    def lock_queue(self, conn: sa.Connection) -> None:
        """Make this transaction the only one deciding claims (caps hold across processes)."""

    def lock_credits(self, conn: sa.Connection) -> None:
        """Serialise reservations of credits (PostgreSQL); SQLite transactions are exclusive already."""

    def lock_owner(self, conn: sa.Connection, owner: str) -> None:
        """Serialise the transactions that count and add one owner's rows (a chat's presets), so a cap holds
        across processes (PostgreSQL); SQLite transactions are exclusive already."""

    def notify(self, conn: sa.Connection, topic: str) -> None:
        """Tell other processes something changed (`jobs`, `cancel`, `updates`); a no-op where they poll."""

    def on_wake(self, callback: Callable[[str], None]) -> None:
        """Hear `notify` topics from other processes (PostgreSQL); every process also polls."""


async def first_write(backend: Backend) -> None:
    """Run at every open: a real write, so a read-only database fails here, not on the first user's job; and
    keyboards nobody finished within a week are forgotten."""

    def work(conn: sa.Connection) -> None:
        conn.execute(
            backend.insert(meta)
            .values(key="last_start", value=str(time.time()))
            .on_conflict_do_update(index_elements=["key"], set_={"value": str(time.time())})
        )
        conn.execute(sa.delete(pending).where(pending.c.created_at < time.time() - PENDING_TTL))

    await backend.write(work)


class Repository:
    """One area's queries over the shared backend."""

    def __init__(self, backend: Backend) -> None:
        self._db = backend

    async def _one(self, statement: Any, params: dict | None = None) -> sa.Row | None:
        rows = await self._db.all(statement, params)
        return rows[0] if rows else None


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
            isinstance(error, sa.exc.OperationalError) and "database is locked" in str(error)
        ):
            return "timeout"
        if (
            isinstance(error, ConnectionError)
            or name in _LOST
            or (isinstance(error, OSError) and error.errno in _NETWORK_ERRNOS)
            or (isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated)
        ):
            return "connection lost"
    return None


_REFUSED = ("CannotConnectNowError", "AdminShutdownError", "CrashShutdownError", "TooManyConnectionsError")
_LOST = (
    "ConnectionDoesNotExistError",
    "PostgresConnectionError",
    "ConnectionFailureError",
    "ClientCannotConnectError",
    "InterfaceError",
    "InternalClientError",
)
_NETWORK_ERRNOS = {
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.ENETDOWN,
    errno.EHOSTDOWN,
    errno.ETIMEDOUT,
    errno.ECONNABORTED,
    errno.ECONNRESET,
    errno.EPIPE,
}
