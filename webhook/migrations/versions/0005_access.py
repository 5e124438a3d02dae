"""Access (issue 15): server-side UI sessions, shared rate-limit counters, no secrets readable
in the database.

- ``ui_sessions``: a login's session id (hashed), its token and when it ends; logout and the
  token's revocation delete it.
- ``rate_limits``: Flask-Limiter's counters, shared by every gunicorn worker.
- ``outbox.ack_contact``: the worker puts the acknowledge link into the text when it sends it;
  links already in stored bodies are replaced by the placeholder (a notice not yet sent keeps
  its link, minted anew at the send).
- The Flask session signing key leaves ``settings`` (it is now a file of mode 0600).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import hashlib
import re

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Time = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
S = sa.String
LINK = re.compile(r"/a/([A-Za-z0-9_-]+)")
PLACEHOLDER = "/a/…"


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("id_hash", S(64), primary_key=True),
        sa.Column("token_id", sa.Integer, sa.ForeignKey("api_tokens.id"), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("expires_at", Time, nullable=False),
    )
    op.create_index("ix_ui_sessions_token_id", "ui_sessions", ["token_id"])
    op.create_table(
        "rate_limits",
        sa.Column("key", S(255), primary_key=True),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Column("expires_at", Time, nullable=False),
    )
    op.create_index("ix_rate_limits_expires_at", "rate_limits", ["expires_at"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("ack_contact", S(64), nullable=True))

    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM settings WHERE name = 'session_secret'"))
    rows = bind.execute(
        sa.text("SELECT id, body, status FROM outbox WHERE body LIKE :p"), {"p": "%/a/%"}
    ).all()
    for oid, body, status in rows:
        found = LINK.findall(body)
        if not found:
            continue
        contact = None
        if status in ("pending", "sending"):
            digest = hashlib.sha256(found[-1].encode()).hexdigest()
            contact = bind.execute(
                sa.text("SELECT contact FROM ack_links WHERE token_hash = :h"), {"h": digest}
            ).scalar()
        bind.execute(
            sa.text("UPDATE outbox SET body = :b, ack_contact = :c WHERE id = :i"),
            {"b": LINK.sub(PLACEHOLDER, body), "c": contact, "i": oid},
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("ack_contact")
    op.drop_index("ix_rate_limits_expires_at", "rate_limits")
    op.drop_table("rate_limits")
    op.drop_index("ix_ui_sessions_token_id", "ui_sessions")
    op.drop_table("ui_sessions")
