"""Remediation-policy learning: decisions with their propensities, operator feedback, policy versions.

Revision ID: learn_1
Revises: crash_1
Create Date: 2026-11-30 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "learn_1"
down_revision = "ha_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "policy_decisions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("incident_id", sa.String(length=40), nullable=True),
        sa.Column("action_id", sa.String(length=40), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("allowed", sa.JSON(), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column("explored", sa.Boolean(), nullable=False),
        sa.Column("reward", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_policy_decisions_at", "policy_decisions", ["at"])
    op.create_index("ix_policy_decisions_incident_id", "policy_decisions", ["incident_id"])
    op.create_index("ix_policy_decisions_action_id", "policy_decisions", ["action_id"])
    op.create_table(
        "policy_feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("action_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_policy_feedback_action_id", "policy_feedback", ["action_id"])
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_policy_versions_name", "policy_versions", ["name"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_policy_versions_name", table_name="policy_versions")
    op.drop_table("policy_versions")
    op.drop_index("ix_policy_feedback_action_id", table_name="policy_feedback")
    op.drop_table("policy_feedback")
    op.drop_index("ix_policy_decisions_action_id", table_name="policy_decisions")
    op.drop_index("ix_policy_decisions_incident_id", table_name="policy_decisions")
    op.drop_index("ix_policy_decisions_at", table_name="policy_decisions")
    op.drop_table("policy_decisions")
