"""An admin's answer to payment support goes back to the buyer: which buyer each message the bot put in an admin's
chat for /paysupport is about, shared by every process, until it runs out.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "support_links",
        sa.Column("admin_chat_id", sa.BigInteger, nullable=False),
        sa.Column("message_id", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("lang", sa.Text),
        sa.Column("until", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("admin_chat_id", "message_id"),
    )
    op.create_index("support_links_by_age", "support_links", ["until"])


def downgrade() -> None:
    op.drop_index("support_links_by_age", table_name="support_links")
    op.drop_table("support_links")
