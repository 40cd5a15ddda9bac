"""Three `novacron run` processes on one PostgreSQL store share remote targets, fail over, fence, drain."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from novacron.store import Store
from novacron.store.nodes import NodeView, node_views

from .cluster import Cluster, Remote, cli, remote_spec, wait_for

N_TARGETS = 8


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, remote: Remote) -> Iterator[Cluster]:
    c = Cluster(remote_spec(tmp_path, remote.base, N_TARGETS), pg_url, tmp_path)
    try:
        yield c
    finally:
        c.stop_all()


def _nodes(c: Cluster) -> dict[str, NodeView]:
    store = Store.open(c.store_url)
    try:
        return {v.node.node_id: v for v in node_views(store, now=time.time(), stale_s=2.0)}
    finally:
        store.close()


def _spread(c: Cluster, live: set[str]) -> None:
    def settled() -> bool:
        nodes = _nodes(c)
        owners = {c.owner(f"r{i}") for i in range(N_TARGETS)}
        owned = sum(nodes[n].node.targets for n in live if n in nodes)
        return owners <= live and None not in owners and owned == N_TARGETS

    wait_for(settled, f"every target owned by {sorted(live)}", timeout=120)  # generous: a loaded machine


def _fault_and_disrupt(c: Cluster, remote: Remote, target: str, owner: str, sig: signal.Signals) -> float:
    """Fault ``target``, then SIGKILL or SIGSTOP its owner; when the failing target was left to the others.

    The owner probes every 0.1 s: on a loaded machine it can heal the fault before the
    signal lands, and then no other node ever has to act. The target is faulted again,
    after the signal, so that healing it is still a failover.
    """
    remote.fault(target)
    c.signal(owner, sig)
    at = time.time()
    if target not in remote.faulted():
        remote.fault(target)
        at = time.time()
    return at


def _status_states(c: Cluster) -> dict[str, str]:
    status = json.loads(cli("status", "--store", c.store_url, "--json").stdout)
    return {n["id"]: n["state"] for n in status["nodes"]}


def _first_action_on(remote: Remote, target: str, *, after: float) -> dict[str, object] | None:
    return next((a for a in remote.actions() if a["target"] == target and a["at"] > after), None)


@pytest.mark.slow
@pytest.mark.timeout(400)  # three controllers start and stop as separate processes
def test_three_controllers_fail_over_fence_drain_and_refuse_a_twin(cluster: Cluster, remote: Remote) -> None:
    for node_id in ("n1", "n2", "n3"):
        cluster.start(node_id)
    _spread(cluster, {"n1", "n2", "n3"})

    # SIGKILL the owner of a failing target: another node acts on it
    victim = cluster.owner("r0")
    assert victim is not None
    killed_at = _fault_and_disrupt(cluster, remote, "r0", victim, signal.SIGKILL)
    act = wait_for(
        lambda: _first_action_on(remote, "r0", after=killed_at), "an action on r0 by a new owner", timeout=120
    )
    assert act["fence"]["node"] != victim

    # SIGSTOP the owner of another failing target: taken over; woken, it does nothing
    live = {"n1", "n2", "n3"} - {victim}
    _spread(cluster, live)
    target = next(f"r{i}" for i in range(1, N_TARGETS) if cluster.owner(f"r{i}") in live)
    paused = cluster.owner(target)
    assert paused is not None
    stopped_at = _fault_and_disrupt(cluster, remote, target, paused, signal.SIGSTOP)
    act = wait_for(lambda: _first_action_on(remote, target, after=stopped_at), f"an action on {target}", timeout=120)
    assert act["fence"]["node"] not in (paused, victim)
    cluster.signal(paused, signal.SIGCONT)
    _spread(cluster, live)  # the woken node gets its fair share back, through new leases

    summary = remote.summary()
    assert summary["duplicate_keys"] == 0
    assert summary["stale_epochs"] == 0, "no action reached the world under an old epoch"
    # As `novacron status` shows them; a heartbeat a loaded machine delays past node_stale_s
    # shows a live node as dead for that moment, so the states are awaited, not sampled once.
    expected = {victim: "dead"} | dict.fromkeys(live, "active")
    wait_for(lambda: _status_states(cluster) == expected, f"novacron status showing {expected}", timeout=60)

    # drain one live node: its targets move to the other; undrain: it takes its share back
    drained, other = sorted(live)
    assert cli("node", "drain", drained, "--store", cluster.store_url).returncode == 0
    _spread(cluster, {other})
    assert _nodes(cluster)[drained].node.state == "draining"
    assert cli("node", "undrain", drained, "--store", cluster.store_url).returncode == 0
    _spread(cluster, live)
    missing = cli("node", "drain", "nope", "--store", cluster.store_url)
    assert missing.returncode == 2
    assert "error: NODE_ID: no node 'nope'" in missing.stderr

    # a second controller with a live node's id is refused, naming it
    res = cli("run", "-c", str(cluster.spec), "--store", cluster.store_url, "--node-id", other, cwd=cluster.folder)
    assert not (cluster.folder / ".novacron" / "admin.token").exists(), "refused before anything is written"
    assert res.returncode == 2
    assert f"node id '{other}' is in use by a live controller" in res.stderr
    assert "Traceback" not in res.stderr
    assert remote.summary()["duplicate_keys"] == 0
