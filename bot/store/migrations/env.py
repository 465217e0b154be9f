"""Alembic runs here with the connection the bot opened (see `bot/store/migrate.py`); no alembic.ini needed."""

from alembic import context

from bot.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
