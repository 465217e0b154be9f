"""The shared engine: leases and cancel flags on jobs, round-robin, the update inbox, shared originals, albums.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("worker", sa.Text))
        batch.add_column(sa.Column("lease_until", sa.Float))
        batch.add_column(sa.Column("cancel_requested", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("extension", sa.Text))
        batch.add_column(sa.Column("failure_values", sa.Text))
        batch.add_column(sa.Column("sent", sa.Text))
        batch.add_column(sa.Column("settled", sa.Integer, nullable=False, server_default="0"))
    op.create_index("jobs_by_worker", "jobs", ["worker", "status"])
    # Requests the first release finished are settled; only unfinished ones are left for the engine.
    op.execute("UPDATE jobs SET settled = 1 WHERE status IN ('done', 'failed', 'cancelled')")
    op.create_table(
        "served",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("serial", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "updates",
        sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("chat_id", sa.BigInteger),
        sa.Column("payload", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("lease_until", sa.Float),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index("updates_by_state", "updates", ["state", "chat_id", "update_id"])
    op.create_table(
        "originals",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("extension", sa.Text, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("nbytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("originals_by_age", "originals", ["created_at"])
    op.create_table(
        "album_parts",
        sa.Column("chat_id", sa.BigInteger, nullable=False),
        sa.Column("media_group_id", sa.Text, nullable=False),
        sa.Column("message_id", sa.BigInteger, nullable=False),
        sa.Column("refs", sa.Text, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "media_group_id", "message_id"),
    )
