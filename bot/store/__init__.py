"""Persistence for one process or many: `make_store(DATABASE_URL)` picks the backend.

`sqlite:///…` (the default, one file, created on first start) or `postgresql://…` / `postgres://…` (shared by
several processes). A `Store` is one backend (`backend.py`: connections, transactions, locks, notifications; one
module per database) and a repository per area, each holding its own statements, run on the same schema
(`schema.py`, migrated by Alembic). Whatever decides who does what is a row, never memory.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from .access import Access
from .albums import Albums
from .backend import Backend, StoreError, outage
from .credits import Credits
from .helpercalls import HelperCalls
from .history import History
from .jobrows import LeaseLost
from .jobs import Jobs
from .leases import MAX_ATTEMPTS, Leases, Reaped
from .lines import Lines, LineTurn
from .originals import SharedOriginals
from .payments import Payments
from .pending import Pending
from .postgres import PostgresBackend
from .prefs import PrefsTable
from .presets import Presets, TooManyPresets
from .queue import Caps, CreditsShort, Queue, QueueFull
from .sqlite import SqliteBackend
from .support import Buyer, SupportWaits, Waiting
from .updates import Updates

__all__ = [
    "MAX_ATTEMPTS",
    "Backend",
    "Buyer",
    "Caps",
    "CreditsShort",
    "LeaseLost",
    "LineTurn",
    "PostgresBackend",
    "QueueFull",
    "Reaped",
    "SqliteBackend",
    "Store",
    "StoreError",
    "TooManyPresets",
    "Waiting",
    "make_store",
    "outage",
]


class Store:
    """One database: its backend, and a repository per area over it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.jobs = Jobs(backend)
        self.queue = Queue(backend)
        self.leases = Leases(backend)
        self.lines = Lines(backend)
        self.updates = Updates(backend)
        self.albums = Albums(backend)
        self.originals = SharedOriginals(backend)
        self.pending = Pending(backend)
        self.prefs = PrefsTable(backend)
        self.credits = Credits(backend)
        self.payments = Payments(backend)
        self.access = Access(backend)
        self.history = History(backend)
        self.presets = Presets(backend)
        self.support = SupportWaits(backend)
        self.helper_calls = HelperCalls(backend)

    @property
    def shares_originals(self) -> bool:
        """Whether result bytes live in the database (for processes on other machines)."""
        return self.backend.shares_originals

    async def open(self) -> None:
        await self.backend.open()

    async def close(self) -> None:
        await self.backend.close()

    def describe(self) -> str:
        return self.backend.describe()

    def on_wake(self, callback: Callable[[str], None]) -> None:
        self.backend.on_wake(callback)

    async def ping(self) -> None:
        """One round trip; raises when the database does not answer."""
        await self.backend.all(sa.select(sa.literal(1)))


def make_store(url: str) -> Store:
    """The store for a DATABASE_URL; opened by the caller (`await store.open()`)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else "sqlite"
    if scheme.startswith(("postgresql", "postgres")):
        return Store(PostgresBackend(url))
    return Store(SqliteBackend(url))
