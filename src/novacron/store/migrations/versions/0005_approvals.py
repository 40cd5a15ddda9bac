"""Approval requests stored, so any controller decides them and any owner waits on them.

Revision ID: approvals_1
Revises: learn_1
Create Date: 2026-11-30 20:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "approvals_1"
down_revision = "learn_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "approvals",
        sa.Column("action_id", sa.String(length=40), nullable=False),
        sa.Column("asked_by", sa.String(length=128), nullable=False),
        sa.Column("asked_at", sa.Float(), nullable=False),
        sa.Column("decision", sa.String(length=12), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_on", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("action_id"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("approvals")
