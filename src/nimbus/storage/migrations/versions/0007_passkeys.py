"""Passkeys: each account's WebAuthn credentials, keyed by credential id.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE passkeys (
            credential_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            public_key TEXT NOT NULL,
            sign_count BIGINT NOT NULL,
            transports TEXT NOT NULL,
            name TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            last_used_at TIMESTAMPTZ
        )
        """
    )
    op.execute("CREATE INDEX passkeys_by_user ON passkeys (user_id, created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE passkeys")
