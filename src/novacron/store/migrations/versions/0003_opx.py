"""Target status for operators: the state word, restarts and the last fault.

Revision ID: opx_1
Revises: 0002
Create Date: 2026-11-30 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "opx_1"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("target_status") as batch:
        batch.add_column(sa.Column("state", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("restarts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_fault", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("target_status") as batch:
        batch.drop_column("last_fault")
        batch.drop_column("restarts")
        batch.drop_column("state")
