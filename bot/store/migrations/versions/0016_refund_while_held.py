"""A pack refunded while a job holds its credits (issue 26): `usage.taken_back`, the part of a job's purchased
credits the refund took, which the job's own refund (it failed, or was cancelled) does not give back.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        batch.add_column(sa.Column("taken_back", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("taken_back")
