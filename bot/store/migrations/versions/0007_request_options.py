"""Every model on the key: jobs, pending requests and preferences keep their model and its options as one JSON
value, `{"model": "gpt-image-2", "options": {"ratio": "16:9", "size": "2K", "quality": "high"}}`
(`ImageRequest.to_json`). Existing rows become nano-banana-2 with their ratio and size.

The old `aspect_ratio` and `size` columns stay and are still written (every model has a ratio and a size): a row
an older version writes during a rolling upgrade (no `request`) is read from them, and going back to the older
version loses nothing but the model's own knobs.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("jobs", "pending", "prefs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("request", sa.Text))
    # The JSON is built by the database, the same text `ImageRequest.to_json` writes (no spaces, ratio then size).
    for table in ("jobs", "pending"):
        op.execute(
            f"UPDATE {table} SET request = '{{\"model\":\"nano-banana-2\",\"options\":{{\"ratio\":\"' || aspect_ratio"
            " || '\",\"size\":\"' || size || '\"}}' WHERE request IS NULL"
        )
    # A preference names only what was chosen; no model: the bot's default.
    op.execute(
        "UPDATE prefs SET request = '{\"options\":{' || "
        "COALESCE('\"ratio\":\"' || aspect_ratio || '\"', '') || "
        "CASE WHEN aspect_ratio IS NOT NULL AND size IS NOT NULL THEN ',' ELSE '' END || "
        "COALESCE('\"size\":\"' || size || '\"', '') || '}}' WHERE request IS NULL"
    )


def downgrade() -> None:
    for table in ("jobs", "pending", "prefs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("request")
