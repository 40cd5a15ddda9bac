"""``novacron node``: the controller nodes sharing a store — list them, drain one, let it take work again.

A drained node keeps running but hands its shard leases to the other live nodes on its
next heartbeat (within ``renew_s``), with the open incidents of their targets; it keeps
its own process targets. ``undrain`` lets it take shards again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from novacron.cli._app import app
from novacron.cli._client import ConfigOpt, StoreOpt, open_store
from novacron.cli._output import JsonOpt, console, emit_json
from novacron.errors import InputError

if TYPE_CHECKING:
    from rich.table import Table

    from novacron.api.status_view import NodeOut

__all__ = ["node_table"]

node_app = typer.Typer(help="Controller nodes sharing a store: list, drain, undrain.", no_args_is_help=True)
app.add_typer(node_app, name="node")

NodeId = Annotated[str, typer.Argument(help="The node id (as given to `novacron run --node-id`).")]


@node_app.command("list")
def list_nodes(config: ConfigOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Every node: state, host, pid, version, last heartbeat, shards and targets owned."""
    from novacron.api.status_view import fleet_nodes

    db = open_store(store, config)
    try:
        found = fleet_nodes(db, now=time.time())
    finally:
        db.close()
    if as_json:
        emit_json([n.model_dump(mode="json") for n in found])
        return
    console().print(node_table(found) if found else "no controller node has registered on this store")


def node_table(found: Sequence[NodeOut]) -> Table:
    """The nodes as a table (``novacron node list``, ``novacron status``)."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("NODE", "STATE", "HOST", "PID", "VERSION", "HEARTBEAT", "SHARDS", "TARGETS"):
        table.add_column(col)
    for n in found:
        colour = {"active": "green", "draining": "yellow"}.get(n.state, "red")
        table.add_row(
            n.id,
            f"[{colour}]{n.state}[/]",
            n.host,
            str(n.pid),
            n.version,
            f"{n.last_heartbeat_s_ago:.1f}s ago",
            str(n.shards),
            str(n.targets),
        )
    return table


@node_app.command("drain")
def drain(node_id: NodeId, config: ConfigOpt = None, store: StoreOpt = None) -> None:
    """Hand the node's shards (remote targets and their incidents) over to the other live nodes."""
    _mark(node_id, config, store, drain=True)
    console().print(f"node {node_id} is draining: its shards move to the other live nodes within a heartbeat")


@node_app.command("undrain")
def undrain(node_id: NodeId, config: ConfigOpt = None, store: StoreOpt = None) -> None:
    """Let a drained node take shards again."""
    _mark(node_id, config, store, drain=False)
    console().print(f"node {node_id} is active again")


def _mark(node_id: str, config: ConfigOpt, store: StoreOpt, *, drain: bool) -> None:
    from novacron.store import nodes

    db = open_store(store, config)
    try:
        done = nodes.drain(db, node_id) if drain else nodes.undrain(db, node_id)
    finally:
        db.close()
    if not done:
        # an id nobody has is bad input (exit 2), as an unknown incident or approval is
        raise InputError(f"no node {node_id!r} on this store (see `novacron node list`)", where="NODE_ID")
