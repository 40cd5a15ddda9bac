"""Agent outputs: one row per run of an operational agent.

Revision ID: fixer_1
Revises: opx_1
Create Date: 2026-11-30 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "fixer_1"
down_revision = "opx_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "agent_outputs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("run_at", sa.Float(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("proposals", sa.JSON(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_agent_outputs_agent", "agent_outputs", ["agent"])
    op.create_index("ix_agent_outputs_run_at", "agent_outputs", ["run_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_agent_outputs_run_at", table_name="agent_outputs")
    op.drop_index("ix_agent_outputs_agent", table_name="agent_outputs")
    op.drop_table("agent_outputs")
