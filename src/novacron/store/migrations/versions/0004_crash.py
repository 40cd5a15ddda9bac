"""Spawn intents and id lengths.

A nonce per process row, so a child whose pid was never stored is still found; fault ids,
action ids and keys, and audit verbs wide enough for every id the controller makes (an
Alertmanager fingerprint, a runbook step's key, a refused request's path).

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

# (table, column, old length, new length, nullable)
_WIDENED = (
    ("faults", "id", 40, 128, False),
    ("actions", "id", 40, 255, False),
    ("actions", "idempotency_key", 200, 255, False),
    ("actions", "inverse_of", 40, 255, True),
    ("audit", "verb", 64, 255, False),
)


def _resize(*, grow: bool) -> None:
    for table, column, old, new, nullable in _WIDENED:
        before, after = (old, new) if grow else (new, old)
        with op.batch_alter_table(table) as batch:
            old_type, new_type = sa.String(length=before), sa.String(length=after)
            batch.alter_column(column, existing_type=old_type, type_=new_type, existing_nullable=nullable)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("processes") as batch:
        batch.add_column(sa.Column("nonce", sa.String(length=32), nullable=True))
    _resize(grow=True)


def downgrade() -> None:
    """Revert this revision."""
    _resize(grow=False)
    with op.batch_alter_table("processes") as batch:
        batch.drop_column("nonce")
