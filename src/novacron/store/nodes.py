"""Controller nodes in the store: one row per node id, its heartbeat and whether it drains.

A node registers when its controller starts. A second process that claims a node id
whose row is still beating (another live controller) is refused: two controllers with
one identity would be two owners of the same leases. Each process is an *incarnation*
of its node id; the heartbeat is written only while the row is still this incarnation's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, select, update

from novacron.errors import ConfigError
from novacron.store.ha_tables import ha_leases, ha_nodes
from novacron.store.repo import Store
from novacron.store.tables import settings_kv

__all__ = [
    "NodeIdTakenError",
    "NodeRow",
    "NodeState",
    "NodeView",
    "autonomous",
    "beat",
    "drain",
    "mark",
    "node_views",
    "nodes",
    "register",
    "undrain",
]

NodeState = Literal["active", "draining", "stopped"]
AUTONOMOUS_KEY = "autonomous_enabled"  # the setting the kill switch writes


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One controller node as the store knows it."""

    node_id: str
    incarnation: str
    host: str
    pid: int
    version: str
    api_url: str | None
    started_at: float
    heartbeat_at: float
    state: str
    targets: int = 0

    def live(self, now: float, stale_s: float) -> bool:
        """Beating within ``stale_s`` and not stopped."""
        return self.state != "stopped" and now - self.heartbeat_at <= stale_s


class NodeIdTakenError(ConfigError):
    """A node id held by a live controller; ``holder`` is its row (where it runs, its pid)."""

    def __init__(self, node_id: str, holder: NodeRow, *, now: float) -> None:
        super().__init__(
            f"node id {node_id!r} is in use by a live controller (pid {holder.pid} on {holder.host}, "
            f"heartbeat {now - holder.heartbeat_at:.1f}s ago); give each controller its own --node-id",
            where="--node-id",
        )
        self.holder = holder


def register(
    conn: Connection, row: NodeRow, *, stale_s: float, pid_alive: Callable[[int], bool] = lambda _pid: True
) -> None:
    """Record this incarnation as the node; refuse a node id a live controller still holds.

    A recent heartbeat alone does not make the holder live: when it ran on this host and
    ``pid_alive`` says its pid is gone (a controller killed and restarted at once), the node
    id is free.
    """
    found = conn.execute(select(ha_nodes).where(ha_nodes.c.node_id == row.node_id).with_for_update()).first()
    if found is not None:
        old = NodeRow(**found._mapping)
        gone = old.host == row.host and not pid_alive(old.pid)
        if old.incarnation != row.incarnation and old.live(row.started_at, stale_s) and not gone:
            raise NodeIdTakenError(row.node_id, old, now=row.started_at)
        conn.execute(update(ha_nodes).where(ha_nodes.c.node_id == row.node_id).values(**_values(row)))
        return
    conn.execute(ha_nodes.insert().values(**_values(row)))


def beat(
    conn: Connection, node_id: str, incarnation: str, *, now: float, targets: int, api_url: str | None = None
) -> str | None:
    """Write the heartbeat; the node's state (``draining`` is set by an operator), None if the row is not ours."""
    values: dict[str, Any] = {"heartbeat_at": now, "targets": targets}
    if api_url is not None:
        values["api_url"] = api_url
    ours = (ha_nodes.c.node_id == node_id) & (ha_nodes.c.incarnation == incarnation)
    # one round trip: the heartbeat runs every renew_s on what may be a loaded machine
    state = conn.execute(update(ha_nodes).where(ours).values(**values).returning(ha_nodes.c.state)).scalar()
    return None if state is None else str(state)


def autonomous(conn: Connection) -> bool:
    """The fleet's kill switch as stored (every controller follows it within a heartbeat)."""
    stmt = select(settings_kv.c.value).where(settings_kv.c.key == AUTONOMOUS_KEY)
    value = conn.execute(stmt).scalar()
    return True if value is None else bool(value)


def mark(conn: Connection, node_id: str, state: NodeState, *, incarnation: str | None = None) -> bool:
    """Set a node's state (drain it, or record a clean stop); False when there is no such node."""
    where = ha_nodes.c.node_id == node_id
    if incarnation is not None:
        where &= ha_nodes.c.incarnation == incarnation
    return bool(conn.execute(update(ha_nodes).where(where).values(state=state)).rowcount == 1)


def nodes(conn: Connection) -> list[NodeRow]:
    """Every node, by id."""
    return [NodeRow(**r._mapping) for r in conn.execute(select(ha_nodes).order_by(ha_nodes.c.node_id))]


def _values(row: NodeRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in NodeRow.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class NodeView:
    """A node for operators: its row, whether it is live, and the shards it holds."""

    node: NodeRow
    live: bool
    shards: int


def node_views(store: Store, *, now: float, stale_s: float) -> list[NodeView]:
    """Every node with its liveness and shard count (``novacron status``, ``node list``, the API)."""
    with store.engine.connect() as conn:
        rows = nodes(conn)
        held: dict[str, int] = {}
        for holder, expires in conn.execute(select(ha_leases.c.holder, ha_leases.c.expires_at)):
            if holder is not None and expires >= now:
                held[holder] = held.get(holder, 0) + 1
    return [NodeView(r, r.live(now, stale_s), held.get(r.node_id, 0)) for r in rows]


def drain(store: Store, node_id: str) -> bool:
    """Ask a node to hand its shards over (it does on its next heartbeat); False when there is no such node."""
    with store.engine.begin() as conn:
        return mark(conn, node_id, "draining")


def undrain(store: Store, node_id: str) -> bool:
    """Let a drained node take shards again."""
    with store.engine.begin() as conn:
        return mark(conn, node_id, "active")
