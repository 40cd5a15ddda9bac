"""Tables of several controllers on one store: node heartbeats, shard leases, the fencing log.

They live on the one :data:`~novacron.store.tables.metadata`, so the migrated schema and
the metadata still agree (migration ``0004_ha``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table

from novacron.store.tables import metadata

__all__ = ["ha_fence", "ha_leases", "ha_nodes"]

ha_nodes = Table(
    "ha_nodes",
    metadata,
    Column("node_id", String(128), primary_key=True),
    Column("incarnation", String(32), nullable=False),  # one process: a second one with the same id is refused
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(64), nullable=False),
    Column("api_url", String(255)),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("state", String(16), nullable=False),  # active, draining, stopped
    Column("targets", Integer, nullable=False),  # remote targets owned at the last heartbeat
)

ha_leases = Table(
    "ha_leases",
    metadata,
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("holder", String(128)),
    Column("incarnation", String(32)),
    Column("epoch", BigInteger, nullable=False),  # raised by every new holder: the fencing token
    Column("expires_at", Float, nullable=False),
)

ha_fence = Table(
    "ha_fence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action_id", String(40), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("target", String(128), nullable=False),
    Column("node_id", String(128), nullable=False),
    Column("shard", Integer, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("step", String(16), nullable=False),  # claim, apply or adopt
    Column("at", Float, nullable=False),
    Index("ix_ha_fence_key", "idempotency_key"),
)
