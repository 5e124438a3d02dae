"""MySQL: every table in utf8mb4, whatever the server's or the database's default.

Tables created by 0001 in a database that defaulted to latin1 (``character-set-server=latin1``,
``CREATE DATABASE`` without a charset) refused every Chinese alert (error 1366). They are
converted, and the database's default becomes utf8mb4 for the tables of later revisions.
Nothing happens on SQLite or on tables already in utf8mb4.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = (
    "problems",
    "tickets",
    "occurrences",
    "comments",
    "audit",
    "changes",
    "api_tokens",
    "outbox",
    "ack_links",
    "settings",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "mysql":
        return
    rows = bind.execute(
        sa.text(
            "SELECT DISTINCT TABLE_NAME FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND CHARACTER_SET_NAME IS NOT NULL"
            " AND CHARACTER_SET_NAME <> 'utf8mb4'"
        )
    ).scalars()
    for table in sorted(set(rows) & set(TABLES)):
        op.execute(f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4")
    op.execute("ALTER DATABASE CHARACTER SET utf8mb4")


def downgrade() -> None:
    pass  # latin1 cannot hold what utf8mb4 may now contain
