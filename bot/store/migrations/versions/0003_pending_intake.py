"""Pending requests remember what intake needs between messages: a split prompt's raw text, pictures waiting for
their instruction.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending") as batch:
        batch.add_column(sa.Column("source_text", sa.Text))
        batch.add_column(sa.Column("source_date", sa.Float))
        batch.add_column(sa.Column("wants_prompt", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("album_id", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("pending") as batch:
        batch.drop_column("album_id")
        batch.drop_column("wants_prompt")
        batch.drop_column("source_date")
        batch.drop_column("source_text")
