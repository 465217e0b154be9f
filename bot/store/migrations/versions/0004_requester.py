"""The requester's name on jobs and keyboards: group status lines and keyboards say whose request they are.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("jobs", "pending"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("requester", sa.Text))

