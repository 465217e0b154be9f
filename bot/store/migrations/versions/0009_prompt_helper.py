"""The prompt helper (issue 27): a pending request's suggested rewrite (shown with ✓ Use it / ↩ Keep mine) and the
user's own words when the prompt is their translation, carried to the job for its caption; a user's "translate my
prompts to English" switch.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending") as batch:
        batch.add_column(sa.Column("suggestion", sa.Text))
        batch.add_column(sa.Column("original", sa.Text))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("original_prompt", sa.Text))
    with op.batch_alter_table("prefs") as batch:
        batch.add_column(sa.Column("translate", sa.Integer, nullable=False, server_default="0"))
