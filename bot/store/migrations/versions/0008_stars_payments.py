"""Credits bought with Telegram Stars: a row per charge in `payments`, and the purchased part of each job's credits
in `usage.paid` (a refunded job gives them back where they came from).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        batch.add_column(sa.Column("paid", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "payments",
        sa.Column("charge_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("credits", sa.Integer, nullable=False),
        sa.Column("stars", sa.Integer, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("paid_at", sa.Float, nullable=False),
        sa.Column("refunded_at", sa.Float),
        sa.Column("refunded_by", sa.Text),
        sa.Column("credits_back", sa.Integer),
    )
    op.create_index("payments_by_user", "payments", ["user_id", "paid_at"])
    op.create_index("payments_by_time", "payments", ["paid_at"])
