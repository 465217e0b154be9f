"""Status lines that only move forward across processes: a stage, an owner and a start time on the lead job.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("line_stage", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("line_owner", sa.Text))
        batch.add_column(sa.Column("line_since", sa.Float))
        batch.add_column(sa.Column("line_busy_until", sa.Float))

