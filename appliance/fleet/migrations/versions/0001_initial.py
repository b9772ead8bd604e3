"""Initial fleet schema: devices (registry, presence, health), operators, sessions, audit.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("identity", sa.String(128), nullable=False, unique=True),
        sa.Column("room", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("enrolled_at", sa.Double, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(256), nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("revoked_at", sa.Double, nullable=True),
        sa.Column("last_token_at", sa.Double, nullable=True),
        sa.Column("tokens_issued", sa.Integer, nullable=False),
        sa.Column("rate_window_start", sa.Double, nullable=False),
        sa.Column("rate_window_count", sa.Integer, nullable=False),
        sa.Column("presence", sa.String(32), nullable=False),
        sa.Column("participant_sid", sa.String(64), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("fault", sa.String(64), nullable=False),
        sa.Column("mic", sa.String(32), nullable=False),
        sa.Column("camera", sa.String(32), nullable=False),
        sa.Column("quality", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("last_seen_at", sa.Double, nullable=True),
        sa.Column("changed_at", sa.Double, nullable=False),
    )
    op.create_index("ix_devices_changed_at", "devices", ["changed_at"])
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("operator", sa.String(128), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("identity", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("remote", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_identity", "audit", ["identity"])


def downgrade() -> None:
    for table in ("audit", "sessions", "operators", "devices"):
        op.drop_table(table)
