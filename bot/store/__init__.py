"""Persistence for one process or many: `open_store(DATABASE_URL)` picks the backend.

`sqlite:///…` (the default, one file, created on first start) or `postgresql://…` / `postgres://…` (shared by
several processes). Both run the same queries (`database.py`) on the same schema (`schema.py`, migrated by Alembic).
"""

from __future__ import annotations

from .database import MAX_ATTEMPTS, Caps, LeaseLost, LineTurn, QueueFull, Reaped, Store, StoreError, outage
from .postgres import PostgresStore
from .sqlite import SqliteStore

__all__ = ["MAX_ATTEMPTS", "Caps", "LeaseLost", "LineTurn", "PostgresStore", "QueueFull", "Reaped", "SqliteStore",
           "Store", "StoreError", "make_store", "outage"]


def make_store(url: str) -> Store:
    """The backend for a DATABASE_URL; opened by the caller (`await store.open()`)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else "sqlite"
    if scheme.startswith(("postgresql", "postgres")):
        return PostgresStore(url)
    return SqliteStore(url)
