"""Alembic environment: runs against the connection handed over by the store."""

from __future__ import annotations

from alembic import context

from novacron.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only used from the store
    raise RuntimeError("migrations run through novacron.store, which passes a connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
