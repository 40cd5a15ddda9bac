"""Three `novacron run` on PostgreSQL: an approval asked on one node, decided on another, adopted on failover."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from novacron.store import Store
from novacron.store.nodes import node_views

from .cluster import Cluster, Remote, cli, remote_spec, wait_for

N_TARGETS = 8
NODES = ("n1", "n2", "n3")


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, remote: Remote) -> Iterator[Cluster]:
    path = remote_spec(tmp_path, remote.base, N_TARGETS)
    spec = yaml.safe_load(path.read_text())
    spec["policy"]["approval_required"] = ["low", "medium", "high", "critical"]  # every step waits for a human
    path.write_text(yaml.safe_dump(spec))
    c = Cluster(path, pg_url, tmp_path)
    try:
        yield c
    finally:
        c.stop_all()


def _api(c: Cluster, node_id: str) -> tuple[str, dict[str, str]]:
    """A node's API address (as it registered it) and its local admin token."""
    store = Store.open(c.store_url)
    try:
        views = {v.node.node_id: v for v in node_views(store, now=time.time(), stale_s=2.0)}
    finally:
        store.close()
    url = views[node_id].node.api_url
    assert url is not None
    token = (c.folder / node_id / ".novacron" / "admin.token").read_text().strip()
    return url, {"authorization": f"Bearer {token}"}


def _pending(c: Cluster) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(cli("approval", "list", "--store", c.store_url, "--json").stdout)
    return out


def _request_on(c: Cluster, target: str) -> dict[str, Any] | None:
    return next((p for p in _pending(c) if p["target"] == target), None)


def _actions_on(remote: Remote, target: str) -> list[dict[str, Any]]:
    return [a for a in remote.actions() if a["target"] == target]


def _settled(c: Cluster, live: set[str]) -> None:
    wait_for(
        lambda: all(c.owner(f"r{i}") in live for i in range(N_TARGETS)), f"every target owned by {live}", timeout=120
    )


@pytest.mark.slow
@pytest.mark.timeout(400)  # three controllers start and stop as separate processes
def test_an_approval_is_decided_on_any_node_and_survives_its_owner(cluster: Cluster, remote: Remote) -> None:
    for node_id in NODES:
        cluster.start(node_id)
    _settled(cluster, set(NODES))

    # the owner asks; another node's API lists the request and decides it; the owner applies it
    owner = cluster.owner("r0")
    assert owner is not None
    other, third = (n for n in NODES if n != owner)
    remote.fault("r0")
    request = wait_for(lambda: _request_on(cluster, "r0"), "an approval request for r0", timeout=60)
    assert request["asked_by"] == owner
    assert _actions_on(remote, "r0") == [], "nothing is applied before the approval"
    url, auth = _api(cluster, other)
    listed = httpx.get(f"{url}/approvals", headers=auth).json()
    assert [(p["id"], p["asked_by"]) for p in listed] == [(request["id"], owner)]
    decided_at = time.time()
    r = httpx.post(f"{url}/approvals/{request['id']}", json={"decision": "approve"}, headers=auth)
    assert r.status_code == 200, r.text
    [act] = wait_for(lambda: _actions_on(remote, "r0"), "the approved action on r0", timeout=60)
    assert act["fence"]["node"] == owner
    print(json.dumps({"decision_to_action_ms": round((act["at"] - decided_at) * 1000, 1)}))

    # a second decision, on a third node's API, is refused naming the action; nothing changes
    url3, auth3 = _api(cluster, third)
    again = httpx.post(f"{url3}/approvals/{request['id']}", json={"decision": "reject"}, headers=auth3)
    assert again.status_code == 409
    assert request["id"] in again.json()["detail"]
    missing = cli("approval", "approve", "act-nope", "--store", cluster.store_url)
    assert missing.returncode == 2
    assert "no action 'act-nope' awaits approval" in missing.stderr

    # the owner of a step awaiting approval is killed: the new owner waits on the same request
    target = next(f"r{i}" for i in range(1, N_TARGETS) if cluster.owner(f"r{i}") is not None)
    asker = cluster.owner(target)
    assert asker is not None
    remote.fault(target)
    request = wait_for(lambda: _request_on(cluster, target), f"an approval request for {target}", timeout=60)
    assert request["asked_by"] == asker
    cluster.signal(asker, signal.SIGKILL)
    live = set(NODES) - {asker}
    _settled(cluster, live)
    heir = cluster.owner(target)
    assert heir in live
    wait_for(
        lambda: any(
            line.get("event") == "taking over a step claimed but never applied"
            for line in cluster.nodes[str(heir)].lines()
        ),
        f"{heir} adopting the awaiting step",
        timeout=60,
    )
    assert [p["asked_by"] for p in _pending(cluster) if p["target"] == target] == [asker], "asked once"
    approved = cli("approval", "approve", request["id"], "--by", "alice", "--store", cluster.store_url)
    assert approved.returncode == 0, approved.stderr
    store = Store.open(cluster.store_url)
    try:
        audited = {(e.actor, e.verb, e.subject, e.result) for e in store.audit_log()}
    finally:
        store.close()
    assert ("alice", "cli.approval.approve", request["id"], "ok") in audited
    [act] = wait_for(lambda: _actions_on(remote, target), f"the approved action on {target}", timeout=60)
    assert act["fence"]["node"] == heir
    time.sleep(2)  # were it applied twice, the second would have come by now
    assert len(_actions_on(remote, target)) == 1
    assert remote.summary()["duplicate_keys"] == 0
    assert _pending(cluster) == []
