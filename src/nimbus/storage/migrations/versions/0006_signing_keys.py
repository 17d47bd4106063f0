"""Access-token signing keys: those `nimbus keys rotate` makes, each sealed under the root key.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE signing_keys (
            kid TEXT PRIMARY KEY,
            sealed_key TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE signing_keys")
