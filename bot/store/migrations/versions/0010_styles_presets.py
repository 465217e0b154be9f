"""Styles and presets: the style a keyboard has chosen and a job was made with, and the presets of chats and people.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("jobs", "pending"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("style", sa.Text))
    op.create_table(
        "presets",
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("scope_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("options", sa.Text, nullable=False, server_default="{}"),
        sa.Column("pictures", sa.Text, nullable=False, server_default="[]"),
        sa.Column("created_by", sa.BigInteger),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("scope", "scope_id", "name"),
    )
