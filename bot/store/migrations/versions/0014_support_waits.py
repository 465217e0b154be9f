"""Payment support waiting for a buyer's next message: a row per buyer, shared by every process.

Revision ID: 0014
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "support_waits",
        sa.Column("user_id", sa.BigInteger, primary_key=True),
        sa.Column("until", sa.Float, nullable=False),
        sa.Column("album", sa.Text),
    )
