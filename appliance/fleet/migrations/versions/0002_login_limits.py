"""Console login throttling: failure windows per (name, address), name and address.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_limits",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("remote", sa.String(64), nullable=False),
        sa.Column("window_start", sa.Double, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("blocked_until", sa.Double, nullable=False),
        sa.Column("succeeded_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_index("ix_login_limits_name", "login_limits", ["name"])
    op.create_index("ix_login_limits_remote", "login_limits", ["remote"])
    op.create_index("ix_login_limits_expires_at", "login_limits", ["expires_at"])


def downgrade() -> None:
    op.drop_table("login_limits")
