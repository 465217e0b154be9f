"""Fenced leases: every claim of a job (its generation, its delivery) gets a new epoch, and every write about the
job names the epoch it holds, so a process that lost its lease cannot write over the one that took over.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("epoch", sa.Integer, nullable=False, server_default="0"))
