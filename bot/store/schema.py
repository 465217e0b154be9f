"""The one definition of the database, for SQLite and PostgreSQL alike: what the queries are written against.

Alembic's migrations (`migrations/versions/`) build exactly this; a test compares the two. Times are Unix seconds
(REAL), as the first release stored them; ids of chats and users are 64-bit.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

metadata = MetaData()


def _origin() -> list[Column]:
    return [
        Column("chat_id", BigInteger, nullable=False),
        Column("user_id", BigInteger, nullable=False),
        Column("thread_id", BigInteger),
        Column("reply_to", BigInteger),
        Column("lang", Text),
        Column("requester", Text),  # schema 0004
        Column("inline_message_id", Text),  # schema 0011: a request from inline or guest mode
    ]


pending = Table(
    "pending",
    metadata,
    Column("id", Text, primary_key=True),
    *_origin(),
    Column("prompt", Text, nullable=False),
    Column("aspect_ratio", Text, nullable=False),
    Column("size", Text, nullable=False),
    Column("message_id", BigInteger),
    Column("created_at", Float, nullable=False),
    Column("refs", Text, nullable=False, server_default="[]"),
    Column("variants", Integer, nullable=False, server_default="1"),
    Column("ref_width", Integer),
    Column("ref_height", Integer),
    Column("source_text", Text),
    Column("source_date", Float),
    Column("wants_prompt", Integer, nullable=False, server_default="0"),
    Column("album_id", Text),
    # schema 0007: its model and options as one JSON value (`ImageRequest.to_json`); aspect_ratio and size mirror them
    Column("request", Text),
    # schema 0009 (the prompt helper): a rewrite waiting for ✓ Use it / ↩ Keep mine, and the user's own words when
    # the prompt is their translation
    Column("suggestion", Text),
    Column("original", Text),
    Column("style", Text),  # schema 0010: the style or preset chosen (its name)
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Text, primary_key=True),
    *_origin(),
    Column("prompt", Text, nullable=False),
    Column("aspect_ratio", Text, nullable=False),
    Column("size", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_message_id", BigInteger),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("upstream_seconds", Float),
    Column("error_kind", Text),
    Column("request_id", Text),
    Column("delivery", Text),
    Column("width", Integer),
    Column("height", Integer),
    Column("bytes", BigInteger),
    Column("result_message_id", BigInteger),
    Column("photo_file_id", Text),
    Column("document_file_id", Text),
    Column("refs", Text, nullable=False, server_default="[]"),
    Column("group_id", Text),
    Column("variant", Integer, nullable=False, server_default="1"),
    Column("variants", Integer, nullable=False, server_default="1"),
    Column("upscale_of", Text),
    # the engine (schema 0002): who runs it, until when, and what a crash must not repeat
    Column("worker", Text),
    Column("lease_until", Float),
    Column("cancel_requested", Integer, nullable=False, server_default="0"),
    Column("extension", Text),
    Column("failure_values", Text),
    Column("sent", Text),
    Column("settled", Integer, nullable=False, server_default="0"),
    # its status line (schema 0005, on the lead job): how far it has got (`models.LineStage`), which process
    # shows it now, since when it is being made, and until when a waiting line's edit may still be on its way
    Column("line_stage", Integer, nullable=False, server_default="0"),
    Column("line_owner", Text),
    Column("line_since", Float),
    Column("line_busy_until", Float),
    # schema 0006: the fence, a new number at every claim; a write about the job names the one it holds
    Column("epoch", Integer, nullable=False, server_default="0"),
    # schema 0007: its model and options as one JSON value (`ImageRequest.to_json`); aspect_ratio and size mirror them
    Column("request", Text),
    # schema 0009: the user's own words when the prompt is the helper's translation of them (the caption shows both)
    Column("original_prompt", Text),
    # schema 0010: the style or preset it was made with (JSON: name, label, the prompt sent, its pictures)
    Column("style", Text),
    Index("jobs_by_status", "status", "created_at"),
    Index("jobs_by_user", "user_id", "chat_id", "created_at"),
    Index("jobs_by_group", "group_id"),
    Index("jobs_by_worker", "worker", "status"),
)

prefs = Table(
    "prefs",
    metadata,
    Column("scope", Text, nullable=False),
    Column("scope_id", BigInteger, nullable=False),
    Column("aspect_ratio", Text),
    Column("size", Text),
    Column("always_original", Integer, nullable=False, server_default="0"),
    Column("language", Text),
    Column("variants", Integer),
    # schema 0007: the default model and remembered options, `{"model": null, "options": {"ratio": "4:3"}}`
    Column("request", Text),
    Column("translate", Integer, nullable=False, server_default="0"),  # schema 0009: translate prompts to English
    PrimaryKeyConstraint("scope", "scope_id"),
)

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text),
)

usage = Table(
    "usage",
    metadata,
    Column("job_id", Text, primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("chat_id", BigInteger, nullable=False),
    Column("day", Text, nullable=False),
    Column("credits", Integer, nullable=False),
    Column("refunded", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("paid", Integer, nullable=False, server_default="0"),  # schema 0008: of `credits`, those purchased
    # schema 0016: of `paid`, those a refund of their pack took back while the job held them (the job's own refund
    # gives back only the rest)
    Column("taken_back", Integer, nullable=False, server_default="0"),
    Index("usage_by_user", "user_id", "day"),
    Index("usage_by_chat", "chat_id", "day"),
)

grants = Table(
    "grants",
    metadata,
    Column("user_id", BigInteger, nullable=False),
    Column("day", Text, nullable=False),
    Column("credits", Integer, nullable=False),
    Column("created_at", Float),
    Index("grants_by_user", "user_id", "day"),
)

blocked = Table(
    "blocked",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
)

notices = Table(
    "notices",
    metadata,
    Column("subject_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("at", Float, nullable=False),
    PrimaryKeyConstraint("subject_id", "kind"),
)

# ---- schema 0002: what several processes share ----

served = Table(  # round-robin: the serial number of each user's last start
    "served",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("serial", BigInteger, nullable=False),
)

updates = Table(  # the inbox: an update is acknowledged to Telegram only once it is here
    "updates",
    metadata,
    Column("update_id", BigInteger, primary_key=True, autoincrement=False),
    Column("chat_id", BigInteger),
    Column("payload", Text),
    Column("state", Text, nullable=False),  # new → processing → done
    Column("owner", Text),
    Column("lease_until", Float),
    Column("received_at", Float, nullable=False),
    Index("updates_by_state", "state", "chat_id", "update_id"),
)

originals = Table(  # result bytes every process can read (PostgreSQL); SQLite keeps them in DATA_DIR only
    "originals",
    metadata,
    Column("job_id", Text, primary_key=True),
    Column("extension", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("nbytes", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("originals_by_age", "created_at"),
)

album_parts = Table(  # the photos of one album, whichever process received each
    "album_parts",
    metadata,
    Column("chat_id", BigInteger, nullable=False),
    Column("media_group_id", Text, nullable=False),
    Column("message_id", BigInteger, nullable=False),
    Column("refs", Text, nullable=False),
    Column("received_at", Float, nullable=False),
    PrimaryKeyConstraint("chat_id", "media_group_id", "message_id"),
)

# ---- schema 0008: credits bought with Telegram Stars ----

payments = Table(  # one row per Telegram charge: the purchased credits are these rows, less what usage spent
    "payments",
    metadata,
    Column("charge_id", Text, primary_key=True),  # telegram_payment_charge_id: a payment is credited once
    Column("user_id", BigInteger, nullable=False),
    Column("credits", Integer, nullable=False),
    Column("stars", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("paid_at", Float, nullable=False),
    Column("refunded_at", Float),
    Column("refunded_by", Text),  # "admin" (/refund) or "telegram" (a refunded_payment it sent by itself)
    Column("credits_back", Integer),  # the purchased credits the refund took back
    Index("payments_by_user", "user_id", "paid_at"),
    Index("payments_by_time", "paid_at"),
)

# ---- schema 0010: presets, a chat's or a person's own styles ----

presets = Table(
    "presets",
    metadata,
    Column("scope", Text, nullable=False),  # "chat" (a group's) or "user" (a person's)
    Column("scope_id", BigInteger, nullable=False),
    Column("name", Text, nullable=False),  # case folded
    Column("template", Text, nullable=False),
    Column("options", Text, nullable=False, server_default="{}"),
    Column("pictures", Text, nullable=False, server_default="[]"),
    Column("created_by", BigInteger),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("scope", "scope_id", "name"),
)

# ---- schema 0014: payment support waiting for a buyer's next message ----

support_waits = Table(  # a buyer who sent /paysupport: their next private message goes to the admins, until `until`
    "support_waits",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("until", Float, nullable=False),
    Column("album", Text),  # the media group being passed on: its other parts follow it to the admins
)

# ---- schema 0017: an admin's answer to payment support goes back to the buyer ----

support_links = Table(  # a message the bot put in an admin's chat for /paysupport: a reply to it goes to `user_id`
    "support_links",
    metadata,
    Column("admin_chat_id", BigInteger, nullable=False),
    Column("message_id", BigInteger, nullable=False),  # the forwarded message, or the note about its sender
    Column("user_id", BigInteger, nullable=False),  # the buyer
    Column("lang", Text),  # the buyer's language when they wrote
    Column("until", Float, nullable=False),
    PrimaryKeyConstraint("admin_chat_id", "message_id"),
    Index("support_links_by_age", "until"),
)

# ---- schema 0015: the prompt helper's calls in flight, whichever process makes them ----

helper_calls = Table(  # a row while a call runs: one call per request and purpose, its credits settled or refunded
    "helper_calls",
    metadata,
    Column("request_id", Text, nullable=False),  # the pending request it is for
    Column("purpose", Text, nullable=False),  # improve, translate
    Column("ledger_key", Text),  # its credits' row in `usage` (None: the helper is free)
    Column("started_at", Float, nullable=False),
    PrimaryKeyConstraint("request_id", "purpose"),
    Index("helper_calls_by_age", "started_at"),
)
