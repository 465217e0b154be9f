"""The prompt helper's calls in flight (issue 27): a second tap on ✨ in another process makes no second call, and
the credits of a call a crash interrupted are given back.

Revision ID: 0015
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "helper_calls",
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("ledger_key", sa.Text),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("request_id", "purpose"),
    )
    op.create_index("helper_calls_by_age", "helper_calls", ["started_at"])
