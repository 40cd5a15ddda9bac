"""Safety rails, escalation state and the notification outbox.

Revision ID: core_1
Revises: fixer_1
Create Date: 2026-11-30 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_1"
down_revision = "fixer_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "safety_rails",
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("rail", sa.String(length=24), nullable=False),
        sa.Column("until", sa.Float(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("target", "rail"),
    )
    op.create_table(
        "escalations",
        sa.Column("incident_id", sa.String(length=40), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("sent", sa.JSON(), nullable=False),
        sa.Column("paged", sa.JSON(), nullable=False),
        sa.Column("acked_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("queued_at", sa.Float(), nullable=False),
        sa.Column("notification", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("done_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_state_queued", "outbox", ["state", "queued_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_outbox_state_queued", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("escalations")
    op.drop_table("safety_rails")
