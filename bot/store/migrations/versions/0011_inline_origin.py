"""Requests from inline mode and guest mode: their answers edit a message by its `inline_message_id`.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("jobs", "pending"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("inline_message_id", sa.Text))
