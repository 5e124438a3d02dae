"""Initial schema: tickets, occurrences, comments, audit, problems, changes, tokens, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Naive UTC with microseconds (MySQL DATETIME defaults to whole seconds).
Time = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
S = sa.String


def upgrade() -> None:
    op.create_table(
        "problems",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alertname", S(200), nullable=False),
        sa.Column("target", S(255), nullable=False),
        sa.Column("status", S(16), nullable=False),
        sa.Column("title", S(500), nullable=False),
        sa.Column("root_cause", sa.Text, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("closed_at", Time, nullable=True),
        sa.Column("open_key", S(64), nullable=True, unique=True),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", S(16), nullable=False),
        sa.Column("status", S(16), nullable=False),
        sa.Column("alertname", S(200), nullable=False, server_default=""),
        sa.Column("severity", S(16), nullable=False, server_default="warning"),
        sa.Column("target", S(255), nullable=False, server_default=""),
        sa.Column("summary", S(500), nullable=False, server_default=""),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("fingerprint", S(64), nullable=True),
        sa.Column("starts_at", Time, nullable=True),
        sa.Column("last_starts_at", Time, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("notified_at", Time, nullable=True),
        sa.Column("acknowledged_at", Time, nullable=True),
        sa.Column("resolved_at", Time, nullable=True),
        sa.Column("closed_at", Time, nullable=True),
        sa.Column("escalated_at", Time, nullable=True),
        sa.Column("assignee", S(64), nullable=True),
        sa.Column("resolution_source", S(16), nullable=True),
        sa.Column("resolution_note", sa.Text, nullable=True),
        sa.Column("reopen_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("recurrence_of", sa.Integer, sa.ForeignKey("tickets.id"), nullable=True),
        sa.Column("problem_id", sa.Integer, sa.ForeignKey("problems.id"), nullable=True),
        sa.Column("risk", S(8), nullable=True),
        sa.Column("due_at", Time, nullable=True),
        sa.Column("external_key", S(200), nullable=True, unique=True),
    )
    op.create_index("ix_tickets_status", "tickets", ["status"])
    op.create_index("ix_tickets_fingerprint", "tickets", ["fingerprint"])
    op.create_index("ix_tickets_fault", "tickets", ["alertname", "target"])
    op.create_table(
        "occurrences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", S(64), nullable=False),
        sa.Column("starts_at", Time, nullable=False),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=True),
        sa.Column("received_at", Time, nullable=False),
        sa.UniqueConstraint("fingerprint", "starts_at", name="uq_occurrence"),
    )
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("author", S(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_index("ix_comments_ticket_id", "comments", ["ticket_id"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", Time, nullable=False),
        sa.Column("actor", S(64), nullable=False),
        sa.Column("action", S(32), nullable=False),
        sa.Column("object_type", S(16), nullable=False),
        sa.Column("object_id", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_object", "audit", ["object_type", "object_id"])
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", S(500), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("problem_id", sa.Integer, sa.ForeignKey("problems.id"), nullable=True),
        sa.Column("planned_start", Time, nullable=True),
        sa.Column("planned_end", Time, nullable=True),
        sa.Column("executor", S(64), nullable=True),
        sa.Column("result", S(16), nullable=True),
        sa.Column("verification", sa.Text, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", S(64), nullable=False),
        sa.Column("role", S(16), nullable=False),
        sa.Column("token_hash", S(64), nullable=False, unique=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("revoked_at", Time, nullable=True),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=True),
        sa.Column("reason", S(16), nullable=False),
        sa.Column("channel", S(16), nullable=False),
        sa.Column("recipient", S(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", S(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("next_attempt_at", Time, nullable=False),
        sa.Column("claimed_until", Time, nullable=True),
        sa.Column("sent_at", Time, nullable=True),
        sa.Column("last_error", S(500), nullable=True),
        sa.Column("merged_into", sa.Integer, nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_recipient", "outbox", ["channel", "recipient", "status"])
    op.create_table(
        "ack_links",
        sa.Column("token_hash", S(64), primary_key=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("contact", S(64), nullable=False),
        sa.Column("expires_at", Time, nullable=False),
        sa.Column("used_at", Time, nullable=True),
    )
    op.create_table(
        "settings",
        sa.Column("name", S(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "settings",
        "ack_links",
        "outbox",
        "api_tokens",
        "changes",
        "audit",
        "comments",
        "occurrences",
        "tickets",
        "problems",
    ):
        op.drop_table(table)
