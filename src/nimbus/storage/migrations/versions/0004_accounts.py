"""Accounts management: a user's verified email and disabling, a session's client, address
and last use. Rows from before read as an unverified email, an account never disabled, and a
session with none of the three.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# A constant default adds a column without rewriting the table (PostgreSQL 11 and later).
COLUMNS = """
ALTER TABLE users
    ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN disabled_at TIMESTAMPTZ;
ALTER TABLE sessions
    ADD COLUMN user_agent TEXT,
    ADD COLUMN address TEXT,
    ADD COLUMN last_used_at TIMESTAMPTZ;
"""


def upgrade() -> None:
    for statement in COLUMNS.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute(
        "ALTER TABLE sessions DROP COLUMN last_used_at, DROP COLUMN address, DROP COLUMN user_agent"
    )
    op.execute("ALTER TABLE users DROP COLUMN disabled_at, DROP COLUMN email_verified")
