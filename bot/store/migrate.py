"""Bring a database to the newest schema with Alembic, on the connection the store opened."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

FOLDER = Path(__file__).with_name("migrations")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Alembic says "Context impl …" and "Will assume …" at INFO on every start, migrating or not; the store logs
    one line of its own when something did migrate (`migrated`)."""
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an alembic.ini: the scripts here, and the connection to run them on."""
    config = Config()
    config.set_main_option("script_location", str(FOLDER))
    config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def current(connection: Connection) -> str | None:
    with _quiet():
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    revision = _scripts().get_current_head()
    assert revision is not None
    return revision


def known() -> set[str]:
    """Every revision this release knows (a database at another one was made by a newer release)."""
    return {script.revision for script in _scripts().walk_revisions()}


def upgrade(connection: Connection, *, stamp_first: str | None = None) -> str | None:
    """Migrate to head; `stamp_first` marks a database made before Alembic (the first release) as that revision.
    Returns the operator's line when something migrated (None when it was at head already)."""
    before = stamp_first or current(connection)
    if before == head():
        return None
    config = _config(connection)
    with _quiet():
        if stamp_first is not None:
            command.stamp(config, stamp_first)
        command.upgrade(config, "head")
    return f"created at revision {head()}" if before is None else f"migrated from revision {before} to {head()}"
