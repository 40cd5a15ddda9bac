"""Spawn intents: a nonce per process row, so a child whose pid was never stored is still found.

Revision ID: crash_1
Revises: core_1
Create Date: 2026-11-30 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "crash_1"
down_revision = "tune_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("processes") as batch:
        batch.add_column(sa.Column("nonce", sa.String(length=32), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("processes") as batch:
        batch.drop_column("nonce")
