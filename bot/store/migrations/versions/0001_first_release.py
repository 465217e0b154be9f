"""The schema of the first release (SQLite `user_version` 3): files made by it are stamped with this revision.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _origin() -> list[sa.Column]:
    return [
        sa.Column("chat_id", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("thread_id", sa.BigInteger),
        sa.Column("reply_to", sa.BigInteger),
        sa.Column("lang", sa.Text),
    ]


def upgrade() -> None:
    op.create_table(
        "pending",
        sa.Column("id", sa.Text, primary_key=True),
        *_origin(),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("aspect_ratio", sa.Text, nullable=False),
        sa.Column("size", sa.Text, nullable=False),
        sa.Column("message_id", sa.BigInteger),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("refs", sa.Text, nullable=False, server_default="[]"),
        sa.Column("variants", sa.Integer, nullable=False, server_default="1"),
        sa.Column("ref_width", sa.Integer),
        sa.Column("ref_height", sa.Integer),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Text, primary_key=True),
        *_origin(),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("aspect_ratio", sa.Text, nullable=False),
        sa.Column("size", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_message_id", sa.BigInteger),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("upstream_seconds", sa.Float),
        sa.Column("error_kind", sa.Text),
        sa.Column("request_id", sa.Text),
        sa.Column("delivery", sa.Text),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("result_message_id", sa.BigInteger),
        sa.Column("photo_file_id", sa.Text),
        sa.Column("document_file_id", sa.Text),
        sa.Column("refs", sa.Text, nullable=False, server_default="[]"),
        sa.Column("group_id", sa.Text),
        sa.Column("variant", sa.Integer, nullable=False, server_default="1"),
        sa.Column("variants", sa.Integer, nullable=False, server_default="1"),
        sa.Column("upscale_of", sa.Text),
    )
    op.create_index("jobs_by_status", "jobs", ["status", "created_at"])
    op.create_index("jobs_by_user", "jobs", ["user_id", "chat_id", "created_at"])
    op.create_index("jobs_by_group", "jobs", ["group_id"])
    op.create_table(
        "prefs",
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("scope_id", sa.BigInteger, nullable=False),
        sa.Column("aspect_ratio", sa.Text),
        sa.Column("size", sa.Text),
        sa.Column("always_original", sa.Integer, nullable=False, server_default="0"),
        sa.Column("language", sa.Text),
        sa.Column("variants", sa.Integer),
        sa.PrimaryKeyConstraint("scope", "scope_id"),
    )
    op.create_table("meta", sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text))
    op.create_table(
        "usage",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("chat_id", sa.BigInteger, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("credits", sa.Integer, nullable=False),
        sa.Column("refunded", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("usage_by_user", "usage", ["user_id", "day"])
    op.create_index("usage_by_chat", "usage", ["chat_id", "day"])
    op.create_table(
        "grants",
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("credits", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float),
    )
    op.create_index("grants_by_user", "grants", ["user_id", "day"])
    op.create_table(
        "blocked",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "notices",
        sa.Column("subject_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "kind"),
    )
