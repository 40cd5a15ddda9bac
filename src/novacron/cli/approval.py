"""``novacron approval``: the fleet's pending approvals on a store — list them, approve or reject one.

The decision is written to the store in one transaction (refused when the request is
already decided or its action no longer awaits approval); the controller that owns the
target reads it within a heartbeat and applies or drops the action.
"""

from __future__ import annotations

import getpass
import time
from typing import Annotated

import typer

from novacron.cli._app import app
from novacron.cli._client import ConfigOpt, StoreOpt, open_store
from novacron.cli._output import JsonOpt, console, emit_json

approval_app = typer.Typer(help="Pending approvals of every controller on a store.", no_args_is_help=True)
app.add_typer(approval_app, name="approval")

ActionIdArg = Annotated[str, typer.Argument(help="The action's id (see `novacron approval list`).")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who decides (default: the user running the command).")]


@approval_app.command("list")
def list_pending(config: ConfigOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Every open approval request of the fleet, oldest first, with the node waiting on it."""
    from novacron.store import approvals

    db = open_store(store, config)
    try:
        found = approvals.run_sync(db, approvals.open_requests)
    finally:
        db.close()
    rows = [
        {
            "id": r.action.id,
            "kind": r.action.kind.value,
            "target": r.action.target,
            "risk": r.action.risk.label,
            "incident_id": r.action.incident_id,
            "asked_by": r.asked_by,
            "asked_at": r.asked_at,
        }
        for r in found
    ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console().print("no action awaits approval")
    for row in rows:
        console().print(
            f"{row['id']}  {row['kind']} {row['target']} ({row['risk']} risk)  asked by node {row['asked_by']}"
        )


@approval_app.command("approve")
def approve(action_id: ActionIdArg, by: ByOpt = None, config: ConfigOpt = None, store: StoreOpt = None) -> None:
    """Approve a pending action, whichever controller asked."""
    _decide(action_id, True, by, config, store)


@approval_app.command("reject")
def reject(action_id: ActionIdArg, by: ByOpt = None, config: ConfigOpt = None, store: StoreOpt = None) -> None:
    """Reject a pending action: it is never applied."""
    _decide(action_id, False, by, config, store)


def _decide(action_id: str, yes: bool, by: str | None, config: ConfigOpt, store: StoreOpt) -> None:
    """Write the decision, and audit it (also when refused) as the API does."""
    from novacron.errors import ConflictError, InputError, NotFoundError
    from novacron.store import approvals

    who, verb = by or getpass.getuser(), f"cli.approval.{'approve' if yes else 'reject'}"
    db = open_store(store, config)
    try:
        try:
            approvals.run_sync(
                db, lambda conn: approvals.decide(conn, action_id, approve=yes, who=who, node="cli", now=time.time())
            )
        except (NotFoundError, ConflictError) as exc:
            result = "not_found" if isinstance(exc, NotFoundError) else "refused"
            db.audit(now=time.time(), actor=who, verb=verb, subject=action_id, result=result, detail=str(exc))
            # Exit 2 as through the API (404/409): the action id given is not one awaiting a decision.
            raise InputError(str(exc), where="ACTION_ID") from exc
        db.audit(now=time.time(), actor=who, verb=verb, subject=action_id, result="ok")
    finally:
        db.close()
    console().print(f"action {action_id} {'approved' if yes else 'rejected'} by {who}")
